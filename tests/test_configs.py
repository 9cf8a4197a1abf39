"""Every config in conf/ composes (Hydra's compose API) into a valid TrainConfig, and every env
preset builds its env where its package is installed."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rl_repara import ConfigError, SACConfig, TrainConfig
from rl_repara.cli_config import EvalCliConfig, config_dir, run_dir_resolver
from rl_repara.envs import make_env

CONF = Path(config_dir())
PRESETS = sorted(p.stem for p in (CONF / "env").glob("*.yaml"))
MUJOCO = {"halfcheetah", "hopper", "walker2d", "ant", "humanoid"}
DMC = {"dmc_cheetah_run", "dmc_walker_run", "dmc_hopper_hop", "dmc_quadruped_run", "dmc_humanoid_walk"}


def _compose(name: str = "config", overrides: list[str] = ()) -> object:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides))
    return OmegaConf.to_object(cfg)


def test_presets_are_all_there():
    assert set(PRESETS) == {"pendulum", "mountaincar_continuous", "lunarlander_continuous"} | MUJOCO | DMC


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_validates_and_builds_its_env(preset):
    text = (CONF / "env" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_")
    raw = yaml.safe_load(text)
    assert {"env", "total_steps", "agent", "eval"} <= set(raw)
    cfg = _compose(overrides=[f"env={preset}"])
    assert isinstance(cfg, TrainConfig) and isinstance(cfg.agent, SACConfig)
    cfg.validate()
    # the preset's values win over config.yaml and agent/sac.yaml
    assert cfg.env.id == raw["env"]["id"] and cfg.total_steps == raw["total_steps"]
    assert cfg.eval.every_steps == raw["eval"]["every_steps"]
    for key, value in raw["agent"].items():
        assert getattr(cfg.agent, key) == value, key
    if preset in MUJOCO:
        assert cfg.agent.learning_starts == 10_000 and cfg.total_steps >= 1_000_000
    if preset == "lunarlander_continuous" and importlib.util.find_spec("Box2D") is None:
        pytest.skip("box2d not installed")
    if preset in MUJOCO and importlib.util.find_spec("mujoco") is None:
        pytest.skip("mujoco not installed")
    if preset in DMC:
        assert cfg.env.id.startswith("dm_control/") and cfg.total_steps == 1_000_000
        if importlib.util.find_spec("shimmy") is None:
            pytest.skip("shimmy (the dmc extra) not installed")
    env = make_env(cfg.env.id, cfg.env.kwargs)
    assert env.action_space.shape[0] >= 1
    env.close()


def test_default_is_pendulum_with_the_rl_zoo_settings():
    cfg = _compose()
    assert cfg.env.id == "Pendulum-v1" and cfg.total_steps == 20_000
    assert cfg.agent.lr == 1e-3 and cfg.agent.learning_starts == 1_000
    assert cfg.resume is None and cfg.device == "auto" and cfg.video is False


def test_agent_yaml_lists_every_sac_field_with_its_default():
    raw = yaml.safe_load((CONF / "agent" / "sac.yaml").read_text())
    defaults = SACConfig()
    assert set(raw) == {f.name for f in dataclasses.fields(SACConfig)}
    for key, value in raw.items():
        assert getattr(defaults, key) == value, key


def test_config_yaml_restates_the_train_defaults():
    """Keys in config.yaml that no preset sets must agree with TrainConfig's defaults, so the
    library and the CLI start from the same values."""
    raw = yaml.safe_load((CONF / "config.yaml").read_text())
    ref = TrainConfig()
    for key in ("seed", "num_envs", "device", "torch_threads", "resume", "video", "on_nonfinite"):
        assert raw[key] == getattr(ref, key), key
    assert raw["eval"]["episodes"] == ref.eval.episodes
    assert raw["log"] == dataclasses.asdict(ref.log)


def test_any_env_id_and_overrides_compose():
    cfg = _compose(
        overrides=[
            "env.id=InvertedPendulum-v5",
            "agent.hidden_sizes=[64,64]",
            "+env.kwargs.max_episode_steps=50",
        ]
    )
    assert cfg.env.id == "InvertedPendulum-v5" and cfg.agent.hidden_sizes == [64, 64]
    assert cfg.env.kwargs == {"max_episode_steps": 50}


def test_typo_and_bad_type_fail_at_compose():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="lerning_rate"):
        _compose(overrides=["agent.lerning_rate=0.1"])
    with pytest.raises(ConfigCompositionException, match="total_steps"):
        _compose(overrides=["total_steps=abc"])
    cfg = _compose(overrides=["total_steps=-5"])
    with pytest.raises(ConfigError, match="total_steps must be > 0"):
        cfg.validate()


def test_eval_config_composes():
    cfg = _compose("eval", overrides=["checkpoint=some/run", "episodes=3"])
    assert isinstance(cfg, EvalCliConfig)
    assert (cfg.checkpoint, cfg.episodes, cfg.video, cfg.seed) == ("some/run", 3, False, None)


def test_run_dir_resolver(tmp_path):
    """hydra.run.dir: a fresh run gets the default; resume= is the resumed run's own dir, and
    is checked before Hydra creates anything."""
    assert run_dir_resolver(None, "runs/x") == "runs/x"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    assert run_dir_resolver(str(tmp_path), "runs/x") == str(tmp_path)
    with pytest.raises(ConfigError, match="not the file"):
        run_dir_resolver(str(tmp_path / "checkpoints" / "last.pt"), "runs/x")
    with pytest.raises(ConfigError, match="no such file or directory"):
        run_dir_resolver(str(tmp_path / "missing"), "runs/x")


AGENTS = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))


def test_the_sac_family_presets_are_all_there():
    assert set(AGENTS) == {"sac", "crossq", "tqc", "droq", "redq", "sac_dmc"}


@pytest.mark.parametrize("agent", [a for a in AGENTS if a != "sac"])
def test_each_agent_preset_composes_over_sac_and_keeps_its_values_on_a_mujoco_env(agent):
    """agent=NAME starts from agent/sac.yaml and sets its authors' values, which an env preset
    does not overwrite (MuJoCo presets leave the learning rate to the agent)."""
    raw = yaml.safe_load((CONF / "agent" / f"{agent}.yaml").read_text())
    assert raw.pop("defaults") == ["sac", "_self_"]
    assert "# " in (CONF / "agent" / f"{agent}.yaml").read_text().splitlines()[0]  # the source
    env = "dmc_cheetah_run" if agent == "sac_dmc" else "hopper"
    cfg = _compose(overrides=[f"agent={agent}", f"env={env}"])
    cfg.validate()
    for key, value in raw.items():
        assert getattr(cfg.agent, key) == value, key
    base = _compose(overrides=[f"env={env}"]).agent
    for key in {f.name for f in dataclasses.fields(SACConfig)} - set(raw) - {"learning_starts"}:
        assert getattr(cfg.agent, key) == getattr(base, key), key
    assert _compose(overrides=[f"agent={agent}", "agent.num_critics=7"]).agent.num_critics == 7
