"""``train(config)``: one run from a config to its result, without Hydra.

What happens before the loop: the resume point (which file, which config), the checks that must
come before anything is built (device, CUDA graphs, precision, a C++ compiler), the run-dir lock, the seeds;
then a ``trainer.Trainer`` runs, and its envs are closed whatever happens.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import torch

from rl_repara.agent.requirements import check_requirements
from rl_repara.device import resolve_device
from rl_repara.rng import seed_everything
from rl_repara.training.checkpoint import (
    RunDirLock,
    check_fresh_run_dir,
    remove_stale_temp_files,
    set_aside_unreadable_last,
)
from rl_repara.training.config import TrainConfig
from rl_repara.training.resume import RESUMABLE_KEYS, get_key, resume_point
from rl_repara.training.signals import StopSignals
from rl_repara.training.trainer import Trainer, TrainResult

__all__ = ["train"]


def _default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / cfg.env.id / f"seed{cfg.seed}-{stamp}"


def train(config: TrainConfig) -> TrainResult:
    """Train SAC as ``config`` says; resume in place when ``config.resume`` names a run dir.

    A resume continues the saved config, taking from ``config`` only the keys a resume may
    change (``resume.RESUMABLE_KEYS``: total_steps, device, log.progress, video).
    Checkpoints go to ``<run_dir>/checkpoints/last.pt`` every ``checkpoint.every_steps``, at
    the end, and on SIGINT/SIGTERM (after which this returns with ``interrupted=True``). In a
    submitit (SLURM) job the preemption signal also checkpoints first; then submitit's own
    handler requeues the job and exits. Raises ``ConfigError`` for user mistakes, ``EnvError``
    for broken envs and ``TrainingDiverged`` for NaN losses (all ``RLReparaError``).
    """
    state, resumed_from = None, None
    if config.resume:
        point = resume_point(config.resume, {k: get_key(config, k) for k in RESUMABLE_KEYS})
        config, state, resumed_from = point.config, point.state, point.file
        del point
    config.validate()
    device = resolve_device(config.device)
    check_requirements(config.agent, device)  # before anything is created
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    run_dir = Path(config.run_dir) if config.run_dir else _default_run_dir(config)
    with StopSignals() as stop, RunDirLock(run_dir):  # the lock makes the dir
        remove_stale_temp_files(run_dir / "checkpoints")
        if resumed_from is None:
            check_fresh_run_dir(run_dir)
        else:
            set_aside_unreadable_last(resumed_from)  # keep the good last.prev.pt it came from
        seed_everything(config.seed)  # before any network is built
        trainer = Trainer(config, run_dir, device)
        try:
            if state is not None:
                trainer.load_state_dict(state)
                del state
            else:
                trainer.start()
            result = trainer.run(stop)
        finally:
            trainer.close()
    stop.pass_on()  # a scheduler's preemption signal: now submitit requeues the job and exits
    return result
