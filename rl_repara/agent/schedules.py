"""What changes over a run or with the env: the learning rate's schedule and the entropy target."""

from __future__ import annotations

import math

from rl_repara.agent.config import SACConfig

__all__ = ["lr_at", "optimizer_lrs", "target_entropy"]


def lr_at(config: SACConfig, update: int) -> float:
    """The lr of update ``update`` (counted from 0): with ``f = min(update / T, 1)`` and ``T =
    lr_decay_updates``, ``lr + (lr_end − lr)·f`` (linear), ``lr_end + (lr − lr_end)·(1 + cos πf)/2``
    (cosine), or ``lr`` (constant); ``update`` is the update count or, with ``lr_clock=own_steps``,
    the optimizer's own step count (``optimizer_lrs``)."""
    if config.lr_schedule == "constant":
        return config.lr
    f = min(update / max(config.lr_decay_updates, 1), 1.0)
    if config.lr_schedule == "linear":
        return config.lr + (config.lr_end - config.lr) * f
    return config.lr_end + (config.lr - config.lr_end) * 0.5 * (1 + math.cos(math.pi * f))


def optimizer_lrs(config: SACConfig, update: int) -> dict[str, float]:
    """The lr of each optimizer (by its checkpoint key) at update ``update`` (from 0): ``lr_at``
    of the update count (``lr_clock=updates``), or of each optimizer's own step count
    (``own_steps``): the critics have taken ``update`` steps, the actor and α ``⌊update/d⌋``
    with policy delay ``d``."""
    own = update // config.policy_delay if config.lr_clock == "own_steps" else update
    return {
        "critic_optimizer": lr_at(config, update),
        "actor_optimizer": lr_at(config, own),
        "alpha_optimizer": lr_at(config, own),
    }


def target_entropy(config: SACConfig, act_dim: int) -> float:
    """The entropy the α step holds, in nats of the unit-box density: ``config.target_entropy``
    when set; else per action dim ``0.5·log(2πe·σ²)`` (the entropy of ``N(0, σ²)``; FlashSAC,
    σ = ``target_entropy_sigma``) or ``target_entropy_per_dim`` (SAC's −1, SimbaV2's and XQC's
    −0.5), times ``act_dim``."""
    if config.target_entropy is not None:
        return float(config.target_entropy)
    sigma = config.target_entropy_sigma
    per_dim = (
        config.target_entropy_per_dim if sigma is None else 0.5 * math.log(2 * math.pi * math.e * sigma**2)
    )
    return per_dim * act_dim
