"""The DeepMind Control Suite through shimmy (the ``dmc`` extra): ids build, Dict observations
are flattened by Gymnasium's wrapper, a missing extra is one line, and a short CLI run logs
what a user looks at in TensorBoard, hyperparameters included. Exact resume of dm_control
envs is in ``test_determinism.py``."""

from __future__ import annotations

import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from support import TRAIN, run, scalars

from rl_repara import console
from rl_repara.data.env_state import restorable, restore_env, simulator_versions, snapshot_env
from rl_repara.data.envs import make_env
from rl_repara.errors import ConfigError


def test_a_dmc_task_builds_with_its_dict_observation_flattened(monkeypatch, capsys):
    """The flattening is one ``[rl_repara]`` line (a Python warning printed its source line)."""
    pytest.importorskip("shimmy")
    monkeypatch.setattr(console, "said", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        env = make_env("dm_control/cheetah-run-v0")
    err = capsys.readouterr().err.splitlines()
    assert (
        "[rl_repara] dm_control/cheetah-run-v0 has a Dict observation space; flattening it to a "
        "vector of 17 floats."
    ) in err
    assert all(line.startswith("[rl_repara] ") for line in err), err
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (17,) and obs.dtype == np.float32 and obs.shape == (17,)
    assert env.action_space.shape == (6,)
    steps, truncated = 0, False
    while not truncated:  # dm_control ends every episode itself after 1000 steps
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        steps += 1
    assert steps == 1000
    env.close()


def test_without_the_dmc_extra_a_dm_control_id_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "shimmy", None)  # import shimmy now raises ImportError
    with pytest.raises(ConfigError) as info:
        make_env("dm_control/cheetah-run-v0")
    assert str(info.value) == (
        "dm_control/cheetah-run-v0 needs the DeepMind Control Suite, which is not installed: "
        "pip install 'rl_repara[dmc]' (shimmy and dm_control)."
    )


@pytest.mark.parametrize("task", ["reacher-easy", "fish-swim", "cheetah-run"])
def test_a_dmc_snapshot_restores_the_episode_into_an_env_reset_with_another_seed(task):
    """Reacher and fish place their targets in the *model* at reset: the snapshot carries
    those model fields with the physics state, so the restored env steps exactly as the
    original, also when the snapshot names another MuJoCo release (faked)."""
    pytest.importorskip("shimmy")
    original = make_env(f"dm_control/{task}-v0")
    original.reset(seed=1)
    actions = [original.action_space.sample() for _ in range(35)]
    for action in actions[:5]:
        original.step(action)
    snap = snapshot_env(original)
    snap["physics"]["mujoco"] = "3.16.0"
    other = make_env(f"dm_control/{task}-v0")
    other.reset(seed=7)
    assert restorable(other, snap)
    restored = restore_env(other, snap)
    for action in actions[5:]:
        obs_a, reward_a, *_ = original.step(action)
        obs_b, reward_b, *_ = restored.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b


def test_a_dmc_env_names_its_mujoco_and_dm_control_and_its_snapshot_holds_plain_numbers():
    """What a checkpoint records (``Trainer.state_dict``), and a snapshot another MuJoCo reads:
    NumPy arrays by name, no pickled MuJoCo object."""
    pytest.importorskip("shimmy")
    import mujoco

    env = make_env("dm_control/walker-run-v0")
    env.reset(seed=0)
    assert simulator_versions(env) == {"mujoco": mujoco.__version__, "dm_control": version("dm_control")}
    snap = snapshot_env(env)
    physics = snap["physics"]
    arrays = [*physics["state"].values(), *physics["derived"].values(), *snap["model"].values()]
    assert all(isinstance(a, np.ndarray) for a in arrays) and snap["physics"]["mujoco"] == mujoco.__version__
    assert not any(isinstance(v, bytes) for v in snap.values())


def test_a_dmc_snapshot_is_not_restorable_into_an_env_without_dm_control_inside():
    """A dm_control release that renames what the snapshot reads: resume warns and starts new
    episodes instead of failing (``Collector.load_state_dict``)."""
    pytest.importorskip("shimmy")
    snap = snapshot_env(make_env("dm_control/cheetah-run-v0"))
    assert snap["kind"] == "dm_control" and not restorable(make_env("Pendulum-v1"), snap)


def _hparams(run_dir: Path) -> tuple[dict, list[str]]:
    """The hyperparameters a run wrote for TensorBoard's HParams dashboard, and the plugin's
    summaries it wrote."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {}
    for key, value in start.session_start_info.hparams.items():
        values[key] = getattr(value, value.WhichOneof("kind"))
    return values, sorted(content)


def test_cli_trains_a_dmc_task_and_logs_its_tensorboard_tags(tmp_path):
    """2000 steps of cheetah-run from the command line (1000 random, then 1000 updates)."""
    pytest.importorskip("shimmy")
    cmd = [
        TRAIN,
        "env=dmc_cheetah_run",
        "total_steps=2000",
        "agent.learning_starts=1000",
        "agent.hidden_sizes=[64,64]",
        "agent.batch_size=64",
        "eval.every_steps=1000",
        "eval.episodes=1",
        "log.every_steps=500",
        "torch_threads=1",
        "log.progress=none",
        "hydra.run.dir=run",
    ]
    proc = run(cmd, tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("flattening it to a vector of 17 floats") == 1  # train and eval env: once
    assert "[rl_repara] dm_control/cheetah-run-v0 has a Dict observation space" in proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    tags = {tag: [step for step, _ in series] for tag, series in scalars(tmp_path / "run").items()}
    assert tags["charts/episodic_return"] == [1000, 2000]  # 1000-step episodes
    assert tags["eval/mean_return"] == [1000, 2000] and tags["eval/best_return"] == [1000, 2000]
    assert tags["charts/SPS_warmup"] == [500, 1000] and tags["charts/SPS"] == [1500, 2000]
    assert tags["losses/qf_loss"] == [1000, 1500, 2000]
    hparams, summaries = _hparams(tmp_path / "run")
    assert hparams["env.id"] == "dm_control/cheetah-run-v0" and hparams["total_steps"] == 2000
    assert hparams["agent.hidden_sizes"] == "[64, 64]" and hparams["agent.lr"] == pytest.approx(3e-4)
    assert hparams["eval.episodes"] == 1 and hparams["agent.actor_norm"] == "none"  # every key
    assert "run_dir" not in hparams and "log.progress" not in hparams  # where, not what, it learns
    # the experiment summary marks the columns to show first (see Logger.hparams)
    assert summaries == ["_hparams_/experiment", "_hparams_/session_start_info"]
