"""The ``SAC`` learner of the SAC family (its config: ``config.SACConfig``): the networks, their
optimizers, the schedule of delays, and the state a checkpoint holds. The update itself is
``update.update`` (written once), run over the autograd backend or compiled over the functional
one (``backends.py``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Optional

import torch
from torch import nn

from rl_repara.agent import parts
from rl_repara.agent.backends import Autograd, compile_update, ensure_adam_state
from rl_repara.agent.config import SACConfig
from rl_repara.agent.losses import Info, actor_loss, critic_loss, polyak_update
from rl_repara.agent.networks import ALPHA_ADAM_BETAS, Networks, adam
from rl_repara.agent.requirements import check_requirements
from rl_repara.agent.reward_scaling import RewardScaler
from rl_repara.agent.schedules import optimizer_lrs, target_entropy
from rl_repara.agent.update import Actions, actor_step_modes, update
from rl_repara.data.buffer import Batch
from rl_repara.nn.norms import BatchRenorm
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.rng import restore_generator

__all__ = ["SACConfig", "SAC", "Networks", "ALPHA_ADAM_BETAS"]  # the last two: agent/networks.py


class SAC:
    """The learner of the SAC family: policy, critic ensemble, target critics (or none), log α
    and their optimizers, configured by ``SACConfig`` (SAC, CrossQ, TQC, DroQ, REDQ) and made
    of the named parts of ``parts.py`` (critic architecture, target rule, actor reduction,
    post-step hooks).

    ``update(batch)`` runs one critic step, an actor and α step every ``policy_delay`` critic
    steps, and the target update every ``target_update_every``; it returns the metrics as floats.
    It knows nothing of envs, Hydra or logging. Batch Renorm runs on batch statistics where the
    CrossQ authors' code does (the critics in the critic step, the actor in the actor step) and
    on running statistics elsewhere (next actions, the critics in the actor step, a target
    network's critics, acting); dropout is on in every critic pass (``update.actor_step_modes``).
    The policy of such a learner rests in eval mode, so acting never touches its statistics.

    ``agent.compile=true`` on a CPU compiles the whole update as one graph (``backends.py``);
    on CUDA it compiles the losses (``cudagraphs``: with CUDA graphs); ``auto`` is decided by
    ``train`` from the run's length, and a learner built directly runs eager for it.

    Adam: ``adam_beta1`` is the actor's and the critics' β1; log α always uses
    ``ALPHA_ADAM_BETAS`` (β1 = 0.9), as the SAC, CrossQ and DroQ authors do.
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy,
        config: SACConfig | None = None,
        critics: nn.Module | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        check: bool = True,
    ) -> None:
        self.config = cfg = config or SACConfig()
        cfg.validate()
        self.device = torch.device(device)
        if check:  # train() checked the machine already, before the run dir and envs existed
            check_requirements(cfg, self.device)
        policy = policy.to(self.device)
        critics = (critics or parts.build_critics(policy.obs_dim, policy.act_dim, cfg)).to(self.device)
        target_critics = copy.deepcopy(critics).requires_grad_(False) if cfg.target_network else None
        log_alpha = nn.Parameter(
            torch.tensor(math.log(cfg.init_alpha), device=self.device), requires_grad=cfg.autotune_alpha
        )
        self.nets = Networks(policy, critics, target_critics, log_alpha)
        self.policy, self.critics, self.target_critics = policy, critics, target_critics
        # modes matter where a Batch Renorm layer is (CrossQ): see update.actor_step_modes
        modal = any(isinstance(m, BatchRenorm) for m in self.nets.modules())
        self.actor_step_modes = actor_step_modes(policy, critics) if modal else []
        if modal:
            self.policy.eval()
        self.joint_pass = cfg.joint_pass if cfg.joint_pass is not None else target_critics is None
        # a Batch Renorm target normalizes with the statistics it copies (dropout stays on); in a
        # joint pass (XQC) it normalizes with those of the joint batch, as the critics do
        if target_critics is not None and not self.joint_pass:
            for module in target_critics.modules():
                if isinstance(module, BatchRenorm):
                    module.eval()
        self.generator = torch.Generator(device=self.device)  # REDQ's subsets
        self.generator.manual_seed(seed)
        self.target_entropy = target_entropy(cfg, policy.act_dim)
        self.reward_scaler = (
            None
            if cfg.reward_scaling == "none"
            else RewardScaler(cfg.reward_scaling, cfg.gamma, g_max=cfg.reward_g_max).to(self.device)
        )
        self.target_rule = parts.target_rule(cfg)
        self.actor_reduction = parts.ACTOR_REDUCTIONS[cfg.actor_q]
        self.post_step_hooks = parts.post_step_hooks(cfg, self.nets)  # made: weights projected once
        if target_critics is not None and self.post_step_hooks:
            target_critics.load_state_dict(critics.state_dict())  # the target starts from them
        self.actor_optimizer = adam(policy.parameters(), cfg.lr, cfg.adam_beta1)
        self.critic_optimizer = adam(critics.parameters(), cfg.lr, cfg.adam_beta1)
        self.alpha_optimizer = adam([log_alpha], cfg.lr, ALPHA_ADAM_BETAS[0])
        self._critic_params = list(critics.parameters())
        self._target_params = [] if target_critics is None else list(target_critics.parameters())
        # norm statistics the target network copies (Batch Renorm critics); none for plain ones
        self._buffer_pairs = (
            [] if target_critics is None else list(zip(target_critics.buffers(), critics.buffers()))
        )
        if cfg.lr_schedule != "constant":  # a tensor, which the compiled Adam reads without recompiling
            for optimizer in self.optimizers.values():
                optimizer.param_groups[0]["lr"] = torch.tensor(cfg.lr, device=self.device)
        self.num_updates = 0
        self._last_actor_info: Info = {}
        self.critic_loss_fn, self.actor_loss_fn = critic_loss, actor_loss
        self._backend = Autograd()
        self._compiled = None
        if cfg.compile_choice() is True and not cfg.cudagraphs and self.device.type == "cpu":
            self._compiled = compile_update(self)
        elif cfg.compile_choice() is True or cfg.cudagraphs:
            self._compile_losses()

    @property
    def log_alpha(self) -> nn.Parameter:
        """``log α``, the temperature's parameter."""
        return self.nets.log_alpha

    @property
    def compiled_whole_update(self) -> bool:
        """True when ``agent.compile`` runs the whole update as one compiled graph (a CPU
        learner); on CUDA it compiles the losses (``_compile_losses``)."""
        return self._compiled is not None

    @property
    def optimizers(self) -> dict[str, torch.optim.Adam]:
        """The three optimizers by their checkpoint key: critic, actor, α."""
        return {
            "critic_optimizer": self.critic_optimizer,
            "actor_optimizer": self.actor_optimizer,
            "alpha_optimizer": self.alpha_optimizer,
        }

    @property
    def alpha(self) -> torch.Tensor:
        """The entropy temperature ``α = exp(log α)``, detached."""
        return self.log_alpha.detach().exp()

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast of the matmuls (``precision=bf16``), else nothing."""
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def draw_subset(self) -> Optional[torch.Tensor]:
        """REDQ: ``critic_subset`` distinct critics, drawn from the learner's own generator."""
        m = self.config.critic_subset
        if m is None or m == self.config.num_critics:
            return None
        perm = torch.randperm(self.config.num_critics, generator=self.generator, device=self.device)
        return perm[:m]

    def update_target(self) -> None:
        """``θ' ← θ' + τ·(θ − θ')`` (Polyak), and the target's norm statistics copied from the
        critics (Batch Renorm); nothing without a target network (CrossQ)."""
        if not self._target_params:
            return
        polyak_update(self._target_params, self._critic_params, self.config.tau)
        with torch.no_grad():
            for target, source in self._buffer_pairs:
                target.copy_(source)

    def _compile_losses(self) -> None:
        """``torch.compile`` the network losses (forward and, through AOTAutograd, their
        backward) on CUDA, where the update runs over the autograd backend: the optimizer steps
        and the Polyak update stay eager (fused kernels already). ``cudagraphs`` adds
        ``mode="reduce-overhead"`` (CUDA graphs), which reuse their output memory, so
        ``_update`` marks each step and clones the metrics it keeps."""
        mode = "reduce-overhead" if self.config.cudagraphs else None
        self.critic_loss_fn = torch.compile(critic_loss, mode=mode)
        self.actor_loss_fn = torch.compile(actor_loss, mode=mode)

    def update_tensors(self, batch: Batch) -> Info:
        """One SAC update; metrics stay tensors on the device (no host sync)."""
        return self._update(batch, None)[0]

    def update_and_act(self, batch: Batch, obs: torch.Tensor) -> tuple[Info, Actions]:
        """``update_tensors(batch)``, then an action of the updated policy for ``obs [B,
        obs_dim]``: ``(y, a) = policy.unit_and_env_action(obs)``, white noise (the draw acting
        right after this update would make). The compiled update samples it inside its graph,
        which saves a separate acting pass (about 0.3 ms per env step on CPU). The policy's
        observation statistics are not updated here; a policy with ``normalize_obs`` acts
        through ``exploration.explore``."""
        info, actions = self._update(batch, obs)
        assert actions is not None
        return info, actions

    def _update(self, batch: Batch, act_on: Optional[torch.Tensor]) -> tuple[Info, Optional[Actions]]:
        """The schedule: which stages this update runs, then the update (compiled or eager)."""
        cfg = self.config
        self.num_updates += 1
        actor_step = self.num_updates % cfg.policy_delay == 0
        target_step = self.num_updates % cfg.target_update_every == 0
        if cfg.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        if cfg.lr_schedule != "constant":
            self._schedule_lr()
        subset = self.draw_subset()
        if self.reward_scaler is not None:
            batch = batch._replace(reward=batch.reward / self.reward_scaler.scale())
        if self._compiled is not None:
            info, actions = self._compiled(batch, subset, actor_step, target_step, act_on)
        else:
            info, actions = update(self, batch, subset, actor_step, target_step, act_on, self._backend)
        if cfg.cudagraphs:
            info = {k: v.clone() for k, v in info.items()}
        if actor_step:
            self._last_actor_info = {k: v for k, v in info.items() if k != "qf_loss" and k != "qf_values"}
        info = {**self._last_actor_info, **info}
        info["alpha"] = self.alpha
        return info, actions

    def _schedule_lr(self) -> None:
        """Every optimizer's lr for this update (``schedules.optimizer_lrs``)."""
        lrs = optimizer_lrs(self.config, self.num_updates - 1)
        for name, optimizer in self.optimizers.items():
            lr = lrs[name]
            group = optimizer.param_groups[0]
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:  # a float loaded from a checkpoint
                group["lr"] = torch.tensor(lr, device=self.device)

    def observe_rewards(self, reward: torch.Tensor, done: torch.Tensor) -> None:
        """Every env step's rewards ``[E]`` and ends (terminated or truncated) ``[E]``, for the
        reward scaling (``reward_scaling.py``); nothing without it. The per-env returns are
        sized at the first call."""
        if self.reward_scaler is None:
            return
        if self.reward_scaler.returns.shape != reward.shape:
            self.reward_scaler.returns = torch.zeros(reward.shape, dtype=torch.float64, device=self.device)
        self.reward_scaler.observe(reward.to(self.device), done.to(self.device))

    def update(self, batch: Batch) -> dict[str, float]:
        """One SAC update (critic, delayed actor and α, target). Returns metrics as floats."""
        return {k: float(v) for k, v in self.update_tensors(batch).items()}

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Networks (norm statistics included), target critics, log α, the three optimizers,
        the subset generator and the update counter."""
        return {
            "policy": self.policy.state_dict(),
            "obs_dim": self.policy.obs_dim,  # what load_policy builds the policy for
            "critics": self.critics.state_dict(),
            "target_critics": None if self.target_critics is None else self.target_critics.state_dict(),
            "generator": self.generator.get_state(),
            "log_alpha": self.log_alpha.detach().clone(),
            **{name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "num_updates": self.num_updates,
            "last_actor_info": {k: v.detach().clone() for k, v in self._last_actor_info.items()},
            "reward_scaler": None if self.reward_scaler is None else self.reward_scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything, α included: ``log_alpha`` is updated in place, so the α optimizer
        keeps training the very tensor it holds (α is not frozen after a load).

        The optimizers' state (moments, step counts, learning rates) comes from ``state``;
        their betas stay those this learner was built with (``adam_beta1`` for actor and
        critics, ``ALPHA_ADAM_BETAS`` for α). ``torch.optim.Optimizer.load_state_dict`` would
        restore the saved betas too: a CrossQ checkpoint written before α's β1 was fixed at
        0.9 holds 0.5 there, and its resumed run now trains α with 0.9. (A resume runs the
        saved config, so the actor's and critics' betas are the saved ones anyway.)"""
        self.policy.load_state_dict(state["policy"])
        self.critics.load_state_dict(state["critics"])
        if self.target_critics is not None:
            self.target_critics.load_state_dict(state["target_critics"])
        restore_generator(self.generator, state["generator"], "REDQ subset")
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name, optimizer in self.optimizers.items():
            betas = [group["betas"] for group in optimizer.param_groups]
            optimizer.load_state_dict(state[name])
            for group, built in zip(optimizer.param_groups, betas):
                group["betas"] = built
            if self._compiled is not None:  # a checkpoint saved before the first update
                ensure_adam_state(optimizer)
        self.num_updates = state["num_updates"]
        if self.reward_scaler is not None:
            saved = state["reward_scaler"]
            self.reward_scaler.returns = torch.zeros_like(saved["returns"], device=self.device)
            self.reward_scaler.load_state_dict(saved)
        self._last_actor_info = {k: v.to(self.device) for k, v in state["last_actor_info"].items()}

    def parameters_finite(self) -> bool:
        """True when every weight and log α is finite (checked before a checkpoint is written)."""
        tensors = [*self.policy.parameters(), *self.critics.parameters(), self.log_alpha]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
