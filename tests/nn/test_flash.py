"""FlashSAC's networks (``nn/flash.py``) and their projection (``unit_norm_all``): the RMSNorm is
torch's formula, the residual body is the paper's formula, and after training steps every
linear row has unit norm and every norm layer's scales norm √d."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rl_repara import SAC, Batch, TanhGaussianPolicy
from rl_repara.agent.presets import sac_config
from rl_repara.nn.flash import EnsembleRMSNorm, FlashActor, FlashCritics


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
