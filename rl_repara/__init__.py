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

from .agent.learner import SAC, SACConfig
from .data.buffer import Batch, ReplayBuffer
from .deploy.loading import load_policy
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
from .nn.critics import QEnsemble
from .nn.distributions import TanhNormal
from .nn.policies import TanhGaussianPolicy
from .training.config import CheckpointConfig, EnvConfig, EvalConfig, LogConfig, TrainConfig
from .training.train import train
from .training.trainer import TrainResult
from .version import __version__ as __version__

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
