"""TensorBoard logging and the console progress display."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Logger", "Progress", "StepRate", "LOSS_TAGS", "flat_hparams"]

# update-info key -> TensorBoard tag
LOSS_TAGS = {
    "qf_loss": "losses/qf_loss",
    "actor_loss": "losses/actor_loss",
    "alpha": "losses/alpha",
    "alpha_loss": "losses/alpha_loss",
    "entropy": "losses/entropy",
    "qf_values": "losses/qf_values",
}

# Config keys that say where and how a run is shown, not what it learns: not hyperparameters.
_NOT_HPARAMS = ("run_dir", "resume", "log.", "checkpoint.", "video", "on_nonfinite")


def flat_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config`` flattened to ``{"agent.lr": 0.0003, ...}`` with values the hparams plugin
    takes (bool, int, float, str): lists, dicts and None become their text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name.startswith(_NOT_HPARAMS):
            continue
        if isinstance(value, Mapping) and value:
            out.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


def _wait_past_event_files(log_dir: Path) -> None:
    """TensorBoard reads a dir's event files in name order, and a name starts with the second
    it was created in, then a per-process counter that sorts as text ("10" before "9"). A
    resume in the same second as the run it continues (tests) could sort before it; wait for
    the next second so it sorts after."""
    stamps = []
    for path in log_dir.glob("events.out.tfevents.*"):
        parts = path.name.split(".")
        if len(parts) > 3 and parts[3].isdigit():
            stamps.append(int(parts[3]))
    while stamps and int(time.time()) <= max(stamps):
        time.sleep(0.05)


class StepRate:
    """Env steps per second since the last ``lap``, tagged by phase: ``charts/SPS_warmup``
    while the actions are uniform random and nothing is learned (thousands of steps per
    second), ``charts/SPS`` once updates run. Kept apart, each reads on its own axis."""

    def __init__(self, step: int, learning_starts: int) -> None:
        self.learning_starts = learning_starts
        self.time, self.step = time.perf_counter(), step

    def lap(self, step: int) -> tuple[str, float]:
        """``(tag, steps per second)`` of the window ending at env step ``step``."""
        now = time.perf_counter()
        sps = (step - self.step) / max(now - self.time, 1e-9)
        tag = "charts/SPS_warmup" if step <= self.learning_starts else "charts/SPS"
        self.time, self.step = now, step
        return tag, sps


class Logger:
    """Scalars to TensorBoard event files in ``log_dir``; the x-axis is env steps.

    ``purge_step`` (on resume: the checkpoint step + 1) drops events a killed run wrote after its
    last checkpoint,
    so the resumed curve continues without duplicates.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if purge_step is not None:
            _wait_past_event_files(Path(log_dir))
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), step)

    def hparams(self, config: Mapping[str, Any]) -> None:
        """The run's hyperparameters (``flat_hparams(config)``) for TensorBoard's HParams
        dashboard, and the whole config as text (a JSON block).

        Only the plugin's session-start summary is written, into this run's own event file.
        Without an experiment summary TensorBoard builds the table from all runs of the logdir:
        every key any run has is a column, the keys whose values differ across the runs come
        first (and are shown by default), and every scalar tag, ``eval/mean_return`` and
        ``eval/best_return`` among them, is a metric. (With one experiment summary per run it
        would pick one run's keys for all, and list them alphabetically.)"""
        from torch.utils.tensorboard.summary import hparams

        text = "```\n" + json.dumps(config, indent=2, default=str) + "\n```"
        self.writer.add_text("hparams", text, 0)
        _experiment, session_start, _session_end = hparams(flat_hparams(config), {})
        file_writer = self.writer.file_writer
        assert file_writer is not None
        file_writer.add_summary(session_start)

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
