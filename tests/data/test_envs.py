"""Environments SAC can and cannot train on: observations are turned into flat float32
vectors (with a warning when a Dict or Tuple is flattened), actions respect any bounded Box,
and envs that are unusable or break the Gymnasium API get an error naming the env and the
problem. The envs are in ``helpers_envs.py``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import gymnasium as gym
import helpers_envs as H
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rl_repara import (
    EnvConfig,
    EvalConfig,
    SACConfig,
    TanhGaussianPolicy,
    TrainConfig,
    console,
    train,
)
from rl_repara.data import env_state
from rl_repara.data.envs import make_env
from rl_repara.errors import CheckpointError, ConfigError, EnvError
from rl_repara.training.checkpoint import find_checkpoint, load_checkpoint
from rl_repara.training.config import LogConfig


def _train(run_dir: Path, env_id: str, total: int = 150, **agent) -> dict:
    """A tiny run (learning from step 50); returns its final checkpoint."""
    agent = {"learning_starts": 50, "hidden_sizes": [16], "batch_size": 16, **agent}
    train(
        TrainConfig(
            env=EnvConfig(id=env_id),
            total_steps=total,
            run_dir=str(run_dir),
            torch_threads=1,
            agent=SACConfig(**agent),
            eval=EvalConfig(every_steps=0),
            log=LogConfig(progress="none", every_steps=50),
        )
    )
    return load_checkpoint(find_checkpoint(run_dir))


def _stored(state: dict, key: str) -> np.ndarray:
    return state["buffer"]["data"][key][: state["buffer"]["size"]].numpy()


# ------------------------------------------------------------------------- observations
@pytest.fixture
def fresh_notices(monkeypatch) -> None:
    """Notes are said once per process: start this test with none said."""
    monkeypatch.setattr(console, "said", set())


@pytest.mark.parametrize("name, kind", [("DictObs", "Dict"), ("TupleObs", "Tuple")])
def test_dict_and_tuple_observations_are_flattened_with_a_note(tmp_path, capsys, fresh_notices, name, kind):
    """The flat obs is Gymnasium's own ``spaces.flatten`` of the raw obs (one-hot for the
    Discrete part), as float32; a training run stores such vectors. The flattening is said in
    one ``[rl_repara]`` line, once (not a Python warning with its source line)."""
    env_id = H.env_id(name)
    note = f"[rl_repara] {env_id} has a {kind} observation space; flattening it to a vector of 6 floats.\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make_env(env_id)
        make_env(env_id)
    assert capsys.readouterr().err == note
    raw = gym.make(env_id)
    assert env.observation_space.shape == (6,) and env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    raw_obs, _ = raw.reset(seed=0)
    for action in ([0.5], [-0.5]):
        assert obs.dtype == np.float32 and obs.shape == (6,)
        expected = spaces.flatten(raw.observation_space, raw_obs).astype(np.float32)
        np.testing.assert_array_equal(obs, expected)
        obs, *_ = env.step(np.array(action, dtype=np.float32))
        raw_obs, *_ = raw.step(np.array(action, dtype=np.float32))
    console.said.clear()
    state = _train(tmp_path, env_id)
    assert capsys.readouterr().err.count("flattening") == 1
    assert _stored(state, "obs").shape == (state["buffer"]["size"], 6)


@pytest.mark.parametrize("name", ["Float64Obs", "IntObs"])
def test_float64_and_integer_observations_become_float32(tmp_path, name):
    """The space and every obs are float32 and equal to the env's values cast to float32;
    the buffer stores exactly those values (obs[2] = t, the env's step count)."""
    env_id = H.env_id(name)
    env, raw = make_env(env_id), gym.make(env_id).unwrapped
    assert env.observation_space.dtype == np.float32
    for bound in ("low", "high"):
        np.testing.assert_array_equal(
            getattr(env.observation_space, bound), getattr(raw.observation_space, bound).astype(np.float32)
        )
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        raw.t = int(obs[2])
        np.testing.assert_array_equal(obs, raw.observe().astype(np.float32))
        assert obs.dtype == np.float32
        obs, *_ = env.step(np.zeros(1, dtype=np.float32))
    state = _train(tmp_path, env_id)
    stored = _stored(state, "obs")
    for row in stored[::17]:
        raw.t = int(row[2])
        np.testing.assert_array_equal(row, raw.observe().astype(np.float32))


def test_a_matrix_observation_is_flattened_row_by_row():
    env = make_env(H.env_id("MatrixObs"))
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert env.observation_space.shape == (6,)
    t = 1
    row = np.array([np.sin(t), np.cos(t), t], dtype=np.float32)
    np.testing.assert_array_equal(obs, np.concatenate([row, 2 * row]))


def test_a_discrete_observation_is_one_hot_coded():
    """Gymnasium's FlattenObservation turns Discrete(5) into a one-hot vector of 5 floats."""
    env = make_env(H.env_id("DiscreteObs"))
    env.reset(seed=0)
    assert env.observation_space.shape == (5,)
    for t in (1, 2, 3):
        obs, *_ = env.step(np.zeros(1, dtype=np.float32))
        np.testing.assert_array_equal(obs, np.eye(5, dtype=np.float32)[t % 5])


# ------------------------------------------------------------------------------ actions
def test_asymmetric_per_dimension_bounds_are_respected_while_training(tmp_path):
    """Bounds [-3, 0.2] × [0, 0.5] × [2, 10]: the env asserts every action is inside the box
    (random and policy actions alike), and the policy's actions use the box, not [-1, 1]."""
    H.BoundsCheckEnv.seen.clear()
    _train(tmp_path, H.env_id("BoundsCheck"), total=400, learning_starts=50)
    actions = np.stack(H.BoundsCheckEnv.seen[50:])  # the policy's actions
    assert len(actions) == 350
    low, high = H.BoundsCheckEnv.LOW, H.BoundsCheckEnv.HIGH
    assert np.all(actions >= low) and np.all(actions <= high)
    mid = (low + high) / 2
    assert np.all((actions < mid).any(axis=0)) and np.all((actions > mid).any(axis=0))


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["upper", "lower"])
def test_saturated_policy_actions_stay_inside_asymmetric_bounds(sign):
    """A policy whose mean is far beyond the tanh knee (μ = ±30, tanh = ±1 in float32) must
    still return actions inside the box: ``mid + half·1`` can round above ``high`` in float32
    (it does for [-3, 0.2]). Sampled and deterministic actions both go to the checking env."""
    env = make_env(H.env_id("BoundsCheck"))
    policy = TanhGaussianPolicy.from_spaces(env.observation_space, env.action_space, hidden_sizes=[8])
    with torch.no_grad():
        policy.head.weight.zero_()
        policy.head.bias[:3] = sign * 30.0  # μ; log σ stays at its midpoint
    obs, _ = env.reset(seed=0)
    for deterministic in (True, False):
        action = policy.act(obs, deterministic=deterministic)
        edge = H.BoundsCheckEnv.HIGH if sign > 0 else H.BoundsCheckEnv.LOW
        np.testing.assert_allclose(action, edge, rtol=1e-6)
        obs, *_ = env.step(action)  # asserts low <= action <= high


@pytest.mark.parametrize(
    "name, kind",
    [("DiscreteAct", "Discrete"), ("MultiDiscreteAct", "MultiDiscrete"), ("MultiBinaryAct", "MultiBinary")],
)
def test_non_box_action_spaces_are_config_errors(tmp_path, name, kind):
    env_id = H.env_id(name)
    with pytest.raises(ConfigError) as info:
        _train(tmp_path, env_id)
    assert str(info.value).startswith(
        f"{env_id} has a {kind} action space; SAC needs a bounded continuous Box action space."
    )


@pytest.mark.parametrize("name", ["UnboundedAct", "HalfBoundedAct"])
def test_unbounded_box_action_spaces_are_config_errors(tmp_path, name):
    env_id = H.env_id(name)
    with pytest.raises(ConfigError) as info:
        _train(tmp_path, env_id)
    msg = str(info.value)
    assert msg.startswith(f"{env_id} has an unbounded Box action space")
    assert "finite bounds" in msg


def test_a_matrix_action_space_is_a_config_error(tmp_path):
    env_id = H.env_id("MatrixAct")
    expected = re.escape(f"{env_id} has a Box action space of shape (2, 2)")
    with pytest.raises(ConfigError, match=expected):
        _train(tmp_path, env_id)


# ------------------------------------------------------------------------ unknown ids
@pytest.mark.parametrize(
    "env_id",
    [
        "NoSuchEnv-v0",
        "Pendulum-v99",
        "RlReparaTest/NoSuchEnv-v0",
        "NoSuchSpace/Env-v0",
        "no_such_module:Env-v0",
    ],
)
def test_an_unknown_env_id_is_a_config_error_naming_it(tmp_path, env_id):
    with pytest.raises(ConfigError) as info:
        _train(tmp_path, env_id)
    assert f"'{env_id}'" in str(info.value)


# --------------------------------------------------------------- Gymnasium API violations
@pytest.mark.parametrize(
    "name, kwargs, what",
    [
        ("WrongShapeObs", {"bad_at": 5}, "shape"),
        ("WrongShapeObs", {"bad_at": -1}, "shape"),
        ("WrongDtypeObs", {}, "dtype"),
        ("OldApi", {}, "truncated"),
        ("VectorReward", {}, "reward"),
    ],
    ids=["obs-shape-at-step", "obs-shape-at-reset", "obs-dtype", "4-tuple-step", "vector-reward"],
)
def test_an_env_breaking_the_gymnasium_api_gets_an_error_naming_env_and_problem(tmp_path, name, kwargs, what):
    env_id = H.env_id(name)
    cfg = TrainConfig(
        env=EnvConfig(id=env_id, kwargs=kwargs),
        total_steps=50,
        run_dir=str(tmp_path),
        agent=SACConfig(learning_starts=100, hidden_sizes=[8], batch_size=8),
        eval=EvalConfig(every_steps=0),
        log=LogConfig(progress="none"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium's passive checker warns first
        with pytest.raises((EnvError, ConfigError)) as info:
            train(cfg)
    msg = str(info.value)
    assert env_id in msg, f"the error does not name the env: {type(info.value).__name__}: {msg}"
    assert what in msg, f"the error does not say what is wrong ({what}): {msg}"


def test_restoring_a_pickled_env_closes_the_one_it_replaces(monkeypatch):
    """A resume swaps each pickled env for its snapshot: the old object (which may hold a
    renderer or a simulator handle) is closed, and the new one continues where it stopped."""
    from rl_repara.data.env_state import restore_env, snapshot_env

    env = gym.make(H.env_id("Counting"))
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros(1, dtype=np.float32))
    snap = snapshot_env(env)
    closed = []
    monkeypatch.setattr(env, "close", lambda: closed.append(True))
    restored = restore_env(env, snap)
    assert restored is not env and closed == [True]
    assert restored.unwrapped.t == 5


# ---------------------------------------------------------------- MuJoCo across releases
def _mujoco():
    return pytest.importorskip("mujoco")


def test_halfcheetah_says_settotalmass_once_in_our_voice(capfd, fresh_notices):
    """MuJoCo 3.x warns at every build of Gymnasium's HalfCheetah model (its XML uses the
    deprecated ``settotalmass``), from C, twice per run (train and eval env): one note instead,
    and MuJoCo's own warning handler is back in place after each build."""
    mujoco = _mujoco()
    previous = mujoco.get_mju_user_warning()
    make_env("HalfCheetah-v5").close()
    make_env("HalfCheetah-v5").close()
    err = capfd.readouterr().err
    assert "WARNING" not in err
    lines = [line for line in err.splitlines() if "settotalmass" in line]
    assert len(lines) <= 1 and all(line.startswith("[rl_repara] ") for line in lines), err
    assert mujoco.get_mju_user_warning() is previous


def _stepped(env_id: str, seed: int, steps: int, actions: list[np.ndarray]) -> gym.Env:
    env = make_env(env_id)
    env.reset(seed=seed)
    for action in actions[:steps]:
        env.step(action)
    return env


def _assert_same_steps(a: gym.Env, b: gym.Env, actions: list[np.ndarray]) -> None:
    for action in actions:
        obs_a, reward_a, term_a, trunc_a, _ = a.step(action)
        obs_b, reward_b, term_b, trunc_b, _ = b.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert (reward_a, term_a, trunc_a) == (reward_b, term_b, trunc_b)


def _plain(value) -> bool:
    """Whether ``value`` is made of NumPy arrays and Python values only (no MuJoCo object, no
    pickle of one: those load only under the MuJoCo release that wrote them)."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (np.ndarray, str, int, float, bool, type(None)))


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Ant-v5"])
def test_a_mujoco_snapshot_holds_plain_numbers_and_restores_under_another_release(env_id):
    """The physics is saved through MuJoCo's state API, part by part, beside the fields an env
    reads before it steps (Ant's reward reads ``xpos``); the snapshot names the release. Saved
    under "another" release (faked), it restores and the env steps on exactly."""
    mujoco = _mujoco()
    space = make_env(env_id).action_space
    space.seed(0)
    actions = [space.sample() for _ in range(40)]
    original = _stepped(env_id, 1, 10, actions)
    snap = env_state.snapshot_env(original)
    assert _plain(snap) and snap["physics"]["mujoco"] == mujoco.__version__
    assert {"QPOS", "QVEL", "WARMSTART", "CTRL"} <= set(snap["physics"]["state"])
    snap["physics"]["mujoco"] = "3.16.0"
    restored = env_state.restore_env(_stepped(env_id, 7, 0, actions), snap)
    _assert_same_steps(original, restored, actions[10:])


def test_a_state_this_mujoco_sizes_differently_is_one_line_naming_both_releases():
    mujoco = _mujoco()
    snap = env_state.snapshot_env(_stepped("Hopper-v5", 1, 3, [np.zeros(3, dtype=np.float32)] * 3))
    snap["physics"]["mujoco"] = "9.1.0"
    snap["physics"]["state"]["QPOS"] = np.zeros(7)  # Hopper's qpos has 6
    with pytest.raises(CheckpointError) as info:
        env_state.restore_env(_stepped("Hopper-v5", 2, 0, []), snap)
    assert str(info.value) == (
        "the Hopper-v5 env state was saved with MuJoCo 9.1.0 and cannot be restored under MuJoCo "
        f"{mujoco.__version__} (its QPOS state holds 7 numbers, this MuJoCo's 6); resume it with the "
        "MuJoCo it was saved with: pip install 'mujoco==9.1.0'."
    )
    assert info.value.exit_code == 2


def test_a_snapshot_of_rl_repara_0_2_restores_under_its_own_mujoco_and_is_one_line_under_another():
    """rl_repara 0.2 pickled the whole MjData: it still loads under the MuJoCo that wrote it;
    another release's serialization (faked by its version field) is a CheckpointError."""
    import pickle

    _mujoco()
    actions = [np.full(3, 0.3, dtype=np.float32)] * 20
    original = _stepped("Hopper-v5", 1, 5, actions)
    snap = env_state.snapshot_env(original)
    old = {k: v for k, v in snap.items() if k != "physics"}
    old["mj_data"] = pickle.dumps(original.unwrapped.data)
    restored = env_state.restore_env(_stepped("Hopper-v5", 3, 0, actions), dict(old))
    _assert_same_steps(original, restored, actions[5:])
    blob = bytearray(old["mj_data"])
    blob[48:52] = b"\xff\xff\xff\x7f"  # the serialization version, past the pickle's header
    old["mj_data"] = bytes(blob)
    with pytest.raises(CheckpointError, match=r"^the Hopper-v5 env state was saved by an older rl_repara"):
        env_state.restore_env(_stepped("Hopper-v5", 3, 0, actions), old)


def _halfcheetah(run_dir: Path, total: int) -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(id="HalfCheetah-v5"),
        total_steps=total,
        run_dir=str(run_dir),
        torch_threads=1,
        agent=SACConfig(learning_starts=30, hidden_sizes=[16], batch_size=16),
        eval=EvalConfig(every_steps=0),
        log=LogConfig(progress="none", every_steps=20),
    )


def _rewrite_last(run_dir: Path, change) -> None:
    from rl_repara.training.checkpoint import save_atomic

    path = find_checkpoint(run_dir)
    state = load_checkpoint(path)
    change(state)
    save_atomic(state, path, keep_previous=False)


def test_a_checkpoint_records_its_mujoco_and_a_resume_under_another_says_so_once(tmp_path, capsys):
    """The training state names the MuJoCo release; resumed under another one (faked), the run
    goes on from the saved physics and one ``[rl_repara]`` line names both releases."""
    mujoco = _mujoco()
    train(_halfcheetah(tmp_path, 40))
    state = load_checkpoint(find_checkpoint(tmp_path))
    assert state["simulators"] == {"mujoco": mujoco.__version__}
    _rewrite_last(tmp_path, lambda s: s["simulators"].update(mujoco="3.16.0"))
    capsys.readouterr()
    result = train(TrainConfig(resume=str(tmp_path), total_steps=60, log=LogConfig(progress="none")))
    assert result.global_step == 60
    lines = [line for line in capsys.readouterr().err.splitlines() if "3.16.0" in line]
    assert lines == [
        f"[rl_repara] the checkpoint was written with mujoco 3.16.0 and this run has mujoco "
        f"{mujoco.__version__}: the envs continue from the saved physics state, which this "
        "release may step differently from an unbroken run."
    ]


def test_resuming_a_state_this_mujoco_cannot_read_is_a_checkpoint_error(tmp_path):
    _mujoco()
    train(_halfcheetah(tmp_path, 40))

    def wrong_size(state: dict) -> None:
        physics = state["collector"]["envs"][0]["physics"]
        physics["mujoco"], physics["state"]["QVEL"] = "4.0.0", np.zeros(5)

    _rewrite_last(tmp_path, wrong_size)
    with pytest.raises(CheckpointError, match=r"saved with MuJoCo 4\.0\.0 and cannot be restored .* QVEL"):
        train(TrainConfig(resume=str(tmp_path), total_steps=60, log=LogConfig(progress="none")))
