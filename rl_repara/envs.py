"""Building Gymnasium envs for SAC, checking them, and saving their state for exact resume."""

from __future__ import annotations

import ctypes.util
import logging
import os
import pickle
import sys
import warnings
from typing import Any, Callable, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .errors import ConfigError, EnvError
from .spaces import check_action_space, check_observation_space

__all__ = [
    "make_env",
    "make_vec_env",
    "check_step",
    "episode_limit",
    "snapshot_env",
    "restore_env",
    "restorable",
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
    ``FlattenObservation``, with a warning saying so; images are refused, see
    ``spaces.check_observation_space``)."""
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    max_steps = kwargs.pop("max_episode_steps", None)
    _import_namespace(env_id)
    try:
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
        warnings.warn(
            f"{env_id} has a {type(obs_space).__name__} observation space; flattening it to a "
            f"vector of {spaces.flatdim(obs_space)} floats.",
            stacklevel=1,  # one place: the train and eval envs of a run warn once
        )
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)  # Dict, Tuple, Discrete (one-hot), rank 2
    if env.observation_space.dtype != np.float32:
        env = _CastObservation(env)
    return env


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
def _unwrapped_is_mujoco(env: gym.Env) -> bool:
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except Exception:  # mujoco not importable
        return False
    return isinstance(env.unwrapped, MujocoEnv)


# Model fields dm_control tasks randomize at reset (reacher, finger, fish and swimmer place
# their targets; quadruped-escape draws its terrain): saved with the MjData.
_DMC_MODEL_FIELDS = (
    "body_pos",
    "body_quat",
    "geom_pos",
    "geom_quat",
    "geom_size",
    "geom_rgba",
    "site_pos",
    "site_quat",
    "site_size",
    "hfield_data",
)


def restorable(env: gym.Env, snap: dict[str, Any]) -> bool:
    """Whether ``restore_env`` can apply ``snap`` to ``env`` (a dm_control snapshot needs the
    dm_control attributes ``snapshot_env`` read, which a newer release may have renamed)."""
    return snap["kind"] != "dm_control" or _dm_control_env(env) is not None


def _dm_control_env(env: gym.Env) -> Any:
    """The dm_control ``Environment`` inside shimmy's compatibility env, or None.

    Its step counter and next-step reset flag have no public accessor; the attributes are
    checked here, so a dm_control release that renames them makes resume start new episodes
    (with the usual warning) instead of failing."""
    inner = getattr(env.unwrapped, "_env", None)
    needed = ("physics", "task", "_step_count", "_reset_next_step")
    if inner is None or not all(hasattr(inner, name) for name in needed):
        return None
    return inner


def _time_limits(env: gym.Env) -> list[TimeLimit]:
    """The ``TimeLimit`` wrappers around ``env``, outermost first."""
    out, w = [], env
    while isinstance(w, gym.Wrapper):
        if isinstance(w, TimeLimit):
            out.append(w)
        w = w.env
    return out


def episode_limit(env: gym.Env) -> int | None:
    """The step limit of ``env``'s episodes (its innermost ``TimeLimit``), or None."""
    limits = _time_limits(env)
    return limits[-1].max_episode_steps if limits else None


def snapshot_env(env: gym.Env) -> dict[str, Any] | None:
    """Everything needed to continue an env mid-episode bit for bit, or None if unsupported.

    MuJoCo envs: the whole ``MjData`` (pickled), the env's ``np_random`` and the time-limit
    counters. DeepMind Control envs (through shimmy): the same ``MjData``, the task's random
    state (shimmy's ``np_random`` is that generator) and dm_control's own step counter, which
    ends its 1000-step episodes. The integration state alone is not enough: ``mj_step`` leaves
    derived fields such as ``xpos`` one step stale, and rewards read them (Ant, Humanoid), so
    recomputing them with ``mj_forward`` after a restore changed the first reward. Other envs:
    a pickle of the whole env, when it pickles faithfully (envs built on ``EzPickle``
    re-create themselves from their constructor arguments and lose their state, so those are
    unsupported unless MuJoCo or dm_control).
    """
    from gymnasium.utils.ezpickle import EzPickle

    base: Any = env.unwrapped
    dmc = _dm_control_env(env)
    if dmc is not None:
        return {
            "kind": "dm_control",
            "mj_data": pickle.dumps(dmc.physics.data.ptr),
            "model": {f: getattr(dmc.physics.model.ptr, f).copy() for f in _DMC_MODEL_FIELDS},
            "task_random": dmc.task.random.get_state(),
            "step_count": dmc._step_count,
            "reset_next_step": dmc._reset_next_step,
            "elapsed_steps": [w.elapsed_steps for w in _time_limits(env)],
        }
    if _unwrapped_is_mujoco(env):
        return {
            "kind": "mujoco",
            "mj_data": pickle.dumps(base.data),
            "elapsed_steps": [w.elapsed_steps for w in _time_limits(env)],
            "np_random": base.np_random.bit_generator.state,
        }
    if isinstance(base, EzPickle):
        return None
    try:
        return {"kind": "pickle", "env": pickle.dumps(env)}
    except Exception:
        return None


def restore_env(env: gym.Env, snap: dict[str, Any]) -> gym.Env:
    """Apply ``snapshot_env``'s output to an env that has been reset; returns the env to use
    (for pickles a new object, and ``env`` is closed)."""
    if snap["kind"] == "pickle":
        restored = pickle.loads(snap["env"])
        env.close()
        return restored
    import mujoco

    base: Any = env.unwrapped
    if snap["kind"] == "dm_control":
        dmc = _dm_control_env(env)
        physics = dmc.physics
        for name, value in snap["model"].items():
            getattr(physics.model.ptr, name)[...] = value
        mujoco.mj_copyData(physics.data.ptr, physics.model.ptr, pickle.loads(snap["mj_data"]))
        dmc.task.random.set_state(snap["task_random"])
        dmc._step_count, dmc._reset_next_step = snap["step_count"], snap["reset_next_step"]
    else:
        mujoco.mj_copyData(base.data, base.model, pickle.loads(snap["mj_data"]))
        base.np_random.bit_generator.state = snap["np_random"]
    for wrapper, elapsed in zip(_time_limits(env), snap["elapsed_steps"], strict=True):
        wrapper.elapsed_steps = elapsed
    return env
