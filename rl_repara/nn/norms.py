"""Normalization layers for the critics and the MLPs: Batch Renormalization (single and batched
over an ensemble) and an ensemble LayerNorm, plus ``make_norm``, which picks one by name."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NORMS",
    "BatchRenorm",
    "EnsembleBatchRenorm",
    "EnsembleLayerNorm",
    "make_norm",
    "module_mode",
    "renorm_mode",
]

NORMS = ("none", "layer", "batchrenorm")
NEVER = 2**62  # a Batch Renorm warm-up no run outlasts: plain batch norm


class BatchRenorm(nn.Module):
    """Batch Renormalization (Ioffe 2017, arXiv:1702.03275) as CrossQ uses it, for ``x [*batch, F]``.

    Defaults follow SBX (``sbx/common/jax_layers.py``; flax's ``momentum=0.99`` is torch's 0.01):
    ``momentum=0.01``, ``eps=1e-3``, ``r_max=3``, ``d_max=5``, ``warmup_steps=100_000``.

    Train mode, with ``μ_B``, ``σ²_B`` the batch mean and *biased* variance over the batch rows
    (flax's ``_compute_stats``, as SBX) and ``σ_B = √(σ²_B + eps)``, ``σ_run = √(var_run + eps)``::

        r = clip(σ_B / σ_run, 1/r_max, r_max),  d = clip((μ_B − μ_run) / σ_run, −d_max, d_max)
        y = ((x − μ_B) / σ_B · r + d) · weight + bias

    ``r`` and ``d`` carry no gradient (the gradient flows through ``μ_B`` and ``σ_B``, as in batch
    norm). During warm-up (``steps < warmup_steps``, counted before this call) ``r = 1, d = 0``:
    plain batch norm. Then ``μ_run ← (1 − m)·μ_run + m·μ_B``, ``var_run ← (1 − m)·var_run + m·σ²_B``
    and ``steps += 1``, all buffers (in the state_dict). SBX folds r and d into a mean and variance
    handed to flax's normalize, which puts ``eps`` slightly differently: ``(x − μ_B + d·√σ²_B / r)
    / √(σ²_B / r² + eps)``; the two agree up to O(eps / σ²_B).

    Eval mode: ``y = (x − μ_run) / σ_run · weight + bias``; nothing is updated.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    steps: torch.Tensor

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.01,
        eps: float = 1e-3,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 100_000,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.r_max, self.d_max, self.warmup_steps = r_max, d_max, warmup_steps
        shape = self._stat_shape()
        self.weight = nn.Parameter(torch.ones(shape))
        if bias:
            self.bias = nn.Parameter(torch.zeros(shape))
        else:  # a zero shift, not learned (a batch norm after the next linear layer cancels it)
            self.register_buffer("bias", torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def _stat_shape(self) -> tuple[int, ...]:
        return (self.num_features,)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Normalize ``x [*batch, F]`` over all its rows; see the class docstring."""
        flat = x.reshape(-1, x.shape[-1])
        return self._renorm(flat, detach_params).reshape(x.shape)

    def _renorm(self, x: torch.Tensor, detach_params: bool) -> torch.Tensor:
        """The math, for ``x [..., B, F]`` with statistics over the row dim ``-2``."""
        w, b = (self.weight.detach(), self.bias.detach()) if detach_params else (self.weight, self.bias)
        x = x.to(torch.promote_types(x.dtype, self.running_mean.dtype))
        if not self.training:
            return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * w + b
        if x.shape[-2] < 2:
            raise ValueError(
                f"BatchRenorm needs a batch of at least 2 in train mode (got {x.shape[-2]}); "
                "call .eval() to use the running statistics."
            )
        mean = x.mean(-2, keepdim=True)
        centered = x - mean  # var as mean((x − μ)²): x.var(-2) is 10x slower on CPU
        var = centered.square().mean(-2, keepdim=True)
        std = torch.sqrt(var + self.eps)
        with torch.no_grad():
            run_mean = self.running_mean.view_as(mean)
            run_std = torch.sqrt(self.running_var.view_as(var) + self.eps)
            warm = self.steps >= self.warmup_steps
            r = torch.where(warm, (std / run_std).clamp(1 / self.r_max, self.r_max), 1.0)
            d = torch.where(warm, ((mean - run_mean) / run_std).clamp(-self.d_max, self.d_max), 0.0)
            self.running_mean.lerp_(mean.view_as(self.running_mean), self.momentum)
            self.running_var.lerp_(var.view_as(self.running_var), self.momentum)
            self.steps += 1
        return (centered / std * r + d) * w + b

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, momentum={self.momentum}, eps={self.eps}, r_max={self.r_max}, "
            f"d_max={self.d_max}, warmup_steps={self.warmup_steps}"
        )


class EnsembleBatchRenorm(BatchRenorm):
    """N independent ``BatchRenorm`` layers for ``x [N, B, F]`` (or a shared ``x [B, F]``).

    Member ``k`` normalizes ``x[k]`` with its own statistics over the B rows and its own affine
    params: ``weight``, ``bias``, ``running_mean`` and ``running_var`` are ``[N, 1, F]``; the
    ``steps`` counter is shared (every member sees every call). Same math and defaults as
    ``BatchRenorm``.
    """

    def __init__(self, num_members: int, num_features: int, **kwargs: Any) -> None:
        self.num_members = num_members
        super().__init__(num_features, **kwargs)

    def _stat_shape(self) -> tuple[int, ...]:
        return (self.num_members, 1, self.num_features)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Normalize ``x [N, B, F]`` (a shared ``[B, F]`` is expanded) member by member."""
        if x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        return self._renorm(x, detach_params)

    def extra_repr(self) -> str:
        return f"num_members={self.num_members}, " + super().extra_repr()


class EnsembleLayerNorm(nn.Module):
    """N independent ``nn.LayerNorm(F)`` for ``x [N, B, F]`` (or a shared ``x [B, F]``).

    ``y[k] = (x[k] − mean_F) / √(var_F + eps) · weight[k] + bias[k]``, with the (biased) mean and
    variance over the F features of each row and ``weight``, ``bias`` ``[N, 1, F]`` (ones and
    zeros at init, like ``nn.LayerNorm``, whose default ``eps=1e-5`` it shares).
    """

    def __init__(self, num_members: int, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_members, self.num_features, self.eps = num_members, num_features, eps
        self.weight = nn.Parameter(torch.ones(num_members, 1, num_features))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, num_features))

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """``x [N, B, F]`` or ``[B, F]`` → ``[N, B, F]``."""
        w, b = (self.weight.detach(), self.bias.detach()) if detach_params else (self.weight, self.bias)
        return F.layer_norm(x, (self.num_features,), eps=self.eps) * w + b

    def extra_repr(self) -> str:
        return f"num_members={self.num_members}, num_features={self.num_features}, eps={self.eps}"


def make_norm(
    norm: str, num_features: int, num_members: int | None = None, **kwargs: Any
) -> nn.Module | None:
    """The norm layer called ``norm`` (one of ``NORMS``) for F features: ``None`` for ``"none"``;
    ``nn.LayerNorm`` / ``BatchRenorm``, or with ``num_members`` their ensemble versions.
    ``kwargs`` go to the layer (``eps``; for batchrenorm also ``momentum``, ``r_max``, ...)."""
    check_norm(norm, kwargs)
    if norm == "layer":
        if num_members is None:
            return nn.LayerNorm(num_features, **kwargs)
        return EnsembleLayerNorm(num_members, num_features, **kwargs)
    if norm == "batchrenorm":
        if num_members is None:
            return BatchRenorm(num_features, **kwargs)
        return EnsembleBatchRenorm(num_members, num_features, **kwargs)
    return None


def check_norm(norm: str, kwargs: dict[str, Any] | None = None) -> None:
    """Raise a one-line ``ValueError`` for an unknown norm name, or kwargs given to ``"none"``."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}.")
    if norm == "none" and kwargs:
        raise ValueError(f"norm='none' takes no norm kwargs; got {sorted(kwargs)}.")


@contextlib.contextmanager
def module_mode(module: nn.Module, train: bool) -> Iterator[None]:
    """``module`` (and its children) in train or eval mode inside the block, as before after."""
    before = [(m, m.training) for m in module.modules()]
    module.train(train)
    try:
        yield
    finally:
        for m, was in before:
            m.training = was


@contextlib.contextmanager
def renorm_mode(module: nn.Module, train: bool) -> Iterator[None]:
    """The Batch Renorm layers inside ``module`` in train mode (batch statistics, updated) or
    eval mode (running statistics, untouched) inside the block; the rest of ``module`` keeps its
    mode (dropout stays as it is). Their previous modes after."""
    layers = [m for m in module.modules() if isinstance(m, BatchRenorm)]
    before = [m.training for m in layers]
    for layer in layers:
        layer.train(train)
    try:
        yield
    finally:
        for layer, was in zip(layers, before):
            layer.train(was)
