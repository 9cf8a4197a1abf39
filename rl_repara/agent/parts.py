"""The named parts a variant of the SAC family is made of, each a registry from the name a
config uses to the part:

* ``CRITIC_ARCHS`` (``agent.critic_arch``): ``build(obs_dim, act_dim, config) -> critics``, a
  module with ``forward(obs, action, detach_params=False) -> [N, B]`` (or ``[N, B, M]`` for a
  distributional head), ``q_values`` (scalar Q, ``[N, B]``), ``min_q``, ``num_critics`` and
  ``num_quantiles`` (``QEnsemble``'s interface);
* ``TARGET_RULES`` (``agent.target_rule``): ``make(config) -> targets.TargetRule``;
* ``ACTOR_REDUCTIONS`` (``agent.actor_q``): ``reduce(critics, obs, action) -> Q [B]``;
* ``POST_STEP_HOOKS`` (``agent.post_step_hooks``): ``make(config, nets) -> hook(nets, group)``, run
  under ``torch.no_grad`` after each optimizer step of ``group`` (``"critics"``, ``"policy"``).

A new variant is a new part (its own module), one entry here, and a preset in ``conf/agent/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from torch import nn

from rl_repara.agent.categorical import c51_rule, hl_gauss_rule
from rl_repara.agent.hooks import unit_norm_all, unit_norm_weights
from rl_repara.agent.losses import Reduction, mean_over_critics, min_over_critics
from rl_repara.agent.targets import TargetRule, clipped_min, truncated_quantiles
from rl_repara.nn.bn_critics import BNQEnsemble
from rl_repara.nn.critics import QEnsemble
from rl_repara.nn.flash import FlashCritics
from rl_repara.nn.hyperspherical import HyperCritics
from rl_repara.nn.residual_critics import ResidualQEnsemble

if TYPE_CHECKING:
    from rl_repara.agent.config import SACConfig

__all__ = [
    "CRITIC_ARCHS",
    "TARGET_RULES",
    "ACTOR_REDUCTIONS",
    "POST_STEP_HOOKS",
    "Hook",
    "build_critics",
    "target_rule",
    "post_step_hooks",
]

# hook(nets, group): after the optimizer step of nets.<group>, under torch.no_grad
Hook = Callable[[Any, str], None]


def _categorical(
    cls: Callable[..., nn.Module], obs_dim: int, act_dim: int, cfg: SACConfig, **extra: Any
) -> nn.Module:
    """An architecture with a categorical head: the head's bins and support from the config,
    its own settings from ``critic_arch_kwargs``."""
    bins = {"num_bins": cfg.num_bins, "v_min": cfg.v_min, "v_max": cfg.v_max}
    return cls(obs_dim, act_dim, cfg.num_critics, **bins, **extra, **cfg.critic_arch_kwargs)


CRITIC_ARCHS: dict[str, Callable[[int, int, "SACConfig"], nn.Module]] = {
    "mlp": lambda obs_dim, act_dim, cfg: QEnsemble(obs_dim, act_dim, **cfg.critic_kwargs()),
    "batchnorm": lambda obs_dim, act_dim, cfg: _categorical(
        BNQEnsemble, obs_dim, act_dim, cfg, momentum=cfg.brn_momentum
    ),
    "flash": lambda obs_dim, act_dim, cfg: _categorical(FlashCritics, obs_dim, act_dim, cfg),
    "hyperspherical": lambda obs_dim, act_dim, cfg: _categorical(HyperCritics, obs_dim, act_dim, cfg),
    "residual": lambda obs_dim, act_dim, cfg: ResidualQEnsemble(
        obs_dim, act_dim, cfg.num_critics, **cfg.critic_arch_kwargs
    ),
}

TARGET_RULES: dict[str, Callable[["SACConfig"], TargetRule]] = {
    "min": lambda cfg: clipped_min(),
    "truncated_quantiles": lambda cfg: truncated_quantiles(cfg.drop_quantiles),
    "c51": lambda cfg: c51_rule(cfg.v_min, cfg.v_max, cfg.num_bins),
    "hl_gauss": lambda cfg: hl_gauss_rule(cfg.v_min, cfg.v_max, cfg.num_bins, cfg.hl_gauss_sigma),
}

ACTOR_REDUCTIONS: dict[str, Reduction] = {"min": min_over_critics, "mean": mean_over_critics}

POST_STEP_HOOKS: dict[str, Callable[["SACConfig", nn.Module], Hook]] = {
    "unit_norm_weights": unit_norm_weights,
    "unit_norm_all": unit_norm_all,
}


def build_critics(obs_dim: int, act_dim: int, config: SACConfig) -> nn.Module:
    """The critic ensemble ``config.critic_arch`` names."""
    return CRITIC_ARCHS[config.critic_arch](obs_dim, act_dim, config)


def target_rule(config: SACConfig) -> TargetRule:
    """The target rule ``config.target_rule`` names (``auto``: truncated quantiles for a quantile
    head, else the clipped min)."""
    return TARGET_RULES[config.resolved_target_rule()](config)


def post_step_hooks(config: SACConfig, nets: nn.Module) -> list[Hook]:
    """The hooks ``config.post_step_hooks`` names, in order, made for ``nets``."""
    return [POST_STEP_HOOKS[name](config, nets) for name in config.post_step_hooks]
