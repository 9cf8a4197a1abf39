"""``ResidualQEnsemble``: N critics made of pre-LayerNorm residual blocks, after SimBa (Lee et
al., "SimBa: Simplicity Bias for Scaling Up Parameters in Deep RL", ICLR 2025), batched over the
ensemble. The example of a critic architecture as a named part (``agent.critic_arch=residual``).

Member ``k`` on ``x = [s, a]``::

    h_0 = x W_in + b_in
    h_i = h_{i−1} + W2·relu(W1·LN(h_{i−1}) + b1) + b2      i = 1..blocks  (inner width 4·width)
    Q   = LN(h_blocks) W_out + b_out

SimBa's running-statistics observation normalization is left out: the policy's ``normalize_obs``
does that job for every architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from rl_repara.nn.critics import CategoricalQ
from rl_repara.nn.layers import EnsembleLinear
from rl_repara.nn.norms import EnsembleLayerNorm

__all__ = ["ResidualQEnsemble"]


class ResidualQEnsemble(CategoricalQ):
    """``forward(obs [*batch, obs_dim], action [*batch, act_dim]) → q [N, *batch]``, with
    ``detach_params`` as ``QEnsemble``'s (gradients reach ``action``, not the weights)."""

    def __init__(self, obs_dim: int, act_dim: int, num_critics: int = 2, width: int = 256, blocks: int = 1):
        super().__init__()
        if num_critics < 1 or width < 1 or blocks < 0:
            raise ValueError(
                f"ResidualQEnsemble needs num_critics >= 1, width >= 1, blocks >= 0; got {num_critics}, "
                f"{width}, {blocks}."
            )
        self.obs_dim, self.act_dim, self.num_critics = obs_dim, act_dim, num_critics
        self.embed = EnsembleLinear(num_critics, obs_dim + act_dim, width)
        self.norms = nn.ModuleList(EnsembleLayerNorm(num_critics, width) for _ in range(blocks))
        self.expand = nn.ModuleList(EnsembleLinear(num_critics, width, 4 * width) for _ in range(blocks))
        self.contract = nn.ModuleList(EnsembleLinear(num_critics, 4 * width, width) for _ in range(blocks))
        self.out_norm = EnsembleLayerNorm(num_critics, width)
        self.head = EnsembleLinear(num_critics, width, 1)
        self.register_buffer("support", None)  # a scalar head

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Q-values ``[N, *batch]``; see the module docstring for the math."""
        batch = obs.shape[:-1]
        x = torch.cat([obs, action], dim=-1).reshape(-1, self.obs_dim + self.act_dim)
        h = self.embed(x, detach_params)
        for norm, expand, contract in zip(self.norms, self.expand, self.contract):
            h = h + contract(torch.relu(expand(norm(h, detach_params), detach_params)), detach_params)
        q = self.head(self.out_norm(h, detach_params), detach_params)
        return q.reshape(self.num_critics, *batch).to(torch.promote_types(q.dtype, torch.float32))
