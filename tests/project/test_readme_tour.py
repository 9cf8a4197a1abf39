"""The README's quick tour, executed: every command of its bash block, parsed out of README.md.

The commands run as written except for three things a test must change:
* budgets: each `rl-repara-train` gets tiny overrides (a few hundred steps, batch 32) in place of
  the values it names or in addition to them; a resume may only change `total_steps` and
  `log.progress`, so it gets those two;
* placeholders: `<time>` becomes the run dir the earlier commands created, `<yours>` a partition;
* what cannot run here: `tensorboard` is started on a free port and queried over HTTP, then
  stopped; the SLURM sweep (no cluster) is composed with `--cfg hydra` instead of submitted.

A README edit that breaks a command, renames a flag or moves a run dir fails this test.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from support import BIN, REPO, command_env, ok, saved, scalars

README = (REPO / "README.md").read_text()
TINY = {
    "total_steps": "300",
    "agent.learning_starts": "100",
    "agent.batch_size": "32",
    "eval.every_steps": "150",
    "eval.episodes": "1",
    "log.every_steps": "100",
    "log.progress": "none",
    "torch_threads": "1",
}
RESUME_TOTAL = "600"


def tour_commands() -> list[str]:
    """The bash blocks of the quick tour and of Deploy: comments dropped, `\\` continuations
    joined."""
    blocks = [
        re.search(r"```bash\n(.*?)```", README.split(title, 1)[1], flags=re.S).group(1)
        for title in ("## Quick tour", "## Deploy")
    ]
    lines = "".join(blocks).replace("\\\n", " ").splitlines()
    return [" ".join(line.split("#", 1)[0].split()) for line in lines if line.split("#", 1)[0].strip()]


def _shrink(args: list[str]) -> list[str]:
    """Tiny budgets for a training command (its own values for the other keys stay)."""
    if "-m" in args and any(a.startswith("search=") for a in args):  # an Optuna study: 2 trials
        args = [re.sub(r"^hydra\.sweeper\.n_trials=.*", "hydra.sweeper.n_trials=2", a) for a in args]
    if any(a.startswith("resume=") for a in args):
        budget = {"total_steps": RESUME_TOTAL, "log.progress": "none"}
        if not any(a.startswith("total_steps=") for a in args):
            budget = {"log.progress": "none"}  # "continue in place": the saved budget
    else:
        budget = dict(TINY)
    out = []
    for a in args:
        key = a.split("=", 1)[0]
        out.append(f"{key}={budget.pop(key)}" if key in budget else a)
    return out + [f"{k}={v}" for k, v in budget.items()]


def _newest(pattern: str, cwd: Path) -> Path:
    found = sorted(cwd.glob(pattern))
    assert found, f"no {pattern} under {cwd}"
    return found[-1]


def _fill(command: str, cwd: Path) -> str:
    """Replace the placeholders with what the earlier commands created."""
    command = re.sub(
        r"runs/([\w.-]+)/multirun-<time>",
        lambda m: str(_newest(f"runs/{m.group(1)}/multirun-*", cwd).relative_to(cwd)),
        command,
    )
    command = re.sub(
        r"runs/([\w.-]+)/<time>",
        lambda m: str(_newest(f"runs/{m.group(1)}/20*", cwd).relative_to(cwd)),
        command,
    )
    return command.replace("<yours>", "gpu_partition")


def _tensorboard_tags(cwd: Path, logdir: str) -> set[str]:
    """Serve `logdir` like the README does and read the scalar tags over HTTP."""
    tb = subprocess.Popen(
        [str(BIN / "tensorboard"), "--logdir", logdir, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=command_env(),
    )
    try:
        url = None
        for line in tb.stdout:  # "TensorBoard 2.x at http://localhost:PORT/ (Press CTRL+C to quit)"
            m = re.search(r"(http://\S+?:\d+)/", line)
            if m:
                url = m.group(1)
                break
        assert url, "tensorboard printed no URL"
        deadline = time.time() + 60
        while time.time() < deadline:
            with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags", timeout=10) as r:
                runs = json.load(r)
            if runs:
                return {tag for tags in runs.values() for tag in tags}
            time.sleep(1)
        raise AssertionError("tensorboard served no runs")
    finally:
        tb.terminate()
        tb.wait(timeout=30)


def test_quick_tour_runs_as_written(tmp_path):
    commands = tour_commands()
    assert len(commands) >= 12, commands
    seen: list[str] = []
    for command in commands:
        args = shlex.split(_fill(command, tmp_path))
        prog = args[0]
        if "$(" in command:  # a shell substitution: run it through bash, the venv first on PATH
            env = {**command_env(), "PATH": f"{BIN}:{command_env()['PATH']}"}
            proc = subprocess.run(
                ["bash", "-c", _fill(command, tmp_path)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                env=env,
            )
            assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        elif prog == "tensorboard":
            tags = _tensorboard_tags(tmp_path, args[args.index("--logdir") + 1])
            for prefix in ("charts/", "losses/", "eval/"):  # what the README's comment promises
                assert any(t.startswith(prefix) for t in tags), (prefix, tags)
        elif prog == "rl-repara-train" and "hydra/launcher=submitit_slurm" in args:
            # no cluster: compose the same command and check what would be submitted
            argv = [a for a in args[1:] if a != "-m"]
            argv = [re.sub(r"^seed=.*", "seed=0", a) for a in argv]
            out = ok([str(BIN / prog), *argv, "--cfg", "hydra", "-p", "hydra.launcher"], tmp_path).stdout
            assert "SlurmLauncher" in out and "partition: gpu_partition" in out
            assert "timeout_min: 600" in out and "max_num_timeout: 5" in out
        elif prog == "rl-repara-train":
            ok([str(BIN / prog), *_shrink(args[1:])], tmp_path)
        elif prog == "rl-repara-export":
            out = ok([str(BIN / prog), *args[1:]], tmp_path).stdout
            model = Path(re.search(r"controller: (\S+)", out).group(1))
            assert model.stat().st_size > 1000 and Path(f"{model}.json").is_file(), out
        elif prog == "rl-repara-eval":
            out = ok([str(BIN / prog), *args[1:]], tmp_path).stdout
            assert re.search(r"mean return -?\d+\.\d+ \+- \d+\.\d+ over", out), out
        elif prog == "python":
            ok([sys.executable, str(REPO / args[1]), *args[2:]], tmp_path)
        else:
            pytest.fail(f"the quick tour has a command this test does not know: {command}")
        seen.append(prog)

    # what the tour promised exists
    pendulum = sorted(tmp_path.glob("runs/Pendulum-v1/20*"))[0]  # the first run, resumed
    assert saved(pendulum)["counters"]["global_step"] == int(RESUME_TOTAL)  # trained, resumed, extended
    assert [s for s, _ in scalars(pendulum)["losses/qf_loss"]] == [100, 200, 300, 400, 500, 600]
    assert list((pendulum / "videos").glob("*.mp4")), "eval video=true wrote no mp4"
    cheetah = _newest("runs/HalfCheetah-v5/20*", tmp_path)
    assert saved(cheetah)["config"]["env"]["id"] == "HalfCheetah-v5"
    walker = _newest("runs/BipedalWalker-v3/20*", tmp_path)
    assert saved(walker)["config"]["agent"]["hidden_sizes"] == [400, 300]
    sweeps = sorted(tmp_path.glob("runs/Pendulum-v1/multirun-*"))
    assert [len(list(s.glob("*_seed*"))) for s in sweeps] == [3, 2, 2]  # seeds, joblib, Optuna
    best = yaml.safe_load((sweeps[-1] / "optimization_results.yaml").read_text())["best_params"]
    best = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in best.items()}  # "[512,512]"
    rerun = saved(_newest("runs/Pendulum-v1/20*", tmp_path))["config"]["agent"]  # the best trial again
    assert {k: rerun[k.split(".", 1)[1]] for k in best} == best
    assert saved(_newest("runs/dm_control/cheetah-run-v0/20*", tmp_path))["config"]["env"]["id"] == (
        "dm_control/cheetah-run-v0"
    )
    dmc = saved(_newest("runs/dm_control/walker-run-v0/20*", tmp_path))["config"]["agent"]
    assert (dmc["hidden_sizes"], dmc["lr"]) == ([1024, 1024], 1e-4)  # agent=sac_dmc
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert seen.count("rl-repara-train") >= 11 and "tensorboard" in seen
    hopper = _newest("runs/Hopper-v5/20*", tmp_path)
    assert saved(hopper)["config"]["agent"]["target_network"] is False  # agent=crossq
    tqc = saved(_newest("runs/Walker2d-v5/20*", tmp_path))["config"]["agent"]
    assert (tqc["num_quantiles"], tqc["n_step"], tqc["noise_beta"]) == (25, 3, 1.0)
    exported = sorted(p.name for p in (tmp_path / "runs" / "controller" / "export").iterdir())
    assert exported == ["policy.onnx", "policy.onnx.json", "policy.pt2", "policy.pt2.json"]
    assert saved(tmp_path / "runs" / "controller")["config"]["agent"]["normalize_obs"] is True
