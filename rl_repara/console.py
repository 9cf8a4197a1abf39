"""What the user reads in the terminal: the progress display, ``[rl_repara]`` notes, warnings
in our voice (once each, no source lines or colour codes), and the job prefix of a sweep's
parallel jobs."""

from __future__ import annotations

import io
import re
import sys
import warnings
from typing import Mapping, Optional, TextIO

__all__ = ["Progress", "note", "note_once", "said", "warnings_as_notes", "prefix_output", "restore_output"]


class Progress:
    """A tqdm bar on a terminal; plain lines every ``log.every_steps`` elsewhere (CI logs).

    ``mode``: "auto" (bar when stdout is a TTY), "bar", "plain" or "none".
    """

    def __init__(self, total: int, initial: int, mode: str = "auto") -> None:
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "plain"
        self.mode, self.total = mode, total
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, n: int, stats: Mapping[str, float]) -> None:
        """Advance the bar by ``n`` env steps and show ``stats`` beside it."""
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()}, refresh=False)

    def line(self, step: int, stats: Mapping[str, float]) -> None:
        """A plain status line (plain mode only), e.g. at each log interval."""
        if self.mode == "plain":
            parts = " ".join(f"{k}={v:.4g}" for k, v in stats.items())
            print(f"[rl_repara] step {step}/{self.total} {parts}", flush=True)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message)
        elif self.mode != "none":
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------- lines for the user
def note(message: str) -> None:
    """``[rl_repara] message`` on stderr: something the user should know that is not an error
    (a fallback taken, a periodic write that failed). Written above a progress bar, if one is
    shown, rather than through it."""
    from tqdm import tqdm

    tqdm.write(f"[rl_repara] {message}", file=sys.stderr)
    sys.stderr.flush()


def say(message: str) -> None:
    """``[rl_repara] message`` on stdout: what a run chose (the tuned values it took, the update
    it compiled or not), beside its progress and away from stderr, where errors are one line."""
    from tqdm import tqdm

    tqdm.write(f"[rl_repara] {message}", file=sys.stdout)
    sys.stdout.flush()


said: set[str] = set()  # what note_once has said in this process


def note_once(message: str) -> None:
    """``note(message)`` unless this process said it already: a run builds its train envs and
    its eval env alike, and a warning repeats, but the user reads each once."""
    if message not in said:
        said.add(message)
        note(message)


_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # ANSI colours (Gymnasium colours its warnings)


def _warning_as_note(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Optional[TextIO] = None,
    line: Optional[str] = None,
) -> None:
    """``warnings.showwarning`` for the commands: each text once, as one ``[rl_repara]`` line,
    without the source line or colour codes."""
    text = " ".join(_ESCAPES.sub("", str(message)).split())
    text = text.removeprefix("WARN: ")  # Gymnasium's own prefix
    if text:
        note_once(f"warning: {text}")


def warnings_as_notes() -> None:
    """Show this process's Python warnings (ours, Gymnasium's, torch's, ...) as one
    ``[rl_repara] warning: ...`` line each, each text once. The commands call it; a library
    user keeps Python's own display."""
    warnings.showwarning = _warning_as_note


# ---------------------------------------------------------------- a sweep's parallel jobs
class _PrefixedLines(io.TextIOBase):
    """A text stream that writes ``prefix`` before every line it passes on to ``stream``.

    It says it is no terminal: the lines of parallel jobs share one, so a job shows plain
    progress lines, not a bar, and no colours."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        super().__init__()
        self.stream, self.prefix = stream, prefix
        self._line_start = True

    def write(self, text: str) -> int:
        out = []
        for piece in re.split(r"(?<=\n)", text):
            if piece:
                out.append(self.prefix + piece if self._line_start else piece)
                self._line_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def prefix_output(label: str) -> None:
    """Prefix every line this process writes to stdout and stderr with ``label`` (a sweep job's
    ``[job 3 seed=2]``) until ``restore_output``, so that the lines of parallel jobs say
    which job wrote them."""
    restore_output()
    sys.stdout = _PrefixedLines(sys.stdout, f"{label} ")
    sys.stderr = _PrefixedLines(sys.stderr, f"{label} ")


def restore_output() -> None:
    """Undo ``prefix_output``."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _PrefixedLines):
            setattr(sys, name, stream.stream)
