"""Soak test: a long library ``train()`` run with a small buffer, watching its memory (RSS).

The run logs, evaluates and checkpoints often, so every periodic code path runs many times.
Training happens in a child process; the parent reads the child's progress lines
(``[rl_repara] step N/T ...``, one per ``--log-every`` env steps) and, at each one, the child's
resident set size from ``/proc/<pid>/status`` (``VmRSS``). Once the buffer is full the
memory should be flat: the script fits a line to RSS over env steps in that window and prints
the growth per 10k env steps and a verdict.

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
    return p.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """The training run itself: library ``train()``, one torch thread, plain progress lines."""
    from rl_repara import SACConfig, TrainConfig, train
    from rl_repara.config import CheckpointConfig, EnvConfig, EvalConfig, LogConfig

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


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def watch(args: argparse.Namespace, run_dir: str) -> list[tuple[int, float, float]]:
    """Run the child; return ``(env step, RSS MiB, seconds)`` at each of its progress lines."""
    cmd = [sys.executable, __file__, "--child", *sys.argv[1:], "--run-dir", run_dir]
    samples, start = [], time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            match = STEP_LINE.match(line)
            if match:
                elapsed = time.perf_counter() - start
                samples.append((int(match.group(1)), rss_mib(proc.pid), elapsed))
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
    verdict = "flat" if slope < FLAT_MIB_PER_10K else "GROWING"
    print(
        f"after step {settle} ({n} samples): RSS {min(rss):.1f}..{max(rss):.1f} MiB, "
        f"growth {slope:+.2f} MiB per 10k env steps"
    )
    print(f"verdict: {verdict} (threshold {FLAT_MIB_PER_10K} MiB per 10k steps)")


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
