"""The learner's trainable parts under one module (``Networks``), and its optimizers' recipe."""

from __future__ import annotations

from typing import Iterable, Optional, cast

import torch
from torch import nn

from rl_repara.nn.critics import Critics
from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = ["ALPHA_ADAM_BETAS", "Networks", "adam"]

# Adam's (β1, β2) for log α, whatever ``adam_beta1`` says (that one is for the actor and the
# critics): the SAC authors, CrossQ's authors (adityab/CrossQ, optax.adam defaults for the
# entropy coefficient), SBX and SB3-contrib all train α with torch/optax's default betas.
ALPHA_ADAM_BETAS = (0.9, 0.999)


def adam(params: Iterable[torch.Tensor], lr: float, beta1: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for the device, else foreach."""
    params = list(params)  # a generator would be spent by a failed first attempt
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), foreach=True)


class Networks(nn.Module):
    """The learner's trainable parts under one module: ``policy``, ``critics``,
    ``target_critics`` (or None) and ``log_alpha``. A loss is ``loss(nets) -> (loss, info)``;
    ``nets(loss)`` calls it, so ``torch.func.functional_call`` can swap in the weights (and
    buffers) a backend differentiates by."""

    policy: TanhGaussianPolicy
    critics: Critics
    target_critics: Optional[Critics]
    log_alpha: nn.Parameter

    def __init__(
        self,
        policy: TanhGaussianPolicy,
        critics: nn.Module,
        target_critics: Optional[nn.Module],
        log_alpha: nn.Parameter,
    ) -> None:
        super().__init__()
        self.policy, self.log_alpha = policy, log_alpha
        self.critics = cast(Critics, critics)  # a module with the Critics interface
        self.target_critics = cast(Optional[Critics], target_critics)

    def forward(self, loss):
        return loss(self)
