"""How a command runs and reports a mistake: one line naming the problem and the fix, and an
exit code (2 for a user mistake, 1 for a run-time fault; ``errors.RLReparaError.exit_code``),
in the main process and in a sweep's jobs alike. A command's warnings are ``[rl_repara]`` lines
too, and its output carries colour codes only to a terminal."""

from __future__ import annotations

import difflib
import os
import sys
from typing import Any, Callable, Iterator, NoReturn, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from rl_repara.console import warnings_as_notes
from rl_repara.errors import RLReparaError

__all__ = [
    "JobFailed",
    "describe",
    "omegaconf_message",
    "print_error",
    "run_cli",
    "job_error",
    "in_sweep_worker",
]

# names other libraries use (SB3, CleanRL) for our keys
_ALIASES = {
    "learning_rate": "lr",
    "net_arch": "hidden_sizes",
    "hidden_dims": "hidden_sizes",
    "total_timesteps": "total_steps",
    "n_envs": "num_envs",
    "ent_coef": "init_alpha",
    "gradient_steps": "utd",
    "policy_frequency": "policy_delay",
}


def _chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _schema_keys(schema: type) -> list[str]:
    def walk(node: Any, prefix: str) -> list[str]:
        keys = []
        for k in node:
            full = f"{prefix}{k}"
            keys.append(full)
            if OmegaConf.is_dict(node[k]) and k != "kwargs":
                keys += walk(node[k], full + ".")
        return keys

    return walk(OmegaConf.structured(schema), "")


def omegaconf_message(exc: OmegaConfBaseException, schema: type) -> str:
    """One line for a config error; an unknown key gets the closest key of ``schema`` (or the
    key that another library's name stands for, e.g. ``learning_rate`` → ``lr``)."""
    key = getattr(exc, "full_key", None) or ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and " not in " in first and key:
        known = _schema_keys(schema)
        parent, _, leaf = key.rpartition(".")
        alias = f"{parent}.{_ALIASES[leaf]}" if parent and leaf in _ALIASES else _ALIASES.get(leaf)
        close = [alias] if alias in known else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        return f"unknown config key '{key}'.{hint} List the keys with --cfg job."
    if isinstance(exc, ValidationError) and key:
        return f"bad value for {key}: {first}"
    return first


def describe(exc: BaseException, schema: type) -> Optional[tuple[str, int]]:
    """``(one line, exit code)`` for a known error anywhere in the chain; None for a bug."""
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, RLReparaError):
            return str(e), e.exit_code
    for e in chain:
        if isinstance(e, OmegaConfBaseException):
            return omegaconf_message(e, schema), 2
    from hydra.errors import HydraException

    for e in chain:
        if isinstance(e, ValueError) and str(e).startswith("Only one of --run"):
            return f"{e} (print a sweep's config without -m: --cfg job)", 2  # Hydra's flag check
        if isinstance(e, HydraException):
            text = str(e).split("Config search path")[0]  # Hydra's internals: not for users
            return " ".join(text.split()), 2
    return None


def print_error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


_FULL_ERROR = "_RL_REPARA_FULL_ERROR"  # the user's HYDRA_FULL_ERROR, seen by sweep workers too
_MAIN_PID = "_RL_REPARA_MAIN_PID"  # the process that parsed the command line


class JobFailed(Exception):
    """One job of a sweep failed; its message was printed. Hydra collects it like any error.
    ``exit_code`` is the failed job's (2 for a user mistake); it survives pickling, so a job
    in a joblib or SLURM worker reports it too."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)
        self.message, self.exit_code = message, exit_code

    def __str__(self) -> str:
        return self.message


def run_cli(prog: str, schema: type, hydra_main: Callable[[], Any]) -> None:
    """Run a Hydra main; Hydra re-raises its errors (HYDRA_FULL_ERROR) and we print them as
    one line, unless the user asked for the full trace. Warnings are one ``[rl_repara]`` line
    each (``console.warnings_as_notes``); when stderr is no terminal (a log file), ``NO_COLOR``
    tells colouring libraries (Optuna's colorlog lines) to write none, here and in the jobs."""
    os.environ[_MAIN_PID] = str(os.getpid())  # inherited by sweep workers
    if not sys.stderr.isatty():
        os.environ.setdefault("NO_COLOR", "1")  # https://no-color.org
    warnings_as_notes()
    full = os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")
    os.environ[_FULL_ERROR] = "1" if full else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except BrokenPipeError:  # output piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C: the trainer stops without a checkpoint
        if full:
            raise
        print_error(prog, "interrupted")
        sys.exit(130)
    except JobFailed as exc:
        if full:
            raise
        print_error(prog, f"a sweep job failed: {exc}")
        sys.exit(exc.exit_code)
    except Exception as exc:
        described = describe(exc, schema)
        if full or described is None:
            raise
        print_error(prog, described[0])
        sys.exit(described[1])


def job_error(prog: str, exc: RLReparaError, hc: Any) -> NoReturn:
    """In a job: one line and exit (one run), or one line and ``JobFailed`` (a sweep job,
    so the other jobs go on and Hydra reports the failure)."""
    from hydra.types import RunMode

    if os.environ.get(_FULL_ERROR) == "1":
        raise exc
    if hc.mode == RunMode.MULTIRUN:
        message = f"job {hc.job.num} ({hc.runtime.output_dir}): {exc}"
        print_error(prog, message)
        raise JobFailed(message, exc.exit_code) from None
    print_error(prog, str(exc))
    raise SystemExit(exc.exit_code)


def in_sweep_worker() -> bool:
    """True in a job that a launcher started in another process (joblib, submitit)."""
    return os.environ.get(_MAIN_PID, str(os.getpid())) != str(os.getpid())
