"""Building Gymnasium envs for SAC, checking them, and saving their state for exact resume."""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.metadata
import logging
import os
import pickle
import sys
from typing import Any, Callable, Iterator, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .errors import CheckpointError, ConfigError, EnvError
from .logger import note
from .spaces import check_action_space, check_observation_space

__all__ = [
    "make_env",
    "make_vec_env",
    "check_step",
    "episode_limit",
    "snapshot_env",
    "restore_env",
    "restorable",
    "simulator_versions",
    "TimeLimit",
    "prefer_headless_gl",
    "Notices",
    "notices",
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


class Notices:
    """One-line notes to the user (``logger.note``: ``[rl_repara] ...`` on stderr), each said
    once per process: a run makes its train envs and its eval env alike, and says what they
    share once. ``said`` holds what was said."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def say(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            note(message)


notices = Notices()


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
        notices.say(
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
            notices.say(
                f"{env_id}'s model uses the 'settotalmass' attribute, which MuJoCo "
                f"{mujoco.__version__} deprecates; harmless, MuJoCo still applies it."
            )
        else:
            notices.say(f"MuJoCo {mujoco.__version__} warns while building {env_id}: {message}")

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
def _unwrapped_is_mujoco(env: gym.Env) -> bool:
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except Exception:  # mujoco not importable
        return False
    return isinstance(env.unwrapped, MujocoEnv)


# Model fields dm_control tasks randomize at reset (reacher, finger, fish and swimmer place
# their targets; quadruped-escape draws its terrain): saved with the physics state.
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

# MjData fields that ``mj_step`` leaves as they were *before* its last substep, and that an
# env may read before its next step (Ant's and Humanoid's rewards read ``xpos`` and ``xipos``
# to measure the motion a step makes). ``mj_forward`` after a restore recomputes them from the
# restored state, which changed the first reward; the snapshot keeps them as they were.
_DERIVED_FIELDS = (
    "xpos",
    "xquat",
    "xmat",
    "xipos",
    "ximat",
    "xanchor",
    "xaxis",
    "geom_xpos",
    "geom_xmat",
    "site_xpos",
    "site_xmat",
    "cam_xpos",
    "cam_xmat",
    "light_xpos",
    "light_xdir",
    "subtree_com",
    "subtree_linvel",
    "subtree_angmom",
    "cinert",
    "cdof",
    "cvel",
    "cdof_dot",
    "cacc",
    "cfrc_int",
    "cfrc_ext",
    "qfrc_actuator",
    "qfrc_bias",
    "qfrc_passive",
    "qfrc_constraint",
    "qfrc_smooth",
    "qacc",
    "qacc_smooth",
    "act_dot",
    "actuator_force",
    "actuator_length",
    "actuator_velocity",
    "ten_length",
    "ten_velocity",
    "sensordata",
    "energy",
)


def _state_parts() -> dict[str, int]:
    """The parts of MuJoCo's integration state (``mjSTATE_INTEGRATION``) by name: ``QPOS``,
    ``QVEL``, ``ACT``, ``WARMSTART``, ``CTRL``, ... → their bit. The names hold across MuJoCo
    releases where the layout of ``MjData`` does not, so a snapshot keeps its numbers by part."""
    import mujoco

    whole = int(mujoco.mjtState.mjSTATE_INTEGRATION)
    parts = {}
    for name, bit in mujoco.mjtState.__members__.items():
        value = int(bit)
        if name.startswith("mjSTATE_") and value & (value - 1) == 0 and value & whole:
            parts[name.removeprefix("mjSTATE_")] = value
    return parts


def _physics_snapshot(model: Any, data: Any) -> dict[str, Any]:
    """The physics of one MuJoCo simulation: its integration state by part (``mj_getState``),
    the stale fields of ``_DERIVED_FIELDS``, and the MuJoCo release that wrote them."""
    import mujoco

    state = {}
    for name, bit in _state_parts().items():
        values = np.empty(mujoco.mj_stateSize(model, bit))
        mujoco.mj_getState(model, data, values, bit)
        state[name] = values
    derived = {name: getattr(data, name).copy() for name in _DERIVED_FIELDS if hasattr(data, name)}
    return {"mujoco": mujoco.__version__, "state": state, "derived": derived}


def _restore_physics(model: Any, data: Any, snap: dict[str, Any], what: str) -> None:
    """Put ``_physics_snapshot``'s output back: ``mj_setState`` part by part, ``mj_forward``
    (every other derived field, consistent with the state), then the saved stale fields. The
    next ``mj_step`` then computes what it would have computed without the stop, bit for bit
    under the same MuJoCo. A part this MuJoCo sizes differently is a ``CheckpointError``."""
    import mujoco

    here = _state_parts()
    for name, values in snap["state"].items():
        bit = here.get(name)
        size = 0 if bit is None else mujoco.mj_stateSize(model, bit)
        if values.size != size:
            raise _version_error(
                what, snap["mujoco"], f"its {name} state holds {values.size} numbers, this MuJoCo's {size}"
            )
        if size:
            mujoco.mj_setState(model, data, np.ascontiguousarray(values, dtype=np.float64), bit)
    mujoco.mj_forward(model, data)
    for name, value in snap["derived"].items():
        field = getattr(data, name, None)
        if field is not None and field.shape == value.shape:
            field[...] = value


def _restore_model_fields(model: Any, fields: dict[str, np.ndarray], version: str, what: str) -> None:
    """Write the model fields a dm_control task randomized (``_DMC_MODEL_FIELDS``) back."""
    for name, value in fields.items():
        field = getattr(model, name, None)
        if field is None or field.shape != value.shape:
            shape = "none" if field is None else field.shape
            detail = f"its model field {name} has shape {value.shape}, here {shape}"
            raise _version_error(what, version, detail)
        field[...] = value


def _version_error(what: str, saved: str, detail: str) -> CheckpointError:
    import mujoco

    return CheckpointError(
        f"{what} was saved with MuJoCo {saved} and cannot be restored under MuJoCo "
        f"{mujoco.__version__} ({detail}); resume it with the MuJoCo it was saved with: "
        f"pip install 'mujoco=={saved}'."
    )


def _legacy_mj_data(blob: bytes, what: str) -> Any:
    """The pickled ``MjData`` of a snapshot from rl_repara 0.2 or older, which unpickles only
    under the MuJoCo release that wrote it."""
    try:
        return pickle.loads(blob)
    except (ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        import mujoco

        raise CheckpointError(
            f"{what} was saved by an older rl_repara as a MuJoCo object that this MuJoCo "
            f"({mujoco.__version__}) cannot read ({exc}); resume it with the MuJoCo it was saved "
            "with, or start a new run."
        ) from None


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


def simulator_versions(env: gym.Env) -> dict[str, str]:
    """The MuJoCo (and dm_control) release that ``env`` simulates with, by package name; empty
    for an env that uses neither. A checkpoint records it (``Trainer.state_dict``)."""
    versions = {}
    if _dm_control_env(env) is not None or _unwrapped_is_mujoco(env):
        import mujoco

        versions["mujoco"] = mujoco.__version__
    if _dm_control_env(env) is not None:
        versions["dm_control"] = importlib.metadata.version("dm_control")
    return versions


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


def _describe(env: gym.Env) -> str:
    spec = env.unwrapped.spec
    return f"the {spec.id if spec is not None else type(env.unwrapped).__name__} env state"


def snapshot_env(env: gym.Env) -> dict[str, Any] | None:
    """Everything needed to continue an env mid-episode bit for bit, or None if unsupported.

    MuJoCo envs: the physics (``_physics_snapshot``: the integration state through MuJoCo's
    state API, by part, which another MuJoCo release can read back), the env's ``np_random``
    and the time-limit counters. DeepMind Control envs (through shimmy): the same physics, the
    model fields the task randomizes, the task's random state (shimmy's ``np_random`` is that
    generator) and dm_control's own step counter, which ends its 1000-step episodes. Other
    envs: a pickle of the whole env, when it pickles faithfully (envs built on ``EzPickle``
    re-create themselves from their constructor arguments and lose their state, so those are
    unsupported unless MuJoCo or dm_control).
    """
    from gymnasium.utils.ezpickle import EzPickle

    base: Any = env.unwrapped
    dmc = _dm_control_env(env)
    if dmc is not None:
        model = dmc.physics.model.ptr
        return {
            "kind": "dm_control",
            "physics": _physics_snapshot(model, dmc.physics.data.ptr),
            "model": {f: getattr(model, f).copy() for f in _DMC_MODEL_FIELDS},
            "task_random": dmc.task.random.get_state(),
            "step_count": dmc._step_count,
            "reset_next_step": dmc._reset_next_step,
            "elapsed_steps": [w.elapsed_steps for w in _time_limits(env)],
        }
    if _unwrapped_is_mujoco(env):
        return {
            "kind": "mujoco",
            "physics": _physics_snapshot(base.model, base.data),
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
    (for pickles a new object, and ``env`` is closed). A snapshot that this MuJoCo cannot
    restore raises ``CheckpointError`` naming both releases. Snapshots of rl_repara 0.2 (a
    pickled ``MjData``) restore under the MuJoCo release that wrote them."""
    if snap["kind"] == "pickle":
        restored = pickle.loads(snap["env"])
        env.close()
        return restored
    import mujoco

    base: Any = env.unwrapped
    what = _describe(env)
    if snap["kind"] == "dm_control":
        dmc = _dm_control_env(env)
        model, data = dmc.physics.model.ptr, dmc.physics.data.ptr
        if "mj_data" in snap:
            for name, value in snap["model"].items():
                getattr(model, name)[...] = value
            mujoco.mj_copyData(data, model, _legacy_mj_data(snap["mj_data"], what))
        else:
            _restore_model_fields(model, snap["model"], snap["physics"]["mujoco"], what)
            _restore_physics(model, data, snap["physics"], what)
        dmc.task.random.set_state(snap["task_random"])
        dmc._step_count, dmc._reset_next_step = snap["step_count"], snap["reset_next_step"]
    else:
        if "mj_data" in snap:
            mujoco.mj_copyData(base.data, base.model, _legacy_mj_data(snap["mj_data"], what))
        else:
            _restore_physics(base.model, base.data, snap["physics"], what)
        base.np_random.bit_generator.state = snap["np_random"]
    for wrapper, elapsed in zip(_time_limits(env), snap["elapsed_steps"], strict=True):
        wrapper.elapsed_steps = elapsed
    return env
