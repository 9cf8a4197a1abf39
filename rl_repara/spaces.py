"""Checks on Gymnasium spaces, with errors that say what is wrong and what to do."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rl_repara.errors import ConfigError

__all__ = ["check_action_space", "check_observation_space", "flat_obs_dim"]

# Spaces that Gymnasium's FlattenObservation turns into one float vector (Discrete and the
# multi-spaces as one-hot codes); Text, Graph, Sequence and OneOf have no fixed-size vector.
_FLAT_LEAVES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


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


def _is_image(box: spaces.Box) -> bool:
    """A Box that holds pixels: rank 3 or more (H, W, C; C, H, W; stacked frames), or a uint8
    Box of rank 2 (a grey image)."""
    rank = len(box.shape)
    return rank >= 3 or (rank == 2 and box.dtype == np.uint8)


def _bad_leaf(space: spaces.Space, where: str) -> tuple[str, spaces.Space] | None:
    """The first part of ``space`` (a path like ``observation['pixels']``) that an MLP on a flat
    state vector cannot take: an image, or a space with no fixed-size vector; None if none."""
    if isinstance(space, spaces.Dict):
        parts = [(f"{where}[{key!r}]", sub) for key, sub in space.spaces.items()]
    elif isinstance(space, spaces.Tuple):
        parts = [(f"{where}[{i}]", sub) for i, sub in enumerate(space.spaces)]
    elif isinstance(space, spaces.Box):
        return (where, space) if _is_image(space) else None
    elif isinstance(space, _FLAT_LEAVES):
        return None
    else:
        return where, space
    for path, sub in parts:
        bad = _bad_leaf(sub, path)
        if bad is not None:
            return bad
    return None


def check_observation_space(space: spaces.Space, env_id: str = "this env") -> spaces.Space:
    """Return ``space`` if it flattens into a state vector for an MLP; raise ``ConfigError``
    for image observations (rl_repara has no pixel encoder yet) and for spaces without a
    fixed-size vector (Text, Graph, Sequence, OneOf), anywhere inside a Dict or Tuple too."""
    bad = _bad_leaf(space, "observation")
    if bad is None:
        return space
    where, leaf = bad
    if isinstance(leaf, spaces.Box):
        raise ConfigError(
            f"{env_id} has image observations ({where}: {leaf.dtype} {leaf.shape}); rl_repara's "
            "networks are MLPs on state vectors and cannot learn from pixels yet. Pick an env "
            "with state observations (e.g. LunarLanderContinuous-v3, dm_control/cheetah-run-v0)."
        )
    raise ConfigError(
        f"{env_id} has a {type(leaf).__name__} observation space ({where}), which has no "
        "fixed-size vector form; rl_repara takes Box, Discrete, MultiDiscrete and MultiBinary "
        "observations, and Dicts and Tuples of them."
    )
