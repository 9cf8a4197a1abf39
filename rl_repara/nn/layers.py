"""Network building blocks: an MLP (optionally with dropout and a norm) and a linear layer batched
over an ensemble."""

from __future__ import annotations

import math
from typing import Any, Sequence, cast

import torch
from torch import nn

from rl_repara.nn.norms import BatchRenorm, check_norm, make_norm

__all__ = ["mlp", "EnsembleLinear", "ensemble_linear", "orthogonal_ensemble_linear"]


def mlp(
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int | None = None,
    norm: str = "none",
    dropout: float = 0.0,
    input_norm: bool = False,
    **norm_kwargs: Any,
) -> nn.Sequential:
    """An MLP: per hidden size ``Linear → [Dropout] → [LayerNorm] → ReLU → [BatchRenorm]``, then
    an optional ``Linear(…, out_dim)``; the bracketed layers only when asked for.

    ``norm`` is ``"none"``, ``"layer"`` (``nn.LayerNorm``) or ``"batchrenorm"`` (``BatchRenorm``),
    ``norm_kwargs`` go to it, ``dropout`` is the drop probability and ``input_norm=True`` also
    normalizes the input (the first module). The orders are those of the published code:

    - DroQ (SBX ``sbx/common/policies.py`` ``ContinuousCritic``): ``Linear → Dropout → LayerNorm →
      ReLU``;
    - CrossQ (SBX ``sbx/crossq/policies.py`` and the authors' ``adityab/CrossQ``): a
      ``BatchRenorm`` on the input, then ``Linear → ReLU → BatchRenorm``: the norm follows the
      activation, so the last hidden layer's output is normalized before the head.

    With the defaults it is ``Linear → ReLU`` per hidden size, module indices unchanged.
    """
    check_norm(norm, norm_kwargs)
    if input_norm and norm == "none":
        raise ValueError("input_norm=True needs a norm ('layer' or 'batchrenorm').")
    layers: list[nn.Module] = []
    if input_norm:
        layers.append(cast(nn.Module, make_norm(norm, in_dim, **norm_kwargs)))
    for size in hidden_sizes:
        layers.append(nn.Linear(in_dim, size))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if norm == "layer":
            layers.append(nn.LayerNorm(size, **norm_kwargs))
        layers.append(nn.ReLU())
        if norm == "batchrenorm":
            layers.append(BatchRenorm(size, **norm_kwargs))
        in_dim = size
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """N independent linear layers applied in one batched matmul.

    ``weight`` is ``[N, in, out]`` and ``bias`` is ``[N, 1, out]`` (``None`` with ``bias=False``,
    for a layer a batch norm follows, which would cancel it); ``forward(x)`` maps ``x [N, B, in]``
    (or a shared ``x [B, in]``) to ``y [N, B, out]``, with ``y[k] = x[k] @ weight[k] + bias[k]``.
    Each member is initialised like ``nn.Linear``: ``U(−1/√in, 1/√in)`` for weight and bias.
    """

    bias: nn.Parameter | None

    def __init__(self, num_members: int, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.num_members, self.in_dim, self.out_dim = num_members, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        w: torch.Tensor = self.weight
        b: torch.Tensor | None = self.bias
        if detach_params:
            w, b = w.detach(), None if b is None else b.detach()
        return ensemble_linear(x, w, b)

    def extra_repr(self) -> str:
        shape = f"num_members={self.num_members}, in_dim={self.in_dim}, out_dim={self.out_dim}"
        return f"{shape}, bias={self.bias is not None}"


def ensemble_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``y[k] = x[k] @ weight[k] + bias[k]`` for ``x [N, B, in]`` or a shared ``x [B, in]``
    (no ``+ bias`` when ``bias`` is None).

    One ``baddbmm`` (bias and matmul in one kernel; a shared input is a stride-0 view, not a
    copy). A single output column (a critic's last layer) is ``Σ_i x_i·w_i`` as a multiply and
    a sum instead: batched matmuls with one output column are about 4× slower on CPU.
    """
    if weight.shape[-1] == 1:
        y = (x * weight.transpose(1, 2)).sum(-1, keepdim=True)
        return y if bias is None else y + bias
    if x.dim() == 2:
        x = x.expand(weight.shape[0], *x.shape)
    return torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)


def orthogonal_ensemble_linear(members: int, d_in: int, d_out: int, bias: bool = False) -> EnsembleLinear:
    """An ``EnsembleLinear`` with each member's ``[in, out]`` weight orthogonal (gain 1) and a
    zero bias, the init of SimbaV2's and FlashSAC's unit-norm layers (the weight projection
    then makes the rows unit norm)."""
    layer = EnsembleLinear(members, d_in, d_out, bias=bias)
    with torch.no_grad():
        for w in layer.weight:
            nn.init.orthogonal_(w)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer
