"""Hydra command line: ``rl-repara-export checkpoint=RUN_DIR_OR_FILE format=onnx|pt2 [out=PATH]``.

The library call underneath is ``rl_repara.deploy.export.export_policy``; this adds the config schema
(``conf/export.yaml``, ``ExportCliConfig``) and the one-line errors of the other commands
(exit 2 for a missing or corrupt checkpoint, an unknown format or a missing extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from rl_repara.cli.errors import job_error, run_cli
from rl_repara.cli.schemas import ExportCliConfig, config_dir, to_object
from rl_repara.deploy.export import export_policy, sidecar_path
from rl_repara.errors import ConfigError, RLReparaError

__all__ = ["export_main"]

PROG = "rl-repara-export"


def _export(cfg: DictConfig) -> Path:
    args: ExportCliConfig = to_object(cfg, ExportCliConfig)
    if not args.checkpoint:
        raise ConfigError("give the policy to export: checkpoint=RUN_DIR or checkpoint=FILE.")
    path = export_policy(args.checkpoint, args.format, args.out)
    print(f"exported the {args.format} controller: {path}", flush=True)
    print(f"sidecar (shapes, bounds, names): {sidecar_path(path)}", flush=True)
    return path


def _export_job(cfg: DictConfig) -> Optional[Path]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    try:
        return _export(cfg)
    except RLReparaError as exc:
        job_error(PROG, exc, hc)


def export_main() -> None:
    """``rl-repara-export checkpoint=PATH format=onnx|pt2 [out=PATH]``."""
    import hydra

    main = hydra.main(config_path=config_dir(), config_name="export", version_base="1.3")
    run_cli(PROG, ExportCliConfig, main(_export_job))
