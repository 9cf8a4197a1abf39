"""A run's phases happen once each, in one place: the machine checks (once, before anything is
built), the checkpoint read of a resume (once, though the CLI reads it before ``train`` runs),
the networks (built once), and the logger (open before the first env step).

The command line runs in-process (``train_main`` with ``sys.argv`` set), with every function
of interest wrapped to record, in order, what the run did.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import rl_repara.cli.main as cli_main
from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, train
from rl_repara.agent import learner as learner_mod
from rl_repara.agent import requirements
from rl_repara.data.collector import Collector
from rl_repara.nn.critics import QEnsemble
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.config import LogConfig
from rl_repara.training.logger import Logger
from rl_repara.training.trainer import Trainer

SMALL = ["agent.learning_starts=100", "agent.batch_size=32", "agent.hidden_sizes=[32,32]"]
SMALL += ["eval.every_steps=0", "log.progress=none"]

Event = tuple[str, str]  # (what happened, the module that asked for it)


@pytest.fixture
def events(monkeypatch) -> list[Event]:
    """What the run does, in order: ``("check", caller)`` for each machine check asked for
    (``check_requirements`` or ``check_cudagraphs`` called from outside ``requirements``),
    ``("resolve_device", caller)``, ``("read", "")`` for each ``torch.load``, and the
    constructions and steps: ``Collector``, ``policy``, ``critics``, ``SAC``, ``Logger``,
    ``env_step``, ``scalars``."""
    log: list[Event] = []

    def caller() -> str:
        return str(sys._getframe(2).f_globals.get("__name__", ""))

    def spy_everywhere(module: Any, name: str, label: str) -> None:
        real = getattr(module, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            who = caller()
            if who != requirements.__name__:  # check_requirements' own calls are one check
                log.append((label, who))
            return real(*args, **kwargs)

        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("rl_repara") and getattr(mod, name, None) is real:
                monkeypatch.setattr(mod, name, spy)

    def spy_method(cls: type, name: str, label: str) -> None:
        real: Callable[..., Any] = getattr(cls, name)

        def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
            log.append((label, ""))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, spy)

    spy_everywhere(requirements, "check_requirements", "check")
    spy_everywhere(requirements, "check_cudagraphs", "check")
    spy_everywhere(sys.modules["rl_repara.device"], "resolve_device", "resolve_device")
    real_load = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        log.append(("read", ""))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    spy_method(Collector, "__init__", "Collector")
    spy_method(Collector, "step", "env_step")
    spy_method(TanhGaussianPolicy, "__init__", "policy")
    spy_method(QEnsemble, "__init__", "critics")
    spy_method(learner_mod.SAC, "__init__", "SAC")
    spy_method(Logger, "__init__", "Logger")
    spy_method(Logger, "scalars", "scalars")
    return log


@pytest.fixture
def cli(monkeypatch, cli_process) -> Callable[..., None]:
    """``cli(*args)``: ``rl-repara-train *args`` in this process; the process-wide state the
    command sets (environment, warning display, Hydra's log handlers) is given back after
    (``cli_process``)."""

    def run(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["rl-repara-train", *args])
        cli_main.train_main()

    return run


def _counts(events: list[Event]) -> Counter[str]:
    return Counter(what for what, _ in events)


def _the_trainers_checks(events: list[Event]) -> list[Event]:
    """The machine checks that the run's phases (and the CLI) ask for; the learner's own
    (``SAC.__init__``, for users who build one directly) are left out."""
    return [e for e in events if e[0] == "check" and e[1] != learner_mod.__name__]


def _assert_each_phase_once(events: list[Event]) -> None:
    counts = _counts(events)
    checks = _the_trainers_checks(events)
    assert len(checks) == 1, f"machine checks asked for {len(checks)} times: {checks}"
    assert counts["resolve_device"] == 1, "the device is resolved more than once"
    first_build = next(i for i, (what, _) in enumerate(events) if what == "Collector")
    assert events.index(checks[0]) < first_build, "the machine is checked after the build began"
    assert (counts["policy"], counts["critics"], counts["SAC"]) == (1, 1, 1)
    assert counts["Logger"] == 1
    kinds = [what for what, _ in events]
    assert kinds.index("Logger") < kinds.index("env_step"), "the logger opens after the first step"


def test_a_fresh_cli_run_checks_builds_and_opens_the_logger_once(tmp_path, events, cli):
    cli("total_steps=300", f"hydra.run.dir={tmp_path / 'run'}", *SMALL)
    assert _counts(events)["read"] == 0
    _assert_each_phase_once(events)


def test_a_cli_resume_reads_the_checkpoint_once(tmp_path, events, cli):
    run_dir = tmp_path / "run"
    cli("total_steps=300", f"hydra.run.dir={run_dir}", *SMALL)
    events.clear()
    cli(f"resume={run_dir}", "total_steps=450", f"hydra.run.dir={run_dir}", *SMALL)
    assert _counts(events)["read"] == 1, "the CLI and train() each read the checkpoint"
    _assert_each_phase_once(events)
    assert _counts(events)["env_step"] == 150  # it did resume, at step 300


def test_a_library_resume_reads_the_checkpoint_once(tmp_path, events):
    config = TrainConfig(
        total_steps=200,
        run_dir=str(tmp_path),
        agent=SACConfig(hidden_sizes=[8], batch_size=8, learning_starts=100),
        eval=EvalConfig(every_steps=0),
        log=LogConfig(progress="none"),
    )
    train(config)
    events.clear()
    result = train(TrainConfig(resume=str(tmp_path), total_steps=250, log=LogConfig(progress="none")))
    assert result.global_step == 250
    assert _counts(events)["read"] == 1
    _assert_each_phase_once(events)


def test_a_trainer_logs_from_its_first_step(tmp_path, events):
    """The logger opens when the trainer begins (``start``), not when the loop starts: a
    trainer stepped by hand logs the first episode it ends."""
    cfg = TrainConfig(
        env=EnvConfig(id="Pendulum-v1"),
        device="cpu",
        agent=SACConfig(hidden_sizes=[8], batch_size=8, learning_starts=10**6, buffer_size=1000),
        eval=EvalConfig(every_steps=0),
    )
    cfg.validate()
    trainer = Trainer(cfg, Path(tmp_path), torch.device("cpu"))
    try:
        trainer.start()
        while trainer.global_step < 200:  # Pendulum's episodes end at 200 steps
            trainer.collect()
    finally:
        trainer.close()
    kinds = [what for what, _ in events]
    assert kinds.index("Logger") < kinds.index("env_step")
    assert "scalars" in kinds, "the first episode's return was not logged"


def test_the_machine_is_checked_once_in_the_whole_process(tmp_path, events, cli):
    cli("total_steps=150", f"hydra.run.dir={tmp_path / 'run'}", *SMALL)
    assert [what for what, _ in events].count("check") == 1
