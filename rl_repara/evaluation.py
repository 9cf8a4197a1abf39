"""Deterministic evaluation: episodes driven by the squashed mean action."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from .policies import TanhGaussianPolicy

__all__ = ["evaluate", "run_episode"]


def run_episode(
    policy: TanhGaussianPolicy, env: gym.Env, seed: int | None = None, max_steps: int = 100_000
) -> float:
    """One episode with ``policy.act(obs, deterministic=True)`` from its very first action;
    returns the undiscounted return. Stops after ``max_steps`` if the env never ends."""
    obs, _ = env.reset(seed=seed)
    total, done, steps = 0.0, False, 0
    while not done and steps < max_steps:
        steps += 1
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs, deterministic=True))
        total += float(reward)
        done = terminated or truncated
    return total


def evaluate(
    policy: TanhGaussianPolicy, env: gym.Env, episodes: int, seed: int = 0
) -> tuple[float, float]:
    """Mean and std of the return over ``episodes`` deterministic episodes, the k-th reset
    with ``seed + k`` (the same start states at every evaluation, so curves compare)."""
    was_training = policy.training
    policy.eval()
    try:
        returns = [run_episode(policy, env, seed + k) for k in range(episodes)]
    finally:
        policy.train(was_training)
    return float(np.mean(returns)), float(np.std(returns))
