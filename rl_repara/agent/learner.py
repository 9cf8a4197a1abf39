"""The ``SAC`` learner of the SAC family (its config: ``agent_config.SACConfig``).

The losses are small pure functions in ``losses.py``; ``SAC.update`` chains them with their
optimizers and the Polyak update, and fits on one screen.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterable, Iterator, Optional

import torch

from rl_repara.agent.backends import Actions, compile_update, ensure_adam_state
from rl_repara.agent.config import SACConfig
from rl_repara.agent.losses import (
    Info,
    actor_loss,
    alpha_loss,
    critic_loss,
    default_target_entropy,
    polyak_update,
)
from rl_repara.agent.requirements import check_requirements
from rl_repara.data.buffer import Batch
from rl_repara.nn.critics import QEnsemble
from rl_repara.nn.norms import BatchRenorm
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.rng import restore_generator

__all__ = ["SACConfig", "SAC", "ALPHA_ADAM_BETAS"]

# Adam's (β1, β2) for log α, whatever ``adam_beta1`` says (that one is for the actor and the
# critics): the SAC authors, CrossQ's authors (adityab/CrossQ, optax.adam defaults for the
# entropy coefficient), SBX and SB3-contrib all train α with torch/optax's default betas.
ALPHA_ADAM_BETAS = (0.9, 0.999)


# ----------------------------------------------------------------------------------- learner
def _adam(params: Iterable[torch.Tensor], lr: float, beta1: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for the device, else foreach."""
    params = list(params)  # a generator would be spent by a failed first attempt
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), foreach=True)


@contextlib.contextmanager
def _mode(module: torch.nn.Module, train: bool) -> Iterator[None]:
    """``module`` in train or eval mode inside the block, its previous mode after."""
    before = module.training
    module.train(train)
    try:
        yield
    finally:
        module.train(before)


@contextlib.contextmanager
def _batch_renorm_mode(module: torch.nn.Module, train: bool) -> Iterator[None]:
    """The Batch Renorm layers inside ``module`` in train mode (batch statistics, updated) or
    eval mode (running statistics, untouched) inside the block; the rest of ``module`` keeps
    its mode (dropout stays as it is). Their previous modes after."""
    layers = [m for m in module.modules() if isinstance(m, BatchRenorm)]
    before = [m.training for m in layers]
    for layer in layers:
        layer.train(train)
    try:
        yield
    finally:
        for layer, was in zip(layers, before):
            layer.train(was)


class SAC:
    """The learner of the SAC family: policy, critic ensemble, target critics (or none), log α
    and their optimizers, configured by ``SACConfig`` (SAC, CrossQ, TQC, DroQ, REDQ).

    ``update(batch)`` runs one critic step, an actor and α step every ``policy_delay`` critic
    steps, and the Polyak update; it returns the metrics as floats. It knows nothing of envs,
    Hydra or logging. Layers whose behaviour depends on the mode: Batch Renorm runs on batch
    statistics where the CrossQ authors' code does (the critics in the critic step, the actor
    in the actor step) and on running statistics elsewhere (next actions, the critics in the
    actor step, a target network's critics, acting); dropout is on in every critic pass, the
    actor step's included, as in DroQ's and CrossQ's published code (flax ``Dropout`` with
    ``deterministic=False`` while Batch Renorm takes ``use_running_average``). The policy
    rests in eval mode, so acting and evaluation never touch its statistics.

    Adam: ``adam_beta1`` is the actor's and the critics' β1; log α always uses
    ``ALPHA_ADAM_BETAS`` (β1 = 0.9), as the SAC, CrossQ and DroQ authors do.
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy,
        config: SACConfig | None = None,
        critics: QEnsemble | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.config = cfg = config or SACConfig()
        cfg.validate()
        self.device = torch.device(device)
        check_requirements(cfg, self.device)
        self.policy = policy.to(self.device)
        self._brn_critics = cfg.critic_norm == "batchrenorm"
        self._modal = self._brn_critics or cfg.actor_norm == "batchrenorm"  # modes matter
        if self._modal:
            self.policy.eval()
        self.critics = (critics or QEnsemble(policy.obs_dim, policy.act_dim, **cfg.critic_kwargs())).to(
            self.device
        )
        self.target_critics: Optional[QEnsemble] = (
            copy.deepcopy(self.critics).requires_grad_(False) if cfg.target_network else None
        )
        if self.target_critics is not None and self._brn_critics:
            # a Batch Renorm target normalizes with the running statistics it copies from the
            # critics, not with the statistics of the (s', a') batch alone (dropout stays on)
            for module in self.target_critics.modules():
                if isinstance(module, BatchRenorm):
                    module.eval()
        self.generator = torch.Generator(device=self.device)  # REDQ's subsets
        self.generator.manual_seed(seed)
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
        self.actor_optimizer = _adam(self.policy.parameters(), cfg.lr, cfg.adam_beta1)
        self.critic_optimizer = _adam(self.critics.parameters(), cfg.lr, cfg.adam_beta1)
        self.alpha_optimizer = _adam([self.log_alpha], cfg.lr, ALPHA_ADAM_BETAS[0])
        self._critic_params: list[torch.Tensor] = list(self.critics.parameters())
        self._target_params: list[torch.Tensor] = (
            [] if self.target_critics is None else list(self.target_critics.parameters())
        )
        # norm statistics the target network copies (Batch Renorm critics); none for plain ones
        self._buffer_pairs: list[tuple[torch.Tensor, torch.Tensor]] = (
            []
            if self.target_critics is None
            else list(zip(self.target_critics.buffers(), self.critics.buffers()))
        )
        self.num_updates = 0
        self._last_actor_info: Info = {}
        self._critic_loss, self._actor_loss = critic_loss, actor_loss
        self._whole_update = None
        if cfg.compile and not cfg.cudagraphs and self.device.type == "cpu" and not self._modal:
            self._whole_update = compile_update(self)
        elif cfg.compile or cfg.cudagraphs:
            self._compile_losses()

    @property
    def compiled_whole_update(self) -> bool:
        """True when ``agent.compile`` runs the whole update as one compiled graph
        (``whole_update.py``: a CPU learner without Batch Renorm layers); elsewhere it
        compiles the losses (``_compile_losses``)."""
        return self._whole_update is not None

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

    def _autocast(self):
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

    def _actor_step_modes(self) -> contextlib.AbstractContextManager:
        """Batch Renorm: the actor on batch statistics, the critics' Batch Renorm layers on
        running ones (read, not updated); the critics' dropout stays on."""
        if not self._modal:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(_mode(self.policy, True))
        stack.enter_context(_mode(self.critics, True))  # dropout on
        stack.enter_context(_batch_renorm_mode(self.critics, False))
        return stack

    def _update_step(self, batch: Batch, actor_step: bool, target_step: bool) -> Info:
        cfg, alpha = self.config, self.alpha
        with self._autocast():
            qf_loss, info = self._critic_loss(
                self.policy, self.critics, self.target_critics, alpha, batch, cfg.gamma,
                self.draw_subset(), cfg.drop_quantiles,
            )  # fmt: skip
        self.critic_optimizer.zero_grad(set_to_none=True)
        qf_loss.backward()
        self.critic_optimizer.step()

        if actor_step:
            with self._autocast(), self._actor_step_modes():
                loss, pi_info = self._actor_loss(self.policy, self.critics, alpha, batch.obs, cfg.actor_q)
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
        if target_step and self.target_critics is not None:
            polyak_update(self._target_params, self._critic_params, cfg.tau)
            with torch.no_grad():  # norm statistics (a target network of Batch Renorm critics)
                for target, source in self._buffer_pairs:
                    target.copy_(source)
        info.pop("log_prob", None)
        return info

    def _compile_losses(self) -> None:
        """``torch.compile`` the network losses (forward and, through AOTAutograd, their
        backward) where the whole update is not compiled (a CUDA learner, Batch Renorm layers):
        the critic loss, and on CUDA also the actor loss. The optimizer steps and the Polyak
        update stay eager (fused kernels already).

        ``cudagraphs`` adds ``mode="reduce-overhead"`` (CUDA graphs). CUDA graphs reuse their
        output memory, so ``update_tensors`` marks each step and clones the metrics it keeps.
        """
        cfg = self.config
        mode = "reduce-overhead" if cfg.cudagraphs else None
        self._critic_loss = torch.compile(critic_loss, mode=mode)
        if self.device.type != "cpu":
            # On CPU (where only Batch Renorm learners come here) the actor loss stays eager:
            # compiled alone it was slower than eager in every CPU measurement
            # (docs/performance.md, "What was tried and dropped").
            self._actor_loss = torch.compile(actor_loss, mode=mode)

    def update_tensors(self, batch: Batch) -> Info:
        """One SAC update; metrics stay tensors on the device (no host sync)."""
        return self._update(batch, None)[0]

    def update_and_act(self, batch: Batch, obs: torch.Tensor) -> tuple[Info, Actions]:
        """``update_tensors(batch)``, then an action of the updated policy for ``obs [B,
        obs_dim]``: ``(y, a) = policy.unit_and_env_action(obs)``, white noise (the draw acting
        right after this update would make).

        The compiled whole update samples inside its graph, which saves the separate acting
        pass (about 0.3 ms per env step on CPU: docs/performance.md). The policy's observation
        statistics are not updated here; a policy with ``normalize_obs`` acts through
        ``exploration.explore``."""
        info, actions = self._update(batch, obs)
        if actions is None:  # the eager update: act after it
            with torch.inference_mode():
                actions = self.policy.unit_and_env_action(obs)
        return info, actions

    def _update(self, batch: Batch, act_on: Optional[torch.Tensor]) -> tuple[Info, Optional[Actions]]:
        """One update; the whole update also acts on ``act_on`` (when given) in its graph."""
        cfg = self.config
        self.num_updates += 1
        actor_step = self.num_updates % cfg.policy_delay == 0
        target_step = self.num_updates % cfg.target_update_every == 0
        if self.config.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        actions = None
        if self._whole_update is not None:
            info, actions = self._whole_update(batch, self.draw_subset(), actor_step, target_step, act_on)
        else:
            info = self._update_step(batch, actor_step, target_step)
        if self.config.cudagraphs:
            info = {k: v.clone() for k, v in info.items()}
        if actor_step:
            self._last_actor_info = {k: v for k, v in info.items() if k != "qf_loss" and k != "qf_values"}
        info = {**self._last_actor_info, **info}
        info["alpha"] = self.alpha
        return info, actions

    def update(self, batch: Batch) -> dict[str, float]:
        """One SAC update (critic, delayed actor and α, Polyak). Returns metrics as floats."""
        return {k: float(v) for k, v in self.update_tensors(batch).items()}

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Networks (norm statistics included), target critics, log α, the three optimizers,
        the subset generator and the update counter."""
        return {
            "policy": self.policy.state_dict(),
            "critics": self.critics.state_dict(),
            "target_critics": None if self.target_critics is None else self.target_critics.state_dict(),
            "generator": self.generator.get_state(),
            "log_alpha": self.log_alpha.detach().clone(),
            **{name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "num_updates": self.num_updates,
            "last_actor_info": {k: v.detach().clone() for k, v in self._last_actor_info.items()},
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
            if self._whole_update is not None:  # a checkpoint saved before the first update
                ensure_adam_state(optimizer)
        self.num_updates = state["num_updates"]
        self._last_actor_info = {k: v.to(self.device) for k, v in state["last_actor_info"].items()}

    def parameters_finite(self) -> bool:
        """True when every weight and log α is finite (checked before a checkpoint is written)."""
        tensors = [*self.policy.parameters(), *self.critics.parameters(), self.log_alpha]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
