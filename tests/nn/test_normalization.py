"""Observation normalization inside the policy: the running statistics against NumPy in
float64, the networks (actor and critics) seeing the same normalized observations, evaluation
leaving the statistics alone, and the statistics travelling with the policy."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from rl_repara import (
    Batch,
    EvalConfig,
    QEnsemble,
    SACConfig,
    TanhGaussianPolicy,
    TrainConfig,
    load_policy,
    train,
)
from rl_repara.agent.losses import actor_loss, critic_loss
from rl_repara.nn.obs_normalizer import ObsNormalizer
from rl_repara.training.config import LogConfig
from rl_repara.training.evaluation import evaluate


@pytest.mark.parametrize("sizes", [[1] * 40, [7, 1, 300, 2], [1000]])
def test_running_statistics_equal_numpy_over_everything_seen(sizes):
    rng = np.random.default_rng(0)
    batches = [rng.normal([3.0, -100.0, 0.0], [0.1, 50.0, 1e-3], size=(n, 3)) for n in sizes]
    norm = ObsNormalizer(3)
    for b in batches:
        norm.update(torch.as_tensor(b, dtype=torch.float32))
    seen = np.concatenate([b.astype(np.float32) for b in batches]).astype(np.float64)
    assert float(norm.count) == len(seen)
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), seen.var(0), rtol=1e-9, atol=1e-15)
    x = torch.as_tensor(seen[:5], dtype=torch.float32)
    expected = np.clip((seen[:5] - seen.mean(0)) / np.sqrt(seen.var(0) + 1e-8), -10, 10)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_normalized_values_are_clipped():
    norm = ObsNormalizer(2, clip=5.0)
    norm.update(torch.randn(100, 2))
    out = norm(torch.tensor([[1e6, -1e6]]))
    assert out.tolist() == [[5.0, -5.0]]


def _normalized_policy() -> tuple[TanhGaussianPolicy, TanhGaussianPolicy]:
    """A policy with non-trivial statistics and a plain copy with the same weights."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(
        3, 2, (16,), action_low=[-2.0, 0.0], action_high=[3.0, 1.0], normalize_obs=True
    )
    policy.obs_normalizer.update(torch.randn(500, 3) * torch.tensor([5.0, 0.1, 30.0]) + 7.0)
    plain = TanhGaussianPolicy(3, 2, (16,), action_low=[-2.0, 0.0], action_high=[3.0, 1.0])
    plain.load_state_dict({k: v for k, v in policy.state_dict().items() if "obs_normalizer" not in k})
    return policy, plain


def test_the_actor_and_the_critics_see_the_same_normalized_observations():
    policy, plain = _normalized_policy()
    obs = torch.randn(32, 3) * 10 + 7
    normed = policy.obs_normalizer(obs)
    torch.testing.assert_close(policy.deterministic_action(obs), plain.deterministic_action(normed))
    torch.manual_seed(1)
    a, logp = policy(obs)
    torch.manual_seed(1)
    a_ref, logp_ref = plain(normed)
    torch.testing.assert_close((a, logp), (a_ref, logp_ref))
    critics, targets = QEnsemble(3, 2, 2, (16,)), QEnsemble(3, 2, 2, (16,))
    batch = Batch(obs, torch.rand(32, 2) * 2 - 1, torch.randn(32), obs.flip(0), torch.zeros(32))
    normed_batch = batch._replace(obs=normed, next_obs=policy.obs_normalizer(batch.next_obs))
    for loss in (
        lambda p, b: critic_loss(p, critics, targets, torch.tensor(0.2), b, 0.99)[0],
        lambda p, b: actor_loss(p, critics, torch.tensor(0.2), b.obs)[0],
    ):
        torch.manual_seed(2)
        ours = loss(policy, batch)
        torch.manual_seed(2)
        torch.testing.assert_close(ours, loss(plain, normed_batch))


def test_evaluation_and_acting_do_not_touch_the_statistics():
    policy, _ = _normalized_policy()
    before = copy.deepcopy(policy.obs_normalizer.state_dict())
    env = gym.make("Pendulum-v1")
    policy3 = TanhGaussianPolicy(3, 1, (8,), action_low=-2.0, action_high=2.0, normalize_obs=True)
    policy3.obs_normalizer.load_state_dict(before)
    evaluate(policy3, env, episodes=2, seed=0)
    policy3.act(np.zeros(3, dtype=np.float32))
    policy(torch.randn(8, 3))
    for name, value in before.items():
        assert torch.equal(policy3.obs_normalizer.state_dict()[name], value), name
        assert torch.equal(policy.obs_normalizer.state_dict()[name], value), name


def test_training_collects_statistics_and_load_policy_brings_them(tmp_path):
    """Each observation acted on is counted once (evaluation episodes are not), and the
    policy loaded from the run dir normalizes with those statistics."""
    cfg = TrainConfig(
        total_steps=300,
        run_dir=str(tmp_path),
        device="cpu",
        agent=SACConfig(hidden_sizes=[16], batch_size=16, learning_starts=100, normalize_obs=True),
        eval=EvalConfig(every_steps=150, episodes=1),
        log=LogConfig(progress="none"),
    )
    train(cfg)
    policy = load_policy(tmp_path)
    assert policy.obs_normalizer is not None
    assert float(policy.obs_normalizer.count) == 300
    assert 0.5 < float(policy.obs_normalizer.var[2]) < 20  # Pendulum's angular velocity
    obs = torch.randn(4, 3)
    plain = TanhGaussianPolicy(3, 1, [16], action_low=-2.0, action_high=2.0)
    plain.load_state_dict({k: v for k, v in policy.state_dict().items() if "obs_normalizer" not in k})
    torch.testing.assert_close(
        policy.deterministic_action(obs), plain.deterministic_action(policy.normalize(obs))
    )
