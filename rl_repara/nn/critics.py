"""``QEnsemble``: N soft Q-functions evaluated in one batched pass."""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

from rl_repara.nn.layers import EnsembleLinear, ensemble_linear
from rl_repara.nn.norms import check_norm, make_norm

__all__ = ["Critics", "CategoricalQ", "QEnsemble"]


class Critics(Protocol):
    """What the losses need of a critic ensemble (``QEnsemble``'s interface; a critic
    architecture of ``agent/parts.py`` provides it): ``critics(obs, action, detach_params)`` the
    head's output ``[N, B]`` (``[N, B, M]`` for quantiles), ``q_values`` a scalar Q ``[N, B]``,
    ``min_q`` its min over the critics with detached weights ``[B]``."""

    num_critics: int
    num_quantiles: int

    def __call__(
        self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False
    ) -> torch.Tensor: ...

    def q_values(
        self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False
    ) -> torch.Tensor: ...

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor: ...


class CategoricalQ(nn.Module):
    """``q_values`` and ``min_q`` for a critic ensemble whose ``forward(obs, action,
    detach_params)`` gives logits ``[N, *batch, M]`` over its ``support`` buffer (``[M]``), or
    scalar Q ``[N, *batch]`` when ``support`` is None. Shared by the architectures of
    ``residual_critics.py``, ``bn_critics.py``, ``hyperspherical.py`` and ``flash.py``."""

    num_quantiles = 1
    support: Optional[torch.Tensor]

    def q_values(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Scalar Q ``[N, *batch]``: the head's output, or the mean ``Σ_k softmax(logits)_k · z_k``."""
        out = self(obs, action, detach_params)
        return out if self.support is None else torch.softmax(out.float(), dim=-1) @ self.support

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``min_k Q_k(s, a)`` ``[*batch]`` with detached weights."""
        return self.q_values(obs, action, detach_params=True).min(dim=0).values


class QEnsemble(nn.Module):
    """N critics ``Q_k(s, a)`` with stacked weights: one batched matmul per layer, no Python loop.

    Each critic is an MLP on ``[obs, action]`` with ``networks.mlp``'s layer order, batched over
    the ensemble: an optional input norm, then per hidden size ``Linear → [Dropout] →
    [LayerNorm] → ReLU → [BatchRenorm]``, then ``Linear(…, num_quantiles)``. ``norm`` is
    ``"none"``, ``"layer"`` or ``"batchrenorm"`` (``norm_kwargs`` go to it), ``dropout`` the drop
    probability (independent masks per member), ``input_norm`` normalizes ``[obs, action]``. Every
    member has its own affine params and statistics (``EnsembleLayerNorm``,
    ``EnsembleBatchRenorm``). Member ``k`` computes exactly what ``mlp(obs_dim + act_dim,
    hidden_sizes, num_quantiles, norm, dropout, input_norm)`` with weights ``layer.weight[k].T``,
    biases ``layer.bias[k, 0]`` and norm params/statistics ``[k, 0]`` would.

    ``forward(obs [*batch, obs_dim], action [*batch, act_dim]) → q [N, *batch]``, or
    ``[N, *batch, num_quantiles]`` when ``num_quantiles > 1`` (TQC), or the logits ``[N, *batch,
    num_bins]`` of a categorical head when ``num_bins > 1``, whose Q is the mean over the
    support ``linspace(v_min, v_max, num_bins)`` (``q_values``; ``agent/categorical.py``).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        num_critics: int = 2,
        hidden_sizes: Sequence[int] = (256, 256),
        *,
        norm: str = "none",
        dropout: float = 0.0,
        input_norm: bool = False,
        num_quantiles: int = 1,
        num_bins: int = 1,
        v_min: float = -10.0,
        v_max: float = 10.0,
        **norm_kwargs: Any,
    ) -> None:
        super().__init__()
        if num_critics < 1:
            raise ValueError(f"QEnsemble needs num_critics >= 1; got {num_critics}.")
        if num_quantiles < 1 or num_bins < 1 or (num_quantiles > 1 and num_bins > 1):
            raise ValueError(
                f"QEnsemble takes num_quantiles >= 1 or num_bins >= 1, not both > 1; got "
                f"{num_quantiles} and {num_bins}."
            )
        if num_bins > 1 and not v_min < v_max:
            raise ValueError(f"a categorical head needs v_min < v_max; got {v_min} and {v_max}.")
        check_norm(norm, norm_kwargs)
        if input_norm and norm == "none":
            raise ValueError("input_norm=True needs a norm ('layer' or 'batchrenorm').")
        self.obs_dim, self.act_dim, self.num_critics = obs_dim, act_dim, num_critics
        self.norm, self.dropout, self.num_quantiles = norm, dropout, num_quantiles
        self.num_bins, self.num_outputs = num_bins, max(num_quantiles, num_bins)
        self.support: Optional[torch.Tensor]
        self.register_buffer("support", torch.linspace(v_min, v_max, num_bins) if num_bins > 1 else None)
        sizes = [obs_dim + act_dim, *hidden_sizes, self.num_outputs]
        self.layers = nn.ModuleList(EnsembleLinear(num_critics, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(
            m for h in hidden_sizes if (m := make_norm(norm, h, num_critics, **norm_kwargs)) is not None
        )
        self.in_norm = make_norm(norm, sizes[0], num_critics, **norm_kwargs) if input_norm else None
        # Plain ReLU MLPs with a scalar head: the only case ``_MinQ``'s backward is written for.
        self.is_plain = norm == "none" and dropout == 0 and self.num_outputs == 1

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Q-values ``[N, *batch]`` (``[N, *batch, num_quantiles]`` for a quantile head) for
        ``obs [*batch, obs_dim]``, ``action [*batch, act_dim]``.

        Leading dims are flattened to one batch dim inside (a ``[T, B, ·]`` sequence is a batch
        of T·B rows, even when T equals N; batch renorm's statistics are over all of them). The
        dtype is at least float32: a float64 ensemble returns float64, bf16 autocast returns
        float32. ``detach_params=True`` evaluates with detached weights and norm params:
        gradients still flow to ``action`` (the actor loss needs them) but autograd builds no
        parameter gradients, which saves the matmuls that would compute them. Dropout and batch
        renorm follow ``self.training`` (train mode also updates the renorm statistics).
        """
        obs, action, batch = self._flatten(obs, action)
        x = torch.cat([obs, action], dim=-1)
        if self.in_norm is not None:
            x = self.in_norm(x, detach_params)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params)
            if i < last:
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
                if self.norm == "layer":
                    x = self.norms[i](x, detach_params)
                x = torch.relu_(x)  # in place: no backward needs the pre-activation
                if self.norm == "batchrenorm":
                    x = self.norms[i](x, detach_params)
        shape = (x.shape[0], *batch) if self.num_outputs == 1 else (x.shape[0], *batch, self.num_outputs)
        return x.reshape(shape).to(torch.promote_types(x.dtype, torch.float32))

    def _flatten(
        self, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
        """``obs``, ``action`` as ``[B, ·]`` with ``B = prod(batch)``, and ``batch``; shape checks only."""
        batch = obs.shape[:-1]
        if (
            obs.dim() == 0
            or action.dim() == 0
            or action.shape[:-1] != batch
            or obs.shape[-1] != self.obs_dim
            or action.shape[-1] != self.act_dim
        ):
            raise ValueError(
                f"QEnsemble expects obs [*batch, {self.obs_dim}] and action [*batch, {self.act_dim}]; "
                f"got obs {tuple(obs.shape)} and action {tuple(action.shape)}."
            )
        if obs.dim() != 2:
            obs, action = obs.reshape(batch.numel(), -1), action.reshape(batch.numel(), -1)
        return obs, action, batch

    def q_values(self, obs: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Scalar Q ``[N, *batch]``: the head's output, the mean of its quantiles, or the mean of
        its categorical distribution ``Σ_k softmax(logits)_k · z_k``."""
        q = self(obs, action, detach_params)
        if self.support is not None:
            return torch.softmax(q.float(), dim=-1) @ self.support
        return q.mean(dim=-1) if self.num_quantiles > 1 else q

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``min_k Q_k(s, a)`` ``[*batch]`` with detached params: gradients flow to ``action`` only.

        The value and the gradient are those of ``self(obs, action, detach_params=True)
        .min(dim=0).values`` (for a quantile or categorical head: of ``q_values``). For a plain
        ensemble (``is_plain``) on CPU in fp32 the backward is cheaper: ``∂ min_k Q_k
        / ∂a`` is ``∂Q_{k*}/∂a`` with ``k*`` the member that attains the min (the same member
        autograd's ``min`` picks), so each member back-propagates only the rows it wins, which
        halves the backward matmuls of two critics. Elsewhere (norm layers or dropout; CUDA,
        where the row split would sync the host; bf16 autocast; ``torch.compile``; ``obs`` that
        needs a gradient) it is the plain expression above.
        """
        if self.num_outputs != 1:
            return self.q_values(obs, action, detach_params=True).min(dim=0).values
        plain = (
            not self.is_plain
            or action.device.type != "cpu"
            or torch.is_autocast_enabled("cpu")
            or torch.compiler.is_compiling()
            or not torch.is_grad_enabled()
            or obs.requires_grad
            or self.layers[0].weight.dtype != torch.float32
        )
        if plain:
            return self(obs, action, detach_params=True).min(dim=0).values
        obs, action, batch = self._flatten(obs, action)
        layers = [cast(EnsembleLinear, layer) for layer in self.layers]
        weights = [
            t for layer in layers for t in (layer.weight.detach(), cast(torch.Tensor, layer.bias).detach())
        ]
        q = _MinQ.apply(self.obs_dim, obs, action, *weights)[0]
        return q if len(batch) == 1 else q.reshape(batch)


class _MinQ(torch.autograd.Function):
    """``min_k Q_k(s, a)`` whose backward computes ``∂/∂a`` row by row through the winning member.

    Forward: ``h_0 = [s, a]``, ``h_i = relu(h_{i−1} W_i[k] + b_i[k])``, ``q_k = h_{L−1} W_L[k] +
    b_L[k]``, output ``q_{k*(b)}`` per row b, ``k* = argmin_k q_k``. Backward, for the rows R_k
    that member k wins: ``δ = g_R W_L[k]ᵀ``, then ``δ ← (δ ⊙ 1[h_i > 0]) W_i[k]ᵀ`` down to layer 1,
    whose transpose is restricted to the action rows ``W_1[k][obs_dim:]`` (only ∂/∂a is needed).
    With no hidden layer (L = 1) the last layer is layer 1: ``δ = g_R W_1[k][obs_dim:]ᵀ``.
    """

    @staticmethod
    def forward(obs_dim: int, obs: torch.Tensor, action: torch.Tensor, *params: torch.Tensor):
        """``(q_min, winner, *hidden)``: the hidden activations are returned (not differentiable)
        so that ``setup_context`` can save them; the form ``torch.func`` transforms need."""
        weights, biases = params[0::2], params[1::2]
        h = torch.cat([obs, action], dim=-1)
        hidden = []
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = ensemble_linear(h, w, b)
            if i < len(weights) - 1:
                h = h.relu_()
                hidden.append(h)
        q_min, winner = h.squeeze(-1).min(dim=0)
        return (q_min, winner, *hidden)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        obs_dim, _, _, *params = inputs
        _, winner, *hidden = output
        weights = params[0::2]
        ctx.obs_dim, ctx.num_layers = obs_dim, len(weights)
        ctx.mark_non_differentiable(winner, *hidden)
        ctx.set_materialize_grads(False)  # no zero-filled gradients for those outputs
        ctx.save_for_backward(winner, *weights, *hidden)

    @staticmethod
    def backward(ctx, grad_q: Optional[torch.Tensor], *_):
        if grad_q is None:
            return None, None, None, *([None] * (2 * ctx.num_layers))
        winner, *rest = ctx.saved_tensors
        weights, hidden = rest[: ctx.num_layers], rest[ctx.num_layers :]
        grad_action = grad_q.new_zeros(grad_q.shape[0], weights[0].shape[1] - ctx.obs_dim)
        for k in range(weights[0].shape[0]):
            rows = (winner == k).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            delta = grad_q[rows].unsqueeze(1)
            for i in range(ctx.num_layers - 1, -1, -1):
                if i < ctx.num_layers - 1:
                    delta = delta * (hidden[i][k, rows] > 0)
                w = weights[i][k, ctx.obs_dim :] if i == 0 else weights[i][k]
                delta = delta @ w.T
            grad_action[rows] = delta
        return None, None, grad_action, *([None] * (2 * ctx.num_layers))
