"""TensorBoard logging and the console progress display."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Logger", "Progress", "LOSS_TAGS"]

# update-info key -> TensorBoard tag
LOSS_TAGS = {
    "qf_loss": "losses/qf_loss",
    "actor_loss": "losses/actor_loss",
    "alpha": "losses/alpha",
    "alpha_loss": "losses/alpha_loss",
    "entropy": "losses/entropy",
    "qf_values": "losses/qf_values",
}


class Logger:
    """Scalars to TensorBoard event files in ``log_dir``; the x-axis is env steps.

    ``purge_step`` (on resume: the checkpoint step + 1) drops events a killed run wrote after its
    last checkpoint,
    so the resumed curve continues without duplicates.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), step)

    def hparams(self, config: Mapping[str, Any]) -> None:
        """The whole config as a text summary (a JSON block)."""
        text = "```\n" + json.dumps(config, indent=2, default=str) + "\n```"
        self.writer.add_text("hparams", text, 0)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Progress:
    """A tqdm bar on a terminal; plain lines every ``log.every_steps`` elsewhere (CI logs).

    ``mode``: "auto" (bar when stdout is a TTY), "bar", "plain" or "none".
    """

    def __init__(self, total: int, initial: int, mode: str = "auto") -> None:
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "plain"
        self.mode, self.total = mode, total
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, n: int, stats: Mapping[str, float]) -> None:
        """Advance the bar by ``n`` env steps and show ``stats`` beside it."""
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()}, refresh=False)

    def line(self, step: int, stats: Mapping[str, float]) -> None:
        """A plain status line (plain mode only), e.g. at each log interval."""
        if self.mode == "plain":
            parts = " ".join(f"{k}={v:.4g}" for k, v in stats.items())
            print(f"[rl_repara] step {step}/{self.total} {parts}", flush=True)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message)
        elif self.mode != "none":
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
