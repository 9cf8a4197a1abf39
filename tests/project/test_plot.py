"""scripts/plot.py: learning curves (mean, 95% rliable bootstrap CI) and the benchmark report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import REPO

PLOT = str(REPO / "scripts" / "plot.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_run(run_dir: Path, steps, values, tag: str = "eval/mean_return") -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"))
    for s, v in zip(steps, values):
        writer.add_scalar(tag, v, s)
    writer.close()


def _plot(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, PLOT, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    return proc


def _read_csv(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    out: dict[str, list] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            out.setdefault(row["group"], []).append(
                tuple(float(row[k]) for k in ("step", "mean", "lo", "hi"))
            )
    return out


def test_mean_and_bootstrap_ci_over_seeds(tmp_path):
    """Three seeds logged at the same steps: the curve is their mean; with three runs, each
    resample has probability 1/27 > 2.5% of being all-lowest (all-highest), so the 95%
    percentile interval of the resampled means is exactly [min, max] over the runs."""
    steps = [1000, 2000, 3000]
    values = np.array([[-900.0, -500.0, -200.0], [-1000.0, -300.0, -150.0], [-800.0, -400.0, -100.0]])
    for seed, v in enumerate(values):
        _write_run(tmp_path / "sweep" / f"{seed}_seed{seed}", steps, v)
    _write_run(tmp_path / "single", steps, values[0])
    proc = _plot(["sweep", "single", "-o", "out/c.png", "--csv", "c.csv", "--boot", "20000"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "c.png").read_bytes()[:8] == PNG_MAGIC
    rows = _read_csv(tmp_path / "c.csv")
    got = np.array(rows["sweep"])
    np.testing.assert_array_equal(got[:, 0], steps)
    np.testing.assert_allclose(got[:, 1], values.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[:, 2], values.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[:, 3], values.max(axis=0), rtol=1e-6)
    one = np.array(rows["single"])  # one run: no band
    np.testing.assert_allclose(one[:, 1:], np.repeat(values[0][:, None], 3, axis=1), rtol=1e-6)
    assert "sweep: 3 run(s)" in proc.stdout and "single: 1 run(s)" in proc.stdout


def test_runs_logged_at_different_steps_are_interpolated(tmp_path):
    tag = "charts/episodic_return"
    _write_run(tmp_path / "g" / "a", [0, 100, 200], [0.0, 10.0, 20.0], tag=tag)
    _write_run(tmp_path / "g" / "b", [50, 150, 250], [5.0, 5.0, 25.0], tag=tag)
    proc = _plot(
        ["g", "--tag", "charts/episodic_return", "--points", "7", "--csv", "c.csv", "-o", "c.png"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    got = np.array(_read_csv(tmp_path / "c.csv")["g"])
    grid = np.linspace(50, 200, 7)  # the range both runs cover
    np.testing.assert_allclose(got[:, 0], grid)
    a = np.interp(grid, [0, 100, 200], [0, 10, 20])
    b = np.interp(grid, [50, 150, 250], [5, 5, 25])
    expect = (a + b) / 2
    np.testing.assert_allclose(got[:, 1], expect, rtol=1e-6)


def test_plot_of_real_tiny_runs(tmp_path):
    """Two seeds trained by the library, plotted from their sweep dir."""
    from rl_repara import SACConfig, TrainConfig, train
    from rl_repara.training.config import EvalConfig, LogConfig

    for seed in (0, 1):
        train(
            TrainConfig(
                seed=seed,
                total_steps=300,
                run_dir=str(tmp_path / "sweep" / f"seed{seed}"),
                torch_threads=1,
                agent=SACConfig(learning_starts=100, hidden_sizes=[32, 32], batch_size=32),
                eval=EvalConfig(every_steps=150, episodes=1),
                log=LogConfig(progress="none", every_steps=50),
            )
        )
    proc = _plot(["sweep", "-o", "curve.png"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
    assert "sweep: 2 run(s), final eval/mean_return" in proc.stdout and "at step 300" in proc.stdout
    proc = _plot(["sweep", "--tag", "losses/qf_loss", "-o", "q.png"], tmp_path)
    assert proc.returncode == 0 and (tmp_path / "q.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing_dir"], "no such dir: missing_dir"),
        (["g", "--tag", "no/such_tag"], "no run below g has the scalar 'no/such_tag'"),
    ],
)
def test_plot_errors(tmp_path, args, message):
    _write_run(tmp_path / "g" / "a", [1, 2], [1.0, 2.0])
    proc = _plot(args, tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [f"plot.py: error: {message}"]


WITHOUT = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` fails, as where the plot extra is not installed
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("missing", ["matplotlib", "rliable"])
@pytest.mark.parametrize("mode", ["curves", "bench"])
def test_without_the_plot_extra_one_line_names_it_and_exits_2(tmp_path, missing, mode):
    """Exit 2, as for every other missing extra and user mistake, before any work."""
    _write_run(tmp_path / "g" / "a", [1, 2], [1.0, 2.0])
    args = ["g"] if mode == "curves" else ["--bench", "g"]
    cmd = [sys.executable, "-c", WITHOUT, missing, PLOT, *args]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f'plot.py: error: needs {missing} (the plot extra): pip install -e ".[plot]"'
    ]
    assert list(tmp_path.iterdir()) == [tmp_path / "g"]  # nothing written


def _bench_dir(root: Path, runs: dict[str, list[float]], steps=(10, 20, 30, 40)) -> None:
    """A scripts/bench.py dir: ``runs`` maps ``<library>/<env>/<agent>/seed<k>`` to eval returns;
    meta.json records a wall clock of (k + 1) minutes for seed k."""
    for name, values in runs.items():
        _write_run(root / name, steps[: len(values)], values)
    meta = {"runs": {name: {"wall_s": 60.0 * (int(name[-1]) + 1)} for name in runs}}
    (root / "meta.json").write_text(json.dumps(meta))


def test_bench_report_table_and_rliable_aggregate(tmp_path):
    """Two envs, rl_repara and SB3, three seeds: a run's score is the mean of its last three
    evaluations; the table holds the mean over seeds, its CI, the seeds and the wall clock;
    the IQM pools per-env min-max normalized scores over envs and seeds."""
    curves = {
        ("EnvA-v0", "rl_repara"): lambda s: [0.0, 10 + s, 20 + s, 30 + s],
        ("EnvA-v0", "sb3"): lambda s: [0.0, 5 + s, 10 + s, 15 + s],
        ("EnvB-v0", "rl_repara"): lambda s: [-100.0, -50, -40, -30 - 10 * s],
        ("EnvB-v0", "sb3"): lambda s: [-100.0, -20, -10, 0 + s],
    }
    runs = {f"{lib}/{env}/sac/seed{s}": f(s) for (env, lib), f in curves.items() for s in range(3)}
    _bench_dir(tmp_path / "b", runs)
    proc = _plot(["--bench", "b", "-o", "rep", "--boot", "5000"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "rep" / "results.csv") as f:
        rows = {r["env"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["EnvA-v0", "EnvB-v0"]
    score = {k: np.mean(v[-3:]) for k, v in runs.items()}
    for (env, lib), _ in curves.items():
        seeds = [score[f"{lib}/{env}/sac/seed{s}"] for s in range(3)]
        row, m = rows[env], f"{lib} sac"
        assert float(row[f"{m} mean"]) == pytest.approx(np.mean(seeds), abs=0.01)
        # three seeds: about 1/27 of the 5000 resamples are all-lowest (all-highest), far more
        # than the 2.5% below the interval's bound, so the 95% interval is [min, max]
        assert float(row[f"{m} lo"]) == pytest.approx(min(seeds), abs=0.01)
        assert float(row[f"{m} hi"]) == pytest.approx(max(seeds), abs=0.01)
        assert row[f"{m} seeds"] == " ".join(f"{s}:{v:.2f}" for s, v in enumerate(seeds))
        assert float(row[f"{m} wall_min"]) == pytest.approx(2.0)  # (1 + 2 + 3) / 3 minutes
    table = (tmp_path / "rep" / "results.md").read_text()
    assert "| env | rl_repara sac | sb3 sac |" in table
    assert "| EnvA-v0 | 21.0 [20.0, 22.0] · seeds 20.0 / 21.0 / 22.0 · 2.0 min | 11.0 [" in table

    lows, highs = {"EnvA-v0": 0.0, "EnvB-v0": -100.0}, {"EnvA-v0": 32.0, "EnvB-v0": 2.0}
    with open(tmp_path / "rep" / "aggregate.csv") as f:
        agg = {r["method"]: r for r in csv.DictReader(f)}
    for lib in ("rl_repara", "sb3"):
        normalized = sorted(
            (score[f"{lib}/{env}/sac/seed{s}"] - lows[env]) / (highs[env] - lows[env])
            for env in lows
            for s in range(3)
        )
        iqm = np.mean(normalized[1:5])  # 6 scores: the middle 50% drops one at each end
        row = agg[f"{lib} sac"]
        assert float(row["iqm"]) == pytest.approx(iqm, abs=1e-4)
        assert float(row["lo"]) <= float(row["iqm"]) <= float(row["hi"])
        assert (row["runs"], row["envs"]) == ("3", "2")
    assert "min-max over every evaluation" in proc.stdout and "min-max over every evaluation" in table
    for png in ("curves.png", "aggregate.png", "profiles.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == PNG_MAGIC


def test_bench_report_warns_of_runs_that_stopped_short(tmp_path):
    runs = {
        f"{lib}/EnvA-v0/sac/seed{s}": [0.0, 1.0, 2.0, 3.0] for lib in ("rl_repara", "sb3") for s in (0, 1)
    }
    runs["sb3/EnvA-v0/sac/seed1"] = [0.0, 1.0, 2.0]
    _bench_dir(tmp_path / "b", runs)
    proc = _plot(["--bench", "b"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "plot.py: warning: EnvA-v0: not every run reached step 40 (sb3 sac seed 1 at 30)" in proc.stderr
    assert (tmp_path / "b" / "report" / "results.md").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["g", "--bench", "g"], "give run or sweep dirs, or --bench DIR (not both)"),
        (["--bench", "nowhere"], "no such dir: nowhere"),
        (["--bench", "g"], "no run of g (<library>/<env id>/<agent>/seed<k>/tb) has the scalar"),
    ],
)
def test_bench_report_errors(tmp_path, args, message):
    _write_run(tmp_path / "g" / "a", [1, 2], [1.0, 2.0])
    proc = _plot(args, tmp_path)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
