"""The training loop's schedule: when a ``Trainer`` logs, evaluates, checkpoints and stops.

Each iteration is one ``collect`` and one ``learn``; after it, whatever fell due in the env
steps it took: the losses and the step rate every ``log.every_steps`` (and once when the
warm-up ends), an evaluation every ``eval.every_steps``, a checkpoint every
``checkpoint.every_steps``. The loop stops at ``total_steps``, on a signal, or once an
evaluation reaches ``eval.stop_return``; then a final evaluation and checkpoint.
"""

from __future__ import annotations

from rl_repara.console import Progress
from rl_repara.training.logger import StepRate
from rl_repara.training.signals import StopSignals
from rl_repara.training.trainer import Trainer, TrainResult

__all__ = ["run_loop"]


def _crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in ``(before, after]``."""
    return every > 0 and after // every > before // every


def _solved(trainer: Trainer) -> bool:
    """Whether the last evaluation reached ``eval.stop_return`` (when one is set)."""
    target = trainer.cfg.eval.stop_return
    return target is not None and trainer.last_eval is not None and trainer.last_eval >= target


def run_loop(trainer: Trainer, stop: StopSignals) -> TrainResult:
    """Train a begun ``trainer`` (``start()`` or ``load_state_dict()``) to ``total_steps``, a
    signal, or ``eval.stop_return``; evaluate the finished policy and checkpoint at the end."""
    cfg, resumed_at = trainer.cfg, trainer.global_step
    progress = Progress(cfg.total_steps, resumed_at, cfg.log.progress)
    rate = StepRate(resumed_at, cfg.agent.learning_starts)
    try:
        while trainer.global_step < cfg.total_steps and stop.signum is None and not _solved(trainer):
            before = trainer.global_step
            trainer.collect()
            trainer.learn()
            after = trainer.global_step
            warmup_ended = before < cfg.agent.learning_starts <= after
            if _crossed(before, after, cfg.log.every_steps) or warmup_ended:
                trainer.log_losses(rate.lap(after), progress)
            if trainer.eval_env is not None and _crossed(before, after, cfg.eval.every_steps):
                trainer.evaluate(progress)
            progress.update(after - before, trainer.bar_stats())
            if _crossed(before, after, cfg.checkpoint.every_steps):
                trainer.checkpoints.write_periodic(trainer.state_dict, after)
        interrupted = stop.signum is not None
        final_eval_due = trainer.last_eval_step != trainer.global_step
        if trainer.eval_env is not None and not interrupted and final_eval_due:
            trainer.evaluate(progress)  # a final evaluation of the finished policy
        trainer.checkpoints.write_final(trainer.state_dict, trainer.global_step, trainer.run_dir)
    finally:
        progress.close()
        trainer.logger.flush()
    if interrupted:
        print(
            f"[rl_repara] stopped by signal {stop.signum} at step {trainer.global_step}; "
            f"checkpoint saved. Resume with: rl-repara-train resume={trainer.run_dir}",
            flush=True,
        )
    return TrainResult(
        trainer.run_dir, trainer.global_step, trainer.last_eval, trainer.best_eval, interrupted, stop.signum
    )
