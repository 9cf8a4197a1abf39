"""The update's two gradient backends, and its compiled form.

``Autograd`` descends a loss with ``backward()`` and ``optimizer.step()``. ``Functional`` takes
the gradients with ``torch.func.grad`` (the weights swapped in by ``functional_call``) and steps
Adam with ``torch.optim.adam.adam`` on each optimizer's own state, so nothing breaks a
``torch.compile`` graph: ``compile_update`` compiles the one update (``update.py``) over it, and
Inductor fuses the elementwise work of the whole update (activations, their backward, the losses,
Adam, Polyak) into a few loops around the matmuls.

Running statistics (Batch Renorm) are explicit inputs of the functional step: every buffer of the
networks goes into ``functional_call`` beside the weights, so the statistics a train-mode pass
updates in place are the step's own inputs, which ``torch.func`` allows, and CrossQ compiles as
one graph like the rest.

The optimizers' state keeps the format of ``torch.optim.Adam``: a checkpoint written by one
backend loads into the other. Gradients are never stored in ``.grad``. Compiled random draws go
through torch's generator (``fallback_random``), in the eager update's order, so a compiled run
repeats an eager run's random stream.
"""

from __future__ import annotations

import contextlib
import types
from typing import TYPE_CHECKING, Callable, Optional, Union

import torch
from torch.func import functional_call, grad
from torch.optim.adam import adam

from rl_repara.agent.losses import Info
from rl_repara.agent.update import Actions, update
from rl_repara.data.buffer import Batch
from rl_repara.errors import ConfigError

if TYPE_CHECKING:
    from rl_repara.agent.learner import SAC
    from rl_repara.agent.networks import Networks

__all__ = [
    "Autograd",
    "Functional",
    "COMPILE_OPTIONS",
    "adam_step",
    "compile_update",
    "ensure_adam_state",
    "make_update",
]

# update(batch, subset, actor_step, target_step, act_on) -> (info, actions or None)
Update = Callable[
    [Batch, Optional[torch.Tensor], bool, bool, Optional[torch.Tensor]], tuple[Info, Optional[Actions]]
]
Loss = Callable[["Networks"], tuple[torch.Tensor, Info]]

COMPILE_OPTIONS: dict[str, Union[str, int, bool, Callable]] = {
    # draws by aten's generator, not Inductor's: the eager path's random stream, and aten's
    # vectorized normal beats Inductor's per-element one (about 0.3 ms of a 9 ms update)
    "fallback_random": True,
    # the graph's kernels called from generated C++, not from Python
    "cpp_wrapper": True,
}


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
    lr = group["lr"]
    if isinstance(lr, torch.Tensor) and not torch.compiler.is_compiling():
        lr = lr.item()  # a scheduled lr: eager foreach Adam takes a float
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
        lr=lr,
        weight_decay=0.0,
        eps=group["eps"],
        maximize=False,
    )


class Autograd:
    """``loss.backward()`` and ``optimizer.step()`` (the eager update, and CUDA's compiled
    losses)."""

    def descend(self, nets: Networks, optimizer: torch.optim.Adam, group: str, loss: Loss) -> Info:
        """One optimizer step of ``optimizer`` (the weights under ``nets.<group>``) on ``loss(nets)``."""
        value, info = loss(nets)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        return info

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


class Functional:
    """``torch.func.grad`` of ``loss`` with respect to the weights under ``nets.<group>`` and an
    Adam step on ``optimizer``'s state (``adam_step``); the buffers (norm statistics) are
    explicit inputs. The whole update runs in ``torch.no_grad`` (the gradients are
    ``torch.func``'s; the steps mutate in place).

    The names of the weights and buffers are collected once, here: walking the modules inside
    a compiled graph after a layer's mode changed would break the graph."""

    def __init__(self, nets: Networks) -> None:
        self.nets = nets
        self.weights = {
            group: [(f"{group}.{name}", p) for name, p in getattr(nets, group).named_parameters()]
            for group in ("critics", "policy")
        }
        self.weights["log_alpha"] = [("log_alpha", nets.log_alpha)]
        self.buffers = list(nets.named_buffers())

    def descend(self, nets: Networks, optimizer: torch.optim.Adam, group: str, loss: Loss) -> Info:
        """One Adam step of the weights under ``nets.<group>`` on ``loss(nets)``."""
        weights = {name: p.detach() for name, p in self.weights[group]}
        buffers = dict(self.buffers)

        def value(w: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Info]:
            return functional_call(nets, (w, b), (loss,), tie_weights=False)

        grads, info = grad(value, has_aux=True)(weights, buffers)
        adam_step(optimizer, list(grads.values()))
        return info

    def context(self) -> contextlib.AbstractContextManager:
        return torch.no_grad()


def make_update(sac: SAC) -> Update:
    """``update.update`` of ``sac`` over the ``Functional`` backend, as ``update(batch, subset,
    actor_step, target_step, act_on) -> (info, actions)``, with the optimizers' Adam state made
    (``ensure_adam_state``). Compile it with ``torch.compile`` (``compile_update``).

    The function gets a code object of its own: torch.compile keeps its graphs (and its limit of
    8 recompilations) per code object, so each learner gets its own graph, however many learners
    a process makes."""
    for optimizer in sac.optimizers.values():
        ensure_adam_state(optimizer)
    backend = Functional(sac.nets)

    def step(batch, subset, actor_step, target_step, act_on):
        return update(sac, batch, subset, actor_step, target_step, act_on, backend)

    return types.FunctionType(
        step.__code__.replace(), step.__globals__, step.__name__, None, step.__closure__
    )


def compile_update(sac: SAC) -> Update:
    """``make_update(sac)`` under ``torch.compile`` with ``COMPILE_OPTIONS``; the graph is built
    at the first call.

    Dynamo's guards run with torch's defaults: ``use_recursive_dict_tags_for_guards`` (1.4-1.8 %
    faster here) is left off, as PyTorch turned it off after segfault reports (pytorch#181873)
    and it does not exist before torch 2.10.
    """
    return torch.compile(make_update(sac), options=COMPILE_OPTIONS)
