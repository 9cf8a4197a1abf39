"""``ObsNormalizer``: running mean and variance of observations, held as module buffers.

It lives inside the policy, so whatever holds the policy (a checkpoint, ``load_policy``, an
exported graph) holds the statistics too; nothing is saved beside the model.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ObsNormalizer"]


class ObsNormalizer(nn.Module):
    """``forward(x) = clip((x − mean) / sqrt(var + eps), −clip, clip)``.

    ``update(batch)`` merges a batch ``[n, obs_dim]`` into the running statistics with Chan et
    al.'s parallel formulas (float64 buffers)::

        δ = mean_b − mean,  N = count + n
        mean ← mean + δ·n/N
        var  ← (var·count + var_b·n + δ²·count·n/N) / N

    Only ``update`` changes the statistics: ``forward`` (acting, evaluation, the losses,
    export) never does. Before the first update it is the identity on ``(x − 0)/1``, clipped.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, obs_dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        if clip <= 0:
            raise ValueError(f"ObsNormalizer needs clip > 0; got {clip}.")
        self.clip, self.eps = float(clip), float(eps)
        self.register_buffer("mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge ``batch [n, obs_dim]`` (any float dtype) into the running statistics."""
        x = batch.reshape(-1, self.mean.shape[0]).to(self.mean)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.dtype), (self.var + self.eps).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return f"obs_dim={self.mean.shape[0]}, clip={self.clip}"
