"""SAC's losses as small pure functions ``(modules, batch, ...) -> (loss, info)``, and the
Polyak update. Actions and log-densities are in the unit box (``policy.sample_unit``), so the
entropy bonus is the same whatever the env's action units."""

from __future__ import annotations

from typing import Optional

import torch

from rl_repara.data.buffer import Batch
from rl_repara.nn.critics import QEnsemble
from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = [
    "Info",
    "critic_loss",
    "quantile_huber_loss",
    "actor_loss",
    "alpha_loss",
    "polyak_update",
    "default_target_entropy",
]

Info = dict[str, torch.Tensor]


def critic_loss(
    policy: TanhGaussianPolicy,
    critics: QEnsemble,
    target_critics: Optional[QEnsemble],
    alpha: torch.Tensor,
    batch: Batch,
    gamma: float,
    subset: Optional[torch.Tensor] = None,
    drop_quantiles: int = 0,
) -> tuple[torch.Tensor, Info]:
    """Soft Bellman error of the critic ensemble.

    ``y = r + d·(Q'(s', a') − α·log π(a'|s'))``, ``a' ~ π(·|s')``, with ``d = γ^k·(1 −
    terminated)`` (``batch.discount``; k steps of an n-step return, else ``γ·(1 − terminated)``),
    actions and log-densities in the unit box, and ``Q'`` one of:

    * ``min_k Q'_k`` over the target critics (SAC, DroQ), or over the random ``subset`` of them
      (REDQ);
    * with ``target_critics=None`` (CrossQ), the critics themselves in one joint pass over
      ``[(s, a); (s', a')]``, so batch statistics cover both halves; the second half is detached;
    * with a quantile head (TQC), the pooled quantiles of all target critics, sorted, without
      the top ``drop_quantiles · N``; then the loss is ``quantile_huber_loss``.

    With n-step returns (k > 1) ``r`` is the discounted reward sum of the k steps and the
    entropy bonus enters at the bootstrap step only: the ``−α·log π`` of the k − 1 actions in
    between (taken by older policies) is left out, so ``y`` is not the exact soft k-step return.

    Scalar heads: ``loss = Σ_k mean_B (Q_k(s, a) − y)²``. Only the critics get gradients.
    Truncated (time-limit) transitions bootstrap. The critics see the observations as the
    policy does (``policy.normalize``).
    """
    obs, next_obs = policy.normalize(batch.obs), policy.normalize(batch.next_obs)
    with torch.no_grad():
        next_action, next_log_prob = policy.sample_unit(batch.next_obs)
    if target_critics is None:
        joint = critics(torch.cat([obs, next_obs]), torch.cat([batch.action, next_action]))
        q, next_q = joint.split(obs.shape[0], dim=1)
        next_q = next_q.detach()
    else:
        q = critics(obs, batch.action)  # [N, B] or [N, B, M]
        with torch.no_grad():
            next_q = target_critics(next_obs, next_action)
    with torch.no_grad():
        if subset is not None:
            next_q = next_q[subset]
        discount = _discount(batch, gamma)
        if q.dim() == 3:
            pooled = next_q.permute(1, 0, 2).reshape(q.shape[1], -1).sort(dim=1).values
            kept = pooled[:, : pooled.shape[1] - drop_quantiles * next_q.shape[0]]
            target = batch.reward[:, None] + discount[:, None] * (kept - alpha * next_log_prob[:, None])
        else:
            soft_next = next_q.min(dim=0).values - alpha * next_log_prob
            target = batch.reward + discount * soft_next
    if q.dim() == 3:
        loss = quantile_huber_loss(q, target)
    else:
        loss = (q - target).square().mean(dim=1).sum()
    return loss, {"qf_loss": loss.detach(), "qf_values": q.detach().mean()}


def _discount(batch: Batch, gamma: float) -> torch.Tensor:
    """``batch.discount`` (``γ^k·(1 − terminated)``) when the buffer made one, else ``γ·(1 − terminated)``."""
    discount = getattr(batch, "discount", None)
    return gamma * (1.0 - batch.terminated) if discount is None else discount


def quantile_huber_loss(quantiles: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """The quantile Huber loss of ``quantiles [N, B, M]`` (at ``τ_i = (i + ½)/M``) against the
    target samples ``target [B, K]``, averaged over critics, batch, quantiles and samples::

        u = y_j − θ_i,   ρ(u) = |τ_i − 1{u < 0}| · H_κ(u) / κ,
        H_κ(u) = ½u² if |u| ≤ κ else κ(|u| − ½κ)

    (Dabney et al. 2018; TQC, Kuznetsov et al. 2020, averages the same way)."""
    m = quantiles.shape[-1]
    tau = (torch.arange(m, device=quantiles.device, dtype=quantiles.dtype) + 0.5) / m
    u = target[None, :, None, :] - quantiles[..., None]  # [N, B, M, K]
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u.square(), kappa * (abs_u - 0.5 * kappa))
    weight = (tau[:, None] - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * huber).mean() / kappa


def actor_loss(
    policy: TanhGaussianPolicy,
    critics: QEnsemble,
    alpha: torch.Tensor,
    obs: torch.Tensor,
    reduce: str = "min",
) -> tuple[torch.Tensor, Info]:
    """``loss = mean_B [α·log π(ã|s) − Q(s, ã)]`` with ``ã = rsample`` (pathwise), in the unit
    box like the critic loss; ``Q`` is ``min_k Q_k`` (``reduce="min"``: SAC, CrossQ, DroQ) or
    the mean over the critics and their quantiles (``"mean"``: REDQ, TQC).

    The critics run with detached weights: the gradient reaches the policy through ã, and no
    weight gradient is built for the critics (``QEnsemble.min_q`` for a plain ensemble, which
    on CPU also back-propagates each row through the one critic that attains the min).
    ``info["log_prob"]`` is kept for the α loss.
    """
    action, log_prob = policy.sample_unit(obs)
    normed = policy.normalize(obs)
    if reduce == "min" and critics.num_quantiles == 1:
        q = critics.min_q(normed, action)
    else:
        values = critics(normed, action, detach_params=True)
        if critics.num_quantiles > 1:
            values = values.mean(dim=-1)
        q = values.mean(dim=0) if reduce == "mean" else values.min(dim=0).values
    loss = (alpha.detach() * log_prob - q).mean()
    return loss, {
        "actor_loss": loss.detach(),
        "entropy": -log_prob.detach().mean(),
        "log_prob": log_prob.detach(),
    }


def alpha_loss(
    log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float
) -> tuple[torch.Tensor, Info]:
    """``loss = −mean_B [log α · (log π + H_target)]``: α grows when the entropy ``−log π``
    drops below ``H_target`` and shrinks when it is above. ``log_prob`` comes detached."""
    loss = -(log_alpha * (log_prob + target_entropy)).mean()
    return loss, {"alpha_loss": loss.detach()}


def default_target_entropy(act_dim: int) -> float:
    """``−act_dim`` nats: the SAC heuristic of −1 nat per action dim, for the unit-box density
    the losses use (as in the SAC authors' code and SB3), whatever the env's action units."""
    return -float(act_dim)


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """``θ' ← θ' + τ·(θ − θ')`` for every tensor pair, in one fused foreach call."""
    torch._foreach_lerp_(target, source, tau)
