"""scripts/plot.py: learning curves from TensorBoard event files, mean and 95% bootstrap CI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PLOT = str(Path(__file__).resolve().parents[1] / "scripts" / "plot.py")
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
    from rl_repara.config import EvalConfig, LogConfig

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
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
