"""Reward scaling by the scale of the discounted return, as SimbaV2, XQC and FlashSAC do it.

Every env step (the random warm-up included) updates, per env, the running discounted return
``G ← γ·(1 − done)·G + r`` (``done``: terminated or truncated), the running variance of ``G``
over all envs and steps (Chan et al.'s parallel update; mean 0, variance 1 and a count of 1e-4
to start, as SimbaV2's ``RunningMeanStd``) and the largest ``|G|`` seen. A sampled batch's
rewards are then divided by

* ``return_std``:      ``√(var_G + 1e-8)`` (XQC: ``std + 1e-8``; the same to 1e-8),
* ``return_std_max``:  ``max(√(var_G + 1e-8), max|G| / G_max)`` (SimbaV2, FlashSAC; ``G_max = 5``
  keeps the scaled returns inside a categorical support of ``[−5, 5]``).

The buffer keeps raw rewards; the statistics are buffers of this module, so the learner's
``state_dict`` (and a checkpoint) holds them and a resume continues them exactly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RewardScaler", "SCALINGS"]

SCALINGS = ("none", "return_std", "return_std_max")


class RewardScaler(nn.Module):
    """``observe(reward [E], done [E])`` once per vector step; ``scale()`` the divisor."""

    returns: torch.Tensor
    var: torch.Tensor
    mean: torch.Tensor
    count: torch.Tensor
    abs_max: torch.Tensor

    def __init__(self, kind: str, gamma: float, num_envs: int = 1, g_max: float = 5.0) -> None:
        super().__init__()
        if kind not in SCALINGS[1:]:
            raise ValueError(f"reward scaling must be one of {', '.join(SCALINGS[1:])}; got {kind!r}.")
        self.kind, self.gamma, self.g_max = kind, gamma, g_max
        self.register_buffer("returns", torch.zeros(num_envs, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("var", torch.ones((), dtype=torch.float64))
        self.register_buffer("count", torch.full((), 1e-4, dtype=torch.float64))
        self.register_buffer("abs_max", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def observe(self, reward: torch.Tensor, done: torch.Tensor) -> None:
        """``G ← γ·(1 − done)·G + r`` per env, then the statistics of the new ``G`` values::

        δ = mean_b − mean,  n = count + k,  mean += δ·k/n,
        var = (var·count + var_b·k + δ²·count·k/n) / n,  count = n
        """
        g = self.returns * self.gamma * (1.0 - done.to(self.returns)) + reward.to(self.returns)
        self.returns.copy_(g)
        k = g.numel()
        batch_mean, batch_var = g.mean(), g.var(unbiased=False)
        delta, total = batch_mean - self.mean, self.count + k
        self.var.copy_(
            (self.var * self.count + batch_var * k + delta.square() * self.count * k / total) / total
        )
        self.mean.add_(delta * k / total)
        self.count.copy_(total)
        self.abs_max.copy_(torch.maximum(self.abs_max, g.abs().max()))

    def scale(self) -> torch.Tensor:
        """The divisor of the rewards (float32, on the statistics' device)."""
        std = torch.sqrt(self.var + 1e-8)
        if self.kind == "return_std_max":
            std = torch.maximum(std, self.abs_max / self.g_max)
        return std.float()
