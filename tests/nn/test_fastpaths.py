"""The networks' fast paths compute what the plain math says (values and gradients), not how
fast.

- ``QEnsemble.min_q`` (CPU fp32: each row back-propagated through the critic that wins the min)
  against per-member ``nn.Linear`` MLPs in float64 and autograd's ``min``;
- ``ensemble_linear``'s one-output-column path against a plain matmul;
- the policy's sampling without a distribution object (``sample_unit``, ``unit_action``)
  against ``TanhNormal``, bit for bit.

The learner's fast paths (``SAC.update``, the compiled actor loss) are in
``tests/agent/test_fastpath_update.py``.
"""

from __future__ import annotations

import pytest
import torch
from support import separate_mlps
from torch import nn

from rl_repara import QEnsemble, TanhGaussianPolicy
from rl_repara.nn.layers import ensemble_linear

OBS_DIM, ACT_DIM, N, HIDDEN, B = 5, 3, 2, [16, 16], 64


def member_mlps(ensemble: QEnsemble) -> list[nn.Sequential]:
    """Each member as its own float64 ``nn.Sequential`` of ``nn.Linear`` (an independent reference)."""
    return [net.double() for net in separate_mlps(ensemble)]


def reference_min_q(ensemble: QEnsemble, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    x = torch.cat([obs, action], dim=-1).double()
    return torch.stack([net(x).squeeze(-1) for net in member_mlps(ensemble)]).min(dim=0).values


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B, OBS_DIM), torch.randn(B, ACT_DIM, requires_grad=True)


# ------------------------------------------------------------------------------ min_q
def test_min_q_fast_path_value_and_action_gradient_match_float64_reference():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = inputs()
    with torch.no_grad():  # shift critic 1 so that each critic wins about half of the rows
        q_all = ensemble(obs, action)
        ensemble.layers[-1].bias[1] += (q_all[0] - q_all[1]).median()
    weights = torch.randn(B)  # a loss that weighs every row differently
    q = ensemble.min_q(obs, action)
    assert q.grad_fn.name() == "_MinQBackward"  # the fast path ran, not the fallback
    (grad,) = torch.autograd.grad((q * weights).sum(), action)

    action64 = action.detach().double().requires_grad_()
    q_ref = reference_min_q(ensemble, obs, action64)
    (grad_ref,) = torch.autograd.grad((q_ref * weights.double()).sum(), action64)
    torch.testing.assert_close(q.double(), q_ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), grad_ref, rtol=1e-4, atol=1e-6)
    # both critics win some rows, so both branches of the row split were exercised
    per_member = ensemble(obs, action.detach())
    assert 0 < int((per_member[0] < per_member[1]).sum()) < B


def test_min_q_builds_no_critic_weight_gradient():
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = inputs()
    ensemble.min_q(obs, action).sum().backward()
    assert action.grad is not None
    assert all(p.grad is None for p in ensemble.parameters())


def test_min_q_gradient_goes_through_the_winning_critic_only():
    """Critic 1 is shifted down by 100 everywhere, so it wins every row: ∂/∂a is its own."""
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    with torch.no_grad():
        ensemble.layers[-1].bias[1] -= 100.0
    obs, action = inputs()
    (grad,) = torch.autograd.grad(ensemble.min_q(obs, action).sum(), action)
    (grad_critic_1,) = torch.autograd.grad(ensemble(obs, action)[1].sum(), action)
    torch.testing.assert_close(grad, grad_critic_1)


@pytest.mark.parametrize("case", ["obs_needs_grad", "no_grad", "float64"])
def test_min_q_fallbacks_equal_the_plain_expression(case):
    ensemble = QEnsemble(OBS_DIM, ACT_DIM, N, HIDDEN)
    obs, action = inputs()
    if case == "float64":
        ensemble, obs, action = ensemble.double(), obs.double(), action.detach().double().requires_grad_()
    if case == "obs_needs_grad":
        obs.requires_grad_()
    if case == "no_grad":
        with torch.no_grad():
            q = ensemble.min_q(obs, action)
        torch.testing.assert_close(q, ensemble(obs, action, detach_params=True).min(dim=0).values)
        return
    q = ensemble.min_q(obs, action)
    assert q.grad_fn.name() != "_MinQBackward"
    wrt = [obs, action] if obs.requires_grad else [action]
    grads = torch.autograd.grad(q.sum(), wrt)
    plain = ensemble(obs, action, detach_params=True).min(dim=0).values
    torch.testing.assert_close(q, plain)
    for g, g_ref in zip(grads, torch.autograd.grad(plain.sum(), wrt)):
        torch.testing.assert_close(g, g_ref)


# -------------------------------------------------------------------- ensemble_linear
@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("out_dim", [1, 4])
def test_ensemble_linear_equals_a_matmul_per_member(shared_input, out_dim):
    w = torch.randn(3, 6, out_dim, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 1, out_dim, dtype=torch.float64, requires_grad=True)
    x = torch.randn(*(() if shared_input else (3,)), 10, 6, dtype=torch.float64, requires_grad=True)
    y = ensemble_linear(x, w, b)
    y_ref = torch.stack([(x if shared_input else x[k]) @ w[k] + b[k] for k in range(3)])
    torch.testing.assert_close(y, y_ref)
    weights = torch.randn_like(y)
    grads = torch.autograd.grad((y * weights).sum(), [x, w, b])
    for g, g_ref in zip(grads, torch.autograd.grad((y_ref * weights).sum(), [x, w, b])):
        torch.testing.assert_close(g, g_ref)


# ------------------------------------------------------------ sampling without TanhNormal
@pytest.mark.parametrize("deterministic", [False, True])
def test_sample_unit_equals_the_unit_distribution_bit_for_bit(deterministic):
    policy = TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=HIDDEN, action_low=-2.0, action_high=3.0)
    obs = torch.randn(B, OBS_DIM)
    torch.manual_seed(7)
    y, log_prob = policy.sample_unit(obs, deterministic)
    torch.manual_seed(7)
    dist = policy.unit_distribution(obs)
    y_ref, log_prob_ref = dist.mode_and_log_prob() if deterministic else dist.rsample_and_log_prob()
    assert torch.equal(y, y_ref) and torch.equal(log_prob, log_prob_ref)
    grads = torch.autograd.grad((y.sum() + log_prob.sum()), list(policy.parameters()))
    grads_ref = torch.autograd.grad((y_ref.sum() + log_prob_ref.sum()), list(policy.parameters()))
    assert all(torch.equal(g, g_ref) for g, g_ref in zip(grads, grads_ref))


def test_unit_action_equals_the_distribution_sample_and_transform():
    policy = TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=HIDDEN)
    obs, eps = torch.randn(4, OBS_DIM), torch.randn(4, ACT_DIM)
    with torch.no_grad():
        torch.manual_seed(3)
        white = policy.unit_action(obs)
        torch.manual_seed(3)
        assert torch.equal(white, policy.unit_distribution(obs).sample())
        assert torch.equal(policy.unit_action(obs, eps), policy.unit_distribution(obs).transform(eps))
