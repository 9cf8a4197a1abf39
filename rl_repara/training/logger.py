"""TensorBoard logging: scalars, the HParams summary, the env-step rate (what the user reads in
the terminal is ``console``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "Logger",
    "StepRate",
    "LOSS_TAGS",
    "METRIC_TAGS",
    "KEY_HPARAMS",
    "HPARAMS_FIRST_ENV",
    "flat_hparams",
    "hparams_first",
]

# update-info key -> TensorBoard tag
LOSS_TAGS = {
    "qf_loss": "losses/qf_loss",
    "actor_loss": "losses/actor_loss",
    "alpha": "losses/alpha",
    "alpha_loss": "losses/alpha_loss",
    "entropy": "losses/entropy",
    "qf_values": "losses/qf_values",
}

# Every scalar tag a run writes, in the order TensorBoard's HParams table lists them as metrics
# (it shows the first five): the evaluation returns first.
METRIC_TAGS = (
    "eval/mean_return",
    "eval/best_return",
    "charts/episodic_return",
    "eval/std_return",
    "charts/SPS",
    "charts/episodic_length",
    "charts/SPS_warmup",
    *LOSS_TAGS.values(),
)

# The keys that say what a run is: first in TensorBoard's HParams table (see Logger.hparams).
KEY_HPARAMS = ("env.id", "agent.lr", "agent.batch_size", "seed", "total_steps")
# More keys to show first, comma-separated: the CLI puts the keys of its command line (a
# sweep's swept keys among them) here.
HPARAMS_FIRST_ENV = "RL_REPARA_HPARAMS_FIRST"

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


def hparams_first(flat: Mapping[str, Any]) -> list[str]:
    """The keys of ``flat`` that TensorBoard's HParams table shows first: ``KEY_HPARAMS``, then
    those named in ``$RL_REPARA_HPARAMS_FIRST`` (comma-separated)."""
    extra = [k.strip() for k in os.environ.get(HPARAMS_FIRST_ENV, "").split(",")]
    return [k for k in dict.fromkeys([*KEY_HPARAMS, *extra]) if k in flat]


def _experiment_summary(flat: Mapping[str, Any], first: list[str]) -> Any:
    """The HParams plugin's experiment summary: every key of ``flat`` (``first`` first, marked
    as differing, so the table shows them), and ``METRIC_TAGS`` in their order. No domains:
    a sweep's runs share the first run's summary, and a domain from one run's values would
    offer only that run's value as a filter."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    def info(key: str) -> Any:
        value = flat[key]
        kind = "BOOL" if isinstance(value, bool) else "STRING" if isinstance(value, str) else "FLOAT64"
        data_type = api_pb2.DataType.Value(f"DATA_TYPE_{kind}")
        return api_pb2.HParamInfo(name=key, type=data_type, differs=key in first)

    keys = [*first, *(k for k in flat if k not in first)]
    experiment = api_pb2.Experiment(
        hparam_infos=[info(k) for k in keys],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in METRIC_TAGS],
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment, version=metadata.PLUGIN_DATA_VERSION)
    value = Summary.Value(tag=metadata.EXPERIMENT_TAG, metadata=metadata.create_summary_metadata(data))
    return Summary(value=[value])


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

        TensorBoard's table shows five hyperparameter and five metric columns until asked for
        more. It lists first the keys marked as differing across runs, the others by name, and
        the metrics in the order this run's experiment summary gives. Left to itself it marks
        the keys whose values differ (none, for a single run: its first columns would be
        ``agent.actor_norm``, ``agent.actor_q``, ...) and sorts the metrics by name (the eval
        return sixth). So the summary written here marks ``KEY_HPARAMS`` and the keys named in
        the ``HPARAMS_FIRST_ENV`` variable (the CLI's command-line keys: a sweep's swept keys)
        as the ones to show, and lists ``METRIC_TAGS`` with the eval returns first."""
        from torch.utils.tensorboard.summary import hparams

        flat = flat_hparams(config)
        text = "```\n" + json.dumps(config, indent=2, default=str) + "\n```"
        self.writer.add_text("hparams", text, 0)
        _experiment, session_start, _session_end = hparams(flat, {})
        file_writer = self.writer.file_writer
        assert file_writer is not None
        file_writer.add_summary(_experiment_summary(flat, hparams_first(flat)))
        file_writer.add_summary(session_start)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
