"""Post-step hooks: what runs after each optimizer step, under ``torch.no_grad``, with the name of
the group that stepped (``"critics"`` or ``"policy"``). ``parts.POST_STEP_HOOKS`` names them;
each is made once per learner, ``make(config, nets) -> hook(nets, group)``, so that it walks the
modules then and not inside a compiled graph.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from rl_repara.nn.flash import EnsembleRMSNorm
from rl_repara.nn.layers import EnsembleLinear
from rl_repara.nn.norms import BatchRenorm

__all__ = ["unit_norm_weights", "unit_norm_all"]


def unit_norm_weights(config: Any, nets: nn.Module) -> Callable[[nn.Module, str], None]:
    """Weight normalization by projection (SimbaV2, XQC, FlashSAC, CrossQ + WN): every linear
    weight of the group that stepped, ``nn.Linear`` ``[out, in]`` and ``EnsembleLinear`` ``[N,
    in, out]`` alike, gets unit L2 norm over its inputs, per output unit: ``w ← w / max(‖w‖,
    1e-8)``. Biases and norm layers' parameters are left alone. Projected once when made."""
    weights = {
        group: [
            m.weight for m in getattr(nets, group).modules() if isinstance(m, (nn.Linear, EnsembleLinear))
        ]
        for group in ("critics", "policy")
    }

    def hook(nets: nn.Module, group: str) -> None:
        for w in weights.get(group, ()):
            dim = -2 if isinstance(w, torch.Tensor) and w.dim() == 3 else -1  # the input dim
            w.div_(torch.linalg.vector_norm(w, dim=dim, keepdim=True).clamp_min(1e-8))

    with torch.no_grad():
        hook(nets, "critics")
        hook(nets, "policy")
    return hook


def unit_norm_all(config: Any, nets: nn.Module) -> Callable[[nn.Module, str], None]:
    """FlashSAC's projection: ``unit_norm_weights``, and every norm layer's scales held at norm
    ``√d``: a batch norm's ``[γ; β]`` jointly, ``← [γ; β]·√d/√(Σγ² + Σβ² + 1e-8)``, an RMSNorm's
    ``w ← w·√d/‖w‖`` (per ensemble member). Projected once when made."""
    weights = unit_norm_weights(config, nets)
    norms = {
        group: [m for m in getattr(nets, group).modules() if isinstance(m, (BatchRenorm, EnsembleRMSNorm))]
        for group in ("critics", "policy")
    }

    def hook(nets: nn.Module, group: str) -> None:
        weights(nets, group)
        for m in norms.get(group, ()):
            d = m.weight.shape[-1]
            bias = getattr(m, "bias", None)
            learned = [m.weight] + ([bias] if isinstance(bias, nn.Parameter) else [])
            total = torch.stack([p.square().sum(dim=-1, keepdim=True) for p in learned]).sum(0)
            factor = d**0.5 / torch.sqrt(total + 1e-8)
            for p in learned:
                p.mul_(factor)

    with torch.no_grad():
        hook(nets, "critics")
        hook(nets, "policy")
    return hook
