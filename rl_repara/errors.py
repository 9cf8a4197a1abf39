"""Every error rl_repara raises on purpose, under one base class.

User code can ``except RLReparaError``; the CLI prints the message as one line and exits with
the class's ``exit_code``: 2 for a user mistake (a bad config, path or checkpoint), 1 for a
fault at run time (a broken env, a diverged run, a disk that will not take a checkpoint).
"""

from __future__ import annotations

__all__ = [
    "RLReparaError",
    "ConfigError",
    "CheckpointError",
    "VideoError",
    "CheckpointWriteError",
    "ExportWriteError",
    "EnvError",
    "TrainingDiverged",
]


class RLReparaError(Exception):
    """Base class of rl_repara's errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(RLReparaError, ValueError):
    """A user mistake: a bad config value, env id, path or missing extra."""

    exit_code = 2


class CheckpointError(ConfigError):
    """A checkpoint that was asked for is missing, truncated, foreign or holds the wrong thing."""


class VideoError(ConfigError):
    """A video cannot be written: a missing package or no off-screen rendering backend."""


class CheckpointWriteError(RLReparaError, RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the old file is untouched."""


class ExportWriteError(RLReparaError, RuntimeError):
    """An export could not be written for a fault of the machine (disk full, quota, I/O
    error); nothing partial is left. A path the user cannot write to is a ``ConfigError``."""


class EnvError(RLReparaError, RuntimeError):
    """The env broke the Gymnasium API or produced non-finite data."""


class TrainingDiverged(RLReparaError, RuntimeError):
    """A loss, weight or action became NaN/inf. The last good checkpoint is left untouched."""
