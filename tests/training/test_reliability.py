"""Nothing is lost under faults: non-finite env data, diverging losses, kill -9 during a
checkpoint write, corrupt or foreign checkpoint files, two trainers on one run dir, a full or
unwritable disk. Errors are checked by the text the user reads."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import helpers_envs as H
import numpy as np
import pytest
import torch
from support import EVAL, REPO, run

from rl_repara import EnvConfig, EvalConfig, SACConfig, TrainConfig, load_policy, train
from rl_repara.agent.learner import SAC
from rl_repara.errors import CheckpointError, CheckpointWriteError, ConfigError, EnvError, TrainingDiverged
from rl_repara.training import checkpoint_writer as writer_module
from rl_repara.training.checkpoint import RunDirLock, find_checkpoint, load_checkpoint, save_atomic
from rl_repara.training.config import CheckpointConfig, LogConfig
from rl_repara.training.signals import StopSignals


def _config(run_dir: Path, env: str = "Counting", total: int = 200, **kw) -> TrainConfig:
    """A tiny run on one of the test envs (``env`` is a helpers_envs name or a Gymnasium id)."""
    env_kwargs = kw.pop("env_kwargs", {})
    env_id = H.env_id(env) if env in H.ENVS else env
    agent = dict(learning_starts=100, hidden_sizes=[16], batch_size=16)
    agent.update(kw.pop("agent", {}))
    return TrainConfig(
        env=EnvConfig(id=env_id, kwargs=env_kwargs),
        total_steps=total,
        run_dir=str(run_dir),
        torch_threads=1,
        agent=SACConfig(**agent),
        eval=kw.pop("eval", EvalConfig(every_steps=0)),
        log=kw.pop("log", LogConfig(progress="none", every_steps=50)),
        **kw,
    )


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _all_finite(state: dict) -> bool:
    sac = state["sac"]
    tensors = [
        *sac["policy"].values(),
        *sac["critics"].values(),
        *sac["target_critics"].values(),
        sac["log_alpha"],
    ]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


# ----------------------------------------------------------------------- non-finite env data
@pytest.mark.parametrize("env, field, step", [("NanObs", "observation", 57), ("InfReward", "reward", 63)])
def test_nonfinite_env_data_stops_training_naming_the_step_and_field(tmp_path, env, field, step):
    with pytest.raises(EnvError) as info:
        train(_config(tmp_path, env))
    msg = str(info.value)
    assert H.env_id(env) in msg
    assert f"non-finite {field} at env step {step}" in msg
    assert "on_nonfinite=skip" in msg


@pytest.mark.parametrize("num_envs", [1, 2])
@pytest.mark.parametrize("nan_at", [20, 120], ids=["nan-while-random", "nan-while-learning"])
def test_skip_drops_nonfinite_transitions_and_keeps_training(tmp_path, nan_at, num_envs):
    """With on_nonfinite=skip the run reaches its total; the buffer holds no NaN/inf and none
    of the transitions that returned bad data, and every other transition is there (the env
    whose obs went NaN restarts without spending a step). The env asserts it is never given
    a NaN action. Transitions are told apart by ``obs[2] = t``, the env's step count."""
    bad_obs, bad_reward = {nan_at}, {63, 150}
    total = 200 * num_envs
    result = train(
        _config(
            tmp_path,
            total=total,
            num_envs=num_envs,
            on_nonfinite="skip",
            env_kwargs={"nan_obs_at": sorted(bad_obs), "inf_reward_at": sorted(bad_reward)},
        )
    )
    assert result.global_step == total
    state = load_checkpoint(find_checkpoint(tmp_path))
    stored = state["buffer"]["data"]
    for key, value in stored.items():  # invalid rows too: they hold zeros, never the NaN
        assert torch.isfinite(value.float()).all(), f"non-finite values stored in buffer[{key!r}]"
    valid = stored["valid"].bool()
    data = {k: v[valid] for k, v in stored.items()}  # the rows that can be sampled
    steps = data["obs"][:, 2].long()
    counts = torch.bincount(steps, minlength=200)
    dropped = {int(s) for s in np.flatnonzero(counts.numpy() < num_envs)}
    assert counts.max() == num_envs
    assert bad_obs | bad_reward <= dropped, "a transition with non-finite data was stored"
    assert dropped <= bad_obs | bad_reward, "good transitions lost"
    assert torch.equal(data["next_obs"][:, 2].long(), steps + 1)
    skipped = state["collector"]["skipped_nonfinite"]  # the count the run reports
    assert skipped == num_envs * len(bad_obs | bad_reward)
    assert total - int(valid.sum()) == skipped and state["buffer"]["size"] == total


def test_skip_counts_an_episode_that_ended_normally_before_a_nonfinite_reset(tmp_path):
    """An episode ends at its time limit and the env's reset returns a NaN obs: the episode
    is counted with its whole return and its last transition kept; only the reset is redone."""
    result = train(
        _config(tmp_path, total=40, on_nonfinite="skip", env_kwargs={"episode_len": 5, "nan_reset_at": [10]})
    )
    assert result.global_step == 40
    collector = load_checkpoint(find_checkpoint(tmp_path))["collector"]
    assert collector["episodes"] == 8, "an episode that ended normally went uncounted"
    assert collector["skipped_nonfinite"] == 0


# --------------------------------------------------------------------------- divergence
def _spy_saves(monkeypatch) -> list[tuple[int, tuple[str, int]]]:
    """Record (global_step, fingerprint of the file just written) for every last.pt save."""
    saves: list[tuple[int, tuple[str, int]]] = []
    real = writer_module.save_atomic

    def spy(obj, path, **kw):
        out = real(obj, path, **kw)
        if Path(path).name == "last.pt":
            saves.append((obj["counters"]["global_step"], _fingerprint(Path(path))))
        return out

    monkeypatch.setattr(writer_module, "save_atomic", spy)
    return saves


def _assert_last_good_checkpoint_intact(run_dir: Path, saves, steps: list[int]) -> None:
    """last.pt was written at ``steps`` only, and is still the file the last write left."""
    last = run_dir / "checkpoints" / "last.pt"
    assert [s for s, _ in saves] == steps
    step = steps[-1]
    assert _fingerprint(last) == saves[-1][1], "last.pt was rewritten after the divergence"
    state = load_checkpoint(last)
    assert state["counters"]["global_step"] == step
    assert _all_finite(state)


def test_nonfinite_loss_stops_with_training_diverged_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    """Rewards of 1e38 from step 250 on are finite in float32, but the squared TD error is
    not: the loss goes non-finite. The run stops with TrainingDiverged naming last.pt (written
    at step 200), which is left byte for byte as it was and still loads with finite weights."""
    saves = _spy_saves(monkeypatch)
    cfg = _config(tmp_path, "HugeReward", total=600, checkpoint=CheckpointConfig(every_steps=200))
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    msg = str(info.value)
    assert "non-finite" in msg
    assert f"Last good checkpoint: {tmp_path / 'checkpoints' / 'last.pt'}" in msg
    _assert_last_good_checkpoint_intact(tmp_path, saves, [200])


def _poison_after(monkeypatch, n_updates: int, module: str) -> None:
    """After update number ``n_updates``, one weight of ``module`` becomes NaN."""
    real = SAC.update_tensors

    def poisoned(self, batch):
        info = real(self, batch)
        if self.num_updates == n_updates:
            with torch.no_grad():
                next(getattr(self, module).parameters()).view(-1)[0] = float("nan")
        return info

    monkeypatch.setattr(SAC, "update_tensors", poisoned)


def test_checkpoint_guard_refuses_to_overwrite_with_nonfinite_weights(tmp_path, monkeypatch):
    """A critic weight goes NaN in the update of step 300 (update 201; learning starts at 100),
    right before the checkpoint of step 300, and no loss is logged in between: the save itself
    must refuse, keep last.pt from step 200 intact, and the run must resume from it once the
    cause is gone."""
    saves = _spy_saves(monkeypatch)
    _poison_after(monkeypatch, 201, "critics")
    cfg = _config(
        tmp_path,
        "Lenient",
        total=400,
        checkpoint=CheckpointConfig(every_steps=100),
        log=LogConfig(progress="none", every_steps=10_000),
    )
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    last = tmp_path / "checkpoints" / "last.pt"
    assert str(info.value) == (
        f"the weights are non-finite at env step 300; not overwriting the last good checkpoint ({last})."
    )
    _assert_last_good_checkpoint_intact(tmp_path, saves, [100, 200])
    monkeypatch.undo()
    result = train(TrainConfig(resume=str(tmp_path), total_steps=400, log=LogConfig(progress="none")))
    assert result.global_step == 400
    assert _all_finite(load_checkpoint(last))


def test_a_diverged_policy_is_reported_as_divergence_not_as_a_broken_env(tmp_path, monkeypatch):
    """NaN policy weights make NaN actions; Pendulum then returns NaN observations. The user
    must be told the training diverged (TrainingDiverged), not that Pendulum is broken."""
    _poison_after(monkeypatch, 31, "policy")  # step 130
    cfg = _config(tmp_path, "Pendulum-v1", total=300, checkpoint=CheckpointConfig(every_steps=100))
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    assert str(tmp_path / "checkpoints" / "last.pt") in str(info.value)


# ------------------------------------------------------------------- kill -9 mid-write
_WRITER = textwrap.dedent("""
    import sys, zlib, torch
    from rl_repara.training.checkpoint import save_atomic
    path, n_bytes = sys.argv[1], int(sys.argv[2])
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (n_bytes,), dtype=torch.uint8, generator=gen)
    i = int(sys.argv[3])
    while True:
        data[:8] = torch.tensor(list(i.to_bytes(8, "little")), dtype=torch.uint8)
        save_atomic({"i": i, "data": data, "crc": zlib.crc32(data.numpy())}, path)
        print(i, flush=True)
        i += 1
""")


def _check_complete(path: Path) -> int:
    state = load_checkpoint(path)
    assert zlib.crc32(state["data"].numpy()) == state["crc"], f"{path}: payload corrupt"
    assert int.from_bytes(bytes(state["data"][:8].tolist()), "little") == state["i"]
    return state["i"]


def test_kill_9_during_checkpoint_writes_leaves_a_complete_checkpoint(tmp_path):
    """A process rewrites a 24 MB checkpoint in a loop and is SIGKILLed 4 times: twice at a
    random instant, twice as soon as its temp file appears (so mid-write for sure). After
    each kill, the checkpoint found in the dir loads, its payload checksum matches, and it is
    the last write the process reported complete (or the one it was about to report)."""
    path = tmp_path / "checkpoints" / "last.pt"
    rng, next_i, interrupted = random.Random(0), 0, 0

    def temp_files() -> set[Path]:
        return set(path.parent.glob(".last.pt.*.tmp"))

    for round_ in range(4):
        stale = temp_files()  # left by earlier kills
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(24 * 2**20), str(next_i)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert proc.stdout.readline().strip() == str(next_i), "writer did not start"
        if round_ % 2 == 0:
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            deadline = time.monotonic() + 30
            while not temp_files() - stale and time.monotonic() < deadline:
                time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        reported = [int(line) for line in proc.communicate()[0].split()]
        assert proc.returncode == -signal.SIGKILL
        last_reported = reported[-1] if reported else next_i
        interrupted += bool(temp_files() - stale)
        found = find_checkpoint(tmp_path)
        assert found == path
        assert _check_complete(found) in (last_reported, last_reported + 1)
        prev = path.with_suffix(".prev.pt")
        if prev.exists():
            _check_complete(prev)
        next_i = _check_complete(found) + 1
    assert interrupted >= 1, "no kill landed in the middle of a write"
    for tmp in temp_files():  # 24 MB each; save_atomic leaves them behind after a kill
        tmp.unlink()


# ------------------------------------------------------------- corrupt or foreign files
def _truncated(path: Path) -> None:
    save_atomic({"weights": torch.randn(50_000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


FOREIGN = {
    "truncated": _truncated,
    "empty": lambda p: p.write_bytes(b""),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "text": lambda p: p.write_text("step: 100\nreturn: -150.0\n"),
    "plain-torch-dict": lambda p: torch.save({"policy": {"w": torch.zeros(3)}}, p),
    "plain-torch-tensor": lambda p: torch.save(torch.zeros(3), p),
}
UNREADABLE = "is not a readable rl_repara checkpoint (truncated or corrupt?)"
NO_MARKER = "is not an rl_repara checkpoint (no 'rl_repara-checkpoint-v1' marker)"
EXPECTED = {
    "truncated": UNREADABLE,
    "empty": UNREADABLE,
    "random-bytes": UNREADABLE,
    "text": UNREADABLE,
    "plain-torch-dict": NO_MARKER,
    "plain-torch-tensor": NO_MARKER,
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_a_corrupt_or_foreign_checkpoint_gets_a_clear_error(tmp_path, kind):
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    FOREIGN[kind](path)
    for load in (load_checkpoint, load_policy):
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert f"{path} {EXPECTED[kind]}" in str(info.value)
    with pytest.raises(CheckpointError, match="rl_repara checkpoint"):
        train(TrainConfig(resume=str(tmp_path / "run"), total_steps=10))


# what torch says of a torn zip, in one sentence (its advice about miniz is cut)
TORN_ZIP = "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory."
EXACT = {
    "truncated": f"{UNREADABLE}: {TORN_ZIP}",
    "empty": f"{UNREADABLE}: the file is empty.",
    "random-bytes": f"{UNREADABLE}: UnpicklingError: invalid load key, '_'.",
    "text": f"{UNREADABLE}: UnpicklingError: unpickling stack underflow.",
    "plain-torch-dict": f"{NO_MARKER}; it may come from another library or an incompatible version.",
    "legacy-torch-format": f"{NO_MARKER}; it may come from another library or an incompatible version.",
}
FOREIGN_EXACT = {
    **{k: FOREIGN[k] for k in EXACT if k in FOREIGN},
    "legacy-torch-format": lambda p: torch.save(
        {"w": torch.zeros(3)}, p, _use_new_zipfile_serialization=False
    ),
}


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("kind", sorted(EXACT))
def test_an_unreadable_checkpoint_is_one_line_naming_the_file_and_the_problem(tmp_path, kind, mmap):
    """The exact text, the same whether the tensors are read or mapped (eval, export and resume
    map them): no torch advice about saving for mmap or about miniz internals."""
    path = tmp_path / "last.pt"
    FOREIGN_EXACT[kind](path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, mmap=mmap)
    assert str(info.value) == f"{path} {EXACT[kind]}"


def test_the_fallback_to_the_previous_checkpoint_is_one_line_of_ours(tmp_path, capsys):
    """A torn last.pt beside a good last.prev.pt: one ``[rl_repara]`` line on stderr, no Python
    warning with its source line."""
    from rl_repara.training.checkpoint import load_latest

    last = tmp_path / "checkpoints" / "last.pt"
    save_atomic({"v": 1}, last)
    save_atomic({"v": 2}, last)
    last.write_bytes(last.read_bytes()[:100])  # torn
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would fail here
        file, state = load_latest(tmp_path, mmap=True)
    assert file == last.with_suffix(".prev.pt") and state["v"] == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        f"[rl_repara] {last} {UNREADABLE}: {TORN_ZIP[:-1]}; using the previous checkpoint {file} instead.\n"
    )


def test_eval_of_an_empty_checkpoint_file_is_one_line(tmp_path):
    """The command a user runs: one line naming the file and the problem (torch's mmap advice
    used to end it)."""
    empty = tmp_path / "last.pt"
    empty.write_bytes(b"")
    proc = run([EVAL, f"checkpoint={empty}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"rl-repara-eval: error: {empty} {UNREADABLE}: the file is empty."]


def test_missing_checkpoints_get_clear_errors(tmp_path):
    missing = re.escape(f"no such file or directory: {tmp_path / 'nope'}")
    with pytest.raises(CheckpointError, match=missing):
        train(TrainConfig(resume=str(tmp_path / "nope"), total_steps=10))
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        find_checkpoint(tmp_path)
    save_atomic({"counters": {}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"x.pt has no policy in it \(missing 'config'\)"):
        load_policy(tmp_path / "x.pt")


@pytest.mark.parametrize("given", ["run dir", "checkpoints dir", "checkpoint file"])
def test_resume_from_any_path_find_checkpoint_accepts_continues_the_same_run(tmp_path, given):
    """``find_checkpoint`` takes a run dir, its checkpoints dir or the file; resuming from any
    of them continues the run in its own run dir (not in checkpoints/ or at the file's path)."""
    run = tmp_path / "run"
    train(_config(run, total=100))
    path = {
        "run dir": run,
        "checkpoints dir": run / "checkpoints",
        "checkpoint file": run / "checkpoints" / "last.pt",
    }[given]
    result = train(TrainConfig(resume=str(path), total_steps=150, log=LogConfig(progress="none")))
    assert result.run_dir == run and result.global_step == 150
    assert load_checkpoint(run / "checkpoints" / "last.pt")["counters"]["global_step"] == 150


# ---------------------------------------------------------------- one trainer per run dir
def test_a_second_lock_on_the_same_run_dir_is_refused_even_in_one_process(tmp_path):
    with RunDirLock(tmp_path):
        with pytest.raises(ConfigError) as info:
            RunDirLock(tmp_path).acquire()
        assert str(info.value) == (
            f"run dir {tmp_path} is in use by another trainer (pid {os.getpid()}). "
            "Wait for it to finish, stop it, or choose another run dir."
        )
        in_use = re.escape(f"in use by another trainer (pid {os.getpid()})")
        with pytest.raises(ConfigError, match=in_use):
            train(_config(tmp_path))
        assert not (tmp_path / "tb").exists() and not (tmp_path / "checkpoints").exists()
    assert train(_config(tmp_path, total=20)).global_step == 20  # released on exit


_TRAINER = textwrap.dedent("""
    import sys
    from rl_repara import EvalConfig, SACConfig, TrainConfig, train
    from rl_repara.training.config import CheckpointConfig, LogConfig
    train(TrainConfig(total_steps=10**7, run_dir=sys.argv[1], torch_threads=1,
                      agent=SACConfig(learning_starts=10**7, buffer_size=100_000),
                      checkpoint=CheckpointConfig(every_steps=100),
                      eval=EvalConfig(every_steps=0), log=LogConfig(progress="none")))
""")


def test_a_running_trainer_locks_its_run_dir_and_kill_9_loses_nothing(tmp_path):
    """A trainer in another process holds the run dir: a second train() there is refused and
    names that process. After kill -9 the lock is gone, and resuming from the dir continues
    from its last checkpoint."""
    proc = subprocess.Popen([sys.executable, "-c", _TRAINER, str(tmp_path)], cwd=REPO)
    try:
        last = tmp_path / "checkpoints" / "last.pt"
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert last.exists(), "the trainer wrote no checkpoint"
        in_use = re.escape(f"in use by another trainer (pid {proc.pid})")
        with pytest.raises(ConfigError, match=in_use):
            train(TrainConfig(resume=str(tmp_path), total_steps=10**7, log=LogConfig(progress="none")))
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    step = load_checkpoint(find_checkpoint(tmp_path))["counters"]["global_step"]
    assert step > 0 and step % 100 == 0
    result = train(TrainConfig(resume=str(tmp_path), total_steps=step + 50, log=LogConfig(progress="none")))
    assert result.global_step == step + 50


# ----------------------------------------------------------------- full or unwritable disk
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_save_atomic_on_a_full_disk_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    """Whether the data write or the final rename fails, last.pt keeps its bytes, no temp
    file is left behind, and the error names the file and the OS error."""
    path = tmp_path / "last.pt"
    save_atomic({"v": 1}, path)
    save_atomic({"v": 2}, path)
    before = path.read_bytes()
    for target in ("save", "replace"):
        with monkeypatch.context() as m:
            m.setattr(torch if target == "save" else os, target, _enospc)
            with pytest.raises(CheckpointWriteError) as info:
                save_atomic({"v": 3}, path)
        assert str(info.value) == (f"could not write checkpoint {path}: [Errno 28] No space left on device")
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]
        assert load_checkpoint(path.with_suffix(".prev.pt"))["v"] in (1, 2)
    assert load_checkpoint(path)["v"] == 2


@pytest.mark.parametrize("progress", ["plain", "none"])
def test_a_failed_periodic_checkpoint_warns_and_training_goes_on(
    tmp_path, monkeypatch, capsys, recwarn, progress
):
    """The first two periodic writes hit a full disk; the run warns (naming last.pt) whatever
    the progress mode, keeps training, and the final checkpoint is complete."""
    real, calls = torch.save, []

    def flaky_save(obj, f, *args, **kwargs):
        calls.append(obj.get("counters", {}).get("global_step"))
        if len(calls) <= 2:
            _enospc()
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", flaky_save)
    cfg = _config(
        tmp_path,
        total=300,
        checkpoint=CheckpointConfig(every_steps=100),
        log=LogConfig(progress=progress, every_steps=50),
    )
    assert train(cfg).global_step == 300
    assert calls[:3] == [100, 200, 300] and set(calls[3:]) <= {300}
    out = capsys.readouterr()
    told = out.out + out.err + " ".join(str(w.message) for w in recwarn)
    last = tmp_path / "checkpoints" / "last.pt"
    assert f"could not write checkpoint {last}" in told, told
    assert load_checkpoint(last)["counters"]["global_step"] == 300


@pytest.mark.parametrize("eval_every", [0, 100], ids=["no-eval", "with-eval"])
def test_an_unwritable_checkpoint_dir_saves_the_state_to_a_rescue_file(tmp_path, monkeypatch, eval_every):
    """``checkpoints`` is a file, so nothing can be written under it (a root-proof stand-in
    for a read-only dir). Training still runs to the end (eval's best.pt included), then
    fails with a CheckpointWriteError that names the rescue file, which holds the final state."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("not a dir")
    cfg = _config(
        run,
        total=200,
        checkpoint=CheckpointConfig(every_steps=100),
        eval=EvalConfig(every_steps=eval_every, episodes=1),
        env_kwargs={"episode_len": 50},
    )
    with pytest.raises(CheckpointWriteError) as info:
        train(cfg)
    msg = str(info.value)
    rescue = tmp_path / "tmp" / f"rl_repara-rescue-{os.getpid()}.pt"
    assert f"could not write checkpoint {run / 'checkpoints' / 'last.pt'}" in msg
    assert f"The training state was saved instead to {rescue}" in msg
    assert load_checkpoint(rescue)["counters"]["global_step"] == 200


def test_a_run_dir_under_a_file_is_a_config_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("x")
    expected = re.escape(f"cannot create run dir {tmp_path / 'file' / 'run'}")
    with pytest.raises(ConfigError, match=expected):
        train(_config(tmp_path / "file" / "run"))


# ------------------------------------------------------------------ a scheduler's preemption
def test_preemption_signal_checkpoints_before_the_schedulers_handler_runs(tmp_path):
    """submitit (Hydra's SLURM launcher) installs a SIGUSR2 handler that requeues the job and
    exits. The trainer checkpoints the step the signal arrived in first, then calls it."""
    seen = []

    def submitit_like(signum, frame):
        state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
        seen.append((signum, state["counters"]["global_step"]))
        raise SystemExit(-1)  # what submitit does after `scontrol requeue`

    old = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        with pytest.raises(SystemExit):
            train(_config(tmp_path, "Preempted", total=400))  # the signal comes during step 150
        assert signal.getsignal(signal.SIGUSR2) is submitit_like  # given back
    finally:
        signal.signal(signal.SIGUSR2, old)
    assert seen == [(signal.SIGUSR2, 151)]
    # the requeued job: the same run dir resumes at step 151 and finishes
    result = train(TrainConfig(resume=str(tmp_path), total_steps=400, log=LogConfig(progress="none")))
    assert result.global_step == 400 and not result.interrupted


def test_preemption_signal_left_alone_without_a_scheduler(tmp_path):
    """No handler installed (a plain shell): SIGUSR2 keeps its default action, which the
    trainer does not swallow; SIGINT/SIGTERM are the ways to stop a local run."""
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) == stop.handle


def test_cudagraphs_on_a_cpu_learner_is_a_config_error_before_any_file(tmp_path):
    with pytest.raises(ConfigError, match="agent.cudagraphs=true needs a CUDA device.*device=cuda"):
        train(_config(tmp_path / "run", device="cpu", agent={"cudagraphs": True}))
    assert not (tmp_path / "run").exists()
