"""SAC's losses as small pure functions ``(modules, batch, ...) -> (loss, info)``, and the
Polyak update. Actions and log-densities are in the unit box (``policy.sample_unit``), so the
entropy bonus is the same whatever the env's action units."""

from __future__ import annotations

import torch

from .buffer import Batch
from .critics import QEnsemble
from .policies import TanhGaussianPolicy

__all__ = ["Info", "critic_loss", "actor_loss", "alpha_loss", "polyak_update", "default_target_entropy"]

Info = dict[str, torch.Tensor]


def critic_loss(
    policy: TanhGaussianPolicy,
    critics: QEnsemble,
    target_critics: QEnsemble,
    alpha: torch.Tensor,
    batch: Batch,
    gamma: float,
) -> tuple[torch.Tensor, Info]:
    """Soft Bellman error, summed over the critics.

    ``y = r + γ·(1 − terminated)·(min_k Q'_k(s', a') − α·log π(a'|s'))``, ``a' ~ π(·|s')``,
    with actions and log-densities in the unit box (``policy.sample_unit``);
    ``loss = Σ_k mean_B (Q_k(s, a) − y)²``. The target is built without gradients, so only
    the critics' weights receive any. Truncated (time-limit) transitions bootstrap. The
    critics see the observations as the policy does (``policy.normalize``).
    """
    with torch.no_grad():
        next_action, next_log_prob = policy.sample_unit(batch.next_obs)
        next_q = target_critics(policy.normalize(batch.next_obs), next_action).min(dim=0).values
        soft_next = next_q - alpha * next_log_prob
        target = batch.reward + gamma * (1.0 - batch.terminated) * soft_next
    q = critics(policy.normalize(batch.obs), batch.action)  # [N, B]
    loss = (q - target).square().mean(dim=1).sum()
    return loss, {"qf_loss": loss.detach(), "qf_values": q.detach().mean()}


def actor_loss(
    policy: TanhGaussianPolicy, critics: QEnsemble, alpha: torch.Tensor, obs: torch.Tensor
) -> tuple[torch.Tensor, Info]:
    """``loss = mean_B [α·log π(ã|s) − min_k Q_k(s, ã)]`` with ``ã = rsample`` (pathwise), in
    the unit box like the critic loss.

    The critics run with detached weights: the gradient reaches the policy through ã, and no
    weight gradient is built for the critics (``QEnsemble.min_q``, which on CPU also
    back-propagates each row through the one critic that attains the min).
    ``info["log_prob"]`` is kept for the α loss.
    """
    action, log_prob = policy.sample_unit(obs)
    q = critics.min_q(policy.normalize(obs), action)
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
