"""An env's state mid-episode, saved and restored for exact resume: MuJoCo's physics through
its state API (Gymnasium's MuJoCo envs and dm_control's through shimmy), the env's random state
and time-limit counters, or a pickle of the whole env where that is faithful."""

from __future__ import annotations

import importlib.metadata
import pickle
from typing import Any

import gymnasium as gym
import numpy as np

from rl_repara.data.envs import time_limits
from rl_repara.errors import CheckpointError

__all__ = ["snapshot_env", "restore_env", "restorable", "simulator_versions"]


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
            "elapsed_steps": [w.elapsed_steps for w in time_limits(env)],
        }
    if _unwrapped_is_mujoco(env):
        return {
            "kind": "mujoco",
            "physics": _physics_snapshot(base.model, base.data),
            "elapsed_steps": [w.elapsed_steps for w in time_limits(env)],
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
    for wrapper, elapsed in zip(time_limits(env), snap["elapsed_steps"], strict=True):
        wrapper.elapsed_steps = elapsed
    return env
