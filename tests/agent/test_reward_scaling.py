"""Reward scaling (``agent/reward_scaling.py``) against a NumPy reference that keeps every
discounted return; the target-entropy rules; and the scaler's statistics in the learner's state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rl_repara import SAC, SACConfig, TanhGaussianPolicy
from rl_repara.agent.reward_scaling import RewardScaler
from rl_repara.agent.schedules import target_entropy


def reference(rewards: np.ndarray, dones: np.ndarray, gamma: float, g_max: float) -> tuple[float, float]:
    """``(√(var + 1e-8), max(that, max|G|/g_max))`` from all returns at once: the running
    ``G`` per env, and the variance of every ``G`` with a prior of 1e-4 samples of variance 1
    at mean 0 (what the running update computes)."""
    g, seen = np.zeros(rewards.shape[1]), []
    for r, d in zip(rewards, dones):
        g = gamma * (1.0 - d) * g + r
        seen.append(g.copy())
    values = np.concatenate(seen)
    n0, n = 1e-4, values.size
    mean = values.sum() / (n0 + n)
    var = (n0 * (1.0 + (0.0 - mean) ** 2) + ((values - mean) ** 2).sum()) / (n0 + n)
    std = math.sqrt(var + 1e-8)
    return std, max(std, np.abs(values).max() / g_max)


@pytest.mark.parametrize("kind", ["return_std", "return_std_max"])
def test_the_scale_is_that_of_all_the_discounted_returns_seen(kind):
    rng = np.random.default_rng(0)
    rewards = rng.normal(0.5, 2.0, size=(400, 3))
    dones = rng.random((400, 3)) < 0.02
    scaler = RewardScaler(kind, gamma=0.99, num_envs=3, g_max=2.0)
    for r, d in zip(rewards, dones):
        scaler.observe(torch.as_tensor(r), torch.as_tensor(d))
    std, std_max = reference(rewards, dones.astype(float), 0.99, 2.0)
    want = std if kind == "return_std" else std_max
    assert float(scaler.scale()) == pytest.approx(want, rel=1e-6)
    if kind == "return_std_max":
        assert std_max > std  # the max term is the one that binds here: the test sees it


def test_the_learner_divides_the_sampled_rewards_and_its_state_resumes_the_statistics():
    cfg = SACConfig(hidden_sizes=[8], batch_size=4, reward_scaling="return_std", gamma=0.9)
    torch.manual_seed(0)
    sac = SAC(TanhGaussianPolicy(3, 1), cfg)
    for i in range(50):
        sac.observe_rewards(torch.tensor([float(i % 7), 1.0]), torch.tensor([i % 10 == 9, False]))
    restored = SAC(TanhGaussianPolicy(3, 1), cfg)
    restored.load_state_dict(sac.state_dict())
    for a, b in zip(sac.reward_scaler.state_dict().values(), restored.reward_scaler.state_dict().values()):
        assert torch.equal(a, b)
    sac.observe_rewards(torch.tensor([2.0, 3.0]), torch.tensor([False, True]))
    restored.observe_rewards(torch.tensor([2.0, 3.0]), torch.tensor([False, True]))
    assert torch.equal(sac.reward_scaler.scale(), restored.reward_scaler.scale())


def test_target_entropy_rules():
    assert target_entropy(SACConfig(), 6) == -6.0
    assert target_entropy(SACConfig(target_entropy_per_dim=-0.5), 6) == -3.0
    # FlashSAC: the entropy of N(0, 0.15² I) in 6 dims, about -2.87
    assert target_entropy(SACConfig(target_entropy_sigma=0.15), 6) == pytest.approx(
        3 * math.log(2 * math.pi * math.e * 0.15**2)
    )
    assert target_entropy(SACConfig(target_entropy=-1.5, target_entropy_sigma=0.15), 6) == -1.5
