"""``CheckpointWriter``: when and where a training run writes its checkpoints.

``checkpoints/last.pt`` holds the whole training state (periodically, at the end, and when a
signal stops the run); ``checkpoints/best.pt`` holds only the policy of the best evaluation.
Every write is atomic (``checkpoint.save_atomic``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from rl_repara.console import note
from rl_repara.errors import CheckpointWriteError
from rl_repara.training.checkpoint import save_atomic

__all__ = ["CheckpointWriter"]

State = Callable[[], dict[str, Any]]


class CheckpointWriter:
    """Writes ``last.pt`` and ``best.pt`` under ``ckpt_dir``.

    ``state`` arguments are callables, so a state that is already on disk is not built again.
    """

    def __init__(self, ckpt_dir: str | Path) -> None:
        self.dir = Path(ckpt_dir)
        self.saved_step = -1

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    def last_good(self) -> str:
        """The path of the last complete checkpoint, for error messages."""
        return str(self.last) if self.last.exists() else "none written yet"

    def write_last(self, state: State, step: int) -> None:
        """Write ``last.pt`` unless this very step is on disk already."""
        if self.saved_step != step:
            save_atomic(state(), self.last)
            self.saved_step = step

    def write_periodic(self, state: State, step: int) -> None:
        """A failed periodic write (disk full, ...) is reported and training goes on: the state
        is still in memory, and the next periodic or final write tries again."""
        try:
            self.write_last(state, step)
        except CheckpointWriteError as exc:
            _warn(f"{exc}. Training continues; will retry.")

    def write_final(self, state: State, step: int, run_dir: Path) -> None:
        """The last write of a run; if the run dir cannot take it, the state goes to a rescue
        file in the temp dir so nothing is lost, and the error names both paths."""
        try:
            self.write_last(state, step)
        except CheckpointWriteError as exc:
            rescue = Path(tempfile.gettempdir()) / f"rl_repara-rescue-{os.getpid()}.pt"
            try:
                save_atomic(state(), rescue)
            except CheckpointWriteError:
                raise exc from None
            raise CheckpointWriteError(
                f"{exc}. The training state was saved instead to {rescue}; move it to "
                f"{self.last} and resume from {run_dir}."
            ) from None

    def write_best(self, state: dict[str, Any]) -> None:
        """``best.pt`` (policy only); a failed write is reported and training goes on."""
        try:
            save_atomic(state, self.dir / "best.pt", keep_previous=False)
        except CheckpointWriteError as exc:
            _warn(f"{exc}. Training continues.")


def _warn(message: str) -> None:
    """One ``[rl_repara] warning:`` line on stderr, whatever the progress mode (above the bar)."""
    note(f"warning: {message}")
