"""What a user sees besides errors: warnings as one ``[rl_repara]`` line each, no colour codes
off a terminal, the job prefix of a sweep's parallel jobs, the end of an Optuna study, the
``--help`` of rl-repara-eval and rl-repara-export, and the columns TensorBoard's HParams table
shows first for a single run (computed by TensorBoard's own backend)."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from support import EVAL, EXPORT, run, scalars

from rl_repara import EvalConfig, SACConfig, TrainConfig, train
from rl_repara.cli.errors import run_cli
from rl_repara.cli.schemas import EvalCliConfig, ExportCliConfig
from rl_repara.cli.sweeps import CliCallback, best_trial_lines, job_label
from rl_repara.console import prefix_output, restore_output
from rl_repara.training.config import LogConfig
from rl_repara.training.logger import HPARAMS_FIRST_ENV, KEY_HPARAMS, METRIC_TAGS


# ------------------------------------------------------------------ warnings in our voice
def test_a_commands_warnings_are_one_line_each_once_in_our_voice(cli_process, capsys):
    text = "Pendulum-v1 cannot be snapshotted mid-episode; new episodes"

    def main():
        warnings.warn(text, stacklevel=1)
        warnings.warn(text, stacklevel=1)  # another line: Python's own display would show it again
        warnings.warn("\x1b[33mWARN: the obs returned by step() is not within the space\x1b[0m", stacklevel=1)
        warnings.warn("a warning\n  over two lines", RuntimeWarning, stacklevel=1)

    run_cli("rl-repara-train", TrainConfig, main)
    assert capsys.readouterr().err.splitlines() == [
        "[rl_repara] warning: Pendulum-v1 cannot be snapshotted mid-episode; new episodes",
        "[rl_repara] warning: the obs returned by step() is not within the space",
        "[rl_repara] warning: a warning over two lines",
    ]


def test_colour_codes_go_only_to_a_terminal(cli_process, monkeypatch):
    """stderr is a log file: Optuna's colorlog lines (its default handler's formatter) carry
    no escape codes."""
    colorlog = pytest.importorskip("colorlog")
    log_file = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_file)  # no terminal
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(colorlog.ColoredFormatter("%(log_color)s[%(levelname)1.1s]%(reset)s %(message)s"))
    logger = logging.getLogger("test_output.optuna_like")
    logger.addHandler(handler)
    try:
        run_cli("rl-repara-train", TrainConfig, lambda: logger.warning("A new study created"))
    finally:
        logger.removeHandler(handler)
    assert log_file.getvalue() == "[W] A new study created\n"


# ------------------------------------------------------------------------- sweep jobs
def test_prefixed_output_starts_every_line_with_the_label(capsys):
    prefix_output("[job 3 seed=2]")
    try:
        assert not sys.stdout.isatty()  # parallel jobs share a terminal: plain lines, no bar
        sys.stdout.write("[rl_repara] step 100")
        print("/300 SPS=5")
        print("two\nlines", flush=True)
        print("to stderr", file=sys.stderr)
    finally:
        restore_output()
    print("after")
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        "[job 3 seed=2] [rl_repara] step 100/300 SPS=5",
        "[job 3 seed=2] two",
        "[job 3 seed=2] lines",
        "after",
    ]
    assert out.err == "[job 3 seed=2] to stderr\n"


def test_a_job_in_a_sweep_worker_prefixes_its_lines_until_it_ends(cli_process, monkeypatch, capsys):
    from hydra.types import RunMode

    config = OmegaConf.create({"seed": 2, "hydra": {"mode": RunMode.MULTIRUN, "job": {"num": 3}}})
    assert job_label(config) == "[job 3 seed=2]"
    callback = CliCallback()
    monkeypatch.setenv("_RL_REPARA_MAIN_PID", str(os.getpid()))  # the main process: no prefix
    callback.on_job_start(config, task_function=None)
    print("[rl_repara] done: main")
    callback.on_job_end(config, job_return=None)
    monkeypatch.setenv("_RL_REPARA_MAIN_PID", "1")  # a joblib worker: another process
    callback.on_job_start(config, task_function=None)
    print("[rl_repara] done: worker")
    warnings.warn("in a worker", stacklevel=1)
    callback.on_job_end(config, job_return=None)
    print("after")
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        "[rl_repara] done: main",
        "[job 3 seed=2] [rl_repara] done: worker",
        "after",
    ]
    assert out.err.splitlines() == ["[job 3 seed=2] [rl_repara] warning: in a worker"]


# ---------------------------------------------------------------------- end of a study
def _fake_study(sweep: Path) -> None:
    """Two jobs of an Optuna study, as Hydra's Optuna sweeper leaves them: job 1 won."""
    results = {
        "name": "optuna",
        "best_params": {"agent.lr": 0.0012345678, "agent.batch_size": 128},
        "best_value": -143.2149,
    }
    (sweep).mkdir()
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
    for num, (lr, batch) in enumerate([(0.0003, 256), (0.0012345678, 128)]):
        hydra_dir = sweep / f"{num}_seed0" / ".hydra"
        hydra_dir.mkdir(parents=True)
        overrides = [
            "search=sac",
            f"agent.lr={lr}",
            f"agent.batch_size={batch}",
            "agent.hidden_sizes=[64,64]",
        ]
        (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))


OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def test_a_finished_study_says_which_trial_won_and_how_to_train_it_again(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    _fake_study(sweep)
    config = OmegaConf.create({"hydra": {"sweeper": {"_target_": OPTUNA}, "sweep": {"dir": str(sweep)}}})
    CliCallback().on_multirun_end(config)
    assert capsys.readouterr().out.splitlines() == [
        "[rl_repara] best trial: job 1 (agent.lr=0.001235, agent.batch_size=128), final eval return "
        f"-143.21, run dir {sweep / '1_seed0'}",
        "[rl_repara] train it again: rl-repara-train agent.lr=0.0012345678 agent.batch_size=128 "
        "'agent.hidden_sizes=[64,64]'",
    ]
    assert best_trial_lines(sweep)[0].startswith("[rl_repara] best trial: job 1 ")
    basic = OmegaConf.create({"hydra": {"sweeper": {"_target_": "hydra._internal.BasicSweeper"}}})
    CliCallback().on_multirun_end(basic)  # a grid sweep has no best trial: nothing to say
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- --help
@pytest.mark.parametrize(
    "command, schema",
    [(EVAL, EvalCliConfig), (EXPORT, ExportCliConfig)],
    ids=["rl-repara-eval", "rl-repara-export"],
)
def test_help_says_what_the_command_does_with_its_own_keys_only(tmp_path, command, schema):
    proc = run([command, "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    name = Path(command).name
    assert text.startswith(f"{name}: ") and f"Example: {name} checkpoint=" in text
    for key in schema.__dataclass_fields__:
        assert f"  {key}=" in text, key  # each key with what it takes
        assert f"\n{key}: " in text, key  # and its default, in the config listing
    # the groups of rl-repara-train are not this command's
    assert "Configuration groups" not in text and "Config groups" not in text
    assert not any(line.startswith(("agent:", "env:", "search:")) for line in text.splitlines())
    assert "powered by Hydra" not in text


# ------------------------------------------------------------------- TensorBoard HParams
def _hparams_table(logdir: Path) -> tuple[list[tuple[str, bool]], list[str]]:
    """What TensorBoard's HParams dashboard gets from its backend for ``logdir``: the
    hyperparameters in its order, each with the flag that shows it, and the metrics."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    tb = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=mux)
    )
    rc = context.RequestContext()
    experiment = tb.experiment_from_metadata(
        rc, "", True, tb.hparams_metadata(rc, ""), tb.hparams_from_data_provider(rc, "", None)
    )
    hparams = [(h.name, h.differs) for h in experiment.hparam_infos]
    return hparams, [m.name.tag for m in experiment.metric_infos]


def _tiny_run(run_dir: Path, seed: int = 0) -> None:
    train(
        TrainConfig(
            seed=seed,
            total_steps=200,
            run_dir=str(run_dir),
            device="cpu",
            torch_threads=1,
            agent=SACConfig(hidden_sizes=[16], batch_size=16, learning_starts=100),
            eval=EvalConfig(every_steps=100, episodes=1),
            log=LogConfig(every_steps=50, progress="none"),
        )
    )


def test_a_single_runs_hparams_table_shows_the_keys_that_matter_first(tmp_path, monkeypatch):
    """TensorBoard shows the first five hyperparameters and the first five metrics of its list.
    For a single run they are what the run is (env id, lr, batch size, seed, total steps) and
    its eval returns, not ``agent.actor_norm`` ... and ``charts/SPS`` ... by name."""
    monkeypatch.delenv(HPARAMS_FIRST_ENV, raising=False)
    _tiny_run(tmp_path / "run")  # torch_threads=1: conftest gives the thread count back after
    hparams, metrics = _hparams_table(tmp_path / "run" / "tb")
    assert [name for name, _ in hparams[:5]] == sorted(KEY_HPARAMS)  # TensorBoard: shown ones by name
    assert [shown for _, shown in hparams] == [True] * 5 + [False] * (len(hparams) - 5)
    assert metrics[:5] == [
        "eval/mean_return",
        "eval/best_return",
        "charts/episodic_return",
        "eval/std_return",
        "charts/SPS",
    ]
    assert set(scalars(tmp_path / "run")) <= set(METRIC_TAGS)  # every tag the run wrote is listed


def test_the_command_lines_keys_are_shown_first_too(tmp_path, monkeypatch):
    """A sweep's jobs name their swept keys (the CLI's callback sets the variable): two runs
    that differ in agent.tau show it among the first columns."""
    from rl_repara.training.logger import Logger

    monkeypatch.setenv(HPARAMS_FIRST_ENV, "agent.tau,search,no.such_key")
    for seed, tau in enumerate([0.005, 0.02]):
        config = TrainConfig(seed=seed)
        config.agent.tau = tau
        logger = Logger(tmp_path / f"{seed}_seed{seed}" / "tb")
        logger.hparams(config.to_dict())
        logger.close()
    hparams, _ = _hparams_table(tmp_path)
    shown = [name for name, differs in hparams if differs]
    assert shown == sorted([*KEY_HPARAMS, "agent.tau"])
