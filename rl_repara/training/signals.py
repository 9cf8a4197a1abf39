"""``StopSignals``: SIGINT/SIGTERM (and a cluster's preemption signal) stop training cleanly."""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any, Optional

__all__ = ["StopSignals", "preempt_signal"]


def preempt_signal() -> Optional[int]:
    """The signal a cluster job gets shortly before it is stopped: submitit (Hydra's SLURM
    launcher) asks SLURM for SIGUSR2, or for the one named by ``SUBMITIT_PREEMPT_SIGNAL``."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper()
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)


class StopSignals:
    """While entered, SIGINT/SIGTERM set ``signum``; the loop checkpoints at the end of the
    iteration and exits. A second Ctrl-C raises ``KeyboardInterrupt`` at once.

    The preemption signal (SIGUSR2) is taken over only where a handler is already installed
    (submitit's, which requeues the job and exits): it too stops the loop with a checkpoint,
    and ``pass_on`` then calls that handler, so the requeued job resumes from this step
    rather than from the last periodic checkpoint."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._old: dict[int, Any] = {}
        self._preempt = preempt_signal()

    def handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM, self._preempt):
            if sig is None or (sig == self._preempt and not callable(signal.getsignal(sig))):
                continue
            try:
                self._old[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def pass_on(self) -> None:
        """After the checkpoint: hand the preemption signal to the handler it was meant for."""
        old = self._old.get(self.signum) if self.signum is not None and self.signum == self._preempt else None
        if callable(old):
            old(self.signum, None)
