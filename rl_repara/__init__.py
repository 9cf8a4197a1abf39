"""rl_repara: SAC with a numerically stable, reparameterized tanh-Gaussian policy.

Public API::

    TanhNormal            the squashed Gaussian distribution (rsample, log_prob, mode)
    TanhGaussianPolicy    the actor network
    QEnsemble             N critics in one batched pass
    ReplayBuffer, Batch   transition storage
    SACConfig, SAC        the learner and its hyperparameters
    TrainConfig, train    the training loop, no Hydra needed
    load_policy           a trained policy from a checkpoint
    RLReparaError         the base of every error below (ConfigError, CheckpointError, ...)
"""

from .buffer import Batch, ReplayBuffer
from .config import CheckpointConfig, EnvConfig, EvalConfig, LogConfig, TrainConfig
from .critics import QEnsemble
from .distributions import TanhNormal
from .errors import (
    CheckpointError,
    CheckpointWriteError,
    ConfigError,
    EnvError,
    ExportWriteError,
    RLReparaError,
    TrainingDiverged,
    VideoError,
)
from .loading import load_policy
from .policies import TanhGaussianPolicy
from .sac import SAC, SACConfig
from .trainer import TrainResult
from .training import train

__version__ = "0.2.0"

__all__ = [
    "TanhNormal",
    "TanhGaussianPolicy",
    "QEnsemble",
    "ReplayBuffer",
    "Batch",
    "SACConfig",
    "SAC",
    "TrainConfig",
    "EnvConfig",
    "EvalConfig",
    "CheckpointConfig",
    "LogConfig",
    "train",
    "TrainResult",
    "load_policy",
    "RLReparaError",
    "ConfigError",
    "CheckpointError",
    "CheckpointWriteError",
    "ExportWriteError",
    "EnvError",
    "TrainingDiverged",
    "VideoError",
]
