"""Post-step hooks: what runs after each optimizer step, under ``torch.no_grad``, with the name of
the group that stepped (``"critics"`` or ``"policy"``). ``parts.POST_STEP_HOOKS`` names them;
each is made once per learner, ``make(config, nets) -> hook(nets, group)``, so that it walks the
modules then and not inside a compiled graph.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from rl_repara.nn.layers import EnsembleLinear

__all__ = ["unit_norm_weights"]


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
