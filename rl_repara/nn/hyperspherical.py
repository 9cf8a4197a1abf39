"""SimbaV2's hyperspherical networks (Lee et al., "Hyperspherical Normalization for Scalable Deep
Reinforcement Learning", ICML 2025), batched over an ensemble of ``N`` members (the critics; the
actor is one member). Every hidden vector lives on the unit sphere:

* ``HyperDense``: a linear layer without bias whose weight rows are kept at unit norm by the
  ``unit_norm_weights`` post-step hook (``EnsembleLinear(bias=False)``, orthogonal init);
* ``Scaler(d, init, scale)``: a learnable per-feature gain stored as ``scale`` and applied as
  ``param · (init/scale)``, so that it starts at ``init`` and Adam moves it at the rate of
  ``scale``;
* embedder: ``x ← l2norm([x, c_shift])``, ``h = l2norm(Scaler(HyperDense(x)))``, with
  ``s_init = s_scale = √(2/d)``;
* LERP block: ``y = l2norm(HyperDense(relu(Scaler(HyperDense₄ₕ(h))) + 1e-8))``,
  ``h ← l2norm(h + α ⊙ (y − h))`` with ``α = Scaler(d, 1/(L + 1), 1/√d)``;
* head: ``HyperDense(d) → Scaler(d, 1, 1) → HyperDense(out) + bias``.

``HyperCritics`` (``agent.critic_arch=hyperspherical``) end in a categorical head of
``num_bins`` logits; ``HyperActor`` (``agent.actor_arch=hyperspherical``) ends in μ and the raw
log σ, each from its own head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rl_repara.nn.critics import CategoricalQ
from rl_repara.nn.layers import orthogonal_ensemble_linear

__all__ = ["Scaler", "HyperCritics", "HyperActor"]


def _l2norm(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1, eps=1e-8)


class Scaler(nn.Module):
    """``y = param · (init/scale) · x`` per feature, ``param`` ``[N, 1, d]`` starting at ``scale``."""

    def __init__(self, members: int, d: int, init: float, scale: float) -> None:
        super().__init__()
        self.forward_scale = init / scale
        self.param = nn.Parameter(torch.full((members, 1, d), scale))

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        p = self.param.detach() if detach_params else self.param
        return p * self.forward_scale * x


class _Body(nn.Module):
    """Embedder and ``blocks`` LERP blocks of width ``d`` for ``members`` networks."""

    def __init__(self, members: int, d_in: int, d: int, blocks: int, c_shift: float = 3.0) -> None:
        super().__init__()
        s = math.sqrt(2 / d)
        self.c_shift = c_shift
        self.embed = orthogonal_ensemble_linear(members, d_in + 1, d)
        self.embed_scale = Scaler(members, d, s, s)
        self.up = nn.ModuleList(orthogonal_ensemble_linear(members, d, 4 * d) for _ in range(blocks))
        self.up_scale = nn.ModuleList(Scaler(members, 4 * d, s / 2, s / 2) for _ in range(blocks))
        self.down = nn.ModuleList(orthogonal_ensemble_linear(members, 4 * d, d) for _ in range(blocks))
        self.alpha = nn.ModuleList(
            Scaler(members, d, 1 / (blocks + 1), 1 / math.sqrt(d)) for _ in range(blocks)
        )

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        x = _l2norm(torch.cat([x, torch.full_like(x[..., :1], self.c_shift)], dim=-1))
        h = _l2norm(self.embed_scale(self.embed(x, detach_params), detach_params))
        for up, up_scale, down, alpha in zip(self.up, self.up_scale, self.down, self.alpha):
            y = torch.relu(up_scale(up(h, detach_params), detach_params)) + 1e-8
            y = _l2norm(down(y, detach_params))
            h = _l2norm(h + alpha(y - h, detach_params))
        return h


class _Head(nn.Module):
    """``HyperDense(d) → Scaler(d, 1, 1) → HyperDense(out) + bias``."""

    def __init__(self, members: int, d: int, out: int) -> None:
        super().__init__()
        self.hidden, self.scale, self.out = (
            orthogonal_ensemble_linear(members, d, d),
            Scaler(members, d, 1.0, 1.0),
            orthogonal_ensemble_linear(members, d, out, True),
        )

    def forward(self, h: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        return self.out(self.scale(self.hidden(h, detach_params), detach_params), detach_params)


class HyperCritics(CategoricalQ):
    """N hyperspherical critics: ``forward(obs, action, detach_params) → [N, *batch, num_bins]``
    logits, whose Q is the mean over ``linspace(v_min, v_max, num_bins)`` (``q_values``)."""

    def __init__(self, obs_dim: int, act_dim: int, num_critics: int = 2, width: int = 512, blocks: int = 2,
                 num_bins: int = 101, v_min: float = -5.0, v_max: float = 5.0) -> None:  # fmt: skip
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"HyperCritics need a categorical head (num_bins >= 2); got {num_bins}.")
        self.obs_dim, self.act_dim, self.num_critics, self.num_bins = obs_dim, act_dim, num_critics, num_bins
        self.body = _Body(num_critics, obs_dim + act_dim, width, blocks)
        self.head = _Head(num_critics, width, num_bins)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_bins))

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        batch = obs.shape[:-1]
        x = torch.cat([obs, action], dim=-1).reshape(-1, self.obs_dim + self.act_dim)
        logits = self.head(self.body(x, detach_params), detach_params)
        return logits.reshape(self.num_critics, *batch, self.num_bins).float()


class HyperActor(nn.Module):
    """The actor's network: ``forward(obs [..., obs_dim]) → [..., 2·act_dim]`` (μ, raw log σ),
    each half from its own head."""

    def __init__(self, obs_dim: int, out_dim: int, width: int = 128, blocks: int = 1) -> None:
        super().__init__()
        self.body = _Body(1, obs_dim, width, blocks)
        self.mean, self.log_std = _Head(1, width, out_dim // 2), _Head(1, width, out_dim // 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[:-1]
        h = self.body(obs.reshape(-1, obs.shape[-1]))
        out = torch.cat([self.mean(h), self.log_std(h)], dim=-1)  # [1, B, out]
        return out.reshape(*batch, out.shape[-1])
