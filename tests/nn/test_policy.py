"""TanhGaussianPolicy: its density is a density of the actions it returns, in env units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rl_repara import ConfigError, TanhGaussianPolicy

LOW, HIGH = -2.0, 3.0
MID, HALF = (HIGH + LOW) / 2, (HIGH - LOW) / 2
OBS_DIM = 3


def constant_policy(mu: float, sigma: float, low=LOW, high=HIGH) -> TanhGaussianPolicy:
    """A 1-D policy whose μ and σ are ``mu`` and ``sigma`` for every obs: the head's weights
    are zero and its bias holds μ and the raw value that the log σ map sends to log ``sigma``."""
    policy = TanhGaussianPolicy(OBS_DIM, 1, hidden_sizes=(8,), action_low=low, action_high=high)
    lo, hi = policy.log_std_bounds
    raw = math.atanh(2.0 * (math.log(sigma) - lo) / (hi - lo) - 1.0)
    with torch.no_grad():
        policy.head.weight.zero_()
        policy.head.bias.copy_(torch.tensor([mu, raw]))
    return policy


def log_density(policy: TanhGaussianPolicy, actions: np.ndarray) -> np.ndarray:
    """log π(a|s) for a 1-D policy at many actions (float64 array in, float64 array out)."""
    dist = policy.distribution(torch.zeros(1, OBS_DIM))
    values = torch.as_tensor(actions, dtype=torch.float32).reshape(-1, 1, 1)
    return dist.log_prob(values).detach().squeeze(-1).double().numpy()


def cumulative_trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(x))])


def density_cdf(mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(actions, CDF at them, total mass) of the policy's density, integrated numerically.

    The integral runs over u on a fine grid, with ``a(u) = mid + half·tanh(u)`` and
    ``da = half·sech²(u) du``: the same integral as over a, but the grid follows the mass
    when the density piles up against a bound.
    """
    policy = constant_policy(mu, sigma)
    u = np.linspace(mu - 10 * sigma, mu + 10 * sigma, 40_001)
    actions = MID + HALF * np.tanh(u)
    density_u = np.exp(log_density(policy, actions)) * HALF / np.cosh(u) ** 2
    cdf = cumulative_trapezoid(density_u, u)
    return actions, cdf, float(cdf[-1])


def test_density_integrates_to_one_over_asymmetric_bounds():
    policy = constant_policy(0.3, 0.7)
    a = np.linspace(LOW, HIGH, 20_001)[1:-1]
    mass = (getattr(np, "trapezoid", None) or np.trapz)(np.exp(log_density(policy, a)), a)
    assert abs(mass - 1.0) < 1e-4


@pytest.mark.parametrize("mu,sigma", [(0.3, 0.7), (2.5, 0.4), (-2.0, 1.0)])  # smooth; near a bound
def test_density_integrates_to_one_in_u_space(mu, sigma):
    _, _, mass = density_cdf(mu, sigma)
    assert abs(mass - 1.0) < 1e-4


@pytest.mark.parametrize("mu,sigma", [(0.3, 0.7), (2.5, 0.4)])
def test_samples_follow_the_density(mu, sigma):
    """Kolmogorov-Smirnov: sup |F_n − F| < 1.63/√n fails about 1% of the time for a sampler
    that does follow F (the statistic is checked on a fine grid, so it is a lower bound)."""
    n = 20_000
    policy = constant_policy(mu, sigma)
    with torch.no_grad():
        samples, _ = policy(torch.randn(n, OBS_DIM))
    samples = np.sort(samples.squeeze(-1).double().numpy())
    assert samples.min() >= LOW and samples.max() <= HIGH
    actions, cdf, mass = density_cdf(mu, sigma)
    grid = actions.astype(np.float32).astype(np.float64)
    empirical = np.searchsorted(samples, grid, side="right") / n
    assert np.max(np.abs(empirical - cdf / mass)) < 1.63 / math.sqrt(n)


def test_forward_log_prob_is_the_density_of_the_returned_action():
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,), action_low=LOW, action_high=HIGH)
    obs = torch.randn(256, OBS_DIM)
    action, log_prob = policy(obs)
    assert action.shape == (256, 2) and log_prob.shape == (256,)
    inside = ((action - MID).abs() / HALF < 0.99).all(-1)  # away from saturation
    assert inside.sum() > 200
    expected = policy.distribution(obs).log_prob(action)
    torch.testing.assert_close(log_prob[inside], expected[inside], rtol=1e-4, atol=1e-4)


def test_forward_includes_the_scale_jacobian_of_the_bounds():
    """Same network and noise, bounds [-2, 3] vs [-1, 1]: a = 0.5 + 2.5·a_unit, and the
    density is lower by log 2.5 per action dim."""
    wide = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,), action_low=LOW, action_high=HIGH)
    unit = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,))
    unit.trunk.load_state_dict(wide.trunk.state_dict())
    unit.head.load_state_dict(wide.head.state_dict())
    obs = torch.randn(64, OBS_DIM)
    torch.manual_seed(5)
    a_wide, lp_wide = wide(obs)
    torch.manual_seed(5)
    a_unit, lp_unit = unit(obs)
    torch.testing.assert_close(a_wide, MID + HALF * a_unit)
    torch.testing.assert_close(lp_wide, lp_unit - 2 * math.log(HALF), rtol=0, atol=1e-4)


def test_deterministic_forward_is_the_squashed_mean():
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,), action_low=LOW, action_high=HIGH)
    obs = torch.randn(32, OBS_DIM)
    action, log_prob = policy(obs, deterministic=True)
    mu = policy.head(policy.trunk(obs))[:, :2]
    torch.testing.assert_close(action, MID + HALF * torch.tanh(mu))
    torch.testing.assert_close(policy(obs, deterministic=True)[0], action)
    torch.testing.assert_close(log_prob, policy.distribution(obs).log_prob(action), rtol=1e-4, atol=1e-4)


def test_log_std_stays_inside_its_bounds_and_reaches_both_ends():
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(8,), log_std_bounds=(-4.0, 1.5))
    with torch.no_grad():
        policy.head.weight.zero_()
        policy.head.bias.copy_(torch.tensor([0.0, 0.0, -50.0, 50.0]))  # raw log σ: −∞, +∞
    log_std = policy.distribution(torch.zeros(1, OBS_DIM)).scale.log()[0]
    torch.testing.assert_close(log_std, torch.tensor([-4.0, 1.5]))
    random = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(8,), log_std_bounds=(-4.0, 1.5))
    with torch.no_grad():
        random.head.weight.mul_(100.0)
    log_std = random.distribution(torch.randn(512, OBS_DIM)).scale.log()
    assert (log_std >= -4.0 - 1e-6).all() and (log_std <= 1.5 + 1e-6).all()


@pytest.mark.parametrize("deterministic", [False, True])
def test_gradients_reach_the_weights_through_action_and_log_prob(deterministic):
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,))
    action, log_prob = policy(torch.randn(8, OBS_DIM), deterministic=deterministic)
    grads = torch.autograd.grad(action.sum(), policy.head.weight, retain_graph=True)[0]
    assert grads.abs().sum() > 0
    grads = torch.autograd.grad(log_prob.sum(), policy.head.weight)[0]
    assert grads.abs().sum() > 0


# ------------------------------------------------------------------------------------- act()
def test_act_numpy_in_numpy_out_single_and_batch():
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,), action_low=LOW, action_high=HIGH)
    batch = np.random.randn(5, OBS_DIM).astype(np.float64)
    out = policy.act(batch)
    assert isinstance(out, np.ndarray) and out.shape == (5, 2) and out.dtype == np.float32
    expected, _ = policy(torch.as_tensor(batch, dtype=torch.float32), deterministic=True)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    single = policy.act(batch[0])
    assert isinstance(single, np.ndarray) and single.shape == (2,)
    np.testing.assert_allclose(single, out[0], rtol=1e-6, atol=1e-6)
    assert policy.act([0.1, 0.2, 0.3]).shape == (2,)  # any array-like


def test_act_stochastic_stays_inside_bounds_and_varies():
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,), action_low=LOW, action_high=HIGH)
    obs = np.zeros(OBS_DIM)
    draws = np.stack([policy.act(obs, deterministic=False) for _ in range(50)])
    assert (draws >= LOW).all() and (draws <= HIGH).all()
    assert np.unique(draws[:, 0]).size > 1


@pytest.mark.parametrize("shape", [(OBS_DIM + 1,), (2, OBS_DIM + 1), (2, 4, OBS_DIM), (0, 2), ()])
def test_act_wrong_obs_shape_raises_a_clear_error(shape):
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(16,))
    with pytest.raises(ValueError, match=r"act\(\) expects obs of shape \(3,\) or \(B, 3\)"):
        policy.act(np.zeros(shape))


# ----------------------------------------------------------------------------- from_spaces
def test_from_spaces_per_dimension_bounds_keep_actions_in_the_box():
    box = spaces.Box(
        low=np.array([-2.0, 0.0, 10.0], np.float32),
        high=np.array([3.0, 0.5, 12.0], np.float32),
        dtype=np.float32,
    )
    obs_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    policy = TanhGaussianPolicy.from_spaces(obs_space, box, hidden_sizes=(16,))
    assert policy.obs_dim == 4 and policy.act_dim == 3
    np.testing.assert_array_equal(policy.action_low.numpy(), box.low)
    np.testing.assert_array_equal(policy.action_high.numpy(), box.high)
    obs = torch.randn(4096, 4) * 50  # large inputs push μ into saturation as well
    with torch.no_grad():
        sampled, _ = policy(obs)
        mean, _ = policy(obs, deterministic=True)
    for actions in (sampled.numpy(), mean.numpy(), policy.act(obs.numpy())):
        assert (actions >= box.low).all() and (actions <= box.high).all()
        assert all(box.contains(a) for a in actions[:64])


def test_from_spaces_rejects_a_discrete_action_space():
    obs_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    with pytest.raises(ConfigError, match="bounded continuous Box"):
        TanhGaussianPolicy.from_spaces(obs_space, spaces.Discrete(3))


def test_from_spaces_rejects_an_unbounded_box():
    obs_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    unbounded = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    with pytest.raises(ConfigError, match="unbounded"):
        TanhGaussianPolicy.from_spaces(obs_space, unbounded)


@pytest.mark.parametrize("low,high", [(1.0, 1.0), ([0.0, 2.0], [1.0, 1.0])])
def test_policy_bad_bounds_raise_a_clear_error(low, high):
    with pytest.raises(ValueError, match="low < high"):
        TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(8,), action_low=low, action_high=high)


def test_a_float64_policy_computes_mu_and_sigma_in_float64():
    """``policy.double()``: μ and σ (and the actions and log-densities built on them) are float64
    and equal a float64 reference written out from the weights; no float32 rounding on the way
    (about 1e-7 relative). Under bf16 autocast a float32 policy's μ and σ stay float32."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(8,), action_low=LOW, action_high=HIGH).double()
    obs = torch.randn(5, OBS_DIM, dtype=torch.float64)
    first, head = policy.trunk[0], policy.head
    with torch.no_grad():
        out = torch.relu(obs @ first.weight.T + first.bias) @ head.weight.T + head.bias
    mu, raw = out[:, :2], out[:, 2:]
    lo, hi = policy.log_std_bounds
    sigma = torch.exp(lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0))
    dist = policy.distribution(obs)
    assert dist.loc.dtype == dist.scale.dtype == torch.float64
    torch.testing.assert_close(dist.loc, mu, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(dist.scale, sigma, rtol=1e-12, atol=1e-14)
    action = policy.deterministic_action(obs)
    assert action.dtype == torch.float64
    torch.testing.assert_close(action, MID + HALF * torch.tanh(mu), rtol=1e-12, atol=1e-14)
    y, log_prob = policy.sample_unit(obs)
    assert y.dtype == log_prob.dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = TanhGaussianPolicy(OBS_DIM, 2, hidden_sizes=(8,)).distribution(obs.float())
    assert bf16.loc.dtype == bf16.scale.dtype == torch.float32
