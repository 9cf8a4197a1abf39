"""The agent presets (``conf/agent/<name>.yaml``, and ``conf/tuned/<name>_<env>.yaml`` for an
(agent, env) pair) read without Hydra, so that Python users get the values the CLI gets::

    config = sac_config("crossq", env="pendulum", lr=1e-3)   # crossq.yaml, its tuned pair, lr

``conf/`` ships inside the package (``rl_repara/conf`` in a wheel) or sits beside it (a source
checkout). A preset's ``defaults`` list names the presets it starts from (``- sac``; ``_self_``
last), as Hydra reads it for the CLI.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from rl_repara.agent.config import SACConfig
from rl_repara.errors import ConfigError

__all__ = ["conf_dir", "conf_text", "agent_names", "preset_values", "sac_config"]


def conf_dir() -> str:
    """``conf/``: inside the installed package (a wheel), or beside it (a source checkout);
    ``pkg://rl_repara.conf`` when neither is a folder on disk."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    return "pkg://rl_repara.conf"


def conf_text(relpath: str) -> Optional[str]:
    """The text of ``conf/<relpath>``, or None when ``conf/`` has no such file."""
    root = conf_dir()
    if root.startswith("pkg://"):
        file = resources.files(root[len("pkg://") :]).joinpath(relpath)
        return file.read_text() if file.is_file() else None
    path = Path(root) / relpath
    return path.read_text() if path.is_file() else None


def agent_names() -> list[str]:
    """The names of the agent presets (``conf/agent/*.yaml``)."""
    root = conf_dir()
    folder = resources.files(root[len("pkg://") :]) if root.startswith("pkg://") else Path(root)
    files = folder.joinpath("agent").iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def preset_values(name: str, env: Optional[str] = None) -> dict[str, Any]:
    """The agent values of preset ``name`` (its ``defaults`` first), then those of
    ``conf/tuned/<name>_<env>.yaml`` when ``env`` is given and that pair file exists."""
    text = conf_text(f"agent/{name}.yaml")
    if text is None:
        raise ConfigError(f"no agent preset {name!r}; the presets are: {', '.join(agent_names())}.")
    values = _with_defaults(text, seen=(name,))
    tuned = conf_text(f"tuned/{name}_{env}.yaml") if env else None
    if tuned is not None:
        values.update(_with_defaults(tuned, seen=(name,)))
    return values


def _with_defaults(text: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """A preset file's values over those of the presets its ``defaults`` list names."""
    raw = yaml.safe_load(text) or {}
    out: dict[str, Any] = {}
    own = {k: v for k, v in raw.items() if k != "defaults"}
    for entry in raw.get("defaults", []):
        if entry == "_self_":
            out.update(own)
            own = {}
        elif isinstance(entry, str) and entry not in seen:
            out.update(_with_defaults(conf_text(f"agent/{entry}.yaml") or "", (*seen, entry)))
    out.update(own)
    return out


def sac_config(name: str = "sac", env: Optional[str] = None, **overrides: Any) -> SACConfig:
    """``SACConfig`` of agent preset ``name`` (``sac``, ``crossq``, ``tqc``, ``droq``, ``redq``,
    ...), with the values tuned for ``env`` (an env preset's name, e.g. ``"halfcheetah"``) when
    ``conf/tuned/<name>_<env>.yaml`` has them, then ``overrides``: the values ``rl-repara-train
    agent=<name> env=<env> agent.<key>=<value>`` trains with. An unknown key is a ``ConfigError``."""
    values = {**preset_values(name, env), **overrides}
    known = {f.name for f in dataclasses.fields(SACConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"SACConfig has no field {', '.join(unknown)}; its fields are: {', '.join(sorted(known))}."
        )
    config = SACConfig(**values)
    try:
        config.validate()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config
