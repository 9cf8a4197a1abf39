"""The learner's fast paths compute what the plain math says (values and gradients), not how
fast.

- ``SAC.update`` (one backward for actor and α) against a reference update written with plain
  autograd, separate backward calls and separate steps;
- the compiled actor loss against eager, and ``agent.cudagraphs=true`` refused on CPU
  (``agent.compile=true`` against eager: ``tests/agent/test_update_backends.py``).

The networks' fast paths (``QEnsemble.min_q``, ``ensemble_linear``, the policy's sampling) are
in ``tests/nn/test_fastpaths.py``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from rl_repara import SAC, Batch, SACConfig, TanhGaussianPolicy
from rl_repara.agent.losses import actor_loss, critic_loss, polyak_update

OBS_DIM, ACT_DIM, HIDDEN, B = 5, 3, [16, 16], 64


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


def reference_update(sac: SAC, batch: Batch, actor_first: bool = False) -> None:
    """SAC as written in the paper's order with plain autograd: separate backward calls and
    steps, and the actor loss's min over the critics taken by autograd's ``min``. With
    ``actor_first`` (SimbaV2's order) the actor and α step first, and the critic step then
    reads the new α and samples its next actions from the new policy."""
    if actor_first:
        reference_actor_and_alpha(sac, batch, sac.alpha)
    alpha = sac.alpha
    qf_loss, _ = critic_loss(sac.policy, sac.critics, sac.target_critics, alpha, batch, sac.config.gamma)
    sac.critic_optimizer.zero_grad()
    qf_loss.backward()
    sac.critic_optimizer.step()
    if not actor_first:
        reference_actor_and_alpha(sac, batch, alpha)
    polyak_update(list(sac.target_critics.parameters()), list(sac.critics.parameters()), sac.config.tau)


def reference_actor_and_alpha(sac: SAC, batch: Batch, alpha: torch.Tensor) -> None:
    """The actor step, then α's: ``log α·(H − H̄)`` or (``alpha_loss=alpha``) ``α·(H − H̄)``,
    written out here rather than through ``losses.alpha_loss``."""
    action, log_prob = sac.policy(batch.obs)
    q = sac.critics(batch.obs, action, detach_params=True).min(dim=0).values
    pi_loss = (alpha * log_prob - q).mean()
    sac.actor_optimizer.zero_grad()
    pi_loss.backward()
    sac.actor_optimizer.step()

    entropy_gap = (-log_prob.detach()).mean() - sac.target_entropy
    scale = sac.log_alpha.exp() if sac.config.alpha_loss == "alpha" else sac.log_alpha
    sac.alpha_optimizer.zero_grad()
    (scale * entropy_gap).backward()
    sac.alpha_optimizer.step()


def state(sac: SAC) -> dict[str, torch.Tensor]:
    tensors = {f"policy.{k}": v for k, v in sac.policy.named_parameters()}
    tensors.update({f"critics.{k}": v for k, v in sac.critics.named_parameters()})
    tensors.update({f"target.{k}": v for k, v in sac.target_critics.named_parameters()})
    tensors["log_alpha"] = sac.log_alpha
    return {k: v.detach().clone() for k, v in tensors.items()}


def grads(sac: SAC) -> dict[str, torch.Tensor]:
    named = [*sac.policy.named_parameters(), *sac.critics.named_parameters(), ("log_alpha", sac.log_alpha)]
    return {k: v.grad.clone() for k, v in named}


@pytest.mark.parametrize(
    "overrides",
    [{}, {"update_order": "actor_first", "alpha_loss": "alpha", "init_alpha": 0.05}],
    ids=["sac", "actor_first_alpha_loss_in_alpha"],
)
def test_update_equals_the_plain_reference_update_gradients_and_weights(overrides):
    fast = make_sac(**overrides)
    ref = copy.deepcopy(fast)
    for step in range(3):
        batch = make_batch(step)
        torch.manual_seed(100 + step)  # the same ε for both policies' rsample calls
        fast.update(batch)
        torch.manual_seed(100 + step)
        reference_update(ref, batch, actor_first=fast.config.update_order == "actor_first")
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
