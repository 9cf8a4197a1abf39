"""The example scripts run, end to end, as a user would start them (a subprocess each)."""

from __future__ import annotations

import re
import subprocess
import sys

from support import REPO

SCRIPTS = REPO / "scripts"
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def _run(script: str, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# The hand-written loop at 5000 env steps (64-wide nets, batch 64) reached a deterministic eval
# return (5 episodes) of -125, -124, -148, -173, -150, -125 on seeds 0-5; an untrained or random
# policy returns about -1200. At 4000 steps it did not learn reliably (-742 .. -162).
CUSTOM_LOOP_BOUND = -400.0


def test_custom_loop_learns_pendulum():
    """The hand-written SAC update learns: its eval return beats CUSTOM_LOOP_BOUND, which a
    loop whose update does nothing (or does the wrong thing) does not reach."""
    out = _run(
        "custom_loop.py",
        *("--steps", "5000", "--learning-starts", "500", "--seed", "1", "--hidden", "64"),
        *("--batch-size", "64", "--eval-episodes", "5"),
    )
    match = re.search(rf"^eval return: ({NUMBER})$", out, re.MULTILINE)
    assert match, out
    # Pendulum's per-step reward lies in [-16.3, 0]: a 200-step episode returns in [-3260, 0]
    assert CUSTOM_LOOP_BOUND < float(match.group(1)) <= 0, out


def _variance_table(out: str, param: str) -> dict[int, list[float]]:
    """The rows ``N pathwise score score+b ...`` under 'variance of the d/d<param> estimate'."""
    section = out.split(f"variance of the d/d{param} estimate")[1].split("\n\n")[0]
    rows = {}
    for line in section.strip().splitlines()[1:]:  # skip the header
        cells = line.split()
        rows[int(cells[0])] = [float(c) if c != "-" else float("nan") for c in cells[1:4]]
    return rows


def test_gradient_variance_pathwise_beats_score_function(tmp_path):
    png = tmp_path / "variance.png"
    out = _run("gradient_variance.py", "--sizes", "1", "8", "--repeats", "400", "--out", str(png))
    for param in ("mu", "sigma"):
        table = _variance_table(out, param)
        assert set(table) == {1, 8}, out
        for n, (pathwise, score, score_baseline) in table.items():
            assert 0 < pathwise < score, (param, n, out)
            if n > 1:
                assert pathwise < score_baseline < score, (param, n, out)
        # the variance of a mean of N independent draws falls like 1/N (8x fewer: within 2x)
        assert 4 < table[1][0] / table[8][0] < 16, (param, table)
    bias = re.search(rf"max \|mean - ref\| / stderr over all cells = ({NUMBER})", out)
    assert bias and float(bias.group(1)) < 4.5, out
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SOAK_ARGS = (
    "--steps", "800", "--buffer-size", "300", "--learning-starts", "200", "--log-every", "100",
    "--eval-every", "400", "--checkpoint-every", "400", "--hidden", "16", "--batch-size", "32",
)  # fmt: skip


def test_soak_prints_an_rss_table_and_judges_a_run_flat(tmp_path):
    out = _run("soak.py", *SOAK_ARGS, "--run-dir", str(tmp_path / "run"))
    rows = re.findall(rf"^\s*(\d+)\s+({NUMBER})\s+({NUMBER})$", out, re.MULTILINE)
    steps = [int(r[0]) for r in rows]
    assert steps == list(range(100, 900, 100)), out
    assert all(50 < float(r[1]) < 4096 for r in rows), out  # a Python + torch process, in MiB
    assert re.search(r"^verdict: flat ", out, re.MULTILINE), out
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_soak_calls_a_leak_growing(tmp_path):
    """64 KiB kept per env step: about 19 MiB over the judged window (steps 500-800)."""
    out = _run("soak.py", *SOAK_ARGS, "--leak-kib-per-step", "64", "--run-dir", str(tmp_path / "run"))
    assert re.search(r"^verdict: GROWING ", out, re.MULTILINE), out
