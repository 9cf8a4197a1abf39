"""SimbaV2's hyperspherical networks (``nn/hyperspherical.py``): hidden vectors on the unit
sphere, scalers that start at their ``init``, the LERP block's formula against a hand-written
one, and weights that the projection hook keeps at unit norm through training steps."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rl_repara import SAC, Batch, TanhGaussianPolicy
from rl_repara.agent.presets import sac_config
from rl_repara.nn.hyperspherical import HyperActor, HyperCritics, Scaler


def test_a_scaler_starts_at_init_and_stores_scale():
    s = Scaler(2, 4, init=0.3, scale=0.05)
    assert torch.allclose(s.param, torch.full((2, 1, 4), 0.05))
    torch.testing.assert_close(s(torch.ones(2, 3, 4)), torch.full((2, 3, 4), 0.3))


def test_the_body_is_the_papers_formula_and_stays_on_the_sphere():
    """Embedder and one LERP block recomputed by hand from the layers' weights, member by member."""
    torch.manual_seed(0)
    critics = HyperCritics(3, 2, num_critics=2, width=8, blocks=1, num_bins=5)
    body = critics.body
    x = torch.randn(6, 5)
    h = body(x)
    assert torch.allclose(h.norm(dim=-1), torch.ones(2, 6), atol=1e-6)
    for k in range(2):
        xk = F.normalize(torch.cat([x, torch.full((6, 1), 3.0)], -1), dim=-1)
        s = math.sqrt(2 / 8)
        e = F.normalize(xk @ body.embed.weight[k] * body.embed_scale.param[k] * (s / s), dim=-1)
        up = torch.relu(e @ body.up[0].weight[k] * body.up_scale[0].param[k]) + 1e-8  # init = scale: factor 1
        y = F.normalize(up @ body.down[0].weight[k], dim=-1)
        alpha = body.alpha[0].param[k] * (0.5 / (1 / math.sqrt(8)))
        want = F.normalize(e + alpha * (y - e), dim=-1)
        torch.testing.assert_close(h[k], want)


def test_the_critics_and_actor_shapes():
    critics = HyperCritics(3, 2, num_critics=2, width=8, blocks=2, num_bins=11)
    obs, act = torch.randn(4, 5, 3), torch.randn(4, 5, 2)
    assert critics(obs, act).shape == (2, 4, 5, 11)
    assert critics.q_values(obs, act).shape == (2, 4, 5)
    assert HyperActor(3, 4, width=8)(torch.randn(7, 3)).shape == (7, 4)


def test_simbav2_weights_stay_unit_norm_through_steps():
    cfg = sac_config(
        "simbav2",
        critic_arch_kwargs={"width": 16, "blocks": 1},
        actor_arch_kwargs={"width": 16, "blocks": 1},
        batch_size=16,
        normalize_obs=False,
    )
    torch.manual_seed(0)
    sac = SAC(TanhGaussianPolicy(3, 2, **cfg.policy_kwargs()), cfg)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        sac.update(
            Batch(
                torch.randn(16, 3, generator=g),
                torch.rand(16, 2, generator=g) * 2 - 1,
                torch.randn(16, generator=g),
                torch.randn(16, 3, generator=g),
                torch.zeros(16),
            )
        )
    for module in (sac.critics, sac.policy):
        for name, w in module.named_parameters():
            if name.endswith("weight"):
                norms = w.norm(dim=-2)
                torch.testing.assert_close(norms, torch.ones_like(norms), msg=name)
