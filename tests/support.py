"""What several test modules share, written once: the repository's paths, the installed
commands, running them as a user would, and reading back what a run wrote.

Test modules import these (``from support import REPO, ok``; ``tests/`` is on ``sys.path`` through
pytest's ``pythonpath`` setting); no test module imports another test module. Fixtures live in
``conftest.py``, the test envs in ``helpers_envs.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, Sequence

import torch
from torch import nn

from rl_repara import QEnsemble

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAIN = str(BIN / "rl-repara-train")
EVAL = str(BIN / "rl-repara-eval")
EXPORT = str(BIN / "rl-repara-export")


# ------------------------------------------------------------------- commands as subprocesses
def command_env() -> dict[str, str]:
    """This process's environment for a command: unbuffered output, and no ``HYDRA_FULL_ERROR``
    (a user's error is then one line, not a traceback)."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 240, env: dict | None = None) -> CompletedProcess:
    """``cmd`` run in ``cwd`` with its output captured (``command_env()`` unless ``env``)."""
    env = env or command_env()
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def ok(cmd: list[str], cwd: Path, timeout: float = 240) -> CompletedProcess:
    """``run``, asserting exit code 0 (the message shows the command and both outputs)."""
    proc = run(cmd, cwd, timeout)
    assert proc.returncode == 0, f"{cmd}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def assert_clean_error(proc: CompletedProcess, prog: str, expected: str, code: int = 2) -> None:
    """A user error as the user must see it: exit ``code``, no traceback, and stderr exactly one
    line ``<prog>: error: ...`` that contains ``expected``."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out, out
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"{prog}: error: "), proc.stderr
    assert expected in errors[0], errors[0]


# ------------------------------------------------------------------------ what a run wrote
def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of ``run_dir/tb`` as ``[(step, value), ...]``, all event files merged
    the way TensorBoard shows them (read with TensorBoard's own reader, nothing sampled away)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def saved(run_dir: Path, name: str = "last.pt") -> dict:
    """The checkpoint ``run_dir/checkpoints/<name>`` as a plain dict, on the CPU."""
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)


# --------------------------------------------------------------------------------- configs
def composed(name: str = "config", overrides: Sequence[str] = ()) -> Any:
    """The shipped config ``conf/<name>.yaml`` composed by Hydra's compose API with
    ``overrides``, as the schema object (``OmegaConf.to_object``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rl_repara.cli.schemas import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides))
    return OmegaConf.to_object(cfg)


# -------------------------------------------------------------------------------- networks
def separate_mlps(ensemble: QEnsemble) -> list[nn.Sequential]:
    """One ``nn.Sequential`` (Linear, ReLU, ..., Linear) per member of a ``QEnsemble``, holding
    a copy of that member's weights: an independent reference for the batched ensemble."""
    nets = []
    for k in range(ensemble.num_critics):
        layers: list[nn.Module] = []
        for i, layer in enumerate(ensemble.layers):
            linear = nn.Linear(layer.in_dim, layer.out_dim, dtype=layer.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(layer.weight[k].T)
                linear.bias.copy_(layer.bias[k, 0])
            layers.append(linear)
            if i < len(ensemble.layers) - 1:
                layers.append(nn.ReLU())
        nets.append(nn.Sequential(*layers))
    return nets
