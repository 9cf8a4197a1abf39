"""What resuming a run dir means: which checkpoint, which config, and what a resume may change.

The library's ``train`` and the CLI both resume through ``resume_point``; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from rl_repara.errors import CheckpointError, ConfigError
from rl_repara.training.checkpoint import load_latest
from rl_repara.training.config import TrainConfig

__all__ = ["RESUMABLE_KEYS", "STATE_VERSION", "ResumePoint", "resume_point", "run_dir_of", "get_key"]

# What a resume may change; every other value comes from the saved config. ``torch_threads``
# stays: it changes the order of float sums, so the resumed run would not be the same run.
RESUMABLE_KEYS = ("total_steps", "device", "log.progress", "video")

# The training state's layout. 2: replay actions and learning in the unit box, SAME_STEP
# collection. Older states cannot be resumed (their policies still load for evaluation).
STATE_VERSION = 2


@dataclass
class ResumePoint:
    """A checkpoint to resume: the ``file`` read, the ``run_dir`` that holds it, the ``config``
    to continue with (``config.resume`` names ``file``) and the saved training ``state``."""

    file: Path
    run_dir: Path
    config: TrainConfig
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["counters"]["global_step"])


def run_dir_of(file: Path) -> Path:
    """The run dir that holds a checkpoint file (``RUN/checkpoints/last.pt`` → ``RUN``)."""
    return file.parent.parent if file.parent.name == "checkpoints" else file.parent


def resume_point(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ResumePoint:
    """Read the checkpoint to resume under ``path`` (a run dir, its ``checkpoints`` dir or a
    checkpoint file; ``last.prev.pt`` when ``last.pt`` is unreadable) and the config to resume
    with: the saved one, with ``overrides`` (dotted keys among ``RESUMABLE_KEYS``) applied.

    The tensors are memory-mapped, so reading the config alone is cheap.
    """
    file, state = load_latest(path, mmap=True)
    if "buffer" not in state:
        raise CheckpointError(
            f"{file} holds only a policy (best.pt is written for evaluation); resume from the "
            "run dir or its checkpoints/last.pt."
        )
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{file} was written by an older rl_repara (training state version "
            f"{state.get('version', 1)}, this one reads {STATE_VERSION}) and cannot be resumed; "
            "its policy still loads for evaluation (rl-repara-eval, load_policy)."
        )
    config = TrainConfig.from_dict(state["config"])
    for key, value in (overrides or {}).items():
        if key not in RESUMABLE_KEYS:
            raise ConfigError(f"a resume cannot change {key}; it may change {', '.join(RESUMABLE_KEYS)}.")
        _set(config, key, value)
    run_dir = run_dir_of(file)
    config.resume, config.run_dir = str(file), str(run_dir)
    return ResumePoint(file, run_dir, config, state)


def get_key(config: TrainConfig, key: str) -> Any:
    """The value of a dotted key (``"log.progress"``)."""
    obj: Any = config
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _set(config: TrainConfig, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    obj: Any = config
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, leaf, value)
