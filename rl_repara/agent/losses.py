"""SAC's losses as small pure functions ``(modules, batch, ...) -> (loss, info)``, the actor's
reductions over the critics, and the Polyak update. Actions and log-densities are in the unit box
(``policy.sample_unit``), so the entropy bonus is the same whatever the env's action units."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from rl_repara.agent.targets import TargetRule, clipped_min
from rl_repara.data.buffer import Batch
from rl_repara.nn.critics import Critics
from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = [
    "Info",
    "Reduction",
    "critic_loss",
    "actor_loss",
    "min_over_critics",
    "mean_over_critics",
    "alpha_loss",
    "polyak_update",
    "default_target_entropy",
]

Info = dict[str, torch.Tensor]
# reduce(critics, obs, action) -> Q [B], with the critics' weights detached
Reduction = Callable[[Critics, torch.Tensor, torch.Tensor], torch.Tensor]
CLIPPED_MIN = clipped_min()


def critic_loss(
    policy: TanhGaussianPolicy,
    critics: Critics,
    target_critics: Optional[Critics],
    alpha: torch.Tensor,
    batch: Batch,
    gamma: float,
    rule: TargetRule = CLIPPED_MIN,
    subset: Optional[torch.Tensor] = None,
    joint: Optional[bool] = None,
) -> tuple[torch.Tensor, Info]:
    """Soft Bellman error of the critic ensemble: ``loss = rule.loss(Q(s, a), y)`` with ``y =
    rule.target(Q'(s', a'), log π(a'|s'), α, r, d, subset)`` (``targets.py``), ``a' ~ π(·|s')``,
    ``d = γ^k·(1 − terminated)`` (``batch.discount``; k steps of an n-step return, else ``γ·(1 −
    terminated)``), actions and log-densities in the unit box. ``Q'`` comes from the target
    critics, or with ``target_critics=None`` (CrossQ) from the critics themselves in one joint
    pass over ``[(s, a); (s', a')]``, so batch statistics cover both halves (the second half is
    detached). ``joint=True`` with target critics (XQC) runs both the critics and the target
    critics on the joint batch, ``Q`` from the critics' first half and ``Q'`` from the target's
    second; ``joint=None`` means a joint pass exactly when there are no target critics.

    With n-step returns (k > 1) ``r`` is the discounted reward sum of the k steps and the
    entropy bonus enters at the bootstrap step only: the ``−α·log π`` of the k − 1 actions in
    between (taken by older policies) is left out, so ``y`` is not the exact soft k-step return.

    Only the critics get gradients. Truncated (time-limit) transitions bootstrap. The critics see
    the observations as the policy does (``policy.normalize``).
    """
    obs, next_obs = policy.normalize(batch.obs), policy.normalize(batch.next_obs)
    with torch.no_grad():
        next_action, next_log_prob = policy.sample_unit(batch.next_obs)
    if joint is None:
        joint = target_critics is None
    if joint:
        both_obs, both_actions = torch.cat([obs, next_obs]), torch.cat([batch.action, next_action])
        q, next_q = critics(both_obs, both_actions).split(obs.shape[0], dim=1)
        next_q = next_q.detach()
        if target_critics is not None:
            with torch.no_grad():
                next_q = target_critics(both_obs, both_actions).split(obs.shape[0], dim=1)[1]
    else:
        assert target_critics is not None, "a critic loss without a joint pass needs target critics"
        q = critics(obs, batch.action)
        with torch.no_grad():
            next_q = target_critics(next_obs, next_action)
    with torch.no_grad():
        target = rule.target(next_q, next_log_prob, alpha, batch.reward, _discount(batch, gamma), subset)
    loss = rule.loss(q, target)
    return loss, {"qf_loss": loss.detach(), "qf_values": q.detach().mean()}


def _discount(batch: Batch, gamma: float) -> torch.Tensor:
    """``batch.discount`` (``γ^k·(1 − terminated)``) when the buffer made one, else ``γ·(1 − terminated)``."""
    discount = getattr(batch, "discount", None)
    return gamma * (1.0 - batch.terminated) if discount is None else discount


def min_over_critics(critics: Critics, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``min_k Q_k(s, a)`` with detached critic weights (SAC, CrossQ, DroQ). A plain scalar
    ensemble's ``min_q`` back-propagates each row through the one critic that attains the min."""
    return critics.min_q(obs, action)


def mean_over_critics(critics: Critics, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``mean_k Q_k(s, a)`` with detached critic weights (REDQ; TQC: the mean of all quantiles)."""
    return critics.q_values(obs, action, detach_params=True).mean(dim=0)


def actor_loss(
    policy: TanhGaussianPolicy,
    critics: Critics,
    alpha: torch.Tensor,
    obs: torch.Tensor,
    reduce: Reduction = min_over_critics,
    keep: Optional[int] = None,
) -> tuple[torch.Tensor, Info]:
    """``loss = mean_B [α·log π(ã|s) − Q(s, ã)]`` with ``ã = rsample`` (pathwise), in the unit
    box like the critic loss, and ``Q = reduce(critics, s, ã)`` (``min_over_critics`` or
    ``mean_over_critics``; ``parts.ACTOR_REDUCTIONS`` names them).

    ``keep=B``: the policy runs on all of ``obs`` (FlashSAC's ``[s; s']``, so its batch norm
    sees both halves) and the loss takes the first ``B`` rows.

    The critics run with detached weights: the gradient reaches the policy through ã, and no
    weight gradient is built for the critics. ``info["log_prob"]`` is kept for the α loss.
    """
    action, log_prob = policy.sample_unit(obs)
    if keep is not None:
        obs, action, log_prob = obs[:keep], action[:keep], log_prob[:keep]
    q = reduce(critics, policy.normalize(obs), action)
    loss = (alpha.detach() * log_prob - q).mean()
    return loss, {
        "actor_loss": loss.detach(),
        "entropy": -log_prob.detach().mean(),
        "log_prob": log_prob.detach(),
    }


def alpha_loss(
    log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float, form: str = "log_alpha"
) -> tuple[torch.Tensor, Info]:
    """α grows when the entropy ``H = −mean_B log π`` drops below ``H_target`` and shrinks
    when it is above; ``log_prob`` comes detached, the parameter is ``log α`` either way.

    - ``form="log_alpha"`` (SAC): ``loss = log α · (H − H_target)``, gradient ``H − H_target``;
    - ``form="alpha"`` (SimbaV2, FlashSAC): ``loss = α · (H − H_target)``, gradient
      ``α·(H − H_target)``: the same direction, scaled by α."""
    gap = -(log_prob + target_entropy).mean()
    loss = (log_alpha.exp() if form == "alpha" else log_alpha) * gap
    return loss, {"alpha_loss": loss.detach()}


def default_target_entropy(act_dim: int) -> float:
    """``−act_dim`` nats: the SAC heuristic of −1 nat per action dim, for the unit-box density
    the losses use (as in the SAC authors' code and SB3), whatever the env's action units."""
    return -float(act_dim)


@torch.no_grad()
def polyak_update(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], tau: float) -> None:
    """``θ' ← θ' + τ·(θ − θ')`` for every tensor pair, in one fused foreach call."""
    torch._foreach_lerp_(list(target), list(source), tau)
