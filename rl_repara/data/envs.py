"""Building Gymnasium envs for SAC and checking them (their state for exact resume: ``env_state``)."""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import sys
from typing import Any, Callable, Iterator, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rl_repara.console import note_once
from rl_repara.errors import ConfigError, EnvError
from rl_repara.spaces import check_action_space, check_observation_space

__all__ = [
    "make_env",
    "make_vec_env",
    "check_step",
    "episode_limit",
    "time_limits",
    "TimeLimit",
    "prefer_headless_gl",
]


class TimeLimit(gym.Wrapper):
    """Truncate an episode after ``max_episode_steps`` steps, as Gymnasium's ``TimeLimit`` does,
    with its counter public (``elapsed_steps``) so that exact resume can restore it.

    ``make_env`` builds envs with this wrapper in place of Gymnasium's own."""

    def __init__(self, env: gym.Env, max_episode_steps: int) -> None:
        super().__init__(env)
        self.max_episode_steps = int(max_episode_steps)
        self.elapsed_steps = 0

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.elapsed_steps += 1
        return obs, reward, terminated, truncated or self.elapsed_steps >= self.max_episode_steps, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.elapsed_steps = 0
        return self.env.reset(**kwargs)


class _CastObservation(gym.ObservationWrapper):
    """Cast observations to a flat float32 vector (float64, int and bool observations)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = cast(spaces.Box, env.observation_space)
        self.observation_space = spaces.Box(
            np.asarray(space.low, dtype=np.float32),
            np.asarray(space.high, dtype=np.float32),
            shape=space.shape,
            dtype=np.float32,
        )

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)


def make_env(env_id: str, env_kwargs: dict | None = None, render_mode: str | None = None) -> gym.Env:
    """``gym.make(env_id)`` checked for SAC: a bounded Box action space and a flat float32 Box
    observation (Dict and Tuple observations are flattened with Gymnasium's
    ``FlattenObservation``, with a note saying so; images are refused, see
    ``spaces.check_observation_space``). MuJoCo's compiler warnings become notes too
    (``_mujoco_warnings_as_notes``)."""
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    max_steps = kwargs.pop("max_episode_steps", None)
    _import_namespace(env_id)
    try:
        with _mujoco_warnings_as_notes(env_id):
            env = gym.make(env_id, max_episode_steps=-1, **kwargs)  # -1: no Gymnasium TimeLimit
    except gym.error.NameNotFound as exc:
        raise ConfigError(
            f"unknown env id '{env_id}': it is not registered with Gymnasium ({exc}). "
            "Check the spelling and version suffix, e.g. env.id=HalfCheetah-v5."
        ) from None
    except (gym.error.Error, ImportError, ModuleNotFoundError) as exc:
        raise ConfigError(f"cannot make env '{env_id}': {exc}") from None
    if max_steps is None and env.unwrapped.spec is not None:
        max_steps = gym.spec(env.unwrapped.spec.id).max_episode_steps
    if max_steps:
        env = TimeLimit(env, max_steps)
    try:
        check_action_space(env.action_space, env_id)
        obs_space = check_observation_space(env.observation_space, env_id)
    except ConfigError:
        env.close()
        raise
    if isinstance(obs_space, (spaces.Dict, spaces.Tuple)):
        note_once(
            f"{env_id} has a {type(obs_space).__name__} observation space; flattening it to a "
            f"vector of {spaces.flatdim(obs_space)} floats."
        )
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)  # Dict, Tuple, Discrete (one-hot), rank 2
    if env.observation_space.dtype != np.float32:
        env = _CastObservation(env)
    return env


def _mujoco_of(env_id: str) -> Any:
    """The ``mujoco`` module when ``env_id`` is built by MuJoCo's compiler (Gymnasium's MuJoCo
    envs, dm_control's), else None."""
    if not env_id.startswith("dm_control/"):
        try:
            entry_point = gym.spec(env_id).entry_point
        except gym.error.Error:
            return None
        if not isinstance(entry_point, str) or "mujoco" not in entry_point:
            return None
    try:
        import mujoco
    except ImportError:
        return None
    return mujoco


@contextlib.contextmanager
def _mujoco_warnings_as_notes(env_id: str) -> Iterator[None]:
    """While ``env_id`` is built, MuJoCo's warnings are notes (once each), not MuJoCo's own
    ``WARNING:`` lines (and its ``MUJOCO_LOG.TXT``). MuJoCo 3.x calls the ``settotalmass``
    attribute of the HalfCheetah models (Gymnasium's and dm_control's) deprecated, at each
    build: harmless, said once."""
    mujoco = _mujoco_of(env_id)
    if mujoco is None:
        yield
        return

    def as_note(message: str) -> None:
        message = message.strip()
        if "'settotalmass' is deprecated" in message:
            note_once(
                f"{env_id}'s model uses the 'settotalmass' attribute, which MuJoCo "
                f"{mujoco.__version__} deprecates; harmless, MuJoCo still applies it."
            )
        else:
            note_once(f"MuJoCo {mujoco.__version__} warns while building {env_id}: {message}")

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(as_note)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def prefer_headless_gl() -> None:
    """On Linux without a display, set ``MUJOCO_GL`` (unless the user did) to an off-screen
    backend: ``egl`` when libEGL is found, else ``osmesa`` when libOSMesa is found. Call it
    before MuJoCo or dm_control is imported."""
    if sys.platform != "linux" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if "MUJOCO_GL" not in os.environ:
        for backend, lib in (("egl", "EGL"), ("osmesa", "OSMesa")):
            if ctypes.util.find_library(lib):
                os.environ["MUJOCO_GL"] = backend
                return


def _import_namespace(env_id: str) -> None:
    """Import the package that registers ``env_id``'s namespace with Gymnasium, when it is one
    that an optional extra provides (``dm_control/...``: shimmy)."""
    if not env_id.startswith("dm_control/"):
        return
    prefer_headless_gl()  # else dm_control tries GLFW first and warns that there is no display
    logging.getLogger("absl").setLevel(logging.ERROR)  # MuJoCo's deprecation notes on DMC's XML
    try:
        import dm_control  # noqa: F401
        import shimmy  # noqa: F401  (registers the dm_control/ ids)
    except ImportError:
        raise ConfigError(
            f"{env_id} needs the DeepMind Control Suite, which is not installed: "
            "pip install 'rl_repara[dmc]' (shimmy and dm_control)."
        ) from None


def make_vec_env(env_id: str, num_envs: int, env_kwargs: dict | None = None) -> gym.vector.SyncVectorEnv:
    """``num_envs`` copies in a ``SyncVectorEnv`` with Gymnasium's SAME_STEP autoreset: the step
    that ends an episode returns the first obs of the next one, and the episode's final obs in
    ``info["final_obs"]`` (masked by ``info["_final_obs"]``). Every step is one transition per
    env; no step is spent on a reset (see ``collector.Collector``)."""
    if num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1; got {num_envs}.")
    fns: list[Callable[[], gym.Env]] = [lambda: make_env(env_id, env_kwargs) for _ in range(num_envs)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def check_step(
    env_id: str, step: int, obs: np.ndarray, reward: np.ndarray, expected_obs_shape: tuple
) -> str | None:
    """Return the name of the first bad field of a vector step, or None when all is well."""
    if obs.shape != expected_obs_shape:
        raise EnvError(
            f"{env_id} returned observations of shape {obs.shape} at env step {step}; its "
            f"observation space says {expected_obs_shape}. The env breaks the Gymnasium API."
        )
    if not np.isfinite(obs).all():
        return "observation"
    if not np.isfinite(reward).all():
        return "reward"
    return None


# --------------------------------------------------------------------- state for exact resume
def time_limits(env: gym.Env) -> list[TimeLimit]:
    """The ``TimeLimit`` wrappers around ``env``, outermost first."""
    out, w = [], env
    while isinstance(w, gym.Wrapper):
        if isinstance(w, TimeLimit):
            out.append(w)
        w = w.env
    return out


def episode_limit(env: gym.Env) -> int | None:
    """The step limit of ``env``'s episodes (its innermost ``TimeLimit``), or None."""
    limits = time_limits(env)
    return limits[-1].max_episode_steps if limits else None
