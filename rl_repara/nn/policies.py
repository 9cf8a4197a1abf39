"""``TanhGaussianPolicy``: the SAC actor, an MLP that outputs μ and log σ of a ``TanhNormal``."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rl_repara.nn.distributions import TanhNormal, unit_log_prob, unit_rsample
from rl_repara.nn.flash import FlashActor
from rl_repara.nn.hyperspherical import HyperActor
from rl_repara.nn.layers import mlp
from rl_repara.nn.obs_normalizer import ObsNormalizer
from rl_repara.spaces import check_action_space, flat_obs_dim

__all__ = ["TanhGaussianPolicy"]

Bound = float | Sequence[float] | np.ndarray | torch.Tensor


def _bounds(low: Bound, high: Bound, act_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    low_t = torch.as_tensor(np.asarray(low, dtype=np.float32)).expand(act_dim).clone()
    high_t = torch.as_tensor(np.asarray(high, dtype=np.float32)).expand(act_dim).clone()
    if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
        raise ValueError(f"action bounds must be finite; got low={low}, high={high}.")
    if not torch.all(high_t > low_t):
        raise ValueError(f"action bounds need low < high in every dim; got low={low}, high={high}.")
    return low_t, high_t


# actor networks other than the MLP: build(obs_dim, out_dim = 2·act_dim, **arch_kwargs) -> a module
# mapping obs [..., obs_dim] to (μ, raw log σ) [..., 2·act_dim]
ACTOR_NETS: dict[str, Callable[..., nn.Module]] = {"hyperspherical": HyperActor, "flash": FlashActor}


class TanhGaussianPolicy(nn.Module):
    """π(a|s): ``a = mid + half·tanh(μ(s) + σ(s)·ε)``, ε ~ N(0, I).

    The trunk is an MLP ``obs → hidden_sizes (ReLU)``; one linear head gives μ and a raw
    log σ (``arch`` names another network for both, from ``ACTOR_NETS``, with ``arch_kwargs``),
    which is mapped smoothly into ``log_std_bounds = (lo, hi)`` by
    ``log σ = lo + (hi − lo)·(tanh(raw) + 1)/2``. With ``normalize_obs`` the observations
    first pass through an ``ObsNormalizer`` (running mean and variance, clipped to
    ``±obs_clip``) whose statistics are buffers of this module. ``norm="batchrenorm"`` (CrossQ)
    puts Batch Renorm on the input and after each hidden layer: then train mode uses batch
    statistics, and acting belongs in eval mode.

    What users see (``forward``, ``act``, ``distribution``) is in env units, inside
    ``[action_low, action_high]`` (scalars or one value per action dim), with the density of
    that env-unit action (the ``log half`` Jacobian of the affine map included). What the
    losses use (``sample_unit``, ``unit_distribution``) is in the unit box ``[−1, 1]``.
    """

    action_low: torch.Tensor  # buffers: the env-unit bounds, one value per action dim
    action_high: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        action_low: Bound = -1.0,
        action_high: Bound = 1.0,
        log_std_bounds: tuple[float, float] = (-5.0, 2.0),
        normalize_obs: bool = False,
        obs_clip: float = 10.0,
        norm: str = "none",
        arch: str = "mlp",
        arch_kwargs: Optional[dict[str, Any]] = None,
        **norm_kwargs: Any,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1; got {obs_dim} and {act_dim}.")
        lo, hi = float(log_std_bounds[0]), float(log_std_bounds[1])
        if not lo < hi:
            raise ValueError(f"log_std_bounds needs lo < hi; got {log_std_bounds}.")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.log_std_bounds = (lo, hi)
        self.net: Optional[nn.Module] = None  # another architecture than the MLP: ACTOR_NETS
        if arch == "mlp":
            self.trunk = mlp(
                obs_dim, hidden_sizes, norm=norm, input_norm=norm == "batchrenorm", **norm_kwargs
            )
            last = hidden_sizes[-1] if len(hidden_sizes) else obs_dim
            self.head = nn.Linear(last, 2 * act_dim)
        elif arch in ACTOR_NETS:
            self.net = ACTOR_NETS[arch](obs_dim, 2 * act_dim, **(arch_kwargs or {}))
        else:
            raise ValueError(f"actor arch must be mlp or one of {', '.join(ACTOR_NETS)}; got {arch!r}.")
        low_t, high_t = _bounds(action_low, action_high, act_dim)
        self.register_buffer("action_low", low_t)
        self.register_buffer("action_high", high_t)
        self.obs_normalizer = ObsNormalizer(obs_dim, obs_clip) if normalize_obs else None

    @classmethod
    def from_spaces(
        cls, observation_space: spaces.Space, action_space: spaces.Space, **kwargs: Any
    ) -> "TanhGaussianPolicy":
        """Build a policy for a Gymnasium env's (single, not vector) spaces."""
        box = check_action_space(action_space)
        return cls(
            flat_obs_dim(observation_space),
            int(box.shape[0]),
            action_low=box.low,
            action_high=box.high,
            **kwargs,
        )

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """The observations as the networks see them: normalized when ``normalize_obs``, else
        as given. The critics take the same (``losses.py``)."""
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The squashed mean in env units, ``mid + half·tanh(μ(s))``, normalization included:
        the controller an export runs. Builds no distribution object (traceable)."""
        mu, _ = self._loc_scale(obs)
        return self.to_env(torch.tanh(mu))

    def _loc_scale(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and σ for ``obs [..., obs_dim]``, in the head's output dtype but at least float32:
        float32 when the matmuls run under bf16 autocast, float64 for a float64 policy."""
        x = self.normalize(obs)
        out = self.head(self.trunk(x)) if self.net is None else self.net(x)
        mu, raw = out.to(torch.promote_types(out.dtype, torch.float32)).chunk(2, dim=-1)
        lo, hi = self.log_std_bounds
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)
        return mu, log_std.exp()

    def distribution(self, obs: torch.Tensor) -> TanhNormal:
        """The distribution of the env-unit action ``a = mid + half·tanh(u)``."""
        mu, std = self._loc_scale(obs)
        return TanhNormal(mu, std, self.action_low, self.action_high, validate_args=False)

    def unit_distribution(self, obs: torch.Tensor) -> TanhNormal:
        """The distribution of the unit-box action ``y = tanh(u) ∈ [−1, 1]``, ``a = mid + half·y``.

        Its log-density is ``log π(a|s) + Σ_i log half_i``: the same for any action units, so
        SAC's entropy bonus adds no per-step constant that depends on the env's bounds. The
        losses, the critics and the replay buffer work in this unit box.
        """
        mu, std = self._loc_scale(obs)
        return TanhNormal(mu, std, -1.0, 1.0, validate_args=False)

    def sample_unit(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y [B, act_dim], log_prob [B])`` in the unit box: a reparameterized sample (or the
        squashed mean) and its unit-box log-density. What the losses use.

        The same draws and arithmetic as ``unit_distribution(obs)``'s ``rsample_and_log_prob``
        (``mode_and_log_prob``), without building the distribution object on the hot path."""
        mu, std = self._loc_scale(obs)
        if deterministic:
            return torch.tanh(mu), unit_log_prob(mu, torch.zeros_like(mu), std)
        return unit_rsample(mu, std)

    def unit_action(self, obs: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """A unit-box action ``y = tanh(μ + σ·ε)`` without its log-density (acting): ``ε`` given
        (colored noise, shaped like μ) or drawn as ``N(0, I)``, the draw ``unit_distribution(obs)
        .sample()`` makes."""
        mu, std = self._loc_scale(obs)
        if eps is None:
            eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)
        return torch.tanh(mu + std * eps)

    def unit_and_env_action(
        self, obs: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, a)``: the sample ``y = unit_action(obs, eps)`` in the unit box (what the
        replay buffer stores) and ``a = to_env(y)`` in env units (what the env gets)."""
        unit = self.unit_action(obs, eps)
        return unit, self.to_env(unit)

    def _mid_half(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``mid = (high + low)/2`` and ``half = (high − low)/2`` of the action bounds."""
        return (self.action_high + self.action_low) / 2, (self.action_high - self.action_low) / 2

    def to_env(self, y: torch.Tensor) -> torch.Tensor:
        """``a = mid + half·y``, clamped to the bounds (float32 rounding can step a hair past)."""
        mid, half = self._mid_half()
        return torch.minimum(torch.maximum(mid + half * y, self.action_low), self.action_high)

    def to_unit(self, a: torch.Tensor) -> torch.Tensor:
        """``y = (a − mid)/half``, clamped to ``[−1, 1]``: env units to the unit box."""
        mid, half = self._mid_half()
        return ((a - mid) / half).clamp(-1.0, 1.0)

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(action [B, act_dim], log_prob [B])`` in env units: a reparameterized sample, or
        the squashed mean when ``deterministic``, and the density of that env-unit action.
        Gradients flow to the policy's weights through both."""
        dist = self.distribution(obs)
        return dist.mode_and_log_prob() if deterministic else dist.rsample_and_log_prob()

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """NumPy in, NumPy out: ``obs [obs_dim]`` → ``action [act_dim]``, or a batch
        ``[B, obs_dim]`` → ``[B, act_dim]``. Deterministic (the squashed mean) by default."""
        obs_np = np.asarray(obs, dtype=np.float32)
        single = obs_np.ndim == 1
        if obs_np.ndim not in (1, 2) or obs_np.shape[-1] != self.obs_dim:
            raise ValueError(
                f"act() expects obs of shape ({self.obs_dim},) or (B, {self.obs_dim}); got {obs_np.shape}."
            )
        param = next(self.parameters())
        x = torch.as_tensor(obs_np, device=param.device, dtype=param.dtype)
        action, _ = self(x.unsqueeze(0) if single else x, deterministic=deterministic)
        action = action.cpu().numpy()
        return action[0] if single else action
