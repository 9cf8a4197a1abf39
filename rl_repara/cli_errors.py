"""How the command line reports a mistake: one line naming the problem and the fix, and an
exit code (2 for a user mistake, 1 for a run-time fault; ``errors.RLReparaError.exit_code``)."""

from __future__ import annotations

import difflib
import sys
from typing import Any, Iterator, Optional

from omegaconf import OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from .errors import RLReparaError

__all__ = ["describe", "omegaconf_message", "print_error"]

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
