"""Soak test: a long library ``train()`` run with a small buffer, watching its memory (RSS).

The run logs, evaluates and checkpoints often, so every periodic code path runs many times.
Training happens in a child process; the parent reads the child's progress lines
(``[rl_repara] step N/T ...``, one per ``--log-every`` env steps) and, at each one, the child's
resident set size from ``/proc/<pid>/status`` (``VmRSS``). Once the buffer is full the
memory should be flat: the script fits a line to RSS over env steps in that window and prints
the growth per 10k env steps and a verdict. The fitted line rises by ``g·W/10⁴`` MiB over a
window of ``W`` env steps at a growth of ``g`` MiB per 10k steps; the verdict is

    GROWING  if  g·W/10⁴ > max(NOISE_MIB, FLAT_MIB_PER_10K·W/10⁴),  else flat

so a long run is judged by its rate, and a short one is not called GROWING for a rise smaller
than the steps in which the allocator takes memory. ``--leak-kib-per-step`` (hidden, for the
test that checks the verdict) makes the child keep that much more memory at every env step.

    python scripts/soak.py --steps 40000          # a few minutes on one thread
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEP_LINE = re.compile(r"^\[rl_repara\] step (\d+)/\d+")
FLAT_MIB_PER_10K = 1.0  # growth below this (after the buffer is full) counts as flat
NOISE_MIB = 2.0  # a rise below this over the whole window counts as flat (allocator steps)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Long training run; RSS over time.")
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--buffer-size", type=int, default=5_000)
    p.add_argument("--learning-starts", type=int, default=1_000)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--log-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=2_500)
    p.add_argument("--checkpoint-every", type=int, default=2_500)
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--run-dir", default=None, help="default: a temporary dir, removed after")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--leak-kib-per-step", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """The training run itself: library ``train()``, one torch thread, plain progress lines."""
    from rl_repara import SACConfig, TrainConfig, train
    from rl_repara.training.config import CheckpointConfig, EnvConfig, EvalConfig, LogConfig

    if args.leak_kib_per_step > 0:
        _inject_leak(args.leak_kib_per_step * 1024)
    train(
        TrainConfig(
            env=EnvConfig(id=args.env),
            total_steps=args.steps,
            run_dir=args.run_dir,
            device="cpu",
            torch_threads=1,
            agent=SACConfig(
                buffer_size=args.buffer_size,
                learning_starts=args.learning_starts,
                hidden_sizes=[args.hidden, args.hidden],
                batch_size=args.batch_size,
                lr=1e-3,
            ),
            eval=EvalConfig(every_steps=args.eval_every, episodes=1),
            checkpoint=CheckpointConfig(every_steps=args.checkpoint_every),
            log=LogConfig(progress="plain", every_steps=args.log_every),
        )
    )


def _inject_leak(nbytes: int) -> None:
    """Make every ``Trainer.collect`` call (one vector env step) keep ``nbytes`` more bytes
    alive: a leak the verdict must call GROWING. The bytes are written, so they are resident."""
    from rl_repara.training.trainer import Trainer

    kept: list[bytearray] = []
    collect = Trainer.collect

    def leaky_collect(self: Trainer) -> None:
        kept.append(bytearray(b"\x01") * nbytes)
        collect(self)

    Trainer.collect = leaky_collect  # type: ignore[method-assign]


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (Linux ``/proc``); NaN once it has exited
    (a zombie has no ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


def watch(args: argparse.Namespace, run_dir: str) -> list[tuple[int, float, float]]:
    """Run the child; return ``(env step, RSS MiB, seconds)`` at each of its progress lines."""
    cmd = [sys.executable, __file__, "--child", *sys.argv[1:], "--run-dir", run_dir]
    samples, start = [], time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            match = STEP_LINE.match(line)
            if match:
                rss = rss_mib(proc.pid)
                if np.isfinite(rss):  # a line read after the child exited has no RSS
                    samples.append((int(match.group(1)), rss, time.perf_counter() - start))
            elif "eval return" in line or "WARNING" in line:
                print(line.rstrip())
    if proc.returncode != 0:
        raise SystemExit(f"training child failed with exit code {proc.returncode}")
    return samples


def growth_per_10k(samples: list[tuple[int, float, float]], after: int) -> tuple[float, int]:
    """Least-squares slope of RSS over env steps for steps > ``after``, in MiB per 10k steps."""
    window = [(s, r) for s, r, _ in samples if s > after]
    if len(window) < 3:
        return float("nan"), len(window)
    steps, rss = np.array(window, dtype=float).T
    return float(np.polyfit(steps, rss, 1)[0] * 10_000), len(window)


def report(samples: list[tuple[int, float, float]], args: argparse.Namespace) -> None:
    stride = max(1, len(samples) // 20)
    shown = samples[::stride] + ([samples[-1]] if (len(samples) - 1) % stride else [])
    print(f"{'step':>8} {'RSS MiB':>9} {'time s':>8}")
    for step, rss, seconds in shown:
        print(f"{step:8d} {rss:9.1f} {seconds:8.1f}")
    full = max(args.buffer_size, args.learning_starts)
    settle = full + max(args.log_every, (args.steps - full) // 10)  # allocator warm-up
    slope, n = growth_per_10k(samples, settle)
    rss = [r for s, r, _ in samples if s > settle]
    if not np.isfinite(slope):
        print(
            f"verdict: too short to judge (buffer full at step {full}; need >= 3 samples after step {settle})"
        )
        return
    steps = [s for s, _, _ in samples if s > settle]
    rise, bound = verdict_bound(slope, steps[-1] - steps[0])
    print(
        f"after step {settle} ({n} samples): RSS {min(rss):.1f}..{max(rss):.1f} MiB, "
        f"growth {slope:+.2f} MiB per 10k env steps, {rise:+.2f} MiB over the window"
    )
    verdict = "GROWING" if rise > bound else "flat"
    print(
        f"verdict: {verdict} (bound {bound:.2f} MiB over the window: {FLAT_MIB_PER_10K} MiB per 10k "
        f"steps, at least {NOISE_MIB} MiB)"
    )


def verdict_bound(slope: float, span: int) -> tuple[float, float]:
    """``(rise, bound)``: the fitted line's rise over a window of ``span`` env steps at
    ``slope`` MiB per 10k steps, and the most it may rise and still count as flat."""
    return slope * span / 10_000, max(NOISE_MIB, FLAT_MIB_PER_10K * span / 10_000)


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="rl_repara-soak-") as tmp:
        samples = watch(args, args.run_dir or str(Path(tmp) / "run"))
    report(samples, args)


if __name__ == "__main__":
    main()
