"""One update of the SAC family, written once: the stages below run over a gradient backend
(``backends.Autograd``: ``backward()`` and ``optimizer.step()``; ``backends.Functional``:
``torch.func`` gradients and Adam on the optimizers' own state, which ``torch.compile`` turns
into one graph). Which stages run at this update (the policy delay, the target period) is the
learner's schedule (``SAC._update``), decided outside.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Optional, Protocol

import torch
from torch import nn

from rl_repara.agent.losses import Info, alpha_loss
from rl_repara.data.buffer import Batch
from rl_repara.nn.norms import BatchRenorm

if TYPE_CHECKING:
    from rl_repara.agent.learner import SAC
    from rl_repara.agent.networks import Networks

__all__ = ["Actions", "Backend", "update"]

# an action in the unit box and in env units
Actions = tuple[torch.Tensor, torch.Tensor]


class Backend(Protocol):
    """How a stage descends its loss: ``descend(nets, optimizer, group, loss)`` takes one
    optimizer step of the weights under ``nets.<group>`` on ``loss(nets) -> (loss, info)`` and
    returns ``info``; ``context()`` wraps the whole update."""

    def descend(self, nets: Networks, optimizer: torch.optim.Adam, group: str, loss) -> Info: ...

    def context(self) -> contextlib.AbstractContextManager: ...


def update(
    sac: SAC,
    batch: Batch,
    subset: Optional[torch.Tensor],
    actor_step: bool,
    target_step: bool,
    act_on: Optional[torch.Tensor],
    backend: Backend,
) -> tuple[Info, Optional[Actions]]:
    """The stages of one update of ``sac`` on ``batch``:

    1. critics: ``critic_loss`` under ``sac.target_rule`` (REDQ's ``subset`` drawn outside);
    2. (``actor_step``) actor: ``actor_loss`` with ``sac.actor_reduction``; then log α on
       ``alpha_loss`` (autotuned α only) with the actor step's ``log π``;
    3. (``target_step``) the target network: Polyak, and a copy of its norm statistics;
    4. after each optimizer step, the post-step hooks of ``sac.post_step_hooks``;
    5. with observations ``act_on``: ``(y, a) = policy.unit_and_env_action(act_on)``, the next
       action of the updated policy (the compiled graph then samples it too).

    ``update_order=actor_first`` (SimbaV2) runs stage 2 before stage 1: the critic step then
    samples its next actions from the updated policy and reads the updated α. α is read once
    per stage group: before the critic step, or (actor first) before the actor step and again
    before the critic step. Layers whose behaviour depends on the mode: see
    ``actor_step_modes`` (``sac.actor_step_modes``: empty where modes do not matter)."""
    cfg, nets = sac.config, sac.nets
    with backend.context():
        info: Info = {}
        actor_first = actor_step and cfg.update_order == "actor_first"
        if actor_first:
            info.update(_actor_and_alpha(sac, batch, nets.log_alpha.detach().exp(), backend))
        alpha = nets.log_alpha.detach().exp()

        def critics_loss(n: Networks) -> tuple[torch.Tensor, Info]:
            return sac.critic_loss_fn(
                n.policy,
                n.critics,
                n.target_critics,
                alpha,
                batch,
                cfg.gamma,
                sac.target_rule,
                subset,
                sac.joint_pass,
            )

        with sac.autocast():
            info.update(backend.descend(nets, sac.critic_optimizer, "critics", critics_loss))
        run_hooks(sac, "critics")
        if actor_step and not actor_first:
            info.update(_actor_and_alpha(sac, batch, alpha, backend))
        if target_step:
            sac.update_target()
        info.pop("log_prob", None)
        actions = None
        if act_on is not None:
            with torch.no_grad():
                actions = sac.policy.unit_and_env_action(act_on)
        return info, actions


def _actor_and_alpha(sac: SAC, batch: Batch, alpha: torch.Tensor, backend: Backend) -> Info:
    """The actor step on ``s`` (or, ``actor_joint_pass``, the policy on ``[s; s']`` and the loss
    on ``s``), then (autotuned α) the α step on the actor step's ``log π``."""
    nets, joint = sac.nets, sac.config.actor_joint_pass
    obs = torch.cat([batch.obs, batch.next_obs]) if joint else batch.obs
    keep = batch.obs.shape[0] if joint else None

    def policy_loss(n: Networks) -> tuple[torch.Tensor, Info]:
        return sac.actor_loss_fn(n.policy, n.critics, alpha, obs, sac.actor_reduction, keep)

    before = set_modes(sac.actor_step_modes)
    try:
        with sac.autocast():
            info = backend.descend(nets, sac.actor_optimizer, "policy", policy_loss)
    finally:
        set_modes(before)
    run_hooks(sac, "policy")
    if sac.config.autotune_alpha:
        log_prob = info["log_prob"]

        def temperature_loss(n: Networks) -> tuple[torch.Tensor, Info]:
            return alpha_loss(n.log_alpha, log_prob, sac.target_entropy, sac.config.alpha_loss)

        info.update(backend.descend(nets, sac.alpha_optimizer, "log_alpha", temperature_loss))
    return info


def actor_step_modes(policy: nn.Module, critics: nn.Module) -> list[tuple[nn.Module, bool]]:
    """The modes of the actor step where they matter (a Batch Renorm layer anywhere), as
    ``(module, train)`` pairs: the policy in train mode (batch statistics, updated), the critics
    in train mode with their Batch Renorm layers in eval mode (running statistics, read only),
    so their dropout stays on, as in the CrossQ and DroQ authors' code. The critic step runs in
    the resting modes: critics in train mode, the policy (next actions) and a target network's
    Batch Renorm in eval mode. The learner makes this list once: walking ``modules()`` inside a
    compiled graph after a mode change would break it."""
    modes = [(m, True) for m in policy.modules()]
    return modes + [(m, not isinstance(m, BatchRenorm)) for m in critics.modules()]


def set_modes(modes: list[tuple[nn.Module, bool]]) -> list[tuple[nn.Module, bool]]:
    """Set each module's ``training`` flag alone (not its children's); returns the flags before."""
    before = [(m, m.training) for m, _ in modes]
    for module, train in modes:
        module.training = train
    return before


def run_hooks(sac: SAC, group: str) -> None:
    """The post-step hooks (weight projection, resets), after the optimizer step of ``group``."""
    for hook in sac.post_step_hooks:
        with torch.no_grad():
            hook(sac.nets, group)
