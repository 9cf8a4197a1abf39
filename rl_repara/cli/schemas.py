"""The CLI's configs: the schemas Hydra checks ``conf/`` against, where ``conf/`` is, what one of
its files sets, and the resolvers that make a resumed run continue in its own dir."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_repara.agent.presets import conf_dir, conf_text
from rl_repara.cli.errors import omegaconf_message
from rl_repara.errors import ConfigError
from rl_repara.training.checkpoint import find_checkpoint
from rl_repara.training.config import TrainConfig

__all__ = [
    "EvalCliConfig",
    "ExportCliConfig",
    "config_dir",
    "conf_values",
    "command_line_keys",
    "register_configs",
    "run_dir_resolver",
    "output_subdir_resolver",
    "to_object",
]


@dataclass
class EvalCliConfig:
    """``rl-repara-eval``: deterministic episodes of a saved policy."""

    checkpoint: Optional[str] = None  # a run dir, or a checkpoint file (last.pt, best.pt)
    episodes: int = 10
    seed: Optional[int] = None  # None: the seeds of the trainer's evaluations (train seed + 1e6)
    device: str = "cpu"  # auto | cpu | cuda | cuda:N
    video: bool = False  # also write one episode (the first seed) to an mp4
    video_path: Optional[str] = None  # None: <run dir>/videos/<checkpoint>-step<N>-<time>.mp4


@dataclass
class ExportCliConfig:
    """``rl-repara-export``: a saved policy's deterministic controller as ONNX or ``.pt2``."""

    checkpoint: Optional[str] = None  # a run dir, or a checkpoint file (last.pt, best.pt)
    format: str = "onnx"  # onnx | pt2
    out: Optional[str] = None  # None: <run dir>/export/policy.<format>; a dir: that name inside


def config_dir() -> str:
    """``conf/`` as Hydra's ``config_path`` (``presets.conf_dir``)."""
    return conf_dir()


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(node, dict) or not node:
        return {prefix.rstrip("."): node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def command_line_keys(overrides: Iterable[str]) -> list[str]:
    """The config keys of Hydra's task overrides (``agent.lr=3e-4``, ``+env.kwargs.x=1``,
    ``~tuned``), in command-line order."""
    return [str(o).split("=", 1)[0].lstrip("+~") for o in overrides]


def conf_values(group: str, name: str) -> dict[str, Any]:
    """The values ``conf/<group>/<name>.yaml`` sets, by dotted config key, where its ``# @package``
    header puts them (``_global_``: from the top, ``agent``: under ``agent.``; none: under the
    group's name, Hydra's default); empty when there is no such file. Lists are single values."""
    text = conf_text(f"{group}/{name}.yaml")
    if text is None:
        return {}
    header = re.match(r"#\s*@package\s+(\S+)", text)
    package = header.group(1) if header else group
    raw = OmegaConf.to_container(OmegaConf.create(text))
    if not isinstance(raw, dict):
        return {}
    raw.pop("defaults", None)
    return _flatten(raw, "" if package == "_global_" else f"{package}.")


def run_dir_resolver(resume: Optional[str], default: str) -> str:
    """``hydra.run.dir`` (and a sweep job's subdir): the run to resume, else ``default``."""
    if not resume:
        return default
    path = Path(resume).expanduser()
    if path.is_file():
        raise ConfigError(f"resume= takes a run dir (the one holding checkpoints/), not the file {path}.")
    find_checkpoint(path)  # a clear error before Hydra makes any dir
    return str(path.absolute())


def output_subdir_resolver(resume: Optional[str]) -> Optional[str]:
    """``hydra.output_subdir``: none when resuming, so the run's own ``.hydra/`` stays as the
    record of the config it was trained with."""
    return None if resume else ".hydra"


def register_configs() -> None:
    """The schemas (``train_schema``, ``eval_schema``, ``export_schema``) and the resolvers
    ``conf/`` uses."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalCliConfig)
    cs.store(name="export_schema", node=ExportCliConfig)
    OmegaConf.register_new_resolver("rl_repara.run_dir", run_dir_resolver, replace=True)
    OmegaConf.register_new_resolver("rl_repara.output_subdir", output_subdir_resolver, replace=True)


def to_object(cfg: DictConfig, cls: type) -> Any:
    """The dataclass ``cls`` that a composed config describes; a ``ConfigError`` naming the key
    for a config that does not fit it."""
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(omegaconf_message(exc, cls)) from None
    if not isinstance(obj, cls):  # a config composed without the schema
        raise ConfigError(f"the config does not follow the {cls.__name__} schema.")
    return obj


register_configs()  # at import: sweep workers unpickle the task and need these too
