"""Benchmark rl_repara's SAC against Stable-Baselines3's SAC, same settings, in one process.

    pip install -e ".[bench]"           # stable-baselines3
    python scripts/benchmark.py         # about 2-3 minutes on a 2-core CPU

Both libraries get the same work: the same env, 256×256 actor and critics, 2 critics, batch 256,
one update per env step (UTD 1), lr 3e-4, the same buffer size and ``learning_starts``, fp32,
the same torch thread count.

What is timed is the same for both, each library running its own training loop:

1. not timed: ``learning_starts`` env steps of uniform random actions fill the buffer, then
   ``warmup`` more env steps, each with one gradient update (allocator, caches, compile);
2. timed: the next ``steps`` env steps, each one policy action, ``env.step``, buffer insert,
   one batch sample and one gradient update (critic, actor, α, Polyak).

rl_repara runs the loop of ``rl_repara.training.trainer`` (``collect`` then ``learn``); SB3 runs
``model.learn`` with a callback that starts the clock at the first rollout after the warm-up,
and the clock stops when ``learn`` returns. SPS = timed env steps / seconds. Several repeats
alternate the two libraries, so a load change on a shared machine hits both.

The script also prints the FLOPs of one update (counted analytically from the layer shapes and
checked with ``torch.utils.flop_counter.FlopCounterMode``), this machine's fp32 GEMM rate at the
same shapes, measured in the same run, the fraction of it that each update reaches, and a table
of update-only cost (sample + gradient step, no env) as batch size and width grow.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from rl_repara import SAC, EnvConfig, EvalConfig, ReplayBuffer, SACConfig, TanhGaussianPolicy, TrainConfig
from rl_repara.data.envs import make_env
from rl_repara.training.trainer import Trainer

# ------------------------------------------------------------------------------ settings
SPREAD_LIMIT = 1.2  # repeats whose SPS differ by more than this factor: the numbers are not trustworthy


class Clock:
    """Wall time and this process's CPU time (all threads) since ``start``."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, steps: int) -> "Timing":
        return Timing(
            steps / (time.perf_counter() - self.wall), (time.process_time() - self.cpu) / steps * 1e3
        )


@dataclass
class Timing:
    sps: float  # env steps per wall-clock second
    cpu_ms: float  # process CPU milliseconds per env step: less sensitive to other load (1 thread)


@dataclass
class Setting:
    """One benchmark configuration, applied identically to both libraries."""

    env_id: str
    num_envs: int = 1
    batch_size: int = 256
    width: int = 256
    learning_starts: int = 1_000
    buffer_size: int = 100_000
    warmup: int = 50
    steps: int = 300
    seed: int = 0
    compile: bool = False
    precision: str = "fp32"

    def sac_config(self) -> SACConfig:
        return SACConfig(
            batch_size=self.batch_size,
            buffer_size=self.buffer_size,
            learning_starts=self.learning_starts,
            hidden_sizes=[self.width, self.width],
            num_critics=2,
            lr=3e-4,
            utd=1,
            compile=self.compile,
            precision=self.precision,
        )


# ---------------------------------------------------------------------------------- FLOPs
def mlp_flops(sizes: list[int], batch: int) -> tuple[int, int, int]:
    """(forward, weight-gradient, input-gradient of layers 2..L) FLOPs of one MLP; a
    ``[B, i] @ [i, o]`` matmul costs ``2·B·i·o``, and each backward matmul costs the same."""
    per_layer = [2 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return sum(per_layer), sum(per_layer), sum(per_layer[1:])


def update_flops(
    obs_dim: int, act_dim: int, width: int, batch: int, critics: int = 2, sb3: bool = False
) -> int:
    """Matmul FLOPs of one SAC update (elementwise ops are not counted).

    target: actor forward on s' and N target critics forward; critic loss: N critics forward,
    weight gradients, input gradients of layers 2..L; actor loss: actor forward, N critics
    forward, the gradient to ã through the critics, actor weight and input gradients.

    The gradient to ã: rl_repara (``QEnsemble.min_q`` on CPU) back-propagates each row only
    through the critic that attains the min, down to the action columns of layer 1: one
    critic's worth of rows. SB3 back-propagates every row through every critic, down to the
    whole input, and also builds the critics' weight gradients (then throws them away).
    """
    a_fwd, a_wgrad, a_igrad = mlp_flops([obs_dim, width, width, 2 * act_dim], batch)
    c_fwd, c_wgrad, c_igrad = mlp_flops([obs_dim + act_dim, width, width, 1], batch)
    target = a_fwd + critics * c_fwd
    critic = critics * (c_fwd + c_wgrad + c_igrad)
    if sb3:
        to_action = critics * (c_igrad + 2 * batch * (obs_dim + act_dim) * width + c_wgrad)
    else:
        to_action = c_igrad + 2 * batch * act_dim * width
    actor = a_fwd + critics * c_fwd + to_action + a_wgrad + a_igrad
    return target + critic + actor


def counted_flops(fn) -> int:
    """FLOPs that ``FlopCounterMode`` sees in one call of ``fn`` (forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def gemm_rate(batch: int, width: int, seconds: float = 0.5) -> float:
    """fp32 GFLOP/s of ``[batch, width] @ [width, width]``, best of several timed runs."""
    a, b = torch.randn(batch, width), torch.randn(width, width)
    reps = max(4, int(2e8 / (2 * batch * width * width)))
    best, deadline = float("inf"), time.perf_counter() + seconds
    for _ in range(3):
        a @ b
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t0) / reps)
        if time.perf_counter() > deadline:
            break
    return 2 * batch * width * width / best / 1e9


# ------------------------------------------------------------------------- rl_repara side
def rl_repara_sps(s: Setting) -> Timing:
    """Env steps per second of rl_repara's training loop (``trainer.Trainer``), warm-up excluded."""
    torch.manual_seed(s.seed)
    np.random.seed(s.seed)
    cfg = TrainConfig(
        env=EnvConfig(id=s.env_id),
        agent=s.sac_config(),
        seed=s.seed,
        num_envs=s.num_envs,
        device="cpu",
        eval=EvalConfig(every_steps=0),
    )
    cfg.validate()
    with tempfile.TemporaryDirectory() as tmp:
        run = Trainer(cfg, Path(tmp), torch.device("cpu"))
        run.start()
        start = s.learning_starts + s.warmup
        while run.global_step < start:
            run.collect()
            run.learn()
        clock, first = Clock(), run.global_step
        clock.start()
        while run.global_step < start + s.steps:
            run.collect()
            run.learn()
        float(run.last_info["qf_loss"])  # wait for the last update (a no-op on CPU)
        timing = clock.stop(run.global_step - first)
        run.close()
    return timing


def rl_repara_learner(s: Setting, obs_dim: int, act_dim: int) -> tuple[SAC, ReplayBuffer]:
    """A learner and a buffer of random transitions of the env's shapes (update-only timing)."""
    torch.manual_seed(s.seed)
    policy = TanhGaussianPolicy(obs_dim, act_dim, hidden_sizes=[s.width, s.width])
    sac = SAC(policy, s.sac_config())
    buffer = ReplayBuffer(s.buffer_size, obs_dim, act_dim, seed=s.seed)
    n = s.learning_starts
    buffer.add(
        torch.randn(n, obs_dim),
        torch.rand(n, act_dim) * 2 - 1,
        torch.randn(n),
        torch.randn(n, obs_dim),
        (torch.rand(n) < 0.01).float(),
    )
    return sac, buffer


def rl_repara_update_ms(s: Setting, obs_dim: int, act_dim: int, updates: int) -> float:
    sac, buffer = rl_repara_learner(s, obs_dim, act_dim)
    for _ in range(min(s.warmup, 10)):
        sac.update_tensors(buffer.sample(s.batch_size))
    t0 = time.perf_counter()
    for _ in range(updates):
        info = sac.update_tensors(buffer.sample(s.batch_size))
    float(info["qf_loss"])
    return (time.perf_counter() - t0) / updates * 1e3


def interleaved_update_cpu_ms(
    steps: dict[str, Callable[[int], None]], updates: int, repeats: int
) -> dict[str, list[float]]:
    """Process CPU ms per update of each ``steps[name](n)`` (which runs n updates), the
    variants alternating ``repeats`` times in this process: on a busy machine with 1 thread
    this is far steadier than wall time, and a change of load hits every variant."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for fn in steps.values():
        fn(5)  # warm-up
    for _ in range(repeats):
        for name, fn in steps.items():
            t0 = time.process_time()
            fn(updates)
            times[name].append((time.process_time() - t0) / updates * 1e3)
    return times


def rl_repara_steps(s: Setting, obs_dim: int, act_dim: int) -> Callable[[int], None]:
    sac, buffer = rl_repara_learner(s, obs_dim, act_dim)

    def run(n: int) -> None:
        for _ in range(n):
            info = sac.update_tensors(buffer.sample(s.batch_size))
        float(info["qf_loss"])

    return run


def sb3_steps(s: Setting, obs_dim: int, act_dim: int) -> Callable[[int], None]:
    model = sb3_learner(s, obs_dim, act_dim)
    return lambda n: model.train(gradient_steps=n, batch_size=s.batch_size)


def rl_repara_flops(s: Setting, obs_dim: int, act_dim: int) -> int:
    eager = Setting(**{**s.__dict__, "compile": False, "precision": "fp32"})
    sac, buffer = rl_repara_learner(eager, obs_dim, act_dim)
    batch = buffer.sample(s.batch_size)
    return counted_flops(lambda: sac.update_tensors(batch))


# ------------------------------------------------------------------------------- SB3 side
def sb3_model(s: Setting, env):
    from stable_baselines3 import SAC as SB3SAC

    return SB3SAC(
        "MlpPolicy",
        env,
        learning_rate=3e-4,
        buffer_size=s.buffer_size,
        learning_starts=s.learning_starts,
        batch_size=s.batch_size,
        train_freq=1,
        gradient_steps=-1,  # one update per env step collected, for any num_envs: UTD 1
        policy_kwargs={"net_arch": [s.width, s.width], "n_critics": 2},
        device="cpu",
        seed=s.seed,
        verbose=0,
    )


def sb3_sps(s: Setting) -> Timing:
    """Env steps per second of SB3's ``model.learn``, timed from the first rollout after the
    warm-up to the return of ``learn``."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StartClock(BaseCallback):
        def __init__(self, start_at: int) -> None:
            super().__init__()
            self.start_at, self.first, self.clock = start_at, None, Clock()

        def _on_rollout_start(self) -> None:
            if self.first is None and self.model.num_timesteps >= self.start_at:
                self.first = self.model.num_timesteps
                self.clock.start()

        def _on_step(self) -> bool:
            return True

    env = make_vec_env(s.env_id, n_envs=s.num_envs, seed=s.seed)
    model = sb3_model(s, env)
    callback = StartClock(s.learning_starts + s.warmup)
    model.learn(s.learning_starts + s.warmup + s.steps, callback=callback)
    timing = callback.clock.stop(model.num_timesteps - callback.first)
    env.close()
    return timing


def sb3_learner(s: Setting, obs_dim: int, act_dim: int):
    """An SB3 model whose buffer holds random transitions of the env's shapes."""
    from stable_baselines3.common.logger import configure

    model = sb3_model(s, make_env(s.env_id))
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(s.seed)
    for _ in range(s.learning_starts):
        model.replay_buffer.add(
            rng.standard_normal((1, obs_dim)),
            rng.standard_normal((1, obs_dim)),
            rng.uniform(-1, 1, (1, act_dim)),
            rng.standard_normal(1),
            rng.random(1) < 0.01,
            [{}],
        )
    return model


def sb3_update_ms(s: Setting, obs_dim: int, act_dim: int, updates: int) -> float:
    model = sb3_learner(s, obs_dim, act_dim)
    model.train(gradient_steps=min(s.warmup, 10), batch_size=s.batch_size)
    t0 = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=s.batch_size)
    return (time.perf_counter() - t0) / updates * 1e3


def sb3_flops(s: Setting, obs_dim: int, act_dim: int) -> int:
    model = sb3_learner(s, obs_dim, act_dim)
    return counted_flops(lambda: model.train(gradient_steps=1, batch_size=s.batch_size))


def have_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------- report
def _bf16_hardware() -> object:
    """``rl_repara.device.bf16_supported`` on this CPU; "n/a" with a version that lacks it (the
    script also times older versions, for before/after tables)."""
    try:
        from rl_repara.device import bf16_supported
    except ImportError:
        return "n/a"
    return bf16_supported(torch.device("cpu"))


def git_commit(root: Path | None = None) -> str:
    """The git commit of the checkout at ``root`` (default: this script's), with ``-dirty`` when
    a tracked file has changes, or ``unknown (not a git checkout)``."""
    root = root or Path(__file__).resolve().parents[1]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    try:
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def untrustworthy_summary(spreads: dict[str, float]) -> str:
    """The closing line: which env tables the repeats' spread made untrustworthy (``WARNING``)."""
    flagged = {name: s for name, s in spreads.items() if s > SPREAD_LIMIT}
    if not flagged:
        return f"repeats within {SPREAD_LIMIT:.1f}x in every env table"
    names = ", ".join(f"{name} ({s:.1f}x)" for name, s in flagged.items())
    return f"WARNING: untrustworthy (repeats differ by more than {SPREAD_LIMIT:.1f}x): {names}"


def machine_facts(threads: int) -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"CPU: {model}, {os.cpu_count()} logical cores, torch ISA {torch.backends.cpu.get_cpu_capability()}, "
        f"bf16 matmul hardware {_bf16_hardware()}, torch {torch.__version__}, "
        f"{threads} torch thread(s), load average {load}\nrl_repara commit {git_commit()}"
    )


@functools.lru_cache(maxsize=None)
def env_dims(env_id: str) -> tuple[int, int]:
    env = make_env(env_id)
    dims = int(env.observation_space.shape[0]), int(env.action_space.shape[0])
    env.close()
    return dims


def our_variants(args, base: Setting) -> list[tuple[str, Setting]]:
    """rl_repara's rows: fp32, then ``--compile`` and ``--bf16`` each, and both together."""
    rows = [("rl_repara", base)]
    if args.compile:
        rows.append(("rl_repara compile", Setting(**{**base.__dict__, "compile": True})))
    if args.bf16:
        rows.append(("rl_repara bf16", Setting(**{**base.__dict__, "precision": "bf16"})))
    if args.compile and args.bf16:
        both = Setting(**{**base.__dict__, "compile": True, "precision": "bf16"})
        rows.append(("rl_repara compile+bf16", both))
    return rows


def headline(args, env_id: str, num_envs: int, roof: float, sb3: bool) -> float:
    """Time the variants on one env, print the table and the ratios to SB3; return the largest
    spread of a variant's repeats (max / min SPS)."""
    obs_dim, act_dim = env_dims(env_id)
    base = _setting(args, env_id, num_envs)
    ours = update_flops(obs_dim, act_dim, args.width, args.batch_size)
    variants = [
        (name, (lambda s=setting: rl_repara_sps(s)), ours) for name, setting in our_variants(args, base)
    ]
    if sb3:
        theirs = update_flops(obs_dim, act_dim, args.width, args.batch_size, sb3=True)
        variants.append(("SB3", lambda: sb3_sps(base), theirs))
    runs: dict[str, list[Timing]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeats):  # alternate, so a change of load hits every variant
        for name, fn, _ in variants:
            runs[name].append(fn())
    sps = {name: statistics.median(t.sps for t in runs[name]) for name in runs}
    print(
        f"\n{env_id}, num_envs={num_envs} (obs {obs_dim}, act {act_dim}): {args.steps} timed env "
        f"steps, each with one update; median of {args.repeats} alternating repeats"
    )
    print(
        f"  {'library':22s} {'SPS':>7s} {'ms/step':>8s} {'CPU ms':>7s} {'GFLOP/upd':>9s} "
        f"{'GFLOP/s':>8s} {'of GEMM':>7s}  SPS per repeat"
    )
    for name, _, flops in variants:
        cpu = statistics.median(t.cpu_ms for t in runs[name])
        rate = flops * sps[name] / 1e9
        reps = " ".join(f"{t.sps:.1f}" for t in runs[name])
        print(
            f"  {name:22s} {sps[name]:7.1f} {1e3 / sps[name]:8.2f} {cpu:7.2f} {flops / 1e9:9.3f} "
            f"{rate:8.1f} {rate / roof:7.0%}  [{reps}]"
        )
    spread = max(max(t.sps for t in r) / min(t.sps for t in r) for r in runs.values())
    if spread > SPREAD_LIMIT:
        print(
            f"  WARNING: repeats differ by {spread:.1f}x: other load on the machine; the numbers "
            "are not trustworthy (with --threads 2, one busy core stalls every parallel op)."
        )
    if sb3:
        for name, _, _ in variants[:-1]:
            pairs = " ".join(f"{a.sps / b.sps:.2f}" for a, b in zip(runs[name], runs["SB3"]))
            cpu = statistics.median(t.cpu_ms for t in runs["SB3"]) / statistics.median(
                t.cpu_ms for t in runs[name]
            )
            print(
                f"  SPS ratio {name} / SB3: {sps[name] / sps['SB3']:.2f}x (per repeat: {pairs}); "
                f"CPU-time ratio {cpu:.2f}x"
            )
    return spread


def flop_check(args, env_id: str, sb3: bool) -> None:
    obs_dim, act_dim = env_dims(env_id)
    s = _setting(args, env_id, 1)
    ours = update_flops(obs_dim, act_dim, args.width, args.batch_size)
    line = (
        f"FLOPs per update on {env_id}: rl_repara {ours / 1e6:.1f} M analytic, "
        f"{rl_repara_flops(s, obs_dim, act_dim) / 1e6:.1f} M counted (the critics' one-column "
        "last layer runs as multiply and sum, which FlopCounterMode leaves out)"
    )
    if sb3:
        theirs = update_flops(obs_dim, act_dim, args.width, args.batch_size, sb3=True)
        line += f"; SB3 {theirs / 1e6:.1f} M analytic, {sb3_flops(s, obs_dim, act_dim) / 1e6:.1f} M counted"
    print(line)


def update_ratio(args, env_id: str, sb3: bool) -> None:
    """Update-only cost (batch sample + one gradient update) at the command line's shapes,
    process CPU time, the variants alternating in this process; the ratio to SB3 per repeat."""
    obs_dim, act_dim = env_dims(env_id)
    base = _setting(args, env_id, 1)
    steps = {name: rl_repara_steps(setting, obs_dim, act_dim) for name, setting in our_variants(args, base)}
    if sb3:
        steps["SB3"] = sb3_steps(base, obs_dim, act_dim)
    times = interleaved_update_cpu_ms(steps, args.sweep_updates, args.repeats)
    print(
        f"\nUpdate-only CPU time on {env_id} shapes (batch {args.batch_size}, width {args.width}): "
        f"{args.sweep_updates} updates x {args.repeats} alternating repeats, process CPU ms per update"
    )
    for name, ms in times.items():
        line = f"  {name:22s} {statistics.median(ms):7.2f} ms  [{' '.join(f'{t:.2f}' for t in ms)}]"
        if sb3 and name != "SB3":
            ratios = [b / a for a, b in zip(ms, times["SB3"])]
            per = " ".join(f"{r:.2f}" for r in ratios)
            line += f"  SB3 / this: {statistics.median(ratios):.2f}x (per repeat: {per})"
        print(line)


def sweep(args, env_id: str, sb3: bool) -> None:
    obs_dim, act_dim = env_dims(env_id)
    grid = sorted(
        {(b, args.width) for b in args.sweep_batch} | {(args.batch_size, w) for w in args.sweep_width}
    )
    print(
        f"\nUpdate-only cost on {env_id} shapes (batch sample + one gradient update, no env), "
        f"{args.sweep_updates} updates each; 'of GEMM' = achieved / [batch, width]@[width, width] rate"
    )
    head = (
        f"  {'batch':>5s} {'width':>5s} {'GEMM GF/s':>9s} {'GFLOP/upd':>9s} {'ours ms':>8s} {'of GEMM':>7s}"
    )
    print(head + (f" {'SB3 ms':>8s} {'of GEMM':>7s} {'ratio':>6s}" if sb3 else ""))
    for batch, width in grid:
        s = Setting(
            env_id,
            1,
            batch,
            width,
            max(args.learning_starts, batch),
            args.buffer_size,
            args.warmup,
            args.steps,
            args.seed,
        )
        roof = gemm_rate(batch, width, seconds=0.3)
        flops = update_flops(obs_dim, act_dim, width, batch)
        ours = rl_repara_update_ms(s, obs_dim, act_dim, args.sweep_updates)
        share = flops / ours / 1e6 / roof
        row = f"  {batch:5d} {width:5d} {roof:9.1f} {flops / 1e9:9.3f} {ours:8.2f} {share:7.0%}"
        if sb3:
            theirs_flops = update_flops(obs_dim, act_dim, width, batch, sb3=True)
            theirs = sb3_update_ms(s, obs_dim, act_dim, args.sweep_updates)
            row += f" {theirs:8.2f} {theirs_flops / theirs / 1e6 / roof:7.0%} {theirs / ours:5.2f}x"
        print(row)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Pendulum-v1"])
    p.add_argument("--num-envs", nargs="+", type=int, default=[1], help="vector envs (UTD 1 each)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--width", type=int, default=256, help="hidden width of actor and critics (2 layers)")
    p.add_argument("--steps", type=int, default=200, help="timed env steps per library and repeat")
    p.add_argument("--warmup", type=int, default=50, help="untimed learning steps before the clock")
    p.add_argument("--learning-starts", type=int, default=1_000)
    p.add_argument("--buffer-size", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both (0: torch default)")
    p.add_argument("--compile", action="store_true", help="also time rl_repara with agent.compile=true")
    p.add_argument(
        "--bf16", action="store_true", help="also time rl_repara with agent.precision=bf16 (SB3 stays fp32)"
    )
    p.add_argument("--sweep-batch", nargs="*", type=int, default=[64, 256, 1024])
    p.add_argument("--sweep-width", nargs="*", type=int, default=[64, 256, 512])
    p.add_argument("--sweep-updates", type=int, default=30)
    p.add_argument("--no-sb3", action="store_true", help="time rl_repara alone")
    p.add_argument("--no-update-ratio", action="store_true", help="skip the update-only CPU-time table")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _setting(args: argparse.Namespace, env_id: str, num_envs: int) -> Setting:
    """The ``Setting`` the command line asks for, on ``env_id`` with ``num_envs`` vector envs."""
    return Setting(env_id, num_envs, args.batch_size, args.width, args.learning_starts,
                   args.buffer_size, args.warmup, args.steps, args.seed)  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    sb3 = not args.no_sb3 and have_sb3()
    if not args.no_sb3 and not sb3:
        print("stable-baselines3 is not installed (pip install -e '.[bench]'); timing rl_repara alone.")
    t_start = time.perf_counter()
    print(machine_facts(torch.get_num_threads()))
    roof = gemm_rate(args.batch_size, args.width)
    print(
        f"fp32 GEMM [{args.batch_size}, {args.width}] @ [{args.width}, {args.width}]: {roof:.1f} GFLOP/s "
        f"on {torch.get_num_threads()} thread(s) (the roofline below)"
    )
    flop_check(args, args.envs[0], sb3)
    spreads = {}
    for env_id in args.envs:
        for num_envs in args.num_envs:
            spreads[f"{env_id} num_envs={num_envs}"] = headline(args, env_id, num_envs, roof, sb3)
    if not args.no_update_ratio:
        update_ratio(args, args.envs[0], sb3)
    if args.sweep_batch or args.sweep_width:
        sweep(args, args.envs[0], sb3)
    print(
        f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )
    print(untrustworthy_summary(spreads))


if __name__ == "__main__":
    main()
