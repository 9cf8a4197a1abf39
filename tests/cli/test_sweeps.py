"""Hyperparameter search with Hydra's Optuna sweeper (the ``sweep`` extra): a shipped search
space (``conf/search/``), the final eval return as each trial's objective, parallel trials
through the joblib launcher, and the best trial as one command line."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml
from support import TRAIN, command_env, run

from rl_repara.cli.sweeps import best_trial, best_trial_lines
from rl_repara.cli.sweeps import main as sweeps_main
from rl_repara.errors import ConfigError

# The CLI with optuna's Study.tell recording what the sweeper reports to Optuna.
RECORDING_CLI = """
import json, os, optuna
told = []
original = optuna.study.Study.tell
def tell(self, *args, **kwargs):
    told.append({"state": str(kwargs.get("state")), "values": kwargs.get("values")})
    with open(os.environ["TOLD_FILE"], "w") as f:
        json.dump(told, f)
    return original(self, *args, **kwargs)
optuna.study.Study.tell = tell
from rl_repara.cli.main import train_main
train_main()
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """3 trials of search=sac on Pendulum at 300 steps, 2 at a time (joblib)."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cwd = tmp_path_factory.mktemp("study")
    cmd = [sys.executable, "-c", RECORDING_CLI, "-m", "search=sac", "hydra.sweeper.n_trials=3"]
    cmd += ["hydra.sweeper.n_jobs=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    cmd += ["hydra.sweep.dir=sweep", "total_steps=300", "agent.learning_starts=100"]
    cmd += ["agent.hidden_sizes=[32,32]", "eval.every_steps=150", "eval.episodes=1", "log.progress=none"]
    env = {**command_env(), "TOLD_FILE": str(cwd / "told.json")}
    proc = run(cmd, cwd, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    return cwd, proc


def test_optuna_sees_each_trials_final_eval_return(study):
    cwd, proc = study
    told = json.loads((cwd / "told.json").read_text())
    assert [t["state"] for t in told] == ["TrialState.COMPLETE"] * 3
    values = sorted(t["values"][0] for t in told)
    printed = sorted(float(v) for v in re.findall(r"last eval return (-?[\d.]+)", proc.stdout))
    assert values == pytest.approx(printed, abs=0.006)  # the job prints 2 decimals
    results = yaml.safe_load((cwd / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(values)


def test_the_search_space_is_sampled_and_command_line_keys_stay_fixed(study):
    cwd, _ = study
    jobs = sorted((cwd / "sweep").glob("*/.hydra/config.yaml"))
    assert len(jobs) == 3
    configs = [yaml.safe_load(p.read_text())["agent"] for p in jobs]
    assert all(c["learning_starts"] == 100 and c["hidden_sizes"] == [32, 32] for c in configs)
    assert all(1e-4 <= c["lr"] <= 3e-3 and c["batch_size"] in (64, 128, 256, 512) for c in configs)
    assert len({c["lr"] for c in configs}) == 3  # three different trials, not one repeated


def test_the_best_trial_is_one_command_line(study, capsys):
    cwd, _ = study
    job_dir, value, overrides = best_trial(cwd / "sweep")
    results = yaml.safe_load((cwd / "sweep" / "optimization_results.yaml").read_text())
    assert value == results["best_value"]
    job_overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    assert [o for o in job_overrides if o != "search=sac"] == overrides
    for key, best in results["best_params"].items():
        assert f"{key}={best}" in overrides
    assert sweeps_main([str(cwd / "sweep")]) == 0
    assert capsys.readouterr().out.split() == overrides


def test_the_study_ends_saying_once_which_trial_won_and_how_to_train_it_again(study, monkeypatch):
    cwd, proc = study
    monkeypatch.chdir(cwd)  # the sweep dir as the command line gave it: hydra.sweep.dir=sweep
    lines = best_trial_lines("sweep")
    out = proc.stdout.splitlines()
    assert out[-2:] == lines and sum(line.startswith("[rl_repara] best trial:") for line in out) == 1
    job_dir, value, overrides = best_trial("sweep")
    assert lines[0].endswith(f"final eval return {value:.2f}, run dir {job_dir}")
    assert shlex.split(lines[1].removeprefix("[rl_repara] train it again: ")) == [
        "rl-repara-train",
        *overrides,
    ]


def test_parallel_jobs_lines_name_their_job_and_logs_get_no_colour_codes(study):
    """Two trials at a time (joblib): each line a job prints starts with its number and seed,
    the number of its run dir. Output to a pipe (a log file) carries no escape codes."""
    _, proc = study
    out = proc.stdout.splitlines()
    done = [line for line in out if "] [rl_repara] done: run dir " in line]
    assert len(done) == 3
    for line in done:
        match = re.fullmatch(r"\[job (\d+) seed=0\] \[rl_repara\] done: run dir .*/(\d+)_seed0 \| .*", line)
        assert match and match[1] == match[2], line
    assert all(
        line.startswith(("[job ", "[rl_repara] best trial:", "[rl_repara] train it again:")) for line in out
    )
    assert "\x1b" not in proc.stdout + proc.stderr  # Optuna's colorlog line among them


def test_a_dir_without_a_study_is_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="optimization_results.yaml does not exist"):
        best_trial(tmp_path)
    assert sweeps_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rl_repara.cli.sweeps: error: ")


@pytest.mark.parametrize("name", ["sac", "crossq", "tqc", "droq", "redq"])
def test_each_search_space_composes_and_names_only_real_keys(name):
    """Every searched key is a SACConfig field, and the preset spaces extend search=sac."""
    from hydra import compose, initialize_config_dir

    from rl_repara import SACConfig
    from rl_repara.cli.schemas import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[f"search={name}"], return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.params)
    assert cfg.hydra.sweeper.direction == "maximize"
    fields = set(SACConfig.__dataclass_fields__)
    assert {k.split(".", 1)[1] for k in params} <= fields and all(k.startswith("agent.") for k in params)
    assert {"agent.lr", "agent.batch_size", "agent.tau", "agent.gamma"} <= set(params)
    assert "agent.hidden_sizes" in params and "agent.learning_starts" in params


def test_an_optuna_search_without_evaluation_is_refused(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cmd = [TRAIN, "-m", "search=sac", "hydra.sweeper.n_trials=1", "eval.every_steps=0", "total_steps=100"]
    proc = run(cmd, tmp_path, timeout=300)
    assert proc.returncode == 2  # a user mistake, in a job as on its own
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rl-repara-train: error: a sweep job failed: job 0")
    assert last.endswith("turns evaluation off: set eval.every_steps to a positive number of steps.")


def test_a_hand_made_optuna_sweep_must_maximize(tmp_path):
    """hydra/sweeper=optuna on its own minimizes: it would search for the worst settings."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cmd = [
        TRAIN,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=1",
        "agent.lr=tag(log,interval(1e-4,1e-3))",
    ]
    proc = subprocess.run(
        cmd + ["total_steps=100"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith("add hydra.sweeper.direction=maximize, or use a shipped search=sac.")
    )


def test_a_search_space_without_multirun_is_one_line(tmp_path):
    cmd = [TRAIN, "search=sac"]
    proc = run(cmd, tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rl-repara-train: error: search=sac sets up an Optuna study: run it with -m (rl-repara-train -m ...)."
    ]
