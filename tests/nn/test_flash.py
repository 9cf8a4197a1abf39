"""FlashSAC's networks (``nn/flash.py``) and their projection (``unit_norm_all``): the RMSNorm is
torch's formula, the residual body is the paper's formula, and after training steps every
linear row has unit norm and every norm layer's scales norm √d."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rl_repara import SAC, Batch, TanhGaussianPolicy
from rl_repara.agent.losses import actor_loss
from rl_repara.agent.parts import ACTOR_REDUCTIONS
from rl_repara.agent.presets import sac_config
from rl_repara.nn.flash import EnsembleRMSNorm, FlashActor, FlashCritics
from rl_repara.nn.norms import EnsembleBatchRenorm


def test_rms_norm_per_member():
    norm = EnsembleRMSNorm(2, 4)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(8.0).reshape(2, 1, 4))
    x = torch.randn(2, 3, 4)
    want = x / torch.sqrt(x.square().mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), want)


def test_the_body_is_the_papers_formula_in_eval_mode():
    torch.manual_seed(0)
    critics = FlashCritics(3, 2, num_critics=2, width=8, blocks=1, num_bins=5).eval()
    body, x = critics.body, torch.randn(6, 5)

    def bn(layer, v, k):  # eval mode: running statistics
        return (v - layer.running_mean[k]) / torch.sqrt(layer.running_var[k] + layer.eps) * layer.weight[
            k
        ] + layer.bias[k]

    for k in range(2):
        h = bn(body.in_norm, x, k) @ body.embed.weight[k]
        y = torch.relu(bn(body.up_norm[0], h @ body.up[0].weight[k], k))
        h = h + torch.relu(bn(body.down_norm[0], y @ body.down[0].weight[k], k))
        want = F.rms_norm(h, (8,), eps=1e-6) * body.post.weight[k]
        torch.testing.assert_close(body(x)[k], want)


def test_shapes():
    assert FlashCritics(3, 2, width=8, blocks=1, num_bins=7)(torch.randn(4, 3), torch.randn(4, 2)).shape == (
        2,
        4,
        7,
    )
    assert FlashActor(3, 4, width=8, blocks=1).eval()(torch.randn(5, 3)).shape == (5, 4)


def test_flashsac_projection_holds_through_steps():
    small = {"width": 16, "blocks": 1}
    cfg = sac_config(
        "flashsac", critic_arch_kwargs=small, actor_arch_kwargs=small, batch_size=16, policy_delay=1
    )
    torch.manual_seed(0)
    sac = SAC(TanhGaussianPolicy(3, 2, **cfg.policy_kwargs()), cfg)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        batch = Batch(
            torch.randn(16, 3, generator=g), torch.rand(16, 2, generator=g) * 2 - 1,
            torch.randn(16, generator=g), torch.randn(16, 3, generator=g), torch.zeros(16),
        )  # fmt: skip
        sac.update(batch)
    for module in (sac.critics, sac.policy):
        for m in module.modules():
            weight = getattr(m, "weight", None)
            if weight is None:
                continue
            if weight.dim() == 3 and weight.shape[1] > 1:  # EnsembleLinear [N, in, out]: unit rows
                norms = weight.norm(dim=-2)
                torch.testing.assert_close(norms, torch.ones_like(norms))
            else:  # a norm layer: [γ; β] (or the RMSNorm's w) at norm √d per member
                bias = getattr(m, "bias", None)
                learned = [weight] + ([bias] if isinstance(bias, torch.nn.Parameter) else [])
                total = torch.stack([p.square().sum(-1) for p in learned]).sum(0)
                torch.testing.assert_close(total, torch.full_like(total, float(weight.shape[-1])))


def test_flashsac_actor_step_runs_the_policy_on_s_and_s_prime_and_the_loss_on_s():
    """``actor_joint_pass`` (flashsac.yaml): in the actor step the actor's input batch norm moves
    its running mean toward the mean of ``[s; s']`` (momentum 0.01), not of ``s`` alone; the
    loss is the one on ``s`` with the policy normalized by the joint batch's statistics."""
    small = {"width": 16, "blocks": 1}
    cfg = sac_config(
        "flashsac", critic_arch_kwargs=small, actor_arch_kwargs=small, batch_size=16, policy_delay=1
    )
    assert cfg.actor_joint_pass
    torch.manual_seed(0)
    sac = SAC(TanhGaussianPolicy(3, 2, **cfg.policy_kwargs()), cfg)
    in_norm = next(m for m in sac.policy.modules() if isinstance(m, EnsembleBatchRenorm))
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randn(16, 3, generator=g), torch.rand(16, 2, generator=g) * 2 - 1,
        torch.randn(16, generator=g), 5 + torch.randn(16, 3, generator=g), torch.zeros(16),
    )  # fmt: skip
    before = in_norm.running_mean.clone()
    sac.update(batch)
    joint_mean = torch.cat([batch.obs, batch.next_obs]).mean(0)
    torch.testing.assert_close(in_norm.running_mean.flatten(), (0.99 * before.flatten() + 0.01 * joint_mean))

    # the loss keeps the first half: the policy on [s; s'], the critics on (s, ã) of its first B rows
    policy, critics, alpha = sac.policy.train(), sac.critics, torch.tensor(0.05)
    both = torch.cat([batch.obs, batch.next_obs])
    torch.manual_seed(5)
    action, log_prob = policy.sample_unit(both)
    by_hand = (alpha * log_prob[:16] - critics.min_q(batch.obs, action[:16])).mean()
    torch.manual_seed(5)
    loss, info = actor_loss(policy, critics, alpha, both, ACTOR_REDUCTIONS[cfg.actor_q], keep=16)
    torch.testing.assert_close(loss, by_hand)
    torch.testing.assert_close(info["log_prob"], log_prob[:16].detach())
