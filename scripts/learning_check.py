"""Learning before/after a change: train an env on several seeds and print each run's eval curve.

    python scripts/learning_check.py --env Pendulum-v1 --seeds 0 1 2 --steps 20000 --out pendulum.json

Each seed runs in its own process with one torch thread (one process per core is fastest on a
small machine). Only the public API is used (``train``, ``TrainConfig``), so the same script
measures any version of the library. The eval curve is read back from the run's TensorBoard
events (``eval/mean_return``); the JSON also holds the wall time and the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rl_repara.device import cpu_name


def _run(
    env_id: str, seed: int, steps: int, run_dir: str, agent: dict, eval_every: int, episodes: int = 10
) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, train
    from rl_repara.training.config import LogConfig

    cfg = TrainConfig(
        env=EnvConfig(id=env_id),
        seed=seed,
        total_steps=steps,
        run_dir=run_dir,
        torch_threads=1,
        agent=SACConfig(**agent),
        log=LogConfig(progress="none"),
        eval=EvalConfig(every_steps=eval_every, episodes=episodes),
    )
    start = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - start
    acc = EventAccumulator(str(Path(run_dir) / "tb"))
    acc.Reload()
    curve = [(e.step, e.value) for e in acc.Scalars("eval/mean_return")]
    return {
        "seed": seed,
        "steps": result.global_step,
        "wall_s": round(wall, 1),
        "final": result.last_eval_return,
        "best": result.best_eval_return,
        "curve": curve,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--agent", default="{}", help='SACConfig overrides as JSON, e.g. {"lr": 1e-3}')
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", default="/tmp/learning_check")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    agent = json.loads(args.agent)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                _run,
                args.env,
                s,
                args.steps,
                f"{args.runs}/{args.env}-{stamp}-s{s}",
                agent,
                args.eval_every,
                args.eval_episodes,
            )
            for s in args.seeds
        ]
        runs = [f.result() for f in futures]
    out = {
        "env": args.env,
        "steps": args.steps,
        "agent": agent,
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_name(),
        "gpu": _gpu(),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    for r in runs:
        print(f"seed {r['seed']}: final {r['final']:.1f} best {r['best']:.1f} wall {r['wall_s']} s")


def _gpu() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


if __name__ == "__main__":
    main()
