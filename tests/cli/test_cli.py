"""The real commands, run as subprocesses: rl-repara-train and rl-repara-eval.

Tiny budgets (32x32 nets, batch 32, a few hundred env steps, one torch thread) keep each run to
seconds. What a user sees is checked: files in the run dir, TensorBoard tags read back with
TensorBoard's own reader, printed numbers, exit codes and one-line error messages.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import EVAL, REPO, TRAIN, assert_clean_error, command_env, ok, run, saved, scalars

TINY = [
    "agent.hidden_sizes=[32,32]",
    "agent.batch_size=32",
    "agent.learning_starts=100",
    "torch_threads=1",
    "log.progress=none",
]
# the straight run: evaluations at 300 and 600, losses every 50 steps
STRAIGHT = TINY + ["eval.every_steps=300", "eval.episodes=2", "log.every_steps=50"]
LOSS_TAGS = [
    "losses/qf_loss",
    "losses/actor_loss",
    "losses/alpha",
    "losses/alpha_loss",
    "losses/entropy",
    "losses/qf_values",
]
ALL_TAGS = LOSS_TAGS + [
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "charts/SPS_warmup",
    "eval/mean_return",
    "eval/std_return",
    "eval/best_return",
]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """600 env steps in one process."""
    cwd = tmp_path_factory.mktemp("straight")
    proc = ok([TRAIN, "hydra.run.dir=run", "total_steps=600", *STRAIGHT], cwd)
    return cwd / "run", proc


# --------------------------------------------------------------------------- a short run
def test_short_run_writes_run_dir_and_tags(straight):
    run_dir, proc = straight
    tags = scalars(run_dir)
    assert set(ALL_TAGS) <= set(tags)
    assert [s for s, _ in tags["eval/mean_return"]] == [300, 600]
    # losses from the step learning starts (learning_starts=100), every 50 env steps
    assert [s for s, _ in tags["losses/qf_loss"]] == list(range(100, 601, 50))
    # env steps per second: the random-action warm-up on its own chart, apart from learning
    assert [s for s, _ in tags["charts/SPS_warmup"]] == [50, 100]
    assert [s for s, _ in tags["charts/SPS"]] == list(range(150, 601, 50))
    returns = [v for _, v in tags["eval/mean_return"]]
    assert [v for _, v in tags["eval/best_return"]] == [returns[0], max(returns)]
    for name in ("last.pt", "best.pt"):
        assert (run_dir / "checkpoints" / name).is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert saved(run_dir)["counters"]["global_step"] == 600
    final = tags["eval/mean_return"][-1][1]
    # Pendulum's SAC tuning, once, without the learning_starts given on the command line
    tuned = "[rl_repara] tuned for (sac, Pendulum-v1): agent.lr=0.001 (conf/tuned/sac_pendulum.yaml)"
    assert proc.stdout.splitlines()[0] == tuned and proc.stdout.count("tuned for") == 1
    summary = proc.stdout.strip().splitlines()[-1]
    assert f"run dir {run_dir}" in summary and "step 600" in summary
    assert f"last eval return {final:.2f}" in summary


def test_default_config_is_pendulum_sac(tmp_path):
    proc = ok([TRAIN, "--cfg", "job"], tmp_path)
    assert "id: Pendulum-v1" in proc.stdout and "total_steps: 20000" in proc.stdout
    assert "lr: 0.001" in proc.stdout and "learning_starts: 1000" in proc.stdout


def test_env_id_alone_notes_the_preset_it_inherits(tmp_path):
    """`env.id=X` keeps the default preset's other values and its tuning for the agent: one
    note names those the run kept, not those set on the command line (here total_steps and
    agent.learning_starts). With `env=NAME` the user chose the preset: no note."""
    base = [TRAIN, "env.id=InvertedPendulum-v5", "total_steps=150", *TINY]
    out = ok([*base, "hydra.run.dir=a"], tmp_path).stdout
    note = (
        "[rl_repara] note: env.id=InvertedPendulum-v5 runs with the 'pendulum' preset's other "
        "values (eval.every_steps=2000) and its tuning for sac (agent.lr=0.001; "
        "conf/tuned/sac_pendulum.yaml) unless set here;"
    )
    assert out.startswith(note) and out.count("[rl_repara] note:") == 1, out
    assert "tuned for" not in out  # the note says it once
    out = ok([*base, "eval.every_steps=0", "agent.lr=3e-4", "hydra.run.dir=b"], tmp_path).stdout
    assert "note:" not in out and "tuned for" not in out  # all set here: nothing kept
    out = ok([*base, "env=hopper", "eval.every_steps=0", "hydra.run.dir=c"], tmp_path).stdout
    assert "note:" not in out


def test_the_tuned_line_names_the_pairs_values_the_run_applied(tmp_path):
    """agent=tqc on the default env gets TQC's Pendulum tuning (conf/tuned/tqc_pendulum.yaml),
    said once at the start; the learning_starts set here is not listed. ~tuned: none, no line.
    .hydra/hydra.yaml records the pair looked up, .hydra/config.yaml the values."""
    base = [TRAIN, "agent=tqc", "total_steps=120", "eval.every_steps=0", *TINY]
    out = ok([*base, "hydra.run.dir=a"], tmp_path).stdout
    line = "[rl_repara] tuned for (tqc, Pendulum-v1): agent.lr=0.001 (conf/tuned/tqc_pendulum.yaml)"
    assert out.splitlines()[0] == line and out.count("tuned for") == 1, out
    assert "tuned: tqc_pendulum" in (tmp_path / "a" / ".hydra" / "hydra.yaml").read_text()
    assert "lr: 0.001" in (tmp_path / "a" / ".hydra" / "config.yaml").read_text()
    out = ok([*base, "~tuned", "hydra.run.dir=b"], tmp_path).stdout
    assert "tuned for" not in out
    assert saved(tmp_path / "b")["config"]["agent"]["lr"] == 3e-4  # tqc.yaml's own


def test_an_env_error_comes_first_and_alone(tmp_path):
    """The note of `env.id=X` (and the tuned line) come only after the env was made: a broken
    env id prints its one error line and nothing else."""
    proc = run([TRAIN, "env.id=CartPole-v1", *TINY], tmp_path)
    assert_clean_error(proc, "rl-repara-train", "CartPole-v1 has a Discrete action space")
    assert proc.stdout == ""


def _parse_eval(stdout: str) -> tuple[float, float]:
    m = re.search(r"mean return (-?\d+\.\d+) \+- (\d+\.\d+) over (\d+)", stdout)
    assert m, stdout
    return float(m.group(1)), float(m.group(2))


def test_eval_cli_reproduces_the_final_training_evaluation(straight, tmp_path):
    """Same policy, same start states (train seed + 1e6), deterministic actions: the CLI's
    mean and std equal the trainer's last evaluation."""
    run_dir, _ = straight
    proc = ok([EVAL, f"checkpoint={run_dir}", "episodes=2"], tmp_path)
    mean, std = _parse_eval(proc.stdout)
    tags = scalars(run_dir)
    assert mean == pytest.approx(tags["eval/mean_return"][-1][1], abs=0.006)
    assert std == pytest.approx(tags["eval/std_return"][-1][1], abs=0.006)
    assert "step 600" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # evaluation writes no Hydra files


def test_eval_cli_video(straight, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    pytest.importorskip("pygame")
    import imageio.v2 as imageio

    run_dir, _ = straight
    out = tmp_path / "pendulum.mp4"
    proc = ok(
        [EVAL, f"checkpoint={run_dir}/checkpoints/best.pt", "episodes=1", "video=true", f"video_path={out}"],
        tmp_path,
    )
    reader = imageio.get_reader(str(out))
    frames = sum(1 for _ in reader)
    assert frames == 201  # the reset frame and 200 steps of Pendulum
    assert reader.get_meta_data()["size"] == (500, 500)
    mean, _ = _parse_eval(proc.stdout)
    assert f"video (return {mean:.2f})" in proc.stdout  # the video is the first episode


def test_train_video_of_a_mujoco_env(tmp_path):
    """video=true: one deterministic episode to <run dir>/videos at the end, rendered
    off-screen (EGL or OSMesa); env.kwargs reach gymnasium.make (a 30-step time limit)."""
    import ctypes.util

    pytest.importorskip("imageio_ffmpeg")
    if not (ctypes.util.find_library("EGL") or ctypes.util.find_library("OSMesa")):
        pytest.skip("no off-screen OpenGL library (libEGL or libOSMesa)")
    import imageio.v2 as imageio

    proc = ok(
        [
            TRAIN,
            "hydra.run.dir=run",
            "env=halfcheetah",
            "+env.kwargs.max_episode_steps=30",
            "total_steps=60",
            "agent.learning_starts=50",
            "eval.every_steps=0",
            "video=true",
            *[a for a in TINY if "learning_starts" not in a],
        ],
        tmp_path,
    )
    video = tmp_path / "run" / "videos" / "step60.mp4"
    assert "video of one deterministic episode" in proc.stdout and str(video) in proc.stdout
    reader = imageio.get_reader(str(video))
    assert sum(1 for _ in reader) == 31  # the reset frame and 30 steps
    assert reader.get_meta_data()["size"] == (480, 480)


# ------------------------------------------------------------------------------- resume
def test_resume_in_a_new_process_is_bit_exact(straight, tmp_path):
    """300 steps, stop, resume to 600 in a new process == 600 steps straight, bit for bit."""
    run_a, _ = straight
    run_b = tmp_path / "run"
    ok([TRAIN, "hydra.run.dir=run", "total_steps=300", *STRAIGHT], tmp_path)
    hydra_cfg = (run_b / ".hydra" / "config.yaml").read_text()
    proc = ok([TRAIN, f"resume={run_b}", "total_steps=600"], tmp_path)
    assert "at step 300, training to step 600" in proc.stdout
    assert "tuned for" not in proc.stdout  # a resume continues the saved config
    a, b = scalars(run_a), scalars(run_b)
    for tag in LOSS_TAGS + ["eval/mean_return", "charts/episodic_return"]:
        assert b[tag] == a[tag], tag
    assert saved(run_b)["counters"]["global_step"] == 600
    # resuming wrote no Hydra files: the run's .hydra/ still describes its training
    assert (run_b / ".hydra" / "config.yaml").read_text() == hydra_cfg
    assert sorted(p.name for p in (run_b / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_resume_honours_the_device_asked_for(straight, tmp_path):
    """device= on a resume is the user's, not "auto": on a machine without a GPU, device=cuda
    is refused with the library's own one line (a resume used to run on auto regardless)."""
    run_dir, _ = straight
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    proc = run([TRAIN, f"resume={run_dir}", "total_steps=900", "device=cuda"], tmp_path)
    assert_clean_error(proc, "rl-repara-train", "device=cuda was asked for, but this torch sees no CUDA GPU")
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_falls_back_to_the_previous_checkpoint_when_last_is_corrupt(straight, tmp_path):
    """A torn last.pt: the CLI resumes from last.prev.pt (one checkpoint interval lost, not
    the run), says so, and reaches the total, as the library does."""
    src, _ = straight
    run_dir = tmp_path / "run"
    ok([TRAIN, "hydra.run.dir=run", "total_steps=400", "checkpoint.every_steps=200", *STRAIGHT], tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    assert saved(run_dir, "last.prev.pt")["counters"]["global_step"] == 200
    last.write_bytes(last.read_bytes()[:1000])  # torn
    torn = last.read_bytes()
    proc = ok([TRAIN, f"resume={run_dir}", "total_steps=300"], tmp_path)
    assert "using the previous checkpoint" in proc.stderr and "last.prev.pt" in proc.stderr
    assert "at step 200, training to step 300" in proc.stdout
    assert saved(run_dir)["counters"]["global_step"] == 300
    # the torn file is set aside, not linked over the good previous checkpoint by the save
    assert saved(run_dir, "last.prev.pt")["counters"]["global_step"] == 200
    assert (run_dir / "checkpoints" / "last.unreadable.pt").read_bytes() == torn


def test_a_second_trainer_on_a_run_dir_in_use_fails_with_the_lock_error_alone(straight, tmp_path):
    """While a trainer holds a run dir, a second one (resume=, the same command again, or a
    fresh run into it) prints the lock's one error line and nothing before it: no "resuming
    ..." line, no tuned line; the checkpoint is left alone."""
    from rl_repara.training.checkpoint import RunDirLock

    run_dir = tmp_path / "run"
    shutil.copytree(straight[0], run_dir)
    (tmp_path / "fresh").mkdir()
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    commands = {
        "resume": ([TRAIN, f"resume={run_dir}", "total_steps=900"], run_dir),
        "same command": ([TRAIN, "hydra.run.dir=run", "total_steps=900", *STRAIGHT], run_dir),
        "fresh": ([TRAIN, "hydra.run.dir=fresh", "total_steps=900", *STRAIGHT], tmp_path / "fresh"),
    }
    for case, (cmd, locked) in commands.items():
        with RunDirLock(locked):
            proc = run(cmd, tmp_path)
        assert_clean_error(proc, "rl-repara-train", "is in use by another trainer")
        assert proc.stdout == "", f"{case}: {proc.stdout}"
        assert locked.is_dir()  # the holder's dir is not cleaned up as an unused one
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_of_a_finished_run_does_nothing(straight, tmp_path):
    run_dir, _ = straight
    before = (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns
    proc = ok([TRAIN, f"resume={run_dir}"], tmp_path)
    assert "already at step 600 of total_steps=600" in proc.stdout
    assert (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_sigterm_checkpoints_then_rerun_resumes_to_completion(tmp_path):
    """SIGTERM mid-run: a checkpoint and a clean exit. The same command again (a requeued
    job: same run dir, no resume=) continues from that checkpoint to the end."""
    cmd = [
        TRAIN,
        "hydra.run.dir=run",
        "total_steps=1500",
        "eval.every_steps=0",
        "log.every_steps=100",
        *TINY,
        "log.progress=plain",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=command_env()
    )
    lines = []
    for line in proc.stdout:  # plain progress lines: "[rl_repara] step 300/1500 ..."
        lines.append(line)
        if "step 300/1500" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out
    assert "stopped by signal 15" in out and "Traceback" not in out
    stopped = saved(tmp_path / "run")["counters"]["global_step"]
    assert 300 <= stopped < 1500

    proc = ok(cmd, tmp_path)
    assert f"found a checkpoint in the run dir; resuming {tmp_path / 'run'} at step {stopped}" in proc.stdout
    assert saved(tmp_path / "run")["counters"]["global_step"] == 1500
    steps = [s for s, _ in scalars(tmp_path / "run")["losses/qf_loss"]]
    assert steps == list(range(100, 1501, 100))  # continues, no step twice


# ------------------------------------------------------------------------------ sweeps
@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local"])
def test_multirun_gives_each_seed_its_own_dir(tmp_path, launcher):
    # parallel jobs (joblib, submitit_local) get one torch thread each without being told
    tiny = TINY if launcher == "basic" else [a for a in TINY if not a.startswith("torch_threads")]
    ok(
        [
            TRAIN,
            "-m",
            "seed=0,1",
            f"hydra/launcher={launcher}",
            "hydra.sweep.dir=sweep",
            "total_steps=200",
            "eval.every_steps=0",
            *tiny,
        ],
        tmp_path,
        timeout=300,
    )
    for seed in (0, 1):
        run_dir = tmp_path / "sweep" / f"{seed}_seed{seed}"
        state = saved(run_dir)
        assert state["config"]["seed"] == seed
        assert state["counters"]["global_step"] == 200
        assert (run_dir / "tb").is_dir() and (run_dir / ".hydra" / "config.yaml").is_file()
        assert state["config"]["torch_threads"] == 1


def test_cluster_preemption_checkpoints_requeues_and_resumes(tmp_path):
    """Hydra's submitit launcher, run locally, handles SIGUSR2 as on SLURM (there it comes
    `signal_delay_s` before the time limit or on preemption): it requeues the job. The env
    sends the signal during its step 150; the job must checkpoint step 151 before submitit
    requeues it, and the requeued job resumes there (no periodic checkpoint is due)."""
    env = command_env()
    env["PYTHONPATH"] = str(REPO / "tests")  # gym.make imports helpers_envs in the job
    tiny = [a for a in TINY if not a.startswith("torch_threads")]
    proc = run(
        [
            TRAIN,
            "-m",
            "seed=0",
            "hydra/launcher=submitit_local",
            "hydra.sweep.dir=sweep",
            "env.id=helpers_envs:RlReparaTest/Preempted-v0",
            "total_steps=250",
            "eval.every_steps=0",
            "log.every_steps=50",
            *tiny,
        ],
        tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_log.*"))
    assert "stopped by signal 12 at step 151" in logs, logs
    assert "Requeued job" in logs, logs  # submitit's own handler ran after ours
    assert re.findall(r"resuming \S+ at step (\d+)", logs) == ["151"], logs
    run_dir = tmp_path / "sweep" / "0_seed0"
    assert saved(run_dir)["counters"]["global_step"] == 250
    steps = [s for s, _ in scalars(run_dir)["losses/qf_loss"]]
    assert steps == [100, 150, 200, 250]  # every step once, across the requeue


# ------------------------------------------------------------------------- user errors
TRAIN_ERRORS = {
    "typo": (["agent.lerning_rate=0.1"], "unknown config key 'agent.lerning_rate'"),
    "typo, suggested": (["agent.lerning_starts=3"], "Did you mean agent.learning_starts?"),
    "another library's name": (["agent.learning_rate=1e-3"], "Did you mean agent.lr?"),
    "cudagraphs on cpu": (
        ["agent.cudagraphs=true", "device=cpu"],
        "agent.cudagraphs=true needs a CUDA device, but the learner is on cpu",
    ),
    "bad value": (["total_steps=-5"], "total_steps must be > 0; got -5"),
    "wrong type": (["total_steps=abc"], "bad value for total_steps"),
    "discrete actions": (
        ["env.id=CartPole-v1"],
        "CartPole-v1 has a Discrete action space; SAC needs a bounded continuous Box action space",
    ),
    "unknown env": (["env.id=NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'"),
    "unknown preset": (["env=nosuchpreset"], "Could not find 'env/nosuchpreset'"),
    "run_dir key": (["run_dir=elsewhere"], "choose it with hydra.run.dir=DIR"),
    "two modes": (["-m", "--cfg", "job", "seed=0,1"], "Only one of --run, --multirun, --cfg"),
}


@pytest.mark.parametrize("case", list(TRAIN_ERRORS))
def test_train_user_errors_are_one_line(tmp_path, case):
    args, expected = TRAIN_ERRORS[case]
    proc = run([TRAIN, *args, *TINY], tmp_path)
    assert_clean_error(proc, "rl-repara-train", expected)
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "runs"])  # no run dir left behind
    assert not any((tmp_path / "runs").glob("*/*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu(tmp_path):
    proc = run([TRAIN, "device=cuda", *TINY], tmp_path)
    assert_clean_error(proc, "rl-repara-train", "device=cuda was asked for, but this torch sees no CUDA GPU")


def test_resume_errors_create_no_dirs(tmp_path):
    missing = tmp_path / "no_such_run"
    proc = run([TRAIN, f"resume={missing}"], tmp_path)
    assert_clean_error(proc, "rl-repara-train", f"no such file or directory: {missing}")
    assert not missing.exists()
    empty = tmp_path / "empty_run"
    empty.mkdir()
    proc = run([TRAIN, f"resume={empty}"], tmp_path)
    assert_clean_error(proc, "rl-repara-train", f"{empty} holds no checkpoint")
    assert list(empty.iterdir()) == []


def test_resume_from_a_policy_only_checkpoint(straight, tmp_path):
    run_dir, _ = straight
    policy_only = tmp_path / "run"
    (policy_only / "checkpoints").mkdir(parents=True)
    (policy_only / "checkpoints" / "last.pt").write_bytes((run_dir / "checkpoints" / "best.pt").read_bytes())
    proc = run([TRAIN, f"resume={policy_only}"], tmp_path)
    assert_clean_error(proc, "rl-repara-train", "holds only a policy")


def test_eval_user_errors(tmp_path):
    proc = run([EVAL], tmp_path)
    assert_clean_error(proc, "rl-repara-eval", "give the policy to evaluate: checkpoint=")
    proc = run([EVAL, f"checkpoint={tmp_path / 'nope.pt'}"], tmp_path)
    assert_clean_error(proc, "rl-repara-eval", f"no such file or directory: {tmp_path / 'nope.pt'}")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    proc = run([EVAL, f"checkpoint={corrupt}"], tmp_path)
    assert_clean_error(proc, "rl-repara-eval", f"{corrupt} is not a readable rl_repara checkpoint")
    proc = run([EVAL, f"checkpoint={corrupt}", "epsodes=3"], tmp_path)
    assert_clean_error(proc, "rl-repara-eval", "unknown config key 'epsodes'. Did you mean episodes?")


def test_hydra_full_error_shows_the_traceback(tmp_path):
    env = command_env()
    env["HYDRA_FULL_ERROR"] = "1"
    proc = run([TRAIN, "env.id=CartPole-v1", *TINY], tmp_path, env=env)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_scripts_are_thin_wrappers(tmp_path):
    proc = run([sys.executable, str(REPO / "scripts" / "train.py"), "env.id=CartPole-v1"], tmp_path)
    assert_clean_error(proc, "rl-repara-train", "SAC needs a bounded continuous Box")
    proc = run([sys.executable, str(REPO / "scripts" / "evaluate.py")], tmp_path)
    assert_clean_error(proc, "rl-repara-eval", "give the policy to evaluate")


def test_an_unwritable_checkpoint_is_a_runtime_fault_exit_1(tmp_path):
    """A disk that will not take the checkpoint is not the user's mistake: one line naming the
    file and the rescue copy, exit 1 (not 2), and the state is in the rescue file."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("a file where the dir should be")
    env = {**command_env(), "TMPDIR": str(tmp_path)}
    proc = run(
        [TRAIN, "hydra.run.dir=run", "total_steps=150", "eval.every_steps=0", *TINY], tmp_path, env=env
    )
    assert_clean_error(proc, "rl-repara-train", "could not write checkpoint", code=1)
    assert "The training state was saved instead to" in proc.stderr
    assert len(list(tmp_path.glob("rl_repara-rescue-*.pt"))) == 1
