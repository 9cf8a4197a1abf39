"""Deterministic evaluation: the one episode loop, used for evaluation and for video."""

from __future__ import annotations

from typing import Callable, Optional

import gymnasium as gym
import numpy as np

from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = ["EVAL_SEED_OFFSET", "eval_seed", "evaluate", "run_episode"]

# Evaluation episodes are reset with seeds ``train seed + EVAL_SEED_OFFSET + k``: other start
# states than training's, and the same at every evaluation, so curves compare.
EVAL_SEED_OFFSET = 1_000_000


def eval_seed(train_seed: int) -> int:
    """The seed of the first evaluation episode of a run trained with ``train_seed``."""
    return train_seed + EVAL_SEED_OFFSET


def run_episode(
    policy: TanhGaussianPolicy,
    env: gym.Env,
    seed: Optional[int] = None,
    max_steps: int = 100_000,
    on_frame: Optional[Callable[[], None]] = None,
) -> float:
    """One episode with ``policy.act(obs, deterministic=True)`` from its very first action;
    returns the undiscounted return. Stops after ``max_steps`` if the env never ends.
    ``on_frame`` is called after the reset and after every step (a video grabs frames there)."""
    obs, _ = env.reset(seed=seed)
    if on_frame is not None:
        on_frame()
    total, done, steps = 0.0, False, 0
    while not done and steps < max_steps:
        steps += 1
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs, deterministic=True))
        total += float(reward)
        done = terminated or truncated
        if on_frame is not None:
            on_frame()
    return total


def evaluate(policy: TanhGaussianPolicy, env: gym.Env, episodes: int, seed: int = 0) -> tuple[float, float]:
    """Mean and std of the return over ``episodes`` deterministic episodes, the k-th reset
    with ``seed + k`` (the same start states at every evaluation, so curves compare)."""
    was_training = policy.training
    policy.eval()
    try:
        returns = [run_episode(policy, env, seed + k) for k in range(episodes)]
    finally:
        policy.train(was_training)
    return float(np.mean(returns)), float(np.std(returns))
