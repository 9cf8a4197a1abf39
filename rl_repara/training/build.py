"""The build phase of a run: its envs, networks, learner and replay buffer, made in one place.

``Trainer`` builds its parts here. In a run, the prepare phase (``prepare.prepare``) has checked
the machine before, and the run phase (``train.run``) has seeded the process-wide RNGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import torch

from rl_repara.agent.learner import SAC
from rl_repara.agent.noise import ColoredNoise
from rl_repara.data.buffer import ReplayBuffer
from rl_repara.data.collector import Collector
from rl_repara.data.envs import make_env
from rl_repara.data.memory import check_buffer_fits
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.config import TrainConfig

__all__ = ["Parts", "build"]


@dataclass
class Parts:
    """What a ``Trainer`` runs: the vector-env ``collector``, the ``eval_env`` (None when
    evaluation is off), the ``sac`` learner (policy and critics), the replay ``buffer`` and the
    colored exploration ``noise`` (None for white noise)."""

    collector: Collector
    eval_env: Optional[gym.Env]
    sac: SAC
    buffer: ReplayBuffer
    noise: Optional[ColoredNoise]


def build(cfg: TrainConfig, device: torch.device) -> Parts:
    """Every part of a run, in this order (each network draws its initial weights from the
    global RNG, so the order is part of a seed's meaning): the envs, the policy for their
    spaces, the learner (which builds its critics), the replay buffer once it is known to fit
    on ``device`` (``memory.check_buffer_fits``), the noise process. If a later part fails,
    the envs made so far are closed."""
    collector = Collector(cfg.env.id, cfg.num_envs, cfg.env.kwargs, cfg.on_nonfinite)
    eval_env = None
    try:
        eval_env = make_env(cfg.env.id, cfg.env.kwargs) if cfg.eval.every_steps > 0 else None
        envs = collector.envs
        policy = TanhGaussianPolicy.from_spaces(
            envs.single_observation_space, envs.single_action_space, **cfg.agent.policy_kwargs()
        )
        sac = SAC(policy, cfg.agent, device=device, seed=cfg.seed, check=False)  # prepare() checked
        agent, obs_dim, act_dim = cfg.agent, policy.obs_dim, policy.act_dim
        check_buffer_fits(
            ReplayBuffer.bytes_needed(agent.buffer_size, obs_dim, act_dim), agent.buffer_size, device
        )
        buffer = ReplayBuffer(agent.buffer_size, obs_dim, act_dim, device, cfg.seed, cfg.num_envs)
        episode, repeat = collector.episode_steps, agent.noise_repeat_max
        noise = (
            ColoredNoise(agent.noise_beta, cfg.num_envs, act_dim, episode, cfg.seed, repeat)
            if agent.noise_beta > 0 or repeat > 1
            else None
        )
    except BaseException:
        collector.close()
        if eval_env is not None:
            eval_env.close()
        raise
    return Parts(collector, eval_env, sac, buffer, noise)
