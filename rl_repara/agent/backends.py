"""One SAC update (critic, actor, α, their Adam steps, Polyak) as one function that
``torch.compile`` turns into one graph.

The eager update runs two ``backward()`` passes and three ``optimizer.step()`` calls, and Dynamo
breaks its graph at each of them: the loss-only compile gains nothing on CPU
(docs/performance.md). Here the gradients come from ``torch.func.grad`` of the same loss
functions (``losses.py``) with the weights swapped in by ``torch.func.functional_call``, and the
Adam steps from ``torch.optim.adam.adam`` on each optimizer's own state. Nothing breaks the
graph, so Inductor fuses the elementwise work of the whole update (activations, their
backward, the losses, Adam, Polyak) into a few loops around the matmuls.

The optimizers' state keeps the format of ``torch.optim.Adam``: a checkpoint written by one
path loads into the other. Gradients are never stored in ``.grad``. Tracing marks the weights
as static inputs of the graph (Dynamo guards on their addresses), harmless on CPU. Compiled
random draws go through torch's generator (``fallback_random``), in the eager update's order,
so a compiled run repeats an eager run's random stream.

The update can end by acting (``act_on``): the trainer's next action is then sampled inside
the graph, right after the weights it needs were written, instead of by a separate eager pass
over a core the update has left cold (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import types
from typing import TYPE_CHECKING, Callable, Optional, Union

import torch
from torch.func import functional_call, grad
from torch.optim.adam import adam

from rl_repara.agent.losses import Info, actor_loss, alpha_loss, critic_loss, polyak_update
from rl_repara.data.buffer import Batch
from rl_repara.errors import ConfigError
from rl_repara.nn.critics import QEnsemble
from rl_repara.nn.policies import TanhGaussianPolicy

if TYPE_CHECKING:
    from rl_repara.agent.learner import SAC

__all__ = [
    "Actions",
    "COMPILE_OPTIONS",
    "Networks",
    "adam_step",
    "compile_update",
    "ensure_adam_state",
    "make_update",
]

# an action in the unit box and in env units
Actions = tuple[torch.Tensor, torch.Tensor]
# update(batch, subset, actor_step, target_step, act_on) -> (info, actions or None)
Update = Callable[
    [Batch, Optional[torch.Tensor], bool, bool, Optional[torch.Tensor]], tuple[Info, Optional[Actions]]
]

COMPILE_OPTIONS: dict[str, Union[str, int, bool, Callable]] = {
    # draws by aten's generator, not Inductor's: the eager path's random stream, and aten's
    # vectorized normal beats Inductor's per-element one (about 0.3 ms of a 9 ms update)
    "fallback_random": True,
    # the graph's kernels called from generated C++, not from Python
    "cpp_wrapper": True,
}


class Networks(torch.nn.Module):
    """The learner's networks under one module, so that ``functional_call`` can swap in the
    weights one loss is differentiated by (``critics.*`` or ``policy.*``)."""

    def __init__(
        self, policy: TanhGaussianPolicy, critics: QEnsemble, target_critics: Optional[QEnsemble]
    ) -> None:
        super().__init__()
        self.policy, self.critics, self.target_critics = policy, critics, target_critics

    def forward(self, loss: str, *args, **kwargs) -> tuple[torch.Tensor, Info]:
        """``critic_loss`` or ``actor_loss`` of these networks."""
        if loss == "critic":
            return critic_loss(self.policy, self.critics, self.target_critics, *args, **kwargs)
        return actor_loss(self.policy, self.critics, *args, **kwargs)


def ensure_adam_state(optimizer: torch.optim.Adam) -> None:
    """Give every parameter the state ``torch.optim.Adam`` would create at its first step
    (``step`` 0, zero moments), and every step count the float32 tensor on the parameter's
    device that the compiled step expects. Settings the step does not implement (weight
    decay, AMSGrad, maximize) are refused with a ``ConfigError``."""
    for group in optimizer.param_groups:
        unsupported = {k: group[k] for k in ("weight_decay", "amsgrad", "maximize") if group.get(k)}
        if unsupported:
            raise ConfigError(
                f"agent.compile=true runs Adam without {', '.join(unsupported)}, but the optimizer "
                f"has {unsupported}: reset them, or set agent.compile=false."
            )
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                optimizer.state[p] = {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            else:  # a step count loaded as another dtype or on another device
                state["step"] = torch.as_tensor(state["step"], dtype=torch.float32, device=p.device)


def adam_step(optimizer: torch.optim.Adam, grads: list[torch.Tensor]) -> None:
    """``optimizer.step()`` with ``grads`` (in the order of its parameters) instead of
    ``.grad``: ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``θ ← θ − lr·m̂/(√v̂ + ε)``,
    by ``torch.optim.adam.adam`` on the optimizer's own state (one group, no weight decay).
    Compiled, it runs ``capturable`` (the step count stays a tensor: the graph needs no host
    value); eager, torch allows that on accelerators only, and the result is the same."""
    (group,) = optimizer.param_groups
    params = group["params"]
    state = [optimizer.state[p] for p in params]
    beta1, beta2 = group["betas"]
    adam(
        params,
        grads,
        [s["exp_avg"] for s in state],
        [s["exp_avg_sq"] for s in state],
        [],
        [s["step"] for s in state],
        foreach=True,
        capturable=torch.compiler.is_compiling(),
        amsgrad=False,
        has_complex=False,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=0.0,
        eps=group["eps"],
        maximize=False,
    )


def _grad_of(nets: Networks, prefix: str, loss: str, *args) -> tuple[list[torch.Tensor], Info]:
    """Gradients of ``nets(loss, *args)`` with respect to the weights under ``prefix`` (in
    parameter order), and the loss's info."""
    module = getattr(nets, prefix)
    weights = {f"{prefix}.{name}": p.detach() for name, p in module.named_parameters()}
    grads, info = grad(lambda w: functional_call(nets, w, (loss, *args)), has_aux=True)(weights)
    return list(grads.values()), info


def make_update(sac: SAC) -> Update:
    """The whole update of ``sac`` (a ``SAC`` without Batch Renorm layers), as
    ``update(batch, subset, actor_step, target_step, act_on) -> (info, actions)``, in
    ``torch.no_grad`` (the gradients are ``torch.func``'s). Its arithmetic is
    ``SAC._update_step``'s; compile it with ``torch.compile``. With observations ``act_on``
    the updated policy then samples an action for them, inside the same graph: ``actions`` is
    ``(y, a) = policy.unit_and_env_action(act_on)`` (the draw acting right after the update
    makes); else ``None``."""
    cfg = sac.config
    nets = Networks(sac.policy, sac.critics, sac.target_critics)
    critic_params: list[torch.Tensor] = list(sac.critics.parameters())
    target_params: list[torch.Tensor] = (
        [] if sac.target_critics is None else list(sac.target_critics.parameters())
    )
    for optimizer in sac.optimizers.values():
        ensure_adam_state(optimizer)
    autocast = (
        (lambda: torch.autocast(sac.device.type, dtype=torch.bfloat16))
        if cfg.precision == "bf16"
        else contextlib.nullcontext
    )

    def update(
        batch: Batch,
        subset: Optional[torch.Tensor],
        actor_step: bool,
        target_step: bool,
        act_on: Optional[torch.Tensor],
    ) -> tuple[Info, Optional[Actions]]:
        with torch.no_grad():  # the gradients are torch.func's; the steps mutate in place
            alpha = sac.log_alpha.detach().exp()
            with autocast():
                grads, info = _grad_of(
                    nets, "critics", "critic", alpha, batch, cfg.gamma, subset, cfg.drop_quantiles
                )
            adam_step(sac.critic_optimizer, grads)
            if actor_step:
                with autocast():
                    grads, pi_info = _grad_of(nets, "policy", "actor", alpha, batch.obs, cfg.actor_q)
                adam_step(sac.actor_optimizer, grads)
                info.update(pi_info)
                if cfg.autotune_alpha:
                    g, a_info = grad(alpha_loss, has_aux=True)(
                        sac.log_alpha.detach(), pi_info["log_prob"], sac.target_entropy
                    )
                    adam_step(sac.alpha_optimizer, [g])
                    info.update(a_info)
            if target_step and target_params:
                polyak_update(target_params, critic_params, cfg.tau)
            info.pop("log_prob", None)
            return info, None if act_on is None else sac.policy.unit_and_env_action(act_on)

    # a code object of its own: torch.compile keeps its graphs (and its limit of 8
    # recompilations) per code object, so each learner gets its own graph, however many
    # learners a process makes
    return types.FunctionType(
        update.__code__.replace(), update.__globals__, update.__name__, None, update.__closure__
    )


def compile_update(sac: SAC) -> Update:
    """``make_update(sac)`` under ``torch.compile`` with ``COMPILE_OPTIONS``; the graph is
    built at the first call.

    Dynamo's guards run with torch's defaults: ``use_recursive_dict_tags_for_guards`` (1.4-1.8 %
    faster here) is left off, as PyTorch turned it off after segfault reports (pytorch#181873)
    and it does not exist before torch 2.10.
    """
    return torch.compile(make_update(sac), options=COMPILE_OPTIONS)
