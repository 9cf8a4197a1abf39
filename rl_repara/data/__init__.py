"""Envs, their snapshots, the collector and the replay buffer."""
