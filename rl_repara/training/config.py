"""``TrainConfig``: everything a training run needs, as plain dataclasses.

The same dataclasses back the Hydra CLI (registered in a ConfigStore by ``cli.py``), so a
config typo or a wrong type fails there with the key named; ``validate`` checks the values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

from rl_repara.agent.config import SACConfig
from rl_repara.errors import ConfigError

__all__ = ["EnvConfig", "EvalConfig", "CheckpointConfig", "LogConfig", "TrainConfig"]


@dataclass
class EnvConfig:
    """Which env to train on."""

    id: str = "Pendulum-v1"  # any registered Gymnasium id with a bounded Box action space
    kwargs: Dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make


@dataclass
class EvalConfig:
    """Periodic deterministic evaluation on a separate env."""

    every_steps: int = 5_000  # 0 turns periodic evaluation off
    episodes: int = 10  # deterministic episodes per evaluation
    stop_return: Optional[float] = None  # stop early once the eval mean return reaches this


@dataclass
class CheckpointConfig:
    """When ``checkpoints/last.pt`` is written (always also at the end and on SIGINT/SIGTERM)."""

    every_steps: int = 50_000  # 0: only at the end and on SIGINT/SIGTERM


@dataclass
class LogConfig:
    """TensorBoard logging and console progress."""

    every_steps: int = 1_000  # losses to TensorBoard (and a plain line off a TTY)
    progress: str = "auto"  # auto | bar | plain | none


@dataclass
class TrainConfig:
    """A whole training run. ``train(TrainConfig(...))`` runs it; the Hydra CLI builds one."""

    env: EnvConfig = field(default_factory=EnvConfig)
    agent: SACConfig = field(default_factory=SACConfig)
    seed: int = 0
    total_steps: int = 20_000  # env steps, summed over the vector envs
    num_envs: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    run_dir: Optional[str] = None  # None: runs/<env id>/seed<seed>-<YYYYmmdd-HHMMSS>
    resume: Optional[str] = None  # a run dir to continue in place
    video: bool = False  # record one deterministic episode at the end (needs the video extra)
    torch_threads: int = 0  # 0: torch's default; sweeps on a small machine want 1 per job
    on_nonfinite: str = "error"  # error | skip: a NaN/inf observation or reward from the env

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first bad value."""
        checks = [
            (self.total_steps > 0, f"total_steps must be > 0; got {self.total_steps}"),
            (self.num_envs >= 1, f"num_envs must be >= 1; got {self.num_envs}"),
            (self.eval.every_steps >= 0, f"eval.every_steps must be >= 0; got {self.eval.every_steps}"),
            (self.eval.episodes >= 1, f"eval.episodes must be >= 1; got {self.eval.episodes}"),
            (
                self.checkpoint.every_steps >= 0,
                f"checkpoint.every_steps must be >= 0; got {self.checkpoint.every_steps}",
            ),
            (self.log.every_steps >= 1, f"log.every_steps must be >= 1; got {self.log.every_steps}"),
            (
                self.log.progress in ("auto", "bar", "plain", "none"),
                f"log.progress must be auto, bar, plain or none; got {self.log.progress!r}",
            ),
            (
                self.on_nonfinite in ("error", "skip"),
                f"on_nonfinite must be 'error' or 'skip'; got {self.on_nonfinite!r}",
            ),
            (self.torch_threads >= 0, f"torch_threads must be >= 0; got {self.torch_threads}"),
            (
                self.agent.batch_size <= self.agent.buffer_size,
                f"agent.batch_size ({self.agent.batch_size}) must be <= agent.buffer_size "
                f"({self.agent.buffer_size})",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg + ".")
        try:
            self.agent.validate()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of ``to_dict``."""
        d = dict(d)
        sub = {
            "env": EnvConfig,
            "agent": SACConfig,
            "eval": EvalConfig,
            "checkpoint": CheckpointConfig,
            "log": LogConfig,
        }
        for key, typ in sub.items():
            if key in d and isinstance(d[key], dict):
                d[key] = typ(**d[key])
        return cls(**d)
