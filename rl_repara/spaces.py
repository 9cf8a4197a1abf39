"""Checks on Gymnasium spaces, with errors that say what is wrong and what to do."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .errors import ConfigError

__all__ = ["check_action_space", "flat_obs_dim"]


def check_action_space(space: spaces.Space, env_id: str = "this env") -> spaces.Box:
    """Return ``space`` if SAC can act in it: a ``Box`` with finite ``low < high``; else raise."""
    if not isinstance(space, spaces.Box):
        kind = type(space).__name__
        raise ConfigError(
            f"{env_id} has a {kind} action space; SAC needs a bounded continuous Box action "
            "space. Pick a continuous-control env (e.g. Pendulum-v1, HalfCheetah-v5)."
        )
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ConfigError(
            f"{env_id} has an unbounded Box action space (low={space.low}, high={space.high}); "
            "SAC squashes actions with tanh into finite bounds. Give the env a Box action "
            "space with finite low and high (e.g. a wrapper that sets action_space and clips)."
        )
    if not np.all(high > low):
        raise ConfigError(f"{env_id} has action bounds with high <= low: low={low}, high={high}.")
    if len(space.shape) != 1:
        raise ConfigError(
            f"{env_id} has a Box action space of shape {space.shape}; SAC here needs a flat "
            "vector of actions (shape (act_dim,))."
        )
    return space


def flat_obs_dim(space: spaces.Space) -> int:
    """Length of the flattened observation vector."""
    return int(spaces.flatdim(space))
