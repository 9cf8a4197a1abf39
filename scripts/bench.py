"""Benchmark grid: env × seed × agent preset at one budget, rl_repara and Stable-Baselines3's SAC.

    pip install -e ".[bench]"    # stable-baselines3, rliable, matplotlib
    python scripts/bench.py --out bench/first --envs halfcheetah hopper --seeds 0 1 2 \\
        --agents sac crossq --steps 100000 --eval-every 10000 --eval-episodes 10 --jobs 2 --sb3
    python scripts/plot.py --bench bench/first -o bench/first/report

What runs:

* rl_repara: the CLI's own multirun (``rl-repara-train -m``) in a subprocess, joblib with
  ``--jobs`` parallel jobs by default; ``--override`` passes any Hydra override on, e.g.
  ``--override hydra/launcher=submitit_slurm hydra.launcher.partition=cpu`` (then the joblib
  settings are left out). ``--envs`` takes preset names of ``conf/env`` (their RL Zoo settings
  apply) or raw Gymnasium ids (the agent preset's defaults apply).
* ``--sb3``: the same env × seed grid with SB3's SAC at the RL Zoo's settings for the env
  (``ZOO_SAC`` below), ``--jobs`` runs at a time, each in its own process. Every
  ``--eval-every`` env steps (and at the end) its deterministic policy (``model.predict(...,
  deterministic=True)``) plays ``--eval-episodes`` episodes through rl_repara's own episode
  loop, on the same env and the same reset seeds as rl_repara's evaluation
  (``train seed + EVAL_SEED_OFFSET + k`` for episode k).

Both libraries run with ``--threads`` torch threads per run (default 1) on ``--device`` (default
cpu); ``--learning-starts`` sets both libraries' random warm-up (default: each one's settings for
the env). Layout under ``--out``::

    rl_repara/<EnvId>/<agent>/seed<k>/    a run dir of the CLI (tb/, checkpoints/, .hydra/)
    sb3/<EnvId>/sac/seed<k>/tb/           eval/mean_return (and std) at the env step
    meta.json                             command, machine, threads, versions, times, wall clocks

A run's wall clock is read the same way for both libraries: from the first to the last event
of its TensorBoard files (the writer opens as training starts; the last event is the final
evaluation). Running the same command again continues: finished rl_repara runs are complete
(an interrupted one resumes from its checkpoint) and finished SB3 runs are skipped. A command
with other envs or seeds into the same dir adds its runs to it: ``meta.json`` keeps every
command, and the report covers every run (a long grid can be run in parts).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing as mp
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

PROG = "bench.py"

# SB3's SAC at the RL Zoo's settings, keyed by env name without its version (the Zoo lists
# MuJoCo's v3/v4; the settings carry over to v5). Source: rl-baselines3-zoo, hyperparams/sac.yml.
# Every key not given is SB3's default: 256x256 nets, lr 3e-4, batch 256, buffer 1M, tau 0.005,
# gamma 0.99, learned entropy coefficient, one update per env step, learning_starts 100.
# "lin_X" is the Zoo's linear schedule from X down to 0.
_ZOO_MUJOCO = {"learning_starts": 10_000}
ZOO_SAC: dict[str, dict[str, Any]] = {
    "Pendulum": {"learning_rate": 1e-3},
    "HalfCheetah": _ZOO_MUJOCO,
    "Hopper": _ZOO_MUJOCO,
    "Walker2d": _ZOO_MUJOCO,
    "Ant": _ZOO_MUJOCO,
    "Humanoid": _ZOO_MUJOCO,
    "Swimmer": {**_ZOO_MUJOCO, "gamma": 0.9999},
    "LunarLanderContinuous": {
        "learning_rate": "lin_7.3e-4",
        "batch_size": 256,
        "buffer_size": 1_000_000,
        "gamma": 0.99,
        "tau": 0.01,
        "learning_starts": 10_000,
        "policy_kwargs": {"net_arch": [400, 300]},
    },
    "MountainCarContinuous": {
        "learning_rate": 3e-4,
        "buffer_size": 50_000,
        "batch_size": 512,
        "ent_coef": 0.1,
        "train_freq": 32,
        "gradient_steps": 32,
        "gamma": 0.9999,
        "tau": 0.01,
        "learning_starts": 0,
        "use_sde": True,
        "policy_kwargs": {"log_std_init": -3.67, "net_arch": [64, 64]},
    },
}
ZOO_SOURCE = "rl-baselines3-zoo hyperparams/sac.yml"

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
TRAIN = "from rl_repara.cli.main import train_main; train_main()"


class UserError(Exception):
    """A mistake on the command line: reported as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, the CLI's convention for a user mistake."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------------------ the grid
@dataclass(frozen=True)
class EnvChoice:
    """An env of the grid: the name given, its Gymnasium id, and its conf/env preset (if any)."""

    name: str
    env_id: str
    preset: str | None


@dataclass(frozen=True)
class Sb3Job:
    """One SB3 run of the grid (picklable: it crosses to a spawned process)."""

    env_id: str
    seed: int
    steps: int
    eval_every: int
    eval_episodes: int
    threads: int
    learning_starts: int | None
    run_dir: str
    device: str = "cpu"


def conf_dir() -> Path:
    """The CLI's ``conf/`` directory."""
    from rl_repara.cli.schemas import config_dir

    return Path(config_dir())


def presets(group: str) -> dict[str, Path]:
    """The presets of a config group of ``conf/`` (``env``, ``agent``) by name."""
    return {p.stem: p for p in sorted((conf_dir() / group).glob("*.yaml"))}


def resolve_env(name: str, env_presets: dict[str, Path]) -> EnvChoice:
    """A preset name of conf/env or a Gymnasium id, checked by making the env once."""
    import gymnasium as gym

    from rl_repara.data.envs import make_env
    from rl_repara.errors import RLReparaError

    if name in env_presets:
        from omegaconf import OmegaConf

        return EnvChoice(name, str(OmegaConf.load(env_presets[name]).env.id), name)
    try:
        gym.spec(name)
    except gym.error.Error:
        raise UserError(
            f"unknown env '{name}': neither a conf/env preset ({', '.join(env_presets)}) "
            "nor a registered Gymnasium id such as Hopper-v5"
        ) from None
    try:
        make_env(name).close()
    except RLReparaError as exc:
        raise UserError(str(exc)) from None
    return EnvChoice(name, name, None)


def check_grid(args: argparse.Namespace) -> list[EnvChoice]:
    """The envs of the grid; every other user mistake the command line can hold, as a UserError."""
    agents = presets("agent")
    unknown = [a for a in args.agents if a not in agents]
    if unknown:
        raise UserError(f"unknown agent preset '{unknown[0]}': choose from {', '.join(agents)}")
    for flag, values in (("--seeds", args.seeds), ("--agents", args.agents), ("--envs", args.envs)):
        if len(set(values)) != len(values):
            raise UserError(f"{flag} lists a value twice: {' '.join(map(str, values))}")
    if args.eval_every > args.steps:
        raise UserError(
            f"--eval-every {args.eval_every} is more than --steps {args.steps}: "
            "the runs would be evaluated once, at the end"
        )
    if "'" in str(args.out.resolve()):
        raise UserError(f"--out {args.out}: a path with a single quote cannot be passed to Hydra")
    env_presets = presets("env")
    envs = [resolve_env(name, env_presets) for name in args.envs]
    ids = [e.env_id for e in envs]
    if len(set(ids)) != len(ids):
        raise UserError(f"--envs names one env twice: {' '.join(args.envs)} are {' '.join(ids)}")
    if args.sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            raise UserError('--sb3 needs stable-baselines3: pip install -e ".[bench]"') from None
    return envs


# ------------------------------------------------------------------------- rl_repara side
def hydra_value(text: str) -> str:
    """``text`` as a Hydra override value: quoted when it holds characters the grammar reads."""
    return text if re.fullmatch(r"[\w./-]+", text) else f"'{text}'"


def launcher_overrides(jobs: int, extra: list[str]) -> list[str]:
    """joblib with ``jobs`` parallel jobs, unless the user chose a launcher of their own."""
    if any(o.lstrip("+").startswith("hydra/launcher=") for o in extra):
        return []
    return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]


def rl_repara_commands(args: argparse.Namespace, envs: list[EnvChoice]) -> list[list[str]]:
    """The CLI multiruns of the grid: one over the preset envs, one over the raw env ids."""
    common = [
        sys.executable,
        "-c",
        TRAIN,
        "-m",
        f"agent={','.join(args.agents)}",
        f"seed={','.join(map(str, args.seeds))}",
        f"total_steps={args.steps}",
        f"eval.every_steps={args.eval_every}",
        f"eval.episodes={args.eval_episodes}",
        f"torch_threads={args.threads}",
        f"device={args.device}",
        f"hydra.sweep.dir={hydra_value(str((args.out / 'rl_repara').resolve()))}",
        "hydra.sweep.subdir=${env.id}/${hydra:runtime.choices.agent}/seed${seed}",
        "log.progress=none",
        *([f"agent.learning_starts={args.learning_starts}"] if args.learning_starts is not None else []),
        *launcher_overrides(args.jobs, args.override),
    ]
    preset_names = [e.preset for e in envs if e.preset]
    raw_ids = [e.env_id for e in envs if e.preset is None]
    commands = []
    if preset_names:
        commands.append([*common, f"env={','.join(preset_names)}", *args.override])
    if raw_ids:  # no env preset: the agent preset's own defaults, not Pendulum's
        commands.append([*common, "~env", f"env.id={','.join(raw_ids)}", *args.override])
    return commands


def run_rl_repara(commands: list[list[str]]) -> tuple[int, float]:
    """Run the multiruns one after the other; (worst exit code, wall seconds)."""
    start, worst = time.perf_counter(), 0
    for command in commands:
        print(f"[bench] rl_repara: {shlex.join(command[3:])}", flush=True)
        rc = subprocess.run(command).returncode
        if rc == 2:
            return 2, time.perf_counter() - start  # a user mistake in an override: stop here
        worst = max(worst, rc)
    return worst, time.perf_counter() - start


# ------------------------------------------------------------------------------- SB3 side
def zoo_settings(env_id: str, learning_starts: int | None = None) -> tuple[dict[str, Any], str]:
    """SB3 SAC's keyword arguments for ``env_id`` at the RL Zoo's settings (``learning_starts``
    replaced when given), and their source."""
    family = env_id.split("/")[-1].rsplit("-v", 1)[0]
    settings, source = dict(ZOO_SAC.get(family, {})), f"{ZOO_SOURCE} ({family})"
    if family not in ZOO_SAC:
        source = "SB3 defaults (no RL Zoo entry for this env)"
    if learning_starts is not None:
        settings["learning_starts"] = learning_starts
        source += "; learning_starts from --learning-starts"
    return settings, source


def sb3_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the Zoo's ``lin_X`` learning rates made into SB3 schedules."""
    out = dict(settings)
    rate = out.get("learning_rate")
    if isinstance(rate, str) and rate.startswith("lin_"):
        start = float(rate[4:])
        out["learning_rate"] = lambda remaining: remaining * start  # remaining: 1 -> 0
    return out


class Sb3Actor:
    """SB3's deterministic action behind the ``act`` that rl_repara's episode loop calls."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        action, _ = self.model.predict(obs, deterministic=deterministic)
        return action


def sb3_run(job: Sb3Job) -> dict[str, Any]:
    """Train SB3's SAC on one env and seed, evaluating as rl_repara does; returns its summary."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger
    from torch.utils.tensorboard import SummaryWriter

    from rl_repara.data.envs import make_env
    from rl_repara.training.evaluation import eval_seed, run_episode

    torch.set_num_threads(job.threads)
    run_dir = Path(job.run_dir)
    writer = SummaryWriter(str(run_dir / "tb"))
    eval_env = make_env(job.env_id)  # the env rl_repara evaluates on
    evals: list[tuple[int, float]] = []

    def evaluate(model: Any) -> None:
        actor, first = Sb3Actor(model), eval_seed(job.seed)
        returns = [run_episode(actor, eval_env, first + k) for k in range(job.eval_episodes)]
        step = int(model.num_timesteps)
        evals.append((step, float(np.mean(returns))))
        writer.add_scalar("eval/mean_return", float(np.mean(returns)), step)
        writer.add_scalar("eval/std_return", float(np.std(returns)), step)

    class Evaluations(BaseCallback):
        """Evaluate every ``eval_every`` env steps; log training episodes' returns."""

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    ret = float(info["episode"]["r"])
                    writer.add_scalar("charts/episodic_return", ret, self.num_timesteps)
            if self.num_timesteps % job.eval_every == 0:
                evaluate(self.model)
            return True

    settings, _ = zoo_settings(job.env_id, job.learning_starts)
    start = time.perf_counter()
    model = SAC(
        "MlpPolicy", gym.make(job.env_id), seed=job.seed, device=job.device, verbose=0, **sb3_kwargs(settings)
    )
    model.set_logger(Logger(None, []))  # SB3's default logger makes an empty SB3-<time> dir in /tmp
    model.learn(job.steps, callback=Evaluations())
    if not evals or evals[-1][0] != model.num_timesteps:
        evaluate(model)  # a final evaluation of the finished policy, as rl_repara does
    writer.close()
    eval_env.close()
    summary = {
        "env_id": job.env_id,
        "seed": job.seed,
        "steps": int(model.num_timesteps),
        "last_eval": evals[-1][1],
        "process_wall_s": round(time.perf_counter() - start, 2),
    }
    (run_dir / "result.json").write_text(json.dumps(summary, indent=1))
    return summary


def sb3_jobs(args: argparse.Namespace, envs: list[EnvChoice]) -> list[Sb3Job]:
    """The SB3 runs still to do; a run dir without ``result.json`` (interrupted) starts over."""
    jobs = []
    for env in envs:
        for seed in args.seeds:
            run_dir = args.out / "sb3" / env.env_id / "sac" / f"seed{seed}"
            if (run_dir / "result.json").is_file():
                print(f"[bench] sb3 {env.env_id} seed {seed}: already done", flush=True)
                continue
            shutil.rmtree(run_dir / "tb", ignore_errors=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            job = Sb3Job(env.env_id, seed, args.steps, args.eval_every, args.eval_episodes,
                         args.threads, args.learning_starts, str(run_dir), args.device)  # fmt: skip
            jobs.append(job)
    return jobs


def run_sb3(jobs: list[Sb3Job], workers: int) -> tuple[int, float]:
    """The SB3 runs, ``workers`` at a time, each in a fresh spawned process; (exit code, wall s)."""
    start, rc = time.perf_counter(), 0
    if not jobs:
        return 0, 0.0
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(sb3_run, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                r = future.result()
            except Exception as exc:  # one failed run must not stop the others
                print(f"[bench] sb3 {job.env_id} seed {job.seed} failed: {exc!r}", file=sys.stderr)
                rc = 1
                continue
            print(
                f"[bench] sb3 {r['env_id']} seed {r['seed']}: step {r['steps']}, "
                f"last eval return {r['last_eval']:.2f}, {r['process_wall_s']:.0f} s",
                flush=True,
            )
    return rc, time.perf_counter() - start


# ---------------------------------------------------------------------------------- record
def wall_clock(run_dir: Path) -> float | None:
    """Seconds from the first to the last event of the run's TensorBoard files, summed over
    files (a resumed run writes one file per process); None without events."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    total, found = 0.0, False
    for path in sorted(run_dir.glob("tb/events.out.tfevents.*")):
        times = [e.wall_time for e in EventFileLoader(str(path)).Load()]
        if times:
            total, found = total + max(times) - min(times), True
    return round(total, 2) if found else None


def run_records(out: Path) -> dict[str, dict[str, Any]]:
    """Every run under ``out`` (``<library>/<EnvId>/<agent>/seed<k>``) with its wall clock."""
    records = {}
    for tb in sorted(out.glob("*/*/*/seed*/tb")):
        run_dir = tb.parent
        records[run_dir.relative_to(out).as_posix()] = {"wall_s": wall_clock(run_dir)}
    return records


def cpu_facts() -> dict[str, Any]:
    """CPU model, logical cores and the instruction-set flags that matter for fp32/bf16 speed."""
    import torch

    from rl_repara.device import cpu_flags, cpu_name

    flags = cpu_flags()
    return {
        "model": cpu_name(),
        "logical_cores": os.cpu_count(),
        "flags": {f: (f in flags) if flags is not None else None for f in CPU_FLAGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def git_commit() -> str | None:
    """rl_repara's git commit (``+dirty`` with uncommitted changes); None outside a checkout."""
    import rl_repara

    root = Path(rl_repara.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str | None]:
    """Versions of the libraries that decide the numbers."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("rl_repara", "torch", "gymnasium", "mujoco", "numpy", "stable-baselines3", "hydra-core"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["rl_repara_commit"] = git_commit()
    return out


HISTORY_KEYS = ("command", "started", "finished", "grid", "phases", "versions")


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """``meta.json``. Earlier invocations into the same dir (another env grid, or a rerun that
    continued) are kept under ``history`` with their command, times, grid, phases and versions,
    and their SB3 settings stay in ``sb3_settings``, so a dir filled by several commands names
    them all."""
    history, sb3_settings = [], {}
    if path.is_file():
        old = json.loads(path.read_text())
        history = old.get("history", []) + [{k: old.get(k) for k in HISTORY_KEYS}]
        sb3_settings = old.get("sb3_settings", {})
    sb3_settings.update(meta.get("sb3_settings", {}))
    merged = {**meta, "history": history, **({"sb3_settings": sb3_settings} if sb3_settings else {})}
    path.write_text(json.dumps(merged, indent=1) + "\n")


def load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none): more than ``--jobs``
    runnable processes over a phase mean its wall clocks include waiting for a core."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def now() -> str:
    """The time in ISO 8601, UTC."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ arguments
class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def positive(text: str) -> int:
    """An integer > 0 (argparse type)."""
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def non_negative(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text}")
    return value


def device(text: str) -> str:
    """A torch device both libraries take (argparse type)."""
    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"not cpu, cuda, cuda:N or auto: '{text}'")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="benchmark dir (created; a rerun continues)")
    p.add_argument("--envs", nargs="+", required=True, help="conf/env preset names or Gymnasium ids")
    p.add_argument("--seeds", nargs="+", type=non_negative, default=[0, 1, 2])
    p.add_argument("--agents", nargs="+", default=["sac"], help="conf/agent presets (rl_repara)")
    p.add_argument("--steps", type=positive, required=True, help="env steps per run")
    p.add_argument(
        "--eval-every", type=positive, help="env steps between evaluations (default: --steps / 10)"
    )
    p.add_argument("--eval-episodes", type=positive, default=10, help="deterministic episodes per evaluation")
    p.add_argument(
        "--jobs", type=positive, default=os.cpu_count() or 1, help="runs at a time (default: all cores)"
    )
    p.add_argument("--threads", type=positive, default=1, help="torch threads per run, both libraries")
    p.add_argument("--device", type=device, default="cpu", help="cpu | cuda | cuda:N | auto, both libraries")
    p.add_argument(
        "--learning-starts",
        type=non_negative,
        default=None,
        help="random env steps before learning, both libraries (default: each one's settings for the env)",
    )
    p.add_argument("--sb3", action="store_true", help="also run Stable-Baselines3's SAC (RL Zoo settings)")
    p.add_argument(
        "--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="Hydra overrides for the rl_repara runs, e.g. hydra/launcher=submitit_slurm",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.eval_every is None:
        args.eval_every = max(1, args.steps // 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        envs = check_grid(args)
    except UserError as exc:
        fail(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "command": shlex.join(["python", *sys.argv]) if argv is None else shlex.join([PROG, *argv]),
        "grid": {
            "envs": {e.name: e.env_id for e in envs},
            "seeds": args.seeds,
            "agents": args.agents,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "learning_starts": args.learning_starts,
            "overrides": args.override,
            "sb3": args.sb3,
            "device": args.device,
        },
        "threads_per_run": args.threads,
        "jobs": args.jobs,
        "cpu": cpu_facts(),
        "versions": versions(),
        "started": now(),
        "load_at_start": load(),
    }
    if args.sb3:
        settings = {e.env_id: zoo_settings(e.env_id, args.learning_starts) for e in envs}
        meta["sb3_settings"] = {
            env_id: {"kwargs": kw, "source": src} for env_id, (kw, src) in settings.items()
        }
    rc, wall = run_rl_repara(rl_repara_commands(args, envs))
    meta["phases"] = {"rl_repara": {"exit_code": rc, "wall_s": round(wall, 1), "load_at_end": load()}}
    if rc != 2 and args.sb3:
        sb3_rc, sb3_wall = run_sb3(sb3_jobs(args, envs), args.jobs)
        meta["phases"]["sb3"] = {"exit_code": sb3_rc, "wall_s": round(sb3_wall, 1), "load_at_end": load()}
        rc = max(rc, sb3_rc)
    meta["finished"] = now()
    meta["runs"] = run_records(args.out)
    write_meta(args.out / "meta.json", meta)
    print(f"[bench] wrote {args.out / 'meta.json'}; report: python scripts/plot.py --bench {args.out}")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to continue", file=sys.stderr)
        sys.exit(130)
