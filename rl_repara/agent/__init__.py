"""The learner: its config and presets, losses, the update and its backends, exploration."""
