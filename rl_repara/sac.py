"""Soft Actor-Critic: its config and the ``SAC`` learner.

The losses are small pure functions in ``losses.py``; ``SAC.update`` chains them with their
optimizers and the Polyak update, and fits on one screen.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional

import torch

from .buffer import Batch
from .critics import QEnsemble
from .errors import ConfigError
from .losses import Info, actor_loss, alpha_loss, critic_loss, default_target_entropy, polyak_update
from .policies import TanhGaussianPolicy

__all__ = ["SACConfig", "SAC", "check_cudagraphs"]


@dataclass
class SACConfig:
    """Every SAC hyperparameter. Defaults follow the SAC paper and the RL Zoo."""

    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate: θ' ← (1 − τ)θ' + τθ
    lr: float = 3e-4  # Adam learning rate of actor, critics and α
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 5_000  # env steps of uniform random actions before learning
    utd: int = 1  # gradient updates per env step (update-to-data ratio)
    num_critics: int = 2
    hidden_sizes: List[int] = field(default_factory=lambda: [256, 256])  # actor and critics
    policy_delay: int = 1  # actor and α step once every `policy_delay` critic steps
    target_update_every: int = 1  # Polyak update once every this many critic steps
    autotune_alpha: bool = True  # learn α to hold the entropy at `target_entropy`
    init_alpha: float = 1.0  # α at the start (fixed α when autotune_alpha is false)
    target_entropy: Optional[float] = None  # nats, unit-box density; None: −act_dim
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    normalize_obs: bool = False  # running mean/std of observations, inside the policy
    obs_clip: float = 10.0  # normalized observations are clipped to ±obs_clip
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the matmuls; math stays fp32)
    compile: bool = False  # torch.compile the update
    cudagraphs: bool = False  # CUDA graphs for the update (GPU only; implies compile)

    def policy_kwargs(self) -> dict[str, Any]:
        """The ``TanhGaussianPolicy`` arguments this config sets (all but spaces and bounds)."""
        return {
            "hidden_sizes": self.hidden_sizes,
            "log_std_bounds": (self.log_std_min, self.log_std_max),
            "normalize_obs": self.normalize_obs,
            "obs_clip": self.obs_clip,
        }

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first value out of its range."""
        checks = [
            (0.0 <= self.gamma <= 1.0, "gamma must be in [0, 1]"),
            (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.buffer_size >= 1, "buffer_size must be >= 1"),
            (self.learning_starts >= 0, "learning_starts must be >= 0"),
            (self.utd >= 1, "utd must be >= 1"),
            (self.num_critics >= 1, "num_critics must be >= 1"),
            (self.policy_delay >= 1, "policy_delay must be >= 1"),
            (self.target_update_every >= 1, "target_update_every must be >= 1"),
            (self.init_alpha > 0, "init_alpha must be > 0"),
            (self.log_std_min < self.log_std_max, "log_std_min must be < log_std_max"),
            (self.precision in ("fp32", "bf16"), "precision must be 'fp32' or 'bf16'"),
            (self.obs_clip > 0, "obs_clip must be > 0"),
            (
                len(self.hidden_sizes) >= 1 and all(h >= 1 for h in self.hidden_sizes),
                "hidden_sizes must be a non-empty list of positive ints",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"agent config: {msg}.")


def check_cudagraphs(config: SACConfig, device: torch.device) -> None:
    """CUDA graphs need a CUDA learner: a ``ConfigError`` (a ``ValueError``) naming the fix."""
    if config.cudagraphs and device.type != "cuda":
        raise ConfigError(
            f"agent.cudagraphs=true needs a CUDA device, but the learner is on {device}. Set "
            "device=cuda, or agent.cudagraphs=false (agent.compile=true works on CPU)."
        )


# ----------------------------------------------------------------------------------- learner
def _adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for the device, else foreach."""
    params = list(params)  # a generator would be spent by a failed first attempt
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class SAC:
    """The SAC learner: policy, critic ensemble, target critics, log α and their optimizers.

    ``update(batch)`` runs one critic step, an actor and α step every ``policy_delay`` critic
    steps, and the Polyak update; it returns the metrics as floats. It knows nothing of envs,
    Hydra or logging.
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy,
        config: SACConfig | None = None,
        critics: QEnsemble | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = cfg = config or SACConfig()
        cfg.validate()
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.critics = (
            critics or QEnsemble(policy.obs_dim, policy.act_dim, cfg.num_critics, cfg.hidden_sizes)
        ).to(self.device)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.tensor(
            float(torch.log(torch.tensor(cfg.init_alpha))),
            device=self.device,
            requires_grad=cfg.autotune_alpha,
        )
        self.target_entropy = (
            default_target_entropy(policy.act_dim)
            if cfg.target_entropy is None
            else float(cfg.target_entropy)
        )
        self.actor_optimizer = _adam(self.policy.parameters(), cfg.lr)
        self.critic_optimizer = _adam(self.critics.parameters(), cfg.lr)
        self.alpha_optimizer = _adam([self.log_alpha], cfg.lr)
        self._critic_params: list[torch.Tensor] = list(self.critics.parameters())
        self._target_params: list[torch.Tensor] = list(self.target_critics.parameters())
        self.num_updates = 0
        self._last_actor_info: Info = {}
        self._critic_loss, self._actor_loss = critic_loss, actor_loss
        if cfg.compile or cfg.cudagraphs:
            self._compile_losses()

    @property
    def alpha(self) -> torch.Tensor:
        """The entropy temperature ``α = exp(log α)``, detached."""
        return self.log_alpha.detach().exp()

    def _autocast(self):
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update_step(self, batch: Batch, actor_step: bool, target_step: bool) -> Info:
        cfg, alpha = self.config, self.alpha
        with self._autocast():
            qf_loss, info = self._critic_loss(
                self.policy, self.critics, self.target_critics, alpha, batch, cfg.gamma
            )
        self.critic_optimizer.zero_grad(set_to_none=True)
        qf_loss.backward()
        self.critic_optimizer.step()

        if actor_step:
            with self._autocast():
                loss, pi_info = self._actor_loss(self.policy, self.critics, alpha, batch.obs)
            info.update(pi_info)
            self.actor_optimizer.zero_grad(set_to_none=True)
            if cfg.autotune_alpha:
                # one backward for both: the actor loss holds α detached and the α loss holds
                # log π detached, so each gradient is that of its own loss alone
                a_loss, a_info = alpha_loss(self.log_alpha, pi_info["log_prob"], self.target_entropy)
                info.update(a_info)
                loss = loss + a_loss
                self.alpha_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_optimizer.step()
            if cfg.autotune_alpha:
                self.alpha_optimizer.step()
        if target_step:
            polyak_update(self._target_params, self._critic_params, cfg.tau)
        info.pop("log_prob", None)
        return info

    def _compile_losses(self) -> None:
        """``torch.compile`` the network losses (forward and, through AOTAutograd, their
        backward): the critic loss, and on CUDA also the actor loss. The optimizer steps and
        the Polyak update stay eager (fused kernels already).

        ``cudagraphs`` adds ``mode="reduce-overhead"`` (CUDA graphs). CUDA graphs reuse their
        output memory, so ``update_tensors`` marks each step and clones the metrics it keeps.
        """
        cfg = self.config
        check_cudagraphs(cfg, self.device)
        mode = "reduce-overhead" if cfg.cudagraphs else None
        self._critic_loss = torch.compile(critic_loss, mode=mode)
        if self.device.type != "cpu":
            # On CPU the actor loss stays eager: compiled, it loses ``min_q``'s cheaper
            # backward (a custom autograd.Function) and the update got 15 % slower.
            self._actor_loss = torch.compile(actor_loss, mode=mode)

    def update_tensors(self, batch: Batch) -> Info:
        """One SAC update; metrics stay tensors on the device (no host sync)."""
        cfg = self.config
        self.num_updates += 1
        actor_step = self.num_updates % cfg.policy_delay == 0
        target_step = self.num_updates % cfg.target_update_every == 0
        if self.config.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        info = self._update_step(batch, actor_step, target_step)
        if self.config.cudagraphs:
            info = {k: v.clone() for k, v in info.items()}
        if actor_step:
            self._last_actor_info = {k: v for k, v in info.items() if k != "qf_loss" and k != "qf_values"}
        info = {**self._last_actor_info, **info}
        info["alpha"] = self.alpha
        return info

    def update(self, batch: Batch) -> dict[str, float]:
        """One SAC update (critic, delayed actor and α, Polyak). Returns metrics as floats."""
        return {k: float(v) for k, v in self.update_tensors(batch).items()}

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Networks, target critics, log α, the three optimizers and the update counter."""
        return {
            "policy": self.policy.state_dict(),
            "critics": self.critics.state_dict(),
            "target_critics": self.target_critics.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "num_updates": self.num_updates,
            "last_actor_info": {k: v.detach().clone() for k, v in self._last_actor_info.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything, α included: ``log_alpha`` is updated in place, so the α optimizer
        keeps training the very tensor it holds (α is not frozen after a load)."""
        self.policy.load_state_dict(state["policy"])
        self.critics.load_state_dict(state["critics"])
        self.target_critics.load_state_dict(state["target_critics"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.num_updates = state["num_updates"]
        self._last_actor_info = {k: v.to(self.device) for k, v in state["last_actor_info"].items()}

    def parameters_finite(self) -> bool:
        """True when every weight and log α is finite (checked before a checkpoint is written)."""
        tensors = [*self.policy.parameters(), *self.critics.parameters(), self.log_alpha]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
