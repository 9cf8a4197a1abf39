"""TanhNormal against independent references: torch.distributions in float64, a closed-form
log-density in float64, and Gauss-Hermite quadrature for the reparameterized gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from torch.distributions import AffineTransform, Independent, Normal, TanhTransform, TransformedDistribution

from rl_repara import TanhNormal
from rl_repara.nn.distributions import log_one_minus_tanh_sq

F64 = torch.float64
BOUNDS = [  # (low, high): scalar, and per-dimension asymmetric
    (-1.0, 1.0),
    ([-2.0, 0.0, -0.5], [3.0, 1.0, 10.0]),
]


def reference(loc, scale, low, high) -> TransformedDistribution:
    """torch's own tanh-squashed, affinely rescaled Normal (independent over the last dim)."""
    low_t, high_t = torch.as_tensor(low, dtype=loc.dtype), torch.as_tensor(high, dtype=loc.dtype)
    mid, half = (high_t + low_t) / 2, (high_t - low_t) / 2
    base = Independent(Normal(loc, scale), 1)
    transforms = [TanhTransform(cache_size=1), AffineTransform(mid, half, event_dim=1, cache_size=1)]
    return TransformedDistribution(base, transforms)


def closed_form_log_prob(u, loc, scale, low, high) -> torch.Tensor:
    """float64 log p(a(u)) from the pre-squash u, written without torch.distributions:

    log p = Σ_i [log N(u_i; μ_i, σ_i) − log half_i − log sech²(u_i)],
    log sech²(u) = −2·log cosh(u) = −2·(|u| + log1p(e^{−2|u|}) − log 2).
    """
    u, loc, scale = u.to(F64), loc.to(F64), scale.to(F64)
    half = (torch.as_tensor(high, dtype=F64) - torch.as_tensor(low, dtype=F64)) / 2
    log_normal = -0.5 * ((u - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)
    log_sech_sq = -2.0 * (u.abs() + torch.log1p(torch.exp(-2.0 * u.abs())) - math.log(2.0))
    return (log_normal - torch.log(half).expand_as(u) - log_sech_sq).sum(-1)


def noise_of_next_draw(seed: int, shape, dtype) -> torch.Tensor:
    """The standard-normal noise ε that a draw made right after ``torch.manual_seed(seed)`` uses:
    TanhNormal draws one ``torch.randn`` of the full sample shape, u = μ + σ·ε."""
    torch.manual_seed(seed)
    return torch.randn(shape, dtype=dtype)


# ------------------------------------------------------------------------- log_prob vs torch
@pytest.mark.parametrize("low,high", BOUNDS)
def test_log_prob_matches_torch_reference_float64(low, high):
    loc = torch.randn(6, 3, dtype=F64) * 1.5
    scale = torch.rand(6, 3, dtype=F64) + 0.2
    ref = reference(loc, scale, low, high)
    actions = ref.sample((4,))  # [4, 6, 3], inside the box
    ours = TanhNormal(loc, scale, low, high).log_prob(actions)
    assert ours.shape == (4, 6)
    torch.testing.assert_close(ours, ref.log_prob(actions), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("low,high", BOUNDS)
@pytest.mark.parametrize("loc_scale", [1.0, 8.0])  # moderate, and far into saturation
def test_rsample_log_prob_matches_reference_at_same_pre_squash_sample(low, high, loc_scale):
    loc = torch.randn(5, 3, dtype=F64) * loc_scale
    scale = torch.rand(5, 3, dtype=F64) + 0.1
    dist = TanhNormal(loc, scale, low, high)
    torch.manual_seed(123)
    action, log_prob = dist.rsample_and_log_prob((2,))
    u = loc + scale * noise_of_next_draw(123, (2, 5, 3), F64)

    ref = reference(loc, scale, low, high)
    tanh_t, affine_t = ref.transforms
    ref_action = affine_t(tanh_t(u))  # cached: log_prob inverts to exactly this u
    torch.testing.assert_close(action, ref_action, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_prob, ref.log_prob(ref_action), rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(log_prob, closed_form_log_prob(u, loc, scale, low, high), rtol=1e-9, atol=1e-8)


# ----------------------------------------------------------------------- saturation (float32)
SAT_MU = [-40.0, -20.0, -10.0, 10.0, 20.0, 40.0]
SAT_SIGMA = [1e-3, 1e-1]


def saturated_params():
    grid = [(m, s) for m in SAT_MU for s in SAT_SIGMA]
    loc = torch.tensor([[m] for m, _ in grid], requires_grad=True)
    scale = torch.tensor([[s] for _, s in grid], requires_grad=True)
    return loc, scale


def test_log_one_minus_tanh_sq_exact_in_float32_for_large_u():
    u = torch.linspace(-60.0, 60.0, 2401)
    ours = log_one_minus_tanh_sq(u)
    u64 = u.to(F64)
    exact = -2.0 * (u64.abs() + torch.log1p(torch.exp(-2.0 * u64.abs())) - math.log(2.0))
    assert torch.isfinite(ours).all()
    err = (ours.to(F64) - exact).abs() / exact.abs().clamp(min=1.0)
    assert err.max() < 1e-6


def test_saturated_log_prob_finite_and_exact_where_naive_formula_is_many_nats_off():
    loc, scale = saturated_params()
    dist = TanhNormal(loc, scale)
    torch.manual_seed(7)
    action, log_prob = dist.rsample_and_log_prob((3,))
    eps = noise_of_next_draw(7, (3, *loc.shape), torch.float32)
    u32 = loc.detach() + scale.detach() * eps
    exact = closed_form_log_prob(
        loc.detach().to(F64) + scale.detach().to(F64) * eps.to(F64), loc.detach(), scale.detach(), -1.0, 1.0
    )

    assert torch.isfinite(action).all() and torch.isfinite(log_prob).all()
    assert (action.abs() <= 1.0).all()
    assert (log_prob.to(F64) - exact).abs().max() < 2e-3  # of values up to ~85 nats

    # The common shortcut log(1 − tanh²u + 1e-6) caps −log|da/du| at −log(1e-6) ≈ 13.8 nats.
    log_normal = (-0.5 * eps**2 - torch.log(scale.detach()) - 0.5 * math.log(2 * math.pi)).sum(-1)
    naive = log_normal - torch.log(1 - torch.tanh(u32) ** 2 + 1e-6).sum(-1)
    naive_err = (naive.to(F64) - exact).abs()
    assert naive_err.min() > 4.0  # already |μ| = 10 is ~4.8 nats off
    far = loc.detach().abs().squeeze(-1) == 40.0
    assert naive_err[:, far].min() > 60.0


def test_saturated_gradients_finite_and_match_float64_autograd():
    loc, scale = saturated_params()
    torch.manual_seed(11)
    action, log_prob = TanhNormal(loc, scale).rsample_and_log_prob((3,))
    (log_prob.sum() + action.sum()).backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()

    eps = noise_of_next_draw(11, (3, *loc.shape), torch.float32).to(F64)
    loc64 = loc.detach().to(F64).requires_grad_()
    scale64 = scale.detach().to(F64).requires_grad_()
    u = loc64 + scale64 * eps
    (closed_form_log_prob(u, loc64, scale64, -1.0, 1.0).sum() + torch.tanh(u).sum()).backward()
    torch.testing.assert_close(loc.grad.to(F64), loc64.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(scale.grad.to(F64), scale64.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_log_prob_finite_with_finite_gradients_at_the_exact_bounds(dtype):
    low = torch.tensor([-2.0, 0.0, -1.0], dtype=dtype)
    high = torch.tensor([3.0, 0.5, 1.0], dtype=dtype)
    loc = torch.tensor([[0.3, -1.0, 2.0]], dtype=dtype, requires_grad=True)
    scale = torch.tensor([[0.5, 1.0, 0.2]], dtype=dtype, requires_grad=True)
    dist = TanhNormal(loc, scale, low, high)
    values = torch.stack([low, high, torch.stack([low[0], high[1], low[2]])]).unsqueeze(1)
    log_prob = dist.log_prob(values)
    assert log_prob.shape == (3, 1)
    assert torch.isfinite(log_prob).all()
    log_prob.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


# ------------------------------------------------------- the pathwise gradient of E[a]
def gauss_expect(f, n_nodes: int = 200) -> float:
    """E[f(X)], X ~ N(0, 1), by Gauss-Hermite (probabilists') quadrature in float64."""
    x, w = hermegauss(n_nodes)
    return float(np.sum(w * f(x)) / math.sqrt(2 * math.pi))


def test_rsample_gradient_of_mean_action_matches_quadrature():
    mus, sigmas = [0.5, -1.5, 3.0], [0.8, 2.0, 0.3]
    low, high = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 3.0, 0.5])
    half, mid = (high - low) / 2, (high + low) / 2
    n = 40_000
    loc = torch.tensor(mus, dtype=F64, requires_grad=True)
    scale = torch.tensor(sigmas, dtype=F64, requires_grad=True)
    mean_action = TanhNormal(loc, scale, low.tolist(), high.tolist()).rsample((n,)).mean(0)
    mean_action.sum().backward()  # dims are independent: grad[i] = d E[a_i] / d θ_i

    for i, (mu, sigma) in enumerate(zip(mus, sigmas)):

        def sech2(x, mu=mu, sigma=sigma):
            return 1.0 / np.cosh(mu + sigma * x) ** 2

        def tanh(x, mu=mu, sigma=sigma):
            return np.tanh(mu + sigma * x)

        # (per-sample quantity, its exact mean, its exact variance): a, da/dμ, da/dσ
        checks = {
            "value": (
                mean_action[i].item(),
                mid[i] + half[i] * gauss_expect(tanh),
                half[i] ** 2 * (gauss_expect(lambda x: tanh(x) ** 2) - gauss_expect(tanh) ** 2),
            ),
            "d/dmu": (
                loc.grad[i].item(),
                half[i] * gauss_expect(sech2),
                half[i] ** 2 * (gauss_expect(lambda x: sech2(x) ** 2) - gauss_expect(sech2) ** 2),
            ),
            "d/dsigma": (
                scale.grad[i].item(),
                half[i] * gauss_expect(lambda x: x * sech2(x)),
                half[i] ** 2
                * (gauss_expect(lambda x: (x * sech2(x)) ** 2) - gauss_expect(lambda x: x * sech2(x)) ** 2),
            ),
        }
        for name, (mc, exact, var) in checks.items():
            stderr = math.sqrt(var / n)
            assert abs(mc - exact) < 4.0 * stderr, (i, name, mc, exact, stderr)


def test_quadrature_reference_has_converged():
    f = lambda x: np.tanh(-1.5 + 2.0 * x)  # noqa: E731  (the widest case above)
    assert abs(gauss_expect(f, 150) - gauss_expect(f, 200)) < 1e-6  # << the MC errors (~1e-3)
    # and it integrates what it should: E[X²] = 1, E[tanh(X)] = 0
    assert abs(gauss_expect(lambda x: x**2) - 1.0) < 1e-12
    assert abs(gauss_expect(np.tanh)) < 1e-12


# ---------------------------------------------------------------------------- mode, shapes
@pytest.mark.parametrize("low,high", BOUNDS)
def test_mode_is_squashed_mean_and_its_log_prob_is_the_density_there(low, high):
    loc = torch.randn(4, 3, dtype=F64) * 2
    scale = torch.rand(4, 3, dtype=F64) + 0.3
    dist = TanhNormal(loc, scale, low, high)
    lo, hi = np.broadcast_to(low, 3), np.broadcast_to(high, 3)
    expected = (hi + lo) / 2 + (hi - lo) / 2 * np.tanh(loc.numpy())
    np.testing.assert_allclose(dist.mode.numpy(), expected, rtol=1e-12, atol=1e-12)
    mode, log_prob = dist.mode_and_log_prob()
    torch.testing.assert_close(mode, dist.mode)
    torch.testing.assert_close(
        log_prob, reference(loc, scale, low, high).log_prob(mode), rtol=1e-9, atol=1e-9
    )


def test_shapes_follow_torch_distributions():
    loc = torch.randn(5, 3, dtype=F64)
    dist = TanhNormal(loc, 0.5, -2.0, 3.0)
    ref = reference(loc, torch.full_like(loc, 0.5), -2.0, 3.0)
    assert dist.batch_shape == ref.batch_shape == (5,)
    assert dist.event_shape == ref.event_shape == (3,)
    assert dist.rsample().shape == (5, 3)
    assert dist.sample((7,)).shape == (7, 5, 3)
    assert dist.rsample((2, 4)).shape == (2, 4, 5, 3)
    action, log_prob = dist.rsample_and_log_prob((7,))
    assert action.shape == (7, 5, 3) and log_prob.shape == (7, 5)
    for value_shape in [(5, 3), (7, 5, 3), (3,), (2, 1, 3)]:
        value = torch.rand(value_shape, dtype=F64) * 4.0 - 1.5
        assert dist.log_prob(value).shape == ref.log_prob(value).shape
    expanded = dist.expand((2, 5))
    assert expanded.batch_shape == (2, 5) and expanded.rsample().shape == (2, 5, 3)
    assert dist.mode.shape == (5, 3)


def test_sample_has_no_gradient_and_rsample_has_one():
    loc = torch.zeros(2, 1, requires_grad=True)
    dist = TanhNormal(loc, 1.0)
    assert not dist.sample().requires_grad
    assert dist.rsample().requires_grad


def test_per_dimension_bounds_hold_every_sample():
    low, high = torch.tensor([-2.0, 0.0, 5.0]), torch.tensor([3.0, 0.5, 5.1])
    loc = torch.tensor([[0.0, 4.0, -4.0]]).expand(20_000, 3)
    actions = TanhNormal(loc, 3.0, low, high).sample()
    assert (actions >= low).all() and (actions <= high).all()
    # wide σ: every dim reaches close to both of its own bounds
    width = high - low
    assert ((actions.min(0).values - low) / width < 0.01).all()
    assert ((high - actions.max(0).values) / width < 0.01).all()


@pytest.mark.parametrize("low,high", [(1.0, 1.0), (2.0, -2.0), ([0.0, 2.0], [1.0, 1.0])])
def test_bad_bounds_raise_a_clear_error(low, high):
    with pytest.raises(ValueError, match="low < high"):
        TanhNormal(torch.zeros(2), 1.0, low, high)


def test_scalar_loc_raises_a_clear_error():
    with pytest.raises(ValueError, match="at least one dim"):
        TanhNormal(torch.tensor(0.0), 1.0)
