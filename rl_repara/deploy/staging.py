"""Files that appear whole or not at all: written to temp files beside their target and renamed
into place only when everything written succeeded."""

from __future__ import annotations

import errno
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rl_repara.errors import ConfigError, ExportWriteError

__all__ = ["staged"]

# write errors that are faults of the machine, not of the path the user gave
_MACHINE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


@contextmanager
def staged(paths: list[Path]) -> Iterator[list[Path]]:
    """Temp files beside ``paths`` for the block to write; renamed over ``paths`` when it
    succeeds, deleted when it fails (a dir made for them is removed again if left empty).

    An ``OSError`` becomes an ``ExportWriteError`` (exit 1) for a full disk, a quota or an I/O
    error, and a ``ConfigError`` (exit 2, the user's path) otherwise; other errors pass."""
    parent = paths[0].parent
    made = [d for d in (parent, *parent.parents) if not d.exists()]
    tmps: list[Path] = []
    done = False
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # unique names, same suffix (torch.export.save wants .pt2), the writer's permissions
        tmps = [path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}") for path in paths]
        yield tmps
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
        done = True
    except OSError as exc:
        message = f"cannot write {paths[0]}: {exc.strerror or exc}"
        if exc.errno in _MACHINE_FAULTS:  # not the user's path: exit 1, like a checkpoint
            raise ExportWriteError(f"{message}. Nothing was written; free space and export again.") from None
        raise ConfigError(message) from None
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        for d in made if not done else []:
            _rmdir_if_empty(d)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
