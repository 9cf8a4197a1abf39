"""``QEnsemble``: N soft Q-functions evaluated in one batched pass."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .networks import EnsembleLinear

__all__ = ["QEnsemble"]


class QEnsemble(nn.Module):
    """N critics ``Q_k(s, a)`` with stacked weights: one batched matmul per layer, no Python loop.

    Each critic is an MLP ``[obs, action] → hidden_sizes (ReLU) → 1``. Member ``k`` computes
    exactly what an ``nn.Sequential`` of ``nn.Linear`` layers with weights ``layer.weight[k].T``
    and biases ``layer.bias[k, 0]`` would.

    ``forward(obs [B, obs_dim], action [B, act_dim]) → q [N, B]``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        num_critics: int = 2,
        hidden_sizes: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        if num_critics < 1:
            raise ValueError(f"QEnsemble needs num_critics >= 1; got {num_critics}.")
        self.obs_dim, self.act_dim, self.num_critics = obs_dim, act_dim, num_critics
        sizes = [obs_dim + act_dim, *hidden_sizes, 1]
        self.layers = nn.ModuleList(
            EnsembleLinear(num_critics, i, o) for i, o in zip(sizes[:-1], sizes[1:])
        )

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False
    ) -> torch.Tensor:
        """Q-values ``[N, B]``.

        ``detach_params=True`` evaluates with detached weights: gradients still flow to
        ``action`` (the actor loss needs them) but autograd builds no weight gradients, which
        saves the matmuls that would compute them.
        """
        x = torch.cat([obs, action], dim=-1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1).float()
