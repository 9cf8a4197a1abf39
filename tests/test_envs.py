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

from rl_repara import EnvConfig, EvalConfig, SACConfig, TanhGaussianPolicy, TrainConfig, train
from rl_repara.checkpoint import find_checkpoint, load_checkpoint
from rl_repara.config import LogConfig
from rl_repara.envs import make_env
from rl_repara.errors import ConfigError, EnvError


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """``train(torch_threads=1)`` sets torch's global thread count; give it back after."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


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
@pytest.mark.parametrize("name, kind", [("DictObs", "Dict"), ("TupleObs", "Tuple")])
def test_dict_and_tuple_observations_are_flattened_with_a_warning(tmp_path, name, kind):
    """The flat obs is Gymnasium's own ``spaces.flatten`` of the raw obs (one-hot for the
    Discrete part), as float32; a training run stores such vectors."""
    env_id = H.env_id(name)
    with pytest.warns(UserWarning) as record:
        env = make_env(env_id)
    assert f"{env_id} has a {kind} observation space; flattening it to a vector of 6 floats." in [
        str(w.message) for w in record
    ]
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
    with pytest.warns(UserWarning, match=f"{kind} observation space; flattening"):
        state = _train(tmp_path, env_id)
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
    from rl_repara.envs import restore_env, snapshot_env

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
