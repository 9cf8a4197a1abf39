"""Every config in conf/ composes (Hydra's compose API) into a valid TrainConfig, and every env
preset builds its env where its package is installed."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml
from support import composed

from rl_repara import ConfigError, SACConfig, TrainConfig
from rl_repara.cli.schemas import EvalCliConfig, config_dir, run_dir_resolver
from rl_repara.data.envs import make_env
from rl_repara.training.config import EvalConfig

CONF = Path(config_dir())
PRESETS = sorted(p.stem for p in (CONF / "env").glob("*.yaml"))
MUJOCO = {"halfcheetah", "hopper", "walker2d", "ant", "humanoid"}
DMC = {"dmc_cheetah_run", "dmc_walker_run", "dmc_hopper_hop", "dmc_quadruped_run", "dmc_humanoid_walk"}


def test_presets_are_all_there():
    assert set(PRESETS) == {"pendulum", "mountaincar_continuous", "lunarlander_continuous"} | MUJOCO | DMC


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_validates_and_builds_its_env(preset):
    text = (CONF / "env" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_")
    raw = yaml.safe_load(text)
    assert {"env", "total_steps", "eval"} <= set(raw)
    cfg = composed(overrides=[f"env={preset}"])
    assert isinstance(cfg, TrainConfig) and isinstance(cfg.agent, SACConfig)
    cfg.validate()
    # the preset's values win over config.yaml
    assert cfg.env.id == raw["env"]["id"] and cfg.total_steps == raw["total_steps"]
    assert cfg.eval.every_steps == raw["eval"]["every_steps"]
    if preset in MUJOCO:  # SAC's MuJoCo setting of the RL Zoo (conf/tuned/sac_<env>.yaml)
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
    cfg = composed()
    assert cfg.env.id == "Pendulum-v1" and cfg.total_steps == 20_000
    assert cfg.agent.lr == 1e-3 and cfg.agent.learning_starts == 1_000
    assert cfg.resume is None and cfg.device == "auto" and cfg.video is False
    # the whole default run, every key: the library's defaults but for Pendulum's tuning and eval
    agent = SACConfig(lr=1e-3, learning_starts=1_000)
    assert cfg == TrainConfig(agent=agent, total_steps=20_000, eval=EvalConfig(every_steps=2_000))


def test_env_presets_set_no_agent_key():
    """An env preset is env-level only (id, budget, eval and checkpoint cadence): an agent
    preset's values change only through a file tuned for that (agent, env) pair."""
    for preset in PRESETS:
        raw = yaml.safe_load((CONF / "env" / f"{preset}.yaml").read_text())
        assert "agent" not in raw, f"conf/env/{preset}.yaml sets agent keys: {raw.get('agent')}"
        assert set(raw) <= {"env", "total_steps", "num_envs", "eval", "checkpoint", "log"}, preset


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
    cfg = composed(
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
        composed(overrides=["agent.lerning_rate=0.1"])
    with pytest.raises(ConfigCompositionException, match="total_steps"):
        composed(overrides=["total_steps=abc"])
    cfg = composed(overrides=["total_steps=-5"])
    with pytest.raises(ConfigError, match="total_steps must be > 0"):
        cfg.validate()


def test_eval_config_composes():
    cfg = composed("eval", overrides=["checkpoint=some/run", "episodes=3"])
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
    family = {"sac", "crossq", "tqc", "droq", "redq", "sac_dmc", "sac_residual", "xqc", "simbav2", "flashsac"}
    assert set(AGENTS) == family


TUNED = sorted(p.stem for p in (CONF / "tuned").glob("*.yaml"))
PAIRS = {f"{a}_{e}": (a, e) for a in AGENTS for e in PRESETS}


def _agent_preset(agent: str) -> dict:
    """agent/sac.yaml overlaid with agent/NAME.yaml: the agent preset's own values."""
    values = yaml.safe_load((CONF / "agent" / "sac.yaml").read_text())
    if agent != "sac":
        raw = yaml.safe_load((CONF / "agent" / f"{agent}.yaml").read_text())
        assert raw.pop("defaults") == ["sac", "_self_"]
        values.update(raw)
    return values


def _tuned(agent: str, env: str) -> dict:
    path = CONF / "tuned" / f"{agent}_{env}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


@pytest.mark.parametrize("agent", [a for a in AGENTS if a != "sac"])
def test_each_agent_preset_composes_over_sac_with_its_authors_values(agent):
    """agent=NAME starts from agent/sac.yaml and sets its authors' values, with the source named
    in the file's first line."""
    assert "# " in (CONF / "agent" / f"{agent}.yaml").read_text().splitlines()[0]  # the source
    env = "dmc_cheetah_run" if agent == "sac_dmc" else "hopper"
    cfg = composed(overrides=[f"agent={agent}", f"env={env}"])
    cfg.validate()
    assert dataclasses.asdict(cfg.agent) == {**_agent_preset(agent), **_tuned(agent, env)}
    assert composed(overrides=[f"agent={agent}", "agent.num_critics=7"]).agent.num_critics == 7


@pytest.mark.parametrize("agent", AGENTS)
def test_an_agent_preset_changes_on_an_env_only_by_the_pairs_tuned_file(agent):
    """On every env preset, agent=NAME gets its preset's values, changed only by the values
    tuned for that (agent, env) pair (conf/tuned/<agent>_<env>.yaml); the command line wins
    over both. agent=tqc on the default env used to get Pendulum's SAC learning rate."""
    for env in PRESETS:
        cfg = composed(overrides=[f"agent={agent}", f"env={env}"])
        assert dataclasses.asdict(cfg.agent) == {**_agent_preset(agent), **_tuned(agent, env)}, env
    cfg = composed(overrides=[f"agent={agent}", "agent.lr=5e-5", "agent.learning_starts=7"])
    assert (cfg.agent.lr, cfg.agent.learning_starts) == (5e-5, 7)
    assert dataclasses.asdict(composed(overrides=[f"agent={agent}", "~tuned"]).agent) == _agent_preset(agent)


def test_pairs_that_the_issue_names():
    """TQC on the default env: TQC's own Pendulum tuning (the RL Zoo's tqc.yml), not SAC's;
    CrossQ on LunarLander keeps CrossQ's learning rate and nets (SAC's 7.3e-4 and 400x300 were
    forced on it); REDQ on Hopper: the authors' (MBPO's) target entropy -1."""
    tqc = composed(overrides=["agent=tqc"]).agent
    assert tqc.lr == _tuned("tqc", "pendulum").get("lr") == 1e-3
    assert tqc.critic_hidden_sizes == _agent_preset("tqc")["critic_hidden_sizes"]
    crossq = composed(overrides=["agent=crossq", "env=lunarlander_continuous"]).agent
    own = _agent_preset("crossq")
    assert (crossq.lr, crossq.hidden_sizes, crossq.critic_hidden_sizes, crossq.tau) == (
        own["lr"],
        own["hidden_sizes"],
        own["critic_hidden_sizes"],
        own["tau"],
    )
    assert crossq.learning_starts == 10_000  # the zoo's crossq.yml
    for env, entropy in {"hopper": -1, "halfcheetah": -3, "walker2d": -3, "ant": -4, "humanoid": -2}.items():
        for agent in ("redq", "droq"):
            assert composed(overrides=[f"agent={agent}", f"env={env}"]).agent.target_entropy == entropy
    assert composed(overrides=["agent=redq"]).agent.target_entropy is None  # -act_dim off MuJoCo


@pytest.mark.parametrize("name", TUNED)
def test_each_tuned_file_belongs_to_one_pair_names_its_source_and_sets_agent_keys_only(name):
    text = (CONF / "tuned" / f"{name}.yaml").read_text()
    lines = text.splitlines()
    assert lines[0] == "# @package agent"
    assert lines[1].startswith("# ") and any(s in text for s in ("github.com/", "et al.")), "no source"
    assert name in PAIRS, f"conf/tuned/{name}.yaml names no (agent, env preset) pair"
    raw = yaml.safe_load(text)
    assert raw and set(raw) <= {f.name for f in dataclasses.fields(SACConfig)}
    assert raw != {k: v for k, v in _agent_preset(PAIRS[name][0]).items() if k in raw}, "changes nothing"
    agent, env = PAIRS[name]
    composed(overrides=[f"agent={agent}", f"env={env}"]).validate()


def test_pair_file_names_are_unambiguous():
    """<agent>_<env> names one pair only (agent sac_dmc and env dmc_* share an underscore)."""
    names = [f"{a}_{e}" for a in AGENTS for e in PRESETS]
    assert len(names) == len(set(names))
