"""The fast paths compute what the plain math says (values and gradients), not how fast.

- ``QEnsemble.min_q`` (CPU fp32: each row back-propagated through the critic that wins the min)
  against per-member ``nn.Linear`` MLPs in float64 and autograd's ``min``;
- ``ensemble_linear``'s one-output-column path against a plain matmul;
- the policy's sampling without a distribution object (``sample_unit``, ``unit_action``)
  against ``TanhNormal``, bit for bit;
- ``SAC.update`` (one backward for actor and α) against a reference update written with plain
  autograd, separate backward calls and separate steps;
- the compiled actor loss against eager, and ``agent.cudagraphs=true`` refused on CPU
  (``agent.compile=true`` against eager: ``tests/test_whole_update.py``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_critics import separate_mlps
from torch import nn

from rl_repara import SAC, Batch, QEnsemble, SACConfig, TanhGaussianPolicy
from rl_repara.agent.losses import actor_loss, alpha_loss, critic_loss, polyak_update
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


# ---------------------------------------------------------------------------- SAC.update
def make_sac(**overrides) -> SAC:
    torch.manual_seed(0)
    cfg = SACConfig(hidden_sizes=HIDDEN, batch_size=B, **overrides)
    return SAC(TanhGaussianPolicy(OBS_DIM, ACT_DIM, hidden_sizes=HIDDEN), cfg)


def make_batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(B, OBS_DIM, generator=g),
        torch.rand(B, ACT_DIM, generator=g) * 2 - 1,
        torch.randn(B, generator=g),
        torch.randn(B, OBS_DIM, generator=g),
        (torch.rand(B, generator=g) < 0.1).float(),
    )


def reference_update(sac: SAC, batch: Batch) -> None:
    """SAC as written in the paper's order with plain autograd: separate backward calls and
    steps, and the actor loss's min over the critics taken by autograd's ``min``."""
    alpha = sac.alpha
    qf_loss, _ = critic_loss(sac.policy, sac.critics, sac.target_critics, alpha, batch, sac.config.gamma)
    sac.critic_optimizer.zero_grad()
    qf_loss.backward()
    sac.critic_optimizer.step()

    action, log_prob = sac.policy(batch.obs)
    q = sac.critics(batch.obs, action, detach_params=True).min(dim=0).values
    pi_loss = (alpha * log_prob - q).mean()
    sac.actor_optimizer.zero_grad()
    pi_loss.backward()
    sac.actor_optimizer.step()

    a_loss, _ = alpha_loss(sac.log_alpha, log_prob.detach(), sac.target_entropy)
    sac.alpha_optimizer.zero_grad()
    a_loss.backward()
    sac.alpha_optimizer.step()
    polyak_update(list(sac.target_critics.parameters()), list(sac.critics.parameters()), sac.config.tau)


def state(sac: SAC) -> dict[str, torch.Tensor]:
    tensors = {f"policy.{k}": v for k, v in sac.policy.named_parameters()}
    tensors.update({f"critics.{k}": v for k, v in sac.critics.named_parameters()})
    tensors.update({f"target.{k}": v for k, v in sac.target_critics.named_parameters()})
    tensors["log_alpha"] = sac.log_alpha
    return {k: v.detach().clone() for k, v in tensors.items()}


def grads(sac: SAC) -> dict[str, torch.Tensor]:
    named = [*sac.policy.named_parameters(), *sac.critics.named_parameters(), ("log_alpha", sac.log_alpha)]
    return {k: v.grad.clone() for k, v in named}


def test_update_equals_the_plain_reference_update_gradients_and_weights():
    fast = make_sac()
    ref = copy.deepcopy(fast)
    for step in range(3):
        batch = make_batch(step)
        torch.manual_seed(100 + step)  # the same ε for both policies' rsample calls
        fast.update(batch)
        torch.manual_seed(100 + step)
        reference_update(ref, batch)
        # after an update each .grad holds the gradient of its own loss only: a critic weight
        # gradient leaking from the actor loss, or an α gradient from the actor loss, would show
        for name, g_ref in grads(ref).items():
            torch.testing.assert_close(grads(fast)[name], g_ref, rtol=1e-4, atol=1e-6, msg=name)
    for name, value in state(ref).items():
        torch.testing.assert_close(state(fast)[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_critic_loss_gives_no_gradient_to_policy_or_targets():
    sac = make_sac()
    loss, _ = critic_loss(sac.policy, sac.critics, sac.target_critics, sac.alpha, make_batch(0), 0.99)
    loss.backward()
    assert all(p.grad is None for p in sac.policy.parameters())
    assert all(p.grad is None for p in sac.target_critics.parameters())
    assert sac.log_alpha.grad is None
    assert all(p.grad is not None for p in sac.critics.parameters())


# ------------------------------------------------------------------------------- compile
def test_cudagraphs_on_cpu_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="agent.cudagraphs=true needs a CUDA device.*cpu"):
        make_sac(cudagraphs=True)


def test_compiled_actor_loss_matches_eager(inductor_uses_torch_rng):
    """Where ``agent.compile`` compiles the losses alone (CUDA; a CPU learner compiles its whole
    update, Batch Renorm included), the compiled actor loss gives the same loss and gradients."""
    sac, obs = make_sac(), make_batch(0).obs
    brn = {"target_network": False, "critic_norm": "batchrenorm", "actor_norm": "batchrenorm"}
    crossq = make_sac(compile=True, **brn)
    assert crossq.compiled_whole_update and crossq.actor_loss_fn is actor_loss
    results = []
    for fn in (actor_loss, torch.compile(actor_loss)):
        sac.policy.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        loss, info = fn(sac.policy, sac.critics, sac.alpha, obs)
        loss.backward()
        results.append((loss.detach(), info["log_prob"], [p.grad.clone() for p in sac.policy.parameters()]))
    (l0, lp0, g0), (l1, lp1, g1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(lp1, lp0, rtol=1e-4, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
