"""``BNQEnsemble``: N critics with batch normalization before each activation and a categorical
head, as XQC's (Palenicek et al. 2025, arXiv 2509.25174): the input normalized, then per hidden
size ``Linear → BatchNorm → ReLU`` (no bias before a batch norm, as theirs), then
``Linear(…, num_bins)``, batched over the ensemble.
The ``batchnorm`` critic architecture (``agent.critic_arch=batchnorm``).

The batch norm is ``EnsembleBatchRenorm`` with ``warmup_steps`` past any run's length, i.e. plain
batch norm (batch statistics in train mode, running ones in eval mode; flax's momentum 0.99 and
eps 1e-3 by default). Its Q is the mean of the categorical distribution over
``linspace(v_min, v_max, num_bins)`` (a scalar head with ``num_bins=1``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from rl_repara.nn.critics import CategoricalQ
from rl_repara.nn.layers import EnsembleLinear
from rl_repara.nn.norms import NEVER, EnsembleBatchRenorm

__all__ = ["BNQEnsemble"]


class BNQEnsemble(CategoricalQ):
    """``forward(obs [*batch, obs_dim], action [*batch, act_dim], detach_params) → [N, *batch,
    num_bins]`` logits (``[N, *batch]`` for ``num_bins=1``); ``q_values``, ``min_q`` as
    ``QEnsemble``'s."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        num_critics: int = 2,
        hidden_sizes: Sequence[int] = (512, 512, 512, 512),
        num_bins: int = 101,
        v_min: float = -5.0,
        v_max: float = 5.0,
        momentum: float = 0.01,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.num_critics, self.num_bins = obs_dim, act_dim, num_critics, num_bins
        norm = {"momentum": momentum, "eps": eps, "warmup_steps": NEVER}
        sizes = [obs_dim + act_dim, *hidden_sizes]
        # no learned shift before a batch norm, which would cancel it (its gradient is rounding
        # noise that Adam would turn into a random walk): the input norm's and the hidden layers'
        self.in_norm = EnsembleBatchRenorm(num_critics, sizes[0], bias=False, **norm)
        self.layers = nn.ModuleList(
            EnsembleLinear(num_critics, i, o, bias=False) for i, o in zip(sizes[:-1], sizes[1:])
        )
        self.norms = nn.ModuleList(EnsembleBatchRenorm(num_critics, h, **norm) for h in hidden_sizes)
        self.head = EnsembleLinear(num_critics, sizes[-1], num_bins)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_bins) if num_bins > 1 else None)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        batch = obs.shape[:-1]
        x = torch.cat([obs, action], dim=-1).reshape(-1, self.obs_dim + self.act_dim)
        x = self.in_norm(x, detach_params)
        for layer, norm in zip(self.layers, self.norms):
            x = torch.relu(norm(layer(x, detach_params), detach_params))
        out = self.head(x, detach_params)
        shape = (
            (self.num_critics, *batch) if self.num_bins == 1 else (self.num_critics, *batch, self.num_bins)
        )
        return out.reshape(shape).to(torch.promote_types(out.dtype, torch.float32))
