"""scripts/bench.py: the benchmark grid end to end with both libraries, its report, its errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from support import REPO, scalars

BENCH = REPO / "scripts" / "bench.py"
PLOT = REPO / "scripts" / "plot.py"
RUNS = [f"{lib}/Pendulum-v1/sac/seed{s}" for lib in ("rl_repara", "sb3") for s in (0, 1)]


def _script_module(name: str, path: Path) -> ModuleType:
    """A script as a module (registered, as its dataclasses need)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _bench_module() -> ModuleType:
    return _script_module("bench_script", BENCH)


def _evals(run_dir: Path) -> tuple[list[int], list[float]]:
    evals = scalars(run_dir)["eval/mean_return"]
    return [step for step, _ in evals], [value for _, value in evals]


def test_bench_runs_both_libraries_and_the_report_fills_every_cell(tmp_path):
    """Pendulum, 2 seeds, 300 steps, an evaluation every 100: rl_repara through the CLI's
    multirun and SB3 in its own processes (100 updates each) write the same layout; the report has
    every cell."""
    out = tmp_path / "bench"
    cmd = [sys.executable, str(BENCH), "--out", str(out), "--envs", "pendulum", "--seeds", "0", "1",
           "--steps", "300", "--eval-every", "100", "--eval-episodes", "1", "--learning-starts", "200",
           "--jobs", "2", "--sb3"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    runs = sorted(p.parent.relative_to(out).as_posix() for p in out.glob("*/*/*/seed*/tb"))
    assert runs == RUNS
    for seed in (0, 1):  # both evaluate at the same env steps
        ours, _ = _evals(out / "rl_repara/Pendulum-v1/sac" / f"seed{seed}")
        theirs, _ = _evals(out / "sb3/Pendulum-v1/sac" / f"seed{seed}")
        assert ours == theirs == [100, 200, 300]

    meta = json.loads((out / "meta.json").read_text())
    assert sorted(meta["runs"]) == RUNS and all(r["wall_s"] > 0 for r in meta["runs"].values())
    assert meta["threads_per_run"] == 1 and "--sb3" in meta["command"]
    assert {"avx2", "avx512f", "avx512_bf16"} <= set(meta["cpu"]["flags"])
    assert {"torch", "gymnasium", "mujoco", "stable-baselines3", "rl_repara_commit"} <= set(meta["versions"])
    assert meta["sb3_settings"]["Pendulum-v1"]["kwargs"] == {"learning_rate": 1e-3, "learning_starts": 200}
    assert meta["grid"]["device"] == "cpu"
    assert meta["finished"] >= meta["started"]
    assert len(meta["load_at_start"]) == len(meta["phases"]["sb3"]["load_at_end"]) == 3

    report = out / "report"
    proc = subprocess.run([sys.executable, str(PLOT), "--bench", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(report / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["env"] for r in rows] == ["Pendulum-v1"]
    row = rows[0]
    for method in ("rl_repara sac", "sb3 sac"):
        for column in ("mean", "lo", "hi", "seeds", "wall_min"):
            assert row[f"{method} {column}"].strip(), (method, column, row)
    for lib, method in (("rl_repara", "rl_repara sac"), ("sb3", "sb3 sac")):
        scores = {s: np.mean(_evals(out / lib / "Pendulum-v1/sac" / f"seed{s}")[1]) for s in (0, 1)}
        assert row[f"{method} seeds"] == " ".join(f"{s}:{v:.2f}" for s, v in scores.items())
    table = (report / "results.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| Pendulum-v1 |"))
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    assert len(cells) == 2 and all("seeds" in c and "n/a" not in c for c in cells), line
    assert "min-max" in table and "bench command: `python" in table and "load average at its end [" in table
    for png in ("curves.png", "aggregate.png", "profiles.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG"


def test_sb3_evaluates_on_the_eval_seeds_of_rl_repara(tmp_path, monkeypatch):
    """Both libraries' evaluations reset episode k with train seed + EVAL_SEED_OFFSET + k."""
    import rl_repara.training.evaluation as evaluation
    from rl_repara import SACConfig, TrainConfig, train
    from rl_repara.training.config import EvalConfig, LogConfig

    seeds: list[int] = []
    original = evaluation.run_episode

    def recording(policy, env, seed=None, *args, **kwargs):
        seeds.append(seed)
        return original(policy, env, seed, *args, **kwargs)

    monkeypatch.setattr(evaluation, "run_episode", recording)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where SB3's default logger writes
    bench = _bench_module()
    bench.sb3_run(bench.Sb3Job("Pendulum-v1", 3, 60, 30, 2, 1, 20, str(tmp_path / "sb3")))
    assert not list(scratch.glob("SB3-*"))  # no SB3-<time> dir left behind
    sb3_seeds, seeds[:] = list(seeds), []
    train(
        TrainConfig(
            seed=3,
            total_steps=60,
            run_dir=str(tmp_path / "ours"),
            torch_threads=1,
            agent=SACConfig(learning_starts=20, hidden_sizes=[32, 32], batch_size=16),
            eval=EvalConfig(every_steps=30, episodes=2),
            log=LogConfig(progress="none"),
        )
    )
    first = evaluation.eval_seed(3)
    assert sb3_seeds == seeds == [first, first + 1] * 2
    assert _evals(tmp_path / "sb3")[0] == _evals(tmp_path / "ours")[0] == [30, 60]


def test_a_second_grid_into_the_same_dir_keeps_the_first_ones_provenance(tmp_path):
    """Two commands into one dir (HalfCheetah and Hopper, then Walker2d): meta.json keeps the
    first command with its grid and SB3 settings, and the report names both commands."""
    bench = _bench_module()
    path = tmp_path / "meta.json"
    zoo = {"kwargs": {"learning_starts": 10000}, "source": "zoo"}
    first = {
        "command": "bench.py --envs halfcheetah hopper", "started": "t0", "finished": "t1",
        "grid": {"envs": {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5"}},
        "versions": {"rl_repara_commit": "aaa"}, "sb3_settings": {"HalfCheetah-v5": zoo, "Hopper-v5": zoo},
    }  # fmt: skip
    second = {
        "command": "bench.py --envs walker2d", "started": "t2", "finished": "t3",
        "grid": {"envs": {"walker2d": "Walker2d-v5"}}, "versions": {"rl_repara_commit": "bbb"},
        "sb3_settings": {"Walker2d-v5": zoo},
    }  # fmt: skip
    bench.write_meta(path, first)
    bench.write_meta(path, second)
    meta = json.loads(path.read_text())
    assert meta["command"] == second["command"]
    assert [h["command"] for h in meta["history"]] == [first["command"]]
    assert meta["history"][0]["grid"] == first["grid"]
    assert sorted(meta["sb3_settings"]) == ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"]

    plot = _script_module("plot_script", PLOT)
    lines = "\n".join(plot.provenance(meta))
    assert "bench command: `bench.py --envs walker2d`" in lines
    earlier = "(HalfCheetah-v5, Hopper-v5; t0 to t1; rl_repara commit aaa): `bench.py --envs halfcheetah"
    assert earlier in lines
    assert lines.count("- SB3 SAC on ") == 3


def test_multirun_commands_split_presets_from_raw_ids_and_respect_a_launcher(tmp_path):
    bench = _bench_module()
    argv = ["--out", str(tmp_path), "--envs", "hopper", "Pendulum-v1", "--seeds", "0", "1", "--agents",
            "sac", "crossq", "--steps", "1000", "--eval-every", "500", "--jobs", "3"]  # fmt: skip
    args = bench.parse_args([*argv, "--override", "agent.lr=1e-3"])
    preset, raw = bench.rl_repara_commands(args, bench.check_grid(args))
    assert preset[-2:] == ["env=hopper", "agent.lr=1e-3"]
    assert raw[-3:] == ["~env", "env.id=Pendulum-v1", "agent.lr=1e-3"]  # the agent's defaults
    flags = ["agent=sac,crossq", "seed=0,1", "total_steps=1000", "eval.every_steps=500", "torch_threads=1",
             "device=cpu", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]  # fmt: skip
    for flag in flags:
        assert flag in preset and flag in raw
    args = bench.parse_args([*argv, "--override", "hydra/launcher=submitit_slurm"])
    (preset, _) = bench.rl_repara_commands(args, bench.check_grid(args))
    assert preset[-1] == "hydra/launcher=submitit_slurm"
    assert not any(o.startswith(("hydra/launcher=joblib", "hydra.launcher.n_jobs")) for o in preset)


GRID = ["--envs", "pendulum", "--steps", "300", "--eval-every", "100"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--envs", "halfcheeta", "--steps", "300"], "unknown env 'halfcheeta': neither a conf/env preset"),
        (["--envs", "Hopper-v99", "--steps", "300"], "unknown env 'Hopper-v99'"),
        (["--envs", "pendulum", "Pendulum-v1", "--steps", "300"], "--envs names one env twice"),
        ([*GRID, "--agents", "sacc"], "unknown agent preset 'sacc': choose from"),
        ([*GRID, "--seeds", "0", "0"], "--seeds lists a value twice"),
        ([*GRID, "--seeds", "-1"], "argument --seeds: must be >= 0; got -1"),
        (["--envs", "pendulum", "--steps", "0"], "argument --steps: must be > 0; got 0"),
        (["--envs", "pendulum", "--steps", "1e5"], "argument --steps: not an integer: '1e5'"),
        ([*GRID, "--jobs", "0"], "argument --jobs: must be > 0"),
        ([*GRID, "--device", "gpu"], "argument --device: not cpu, cuda, cuda:N or auto: 'gpu'"),
        (["--envs", "pendulum", "--steps", "100", "--eval-every", "500"], "--eval-every 500 is more than"),
        (["--envs", "pendulum"], "the following arguments are required: --steps"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    bench = _bench_module()
    with pytest.raises(SystemExit) as exc:
        bench.main(["--out", str(tmp_path / "b"), *argv])
    captured = capsys.readouterr()
    assert exc.value.code == 2 and captured.out == ""
    assert captured.err.startswith("bench.py: error: ") and captured.err.count("\n") == 1, captured.err
    assert message in captured.err
    assert not (tmp_path / "b").exists()


def test_sb3_missing_is_a_user_mistake(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import fails as if not installed
    with pytest.raises(SystemExit) as exc:
        _bench_module().main(["--out", str(tmp_path / "b"), *GRID, "--sb3"])
    assert exc.value.code == 2
    assert (
        capsys.readouterr().err
        == 'bench.py: error: --sb3 needs stable-baselines3: pip install -e ".[bench]"\n'
    )


def test_the_command_line_prints_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--out", str(tmp_path / "b"), "--envs", "halfcheeta", "--steps", "10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("bench.py: error: unknown env 'halfcheeta': neither a conf/env preset (")
    assert "halfcheetah, hopper" in line and line.endswith("nor a registered Gymnasium id such as Hopper-v5")


def _benchmark_module() -> ModuleType:
    return _script_module("benchmark_script", REPO / "scripts" / "benchmark.py")


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_benchmark_header_names_the_commit_and_a_dirty_tree(tmp_path):
    """scripts/benchmark.py prints the commit it ran at, `-dirty` when a tracked file changed."""
    benchmark = _benchmark_module()
    assert benchmark.git_commit(tmp_path) == "unknown (not a git checkout)"
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "untracked.txt").write_text("not part of the tree\n")
    assert benchmark.git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert benchmark.git_commit(tmp_path) == f"{head}-dirty"
    header = benchmark.machine_facts(1).splitlines()
    assert header[1] == f"rl_repara commit {benchmark.git_commit()}" and header[0].startswith("CPU: ")


def test_benchmark_ends_with_the_untrustworthy_tables():
    """The per-env WARNING is repeated in the last line, so a copied tail still carries it."""
    summary = _benchmark_module().untrustworthy_summary
    line = summary({"HalfCheetah-v5 num_envs=1": 1.34, "Pendulum-v1 num_envs=1": 1.1})
    assert line.startswith("WARNING: untrustworthy") and "HalfCheetah-v5 num_envs=1 (1.3x)" in line
    assert "Pendulum" not in line
    assert summary({"Pendulum-v1 num_envs=1": 1.2}) == "repeats within 1.2x in every env table"
