"""Property tests (hypothesis) of ``TanhNormal`` and ``TanhGaussianPolicy`` over wide ranges.

* loc in [−50, 50], scale in [1e−4, 1e2], float32 and float64: samples, log-densities and
  their gradients w.r.t. loc and scale are finite; samples lie inside [low, high] for any
  per-dim (asymmetric) bounds.
* ``log_prob(a)`` of a drawn action agrees with the log-density ``rsample_and_log_prob`` returns
  with it, to within the rounding error propagated through ``atanh`` (derived below).
* The policy's (action, log_prob) stay finite for observations of ±1e6, ±1e30 and mixtures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rl_repara import TanhGaussianPolicy, TanhNormal

DTYPES = st.sampled_from([torch.float32, torch.float64])
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def tanh_normals(draw, loc_range=(-50.0, 50.0), scale_range=(1e-4, 1e2)):
    """(dtype, loc [d], scale [d], low [d], high [d]) with per-dim, asymmetric bounds.

    Also seeds torch's global RNG (``rsample``'s noise) from the example, so a failing
    example replays with the same draws.
    """
    torch.manual_seed(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(DTYPES)
    d = draw(st.integers(1, 4))
    floats = lambda lo, hi: st.lists(st.floats(lo, hi), min_size=d, max_size=d)  # noqa: E731
    loc = draw(floats(*loc_range))
    # log-uniform scale, so 1e-4 and 1e2 are both well covered
    log_scale = draw(floats(math.log10(scale_range[0]), math.log10(scale_range[1])))
    scale = [10.0**e for e in log_scale]
    low = draw(floats(-1e3, 1e3))
    width = [10.0**e for e in draw(floats(-3.0, 3.0))]
    t = lambda x: torch.tensor(x, dtype=dtype)  # noqa: E731
    return dtype, t(loc), t(scale), t(low), t(low) + t(width)


def _all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(x).all()) for x in tensors)


@SETTINGS
@given(tanh_normals())
def test_samples_log_probs_and_gradients_are_finite(params):
    dtype, loc, scale, low, high = params
    loc, scale = loc.requires_grad_(), scale.requires_grad_()
    # validate_args=False: finiteness only here; the bounds have their own test below
    dist = TanhNormal(loc, scale, low, high, validate_args=False)
    action, log_prob = dist.rsample_and_log_prob((32,))
    assert action.dtype == log_prob.dtype == dtype
    assert _all_finite(action, log_prob), (action, log_prob)
    g_loc, g_scale = torch.autograd.grad(action.sum() + log_prob.sum(), (loc, scale))
    assert _all_finite(g_loc, g_scale), (g_loc, g_scale)

    # the log-density of given actions (buffer path: atanh of a clamped value)
    outside = dist.log_prob(action.detach())
    g_loc, g_scale = torch.autograd.grad(outside.sum(), (loc, scale))
    assert _all_finite(outside, g_loc, g_scale), (outside, g_loc, g_scale)


@SETTINGS
@given(tanh_normals())
def test_samples_and_mode_lie_inside_the_bounds(params):
    """Saturated draws (|loc| up to 50) must land on [low, high], not one ulp outside."""
    _, loc, scale, low, high = params
    dist = TanhNormal(loc, scale, low, high)
    for name, action in (("rsample", dist.rsample((16,))), ("mode", dist.mode)):
        above, below = action > high, action < low
        assert not (above.any() or below.any()), (
            f"{name} outside the bounds: {action[above | below].tolist()} vs "
            f"low={low.tolist()}, high={high.tolist()}"
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_of_a_saturated_sample_is_accepted_by_validation(dtype):
    """``d.log_prob(d.sample())`` with argument validation on (torch's default), for a sample
    that saturates. With bounds [1.0, 1.1] in float32, mid − half = 1.05 − 0.05 rounds to
    0.99999994 < low; with [0.1, 4.9] in float64, 2.5 − 2.4 gives 0.09999999999999964 < low:
    such a sample falls outside the support and validation raises ValueError."""
    low = torch.tensor([1.0, 0.1, -3.7], dtype=dtype)
    high = torch.tensor([1.1, 4.9, 1.3], dtype=dtype)
    for loc in (-50.0, 50.0):
        dist = TanhNormal(torch.full((3,), loc, dtype=dtype), 1.0, low, high, validate_args=True)
        action = dist.sample((8,))
        assert torch.isfinite(dist.log_prob(action)).all()


def _atanh_error_bound(action, log_prob, loc, scale, low, high, eps_machine) -> torch.Tensor:
    """A bound on |log_prob(a) − log p(u)| from recovering u = atanh(y), y = (a − mid)/half.

    Rounding leaves y off by δy ≲ c·ε·(1 + (|mid| + |a|)/half); atanh turns that into
    δu = δy/(1 − y²). With z = (u − μ)/σ, the Gaussian term −z²/2 moves by at most
    |z|·δu/σ + (δu/σ)²/2, and −log(1 − tanh²u) by at most 2·δu (its slope is 2·tanh u);
    summing the terms adds ε·Σ|terms|. Evaluated in float64, with a safety factor c = 8.
    """
    a, mu, sigma = action.double(), loc.double(), scale.double()
    lo, hi = low.double(), high.double()
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    y = (a - mid) / half
    z = (torch.atanh(y) - mu) / sigma
    c = 8 * eps_machine
    du = c * (1 + (mid.abs() + a.abs()) / half) / (1 - y.square())
    moved = z.abs() * du / sigma + 0.5 * (du / sigma).square() + 2 * du
    log_jac = (1 - y.square()).log().abs() + half.log().abs()
    terms = 0.5 * z.square() + sigma.log().abs() + 1 + log_jac
    return moved.sum(-1) + c * (terms.sum(-1) + log_prob.double().abs() + 1)


@settings(max_examples=80, deadline=None)
@given(tanh_normals(loc_range=(-3.0, 3.0), scale_range=(1e-4, 2.0)))
def test_log_prob_of_a_drawn_action_matches_rsample_and_log_prob(params):
    dtype, loc, scale, low, high = params
    dist = TanhNormal(loc, scale, low, high)
    action, log_prob = dist.rsample_and_log_prob((64,))
    eps_machine = torch.finfo(dtype).eps
    # away from saturation: tanh(u) resolvable from a, i.e. 1 − y² well above the rounding
    y = (action.double() - (high + low).double() / 2) / ((high - low).double() / 2)
    keep = ((1 - y.square()) > 1e3 * eps_machine).all(-1)
    assume(bool(keep.any()))
    recomputed = dist.log_prob(action[keep])  # only unsaturated rows, so inside the support
    bound = _atanh_error_bound(action[keep], log_prob[keep], loc, scale, low, high, eps_machine)
    err = (recomputed.double() - log_prob[keep].double()).abs()
    worst = (err / bound).argmax()
    assert bool((err <= bound).all()), (err[worst].item(), bound[worst].item())


# ------------------------------------------------------------------------- the policy
EXTREME = st.sampled_from([1e6, -1e6, 1e30, -1e30, 0.0, 1.0])


@st.composite
def extreme_observations(draw):
    obs_dim = draw(st.integers(1, 8))
    rows = draw(st.integers(1, 4))
    values = draw(
        st.lists(
            st.one_of(EXTREME, st.floats(-1e30, 1e30).map(lambda x: float(np.float32(x)))),
            min_size=obs_dim * rows,
            max_size=obs_dim * rows,
        )
    )
    return obs_dim, torch.tensor(values, dtype=torch.float32).reshape(rows, obs_dim)


@SETTINGS
@given(extreme_observations(), st.integers(1, 3), st.integers(0, 2**16))
def test_policy_outputs_are_finite_for_extreme_observations(obs_case, act_dim, seed):
    obs_dim, obs = obs_case
    torch.manual_seed(seed)
    policy = TanhGaussianPolicy(obs_dim, act_dim, hidden_sizes=(64, 64), action_low=-2.0, action_high=3.0)
    for deterministic in (False, True):
        action, log_prob = policy(obs, deterministic=deterministic)
        assert _all_finite(action, log_prob), (deterministic, obs, action, log_prob)
        assert bool(((action >= -2.0) & (action <= 3.0)).all())
        grads = torch.autograd.grad(action.sum() + log_prob.sum(), list(policy.parameters()))
        assert _all_finite(*grads), f"non-finite weight gradient for obs {obs.tolist()}"
    assert np.isfinite(policy.act(obs.numpy())).all()


@pytest.mark.parametrize("value", [1e6, -1e6, 1e30, -1e30])
def test_policy_is_finite_for_a_constant_extreme_observation(value):
    """The corner hypothesis may not hit: every coordinate at the same huge value."""
    policy = TanhGaussianPolicy(17, 6, hidden_sizes=(256, 256))
    action, log_prob = policy(torch.full((3, 17), value))
    assert _all_finite(action, log_prob), (action, log_prob)
