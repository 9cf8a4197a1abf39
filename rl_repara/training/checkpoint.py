"""Atomic checkpoint files and a lock that keeps one trainer per run dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional, TextIO

import torch

from rl_repara.console import note
from rl_repara.errors import CheckpointError, CheckpointWriteError, ConfigError

__all__ = [
    "FORMAT",
    "save_atomic",
    "load_checkpoint",
    "find_checkpoint",
    "RunDirLock",
    "load_latest",
    "remove_stale_temp_files",
    "check_fresh_run_dir",
]

FORMAT = "rl_repara-checkpoint-v1"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: dict[str, Any], path: str | Path, keep_previous: bool = True) -> Path:
    """Write ``obj`` to ``path`` so that a crash at any instant leaves a complete file there.

    The data goes to a temp file in the same dir, is fsynced, and then ``os.replace``-d over
    ``path``. With ``keep_previous`` the old file is first hard-linked to ``<stem>.prev.pt``,
    so the previous checkpoint stays on disk until the new one is complete, and after.
    Raises ``CheckpointWriteError`` (naming the path and the OS error) when the write fails; the
    old file is then untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save({"format": FORMAT, **obj}, f)
                f.flush()
                os.fsync(f.fileno())
            if keep_previous and path.exists():
                prev = path.with_suffix(".prev.pt")
                prev.unlink(missing_ok=True)
                os.link(path, prev)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise CheckpointWriteError(f"could not write checkpoint {path}: {exc}") from exc
    return path


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Read a file written by ``save_atomic``; a clear ``CheckpointError`` for anything else.

    ``mmap=True`` maps the tensors from the file instead of reading them (cheap when only the
    config is wanted, and a single copy when the tensors are then loaded into a module). Only
    torch's zip format can be mapped: any other file is read whole, so that it fails (or loads)
    for what it is, not for the mapping."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    head = None
    try:
        with open(path, "rb") as f:
            head = f.read(len(_ZIP_MAGIC))
        mmap = mmap and head == _ZIP_MAGIC
        obj = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except Exception as exc:  # truncated zip, random bytes, pickle errors, unreadable file, ...
        problem = "the file is empty." if head == b"" else _problem(exc)
        raise CheckpointError(
            f"{path} is not a readable rl_repara checkpoint (truncated or corrupt?): {problem}"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an rl_repara checkpoint (no '{FORMAT}' marker); it may come "
            "from another library or an incompatible version."
        )
    return obj


_ZIP_MAGIC = b"PK\x03\x04"  # how every file torch.save writes (and save_atomic) begins


def _problem(exc: BaseException) -> str:
    """What torch says is wrong, in one sentence: its first line up to the first full stop,
    without the advice that follows (miniz's "this can happen if...", or how to save for mmap)."""
    text = " ".join(str(exc).split())
    first = text.split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {first}." if first else f"{type(exc).__name__}."


def find_checkpoint(path: str | Path, name: str = "last.pt") -> Path:
    """Resolve a run dir, a checkpoints dir or a file to the checkpoint file to load.

    In a dir, ``last.pt`` is preferred, then ``last.prev.pt`` (left by an interrupted write).
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"no such file or directory: {path}")
    for d in (path / "checkpoints", path):
        for candidate in (d / name, d / Path(name).with_suffix(".prev.pt")):
            if candidate.is_file():
                return candidate
    raise CheckpointError(
        f"{path} holds no checkpoint (looked for checkpoints/{name}). Was the run started "
        "with checkpointing, and did it get past its first save?"
    )


def load_latest(path: str | Path, mmap: bool = False) -> tuple[Path, dict[str, Any]]:
    """The newest readable checkpoint under ``path`` (a run dir, checkpoints dir or file), and
    the file it was read from.

    When ``last.pt`` is unreadable but ``last.prev.pt`` is fine, the previous one is used, and
    one ``[rl_repara]`` line on stderr says so (one checkpoint interval is lost, not the run).
    """
    first = find_checkpoint(path)
    try:
        return first, load_checkpoint(first, mmap=mmap)
    except CheckpointError as exc:
        prev = first.with_suffix(".prev.pt")
        if _is_previous(first) or not prev.is_file():
            raise
        state = load_checkpoint(prev, mmap=mmap)
        note(f"{str(exc).rstrip('.')}; using the previous checkpoint {prev} instead.")
        return prev, state


def set_aside_unreadable_last(resumed_from: str | Path) -> Optional[Path]:
    """After a resume from ``last.prev.pt`` (``last.pt`` was unreadable), rename ``last.pt`` to
    ``last.unreadable.pt``; the new name, or None when there was nothing to set aside.

    Without this the next ``save_atomic`` would hard-link the unreadable file over the good
    ``last.prev.pt`` before writing the new one: a crash in between would leave no readable
    checkpoint. Call while holding the run dir's lock."""
    prev = Path(resumed_from)
    if not _is_previous(prev):
        return None
    last = prev.with_suffix("").with_suffix(".pt")
    if not last.exists():
        return None
    aside = last.with_suffix(".unreadable.pt")
    os.replace(last, aside)
    return aside


def _is_previous(path: Path) -> bool:
    """Whether ``path`` is a ``<stem>.prev.pt`` that ``save_atomic`` keeps."""
    return path.suffixes[-2:] == [".prev", ".pt"]


def remove_stale_temp_files(ckpt_dir: str | Path) -> None:
    """Delete ``.*.tmp`` files left by a write that was killed (call while holding the lock)."""
    for tmp in Path(ckpt_dir).glob(".*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass


def check_fresh_run_dir(run_dir: str | Path) -> None:
    """A fresh run refuses a run dir that holds a checkpoint (it would overwrite a run)."""
    if (Path(run_dir) / "checkpoints" / "last.pt").exists():
        raise ConfigError(
            f"run dir {run_dir} already holds a checkpoint; continue it with "
            f"resume={run_dir}, or choose another run dir."
        )


class RunDirLock:
    """An exclusive, non-blocking ``flock`` on ``<run_dir>/.lock`` for the trainer's lifetime.

    A second trainer on the same run dir gets a ``ConfigError`` instead of interleaving
    writes. The OS drops the lock when the process dies, even on ``kill -9``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._file: TextIO | None = None

    def acquire(self) -> "RunDirLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create run dir {self.path.parent}: {exc}") from None
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise ConfigError(
                f"run dir {self.path.parent} is in use by another trainer (pid {owner}). "
                "Wait for it to finish, stop it, or choose another run dir."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
