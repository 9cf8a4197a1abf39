"""The prepare phase of a run: what is settled before anything is built or any dir is made.

``prepare`` reads the resume point (once: the CLI, which reads it first to say where it
resumes, hands it over), validates the config, resolves the device and runs the machine checks
(``requirements.check_requirements``: CUDA graphs, bf16 hardware, a C++ compiler), and settles
``agent.compile=auto`` for a fresh run (``compile_choice``). The run
phase (``train.run``) then builds the parts (``build.build``) and runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import torch

from rl_repara.agent.compile_choice import choose_compile
from rl_repara.agent.requirements import check_requirements
from rl_repara.device import resolve_device
from rl_repara.training.config import TrainConfig
from rl_repara.training.resume import RESUMABLE_KEYS, ResumePoint, get_key, resume_point

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """A run ready to build: the ``config`` it runs (for a resume, the saved one), its checked
    ``device``, its ``run_dir``, and for a resume the checkpoint ``resumed_from`` and the
    training ``state`` read from it (``take_state`` hands that over)."""

    config: TrainConfig
    device: torch.device
    run_dir: Path
    resumed_from: Optional[Path] = None
    state: Optional[dict[str, Any]] = None
    compile_note: str = ""  # what agent.compile=auto chose, said once the run is built

    def take_state(self) -> Optional[dict[str, Any]]:
        """The saved training state, handed over once: after this call ``Prepared`` no longer
        keeps it (nor the checkpoint file's mapped tensors) alive."""
        state, self.state = self.state, None
        return state


def prepare(run: TrainConfig | ResumePoint) -> Prepared:
    """Settle a run before anything is built: ``run`` is a fresh config, a config whose
    ``resume`` names a run dir (its checkpoint is read here, the keys a resume may change taken
    from ``run``: ``resume.RESUMABLE_KEYS``), or a ``ResumePoint`` already read (the CLI's).

    Raises ``ConfigError`` for an invalid config or a machine the config cannot run on, and
    ``CheckpointError`` for a checkpoint that cannot be resumed.
    """
    if isinstance(run, ResumePoint):
        point: Optional[ResumePoint] = run
    elif run.resume:
        point = resume_point(run.resume, {k: get_key(run, k) for k in RESUMABLE_KEYS})
    else:
        point = None
    config = run if point is None else point.config
    assert isinstance(config, TrainConfig)
    config.validate()
    device = resolve_device(config.device)
    check_requirements(config.agent, device)
    run_dir = Path(config.run_dir) if config.run_dir else _default_run_dir(config)
    if point is None:
        return Prepared(config, device, run_dir, compile_note=_settle_compile(config, device))
    return Prepared(config, device, run_dir, point.file, point.state)


def _settle_compile(config: TrainConfig, device: torch.device) -> str:
    """A fresh run's ``agent.compile=auto`` becomes true or false here, and is saved so in the
    run's config: a resume keeps the update it started with (compiled and eager updates differ
    in the last bits, so a switch would break a bit-exact resume). Returns the line saying which
    (the run prints it once its parts are built, so that a user error stays one line alone).
    A scheduled lr with ``lr_decay_updates=0`` decays over the run's updates."""
    agent = config.agent
    updates = max(0, config.total_steps - agent.learning_starts) * agent.utd
    choice, why = choose_compile(agent, device, updates)
    agent.compile = choice
    if agent.lr_schedule != "constant" and agent.lr_decay_updates == 0:
        agent.lr_decay_updates = max(updates, 1)  # decay over the whole run
    return why


def _default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<env id>/seed<seed>-<time>``, for a library run that names no run dir."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / cfg.env.id / f"seed{cfg.seed}-{stamp}"
