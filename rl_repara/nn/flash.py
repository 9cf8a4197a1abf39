"""FlashSAC's networks (Holiday-Robot/FlashSAC, arXiv 2604.04539), batched over an ensemble of
``N`` members (the critics; the actor is one member):

    x → BatchNorm → Linear(d) → [h ← h + ReLU(BN(W₂·ReLU(BN(W₁·h))))] × blocks → RMSNorm → head

with inverted-bottleneck blocks (``W₁: d → 4d``, ``W₂: 4d → d``), linear layers without bias
(a batch norm follows each) whose rows the ``unit_norm_all`` hook keeps at unit norm, batch
norms (momentum 0.01, eps 1e-5; plain batch norm: ``EnsembleBatchRenorm`` whose warm-up never
ends) and an RMSNorm (eps 1e-6) whose scales that hook keeps at norm ``√d``. ``FlashCritics``
(``agent.critic_arch=flash``) end in a categorical head; ``FlashActor``
(``agent.actor_arch=flash``) in two heads, μ and the raw log σ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rl_repara.nn.critics import CategoricalQ
from rl_repara.nn.layers import orthogonal_ensemble_linear
from rl_repara.nn.norms import NEVER, EnsembleBatchRenorm

__all__ = ["EnsembleRMSNorm", "FlashCritics", "FlashActor"]


def _bn(members: int, d: int) -> EnsembleBatchRenorm:
    return EnsembleBatchRenorm(members, d, momentum=0.01, eps=1e-5, warmup_steps=NEVER)


class EnsembleRMSNorm(nn.Module):
    """``y = x / √(mean(x²) + eps) · weight`` over the last dim, ``weight`` ``[N, 1, d]``."""

    def __init__(self, members: int, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(members, 1, d))

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        w = self.weight.detach() if detach_params else self.weight
        return F.rms_norm(x, (x.shape[-1],), eps=self.eps) * w


class _Body(nn.Module):
    def __init__(self, members: int, d_in: int, d: int, blocks: int) -> None:
        super().__init__()
        self.in_norm, self.embed = _bn(members, d_in), orthogonal_ensemble_linear(members, d_in, d)
        self.up = nn.ModuleList(orthogonal_ensemble_linear(members, d, 4 * d) for _ in range(blocks))
        self.up_norm = nn.ModuleList(_bn(members, 4 * d) for _ in range(blocks))
        self.down = nn.ModuleList(orthogonal_ensemble_linear(members, 4 * d, d) for _ in range(blocks))
        self.down_norm = nn.ModuleList(_bn(members, d) for _ in range(blocks))
        self.post = EnsembleRMSNorm(members, d)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        h = self.embed(self.in_norm(x, detach_params), detach_params)
        for up, up_norm, down, down_norm in zip(self.up, self.up_norm, self.down, self.down_norm):
            y = torch.relu(up_norm(up(h, detach_params), detach_params))
            h = h + torch.relu(down_norm(down(y, detach_params), detach_params))
        return self.post(h, detach_params)


class FlashCritics(CategoricalQ):
    """N critics: ``forward(obs, action, detach_params) → [N, *batch, num_bins]`` logits, Q the
    mean over ``linspace(v_min, v_max, num_bins)``."""

    def __init__(self, obs_dim: int, act_dim: int, num_critics: int = 2, width: int = 256, blocks: int = 2,
                 num_bins: int = 101, v_min: float = -5.0, v_max: float = 5.0) -> None:  # fmt: skip
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"FlashCritics need a categorical head (num_bins >= 2); got {num_bins}.")
        self.obs_dim, self.act_dim, self.num_critics, self.num_bins = obs_dim, act_dim, num_critics, num_bins
        self.body = _Body(num_critics, obs_dim + act_dim, width, blocks)
        self.head = orthogonal_ensemble_linear(num_critics, width, num_bins, bias=True)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_bins))

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        batch = obs.shape[:-1]
        x = torch.cat([obs, action], dim=-1).reshape(-1, self.obs_dim + self.act_dim)
        logits = self.head(self.body(x, detach_params), detach_params)
        return logits.reshape(self.num_critics, *batch, self.num_bins).float()


class FlashActor(nn.Module):
    """``forward(obs [..., obs_dim]) → [..., out_dim]`` (μ and the raw log σ, each half from
    its own head)."""

    def __init__(self, obs_dim: int, out_dim: int, width: int = 128, blocks: int = 2) -> None:
        super().__init__()
        self.body = _Body(1, obs_dim, width, blocks)
        self.mean = orthogonal_ensemble_linear(1, width, out_dim // 2, bias=True)
        self.log_std = orthogonal_ensemble_linear(1, width, out_dim // 2, bias=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[:-1]
        h = self.body(obs.reshape(-1, obs.shape[-1]))
        out = torch.cat([self.mean(h), self.log_std(h)], dim=-1)
        return out.reshape(*batch, out.shape[-1])
