"""``train(config)``: one run from a config to its result, without Hydra.

A run has three phases, each done once and in one place: prepare (``prepare.prepare``: the
resume point, the config, the device and the machine checks, before anything is built), build
(``build.build``, inside ``Trainer``: envs, networks, learner, buffer) and run (``run`` below:
the run-dir lock, the seeds, the trainer's start or its saved state, then the loop; its envs
and logger are closed whatever happens). ``train`` is the three in a row; the CLI prepares
first (it has read the resume point already) and then calls ``run``.
"""

from __future__ import annotations

import torch

from rl_repara.console import say
from rl_repara.rng import seed_everything
from rl_repara.training.checkpoint import (
    RunDirLock,
    check_fresh_run_dir,
    remove_stale_temp_files,
    set_aside_unreadable_last,
)
from rl_repara.training.config import TrainConfig
from rl_repara.training.loop import run_loop
from rl_repara.training.prepare import Prepared, prepare
from rl_repara.training.signals import StopSignals
from rl_repara.training.trainer import Trainer, TrainResult

__all__ = ["train", "run"]


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
    return run(prepare(config))


def run(prepared: Prepared) -> TrainResult:
    """The run phase of a prepared run (``prepare.prepare``): lock the run dir (which makes
    it), seed, build a ``Trainer``, start it or load the prepared state into it (which
    ``prepared`` then no longer holds), and train (``loop.run_loop``)."""
    config, run_dir, resumed_from = prepared.config, prepared.run_dir, prepared.resumed_from
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    with StopSignals() as stop, RunDirLock(run_dir):  # the lock makes the dir
        remove_stale_temp_files(run_dir / "checkpoints")
        if resumed_from is None:
            check_fresh_run_dir(run_dir)
        else:
            set_aside_unreadable_last(resumed_from)  # keep the good last.prev.pt it came from
        seed_everything(config.seed)  # before any network is built
        trainer = Trainer(config, run_dir, prepared.device)
        if prepared.compile_note:
            say(prepared.compile_note)
        try:
            state = prepared.take_state()
            if state is not None:
                trainer.load_state_dict(state)
                del state
            else:
                trainer.start()
            result = run_loop(trainer, stop)
        finally:
            trainer.close()
    stop.pass_on()  # a scheduler's preemption signal: now submitit requeues the job and exits
    return result
