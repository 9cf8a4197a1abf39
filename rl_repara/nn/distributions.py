"""The tanh-squashed Gaussian over a bounded box of actions.

An action is drawn with the reparameterization trick::

    ε ~ N(0, I),   u = μ + σ·ε,   a = mid + half · tanh(u)

with ``mid = (high + low)/2`` and ``half = (high − low)/2``. Because ``a`` is a smooth function
of (μ, σ) for a fixed ε, gradients flow from any loss on ``a`` back to the network that made
μ and σ (``rsample``).

The density of ``a`` follows from the change of variables ``u → a``::

    log p(a) = log N(u; μ, σ) − Σ_i log |da_i/du_i|
    da/du    = half · (1 − tanh²u)

and ``log(1 − tanh²u)`` is written in a form that never subtracts two nearly equal numbers::

    log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u))

so the log-density stays finite and accurate where tanh saturates (``|u|`` of 10, 40 or more),
where ``log(1 − tanh²u + 1e-6)`` is off by many nats and ``log(1 − tanh²u)`` is ``−inf``.
"""

from __future__ import annotations

import math
from numbers import Number

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_Size = torch.Size | list[int] | tuple[int, ...]  # what torch.distributions takes

__all__ = ["TanhNormal", "log_one_minus_tanh_sq", "unit_rsample", "unit_log_prob"]


def log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """``log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u))``, exact and finite for any finite u.

    Derivation: ``1 − tanh²u = sech²u = 4 / (e^u + e^−u)² = 4 e^{−2u} / (1 + e^{−2u})²``.
    """
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


def unit_log_prob(u: torch.Tensor, eps: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Unit-box log-density ``log p(y)`` of ``y = tanh(u)``, ``u = μ + σ·ε``, from u and ε::

        log p(y) = Σ_i [−ε_i²/2 − log σ_i − log √(2π)] − Σ_i log(1 − tanh²u_i)

    (the change of variables ``u → y``; no ``atanh``, so it stays exact where tanh saturates).
    """
    log_normal = (-0.5 * eps.square() - torch.log(scale) - _LOG_SQRT_2PI).sum(-1)
    return log_normal - log_one_minus_tanh_sq(u).sum(-1)


def unit_rsample(loc: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, log p(y))`` with ``y = tanh(μ + σ·ε)``, ``ε ~ N(0, I)`` shaped like ``loc``: what
    ``TanhNormal(loc, scale).rsample_and_log_prob()`` returns in the unit box, the same draws
    and the same arithmetic, without building a distribution object (the losses' hot path)."""
    eps = torch.randn(loc.shape, dtype=loc.dtype, device=loc.device)
    u = loc + scale * eps
    return torch.tanh(u), unit_log_prob(u, eps, scale)


class TanhNormal(Distribution):
    """``a = mid + half·tanh(u)``, ``u ~ N(loc, scale)``, independent over the last dim.

    Args:
        loc: μ, shape ``[..., act_dim]``. The last dim is the event (action) dim.
        scale: σ > 0, broadcastable with ``loc``.
        low, high: the action bounds, scalars or per-dimension tensors broadcastable with
            ``loc`` (``low < high``). ``log_prob`` is the density in these units, the
            ``log half`` Jacobian of the affine map included.

    Shapes follow torch's own distributions: ``batch_shape = loc.shape[:-1]``,
    ``event_shape = loc.shape[-1:]`` and ``log_prob`` returns ``sample_shape + batch_shape``.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(
        self,
        loc: torch.Tensor,
        scale: torch.Tensor | float,
        low: torch.Tensor | float = -1.0,
        high: torch.Tensor | float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        loc, scale = broadcast_all(loc, scale)
        if loc.dim() < 1:
            raise ValueError(
                "TanhNormal needs loc with at least one dim (the action dim); "
                "got a scalar. Use loc.reshape(1) for a 1-D action."
            )
        self.loc, self.scale = loc, scale
        self._bounds = (low, high)
        # Scalar bounds (the unit box the losses use) stay Python numbers: no tensor is made
        # per call. Σ_i log half_i is broadcast to the batch (once per dim).
        self._mid: torch.Tensor | float
        self._half: torch.Tensor | float
        self._sum_log_half: torch.Tensor | float
        if isinstance(low, Number) and isinstance(high, Number):
            if validate_args is not False and not float(high) > float(low):
                raise ValueError(f"TanhNormal needs low < high; got low={low}, high={high}.")
            self._mid, self._half = (float(high) + float(low)) / 2, (float(high) - float(low)) / 2
            self._sum_log_half = loc.shape[-1] * math.log(self._half)
        else:
            low_t, high_t = self.low, self.high
            # validate_args=False (the policy's hot path, whose bounds were checked once at
            # construction) skips this host-syncing check
            if validate_args is not False and not bool(torch.all(high_t > low_t)):
                raise ValueError(f"TanhNormal needs low < high in every dim; got low={low}, high={high}.")
            self._mid, self._half = (high_t + low_t) / 2, (high_t - low_t) / 2
            self._sum_log_half = torch.log(self._half).expand(loc.shape).sum(-1)
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    @property
    def low(self) -> torch.Tensor:
        """The lower bounds, as a tensor of ``loc``'s dtype and device."""
        return torch.as_tensor(self._bounds[0], dtype=self.loc.dtype, device=self.loc.device)

    @property
    def high(self) -> torch.Tensor:
        """The upper bounds, as a tensor of ``loc``'s dtype and device."""
        return torch.as_tensor(self._bounds[1], dtype=self.loc.dtype, device=self.loc.device)

    @property
    def support(self) -> constraints.Constraint:
        """The closed box ``[low, high]`` in every action dim."""
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    @property
    def mode(self) -> torch.Tensor:
        """The squashed mean ``mid + half·tanh(μ)``: the deterministic action."""
        return self._squash(self.loc)

    def _squash(self, u: torch.Tensor) -> torch.Tensor:
        """``mid + half·tanh(u)``, clamped to ``[low, high]``: in float32 the affine map can
        round a saturated tanh a hair past a bound (e.g. 0.20000005 for high = 0.2)."""
        if isinstance(self._half, float):
            if self._mid == 0.0 and self._half == 1.0:
                return torch.tanh(u)  # the unit box: tanh never leaves [−1, 1]
            return (self._mid + self._half * torch.tanh(u)).clamp(*map(float, self._bounds))
        a = self._mid + self._half * torch.tanh(u)
        return torch.minimum(torch.maximum(a, self.low), self.high)

    def _log_prob_pre_squash(self, u: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """log p(a) from the pre-squash u and its standardized noise ε = (u − μ)/σ.

        ``log N(u; μ, σ) = Σ_i [−ε_i²/2 − log σ_i − log √(2π)]``, then minus
        ``Σ_i [log(1 − tanh²u_i) + log half_i]``.
        """
        return unit_log_prob(u, eps, self.scale) - self._sum_log_half

    def rsample_and_log_prob(self, sample_shape: _Size = torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a differentiable action and its log-density in one pass.

        The log-density is computed from the pre-squash sample ``u`` (never from ``atanh(a)``),
        so it stays exact when ``tanh(u)`` rounds to ±1.
        Returns ``(action [*sample_shape, *batch, act_dim], log_prob [*sample_shape, *batch])``.
        """
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        u = self.loc + self.scale * eps
        return self._squash(u), self._log_prob_pre_squash(u, eps)

    def rsample(self, sample_shape: _Size = torch.Size()) -> torch.Tensor:
        """A differentiable action ``mid + half·tanh(μ + σ·ε)``, shape ``sample_shape + loc.shape``."""
        return self.rsample_and_log_prob(sample_shape)[0]

    def transform(self, eps: torch.Tensor) -> torch.Tensor:
        """The action ``mid + half·tanh(μ + σ·ε)`` for standard noise ``ε`` given from outside
        (colored exploration noise), shaped like ``loc``."""
        return self._squash(self.loc + self.scale * eps)

    def sample(self, sample_shape: _Size = torch.Size()) -> torch.Tensor:
        """Like ``rsample`` but without gradients (for acting in the env)."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def mode_and_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The deterministic action ``mode`` and its log-density (u = μ, ε = 0)."""
        return self.mode, self._log_prob_pre_squash(self.loc, torch.zeros_like(self.loc))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-density of actions given from outside (e.g. from a replay buffer).

        Inverts the squash with ``u = atanh(clamp((a − mid)/half, −1 + δ, 1 − δ))``, δ the
        dtype's machine epsilon, so actions on the bounds get a finite (very low or very high)
        log-density instead of ±inf. For actions drawn here, prefer ``rsample_and_log_prob``,
        which needs no inverse.
        """
        if self._validate_args:
            self._validate_sample(value)
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        tiny = torch.finfo(value.dtype).eps
        y = ((value - self._mid) / self._half).clamp(-1.0 + tiny, 1.0 - tiny)
        u = torch.atanh(y)
        return self._log_prob_pre_squash(u, (u - self.loc) / self.scale)

    def expand(self, batch_shape: _Size, _instance: object = None) -> "TanhNormal":
        """The same distribution broadcast to a larger ``batch_shape``."""
        shape = torch.Size(batch_shape) + self.event_shape
        return TanhNormal(
            self.loc.expand(shape), self.scale.expand(shape), *self._bounds, validate_args=False
        )

    def __repr__(self) -> str:
        def fmt(x):
            return x if isinstance(x, Number) or x.numel() > 1 else float(x)

        return (
            f"TanhNormal(loc: {tuple(self.loc.shape)}, scale: {tuple(self.scale.shape)}, "
            f"low: {fmt(self.low)}, high: {fmt(self.high)})"
        )
