"""One deterministic episode to an mp4 file (the ``video`` extra: imageio + imageio-ffmpeg).

Off-screen rendering on a machine without a display: MuJoCo renders through EGL (or OSMesa)
when ``MUJOCO_GL`` says so, pygame (Pendulum, Box2D) through SDL's dummy video driver.
``prepare_headless`` picks these before MuJoCo is imported; values the user set win.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rl_repara.data.envs import make_env, prefer_headless_gl
from rl_repara.errors import VideoError
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.evaluation import run_episode

__all__ = ["check_writer", "prepare_headless", "record_episode"]

_INSTALL = "pip install 'rl_repara[video]' (imageio and imageio-ffmpeg)"


def prepare_headless() -> None:
    """Choose off-screen backends when no display is set (call before MuJoCo is imported).

    ``MUJOCO_GL``: ``egl`` when libEGL is found, else ``osmesa`` when libOSMesa is found.
    ``SDL_VIDEODRIVER=dummy`` lets pygame draw ``rgb_array`` frames without a window.
    """
    if sys.platform != "linux" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    prefer_headless_gl()
    _check_mujoco_gl()


def _check_mujoco_gl() -> None:
    """``import mujoco`` fails (with AttributeError, RuntimeError, ...) when ``MUJOCO_GL``
    names a backend whose library is missing; say so in one line."""
    import importlib.util

    backend = os.environ.get("MUJOCO_GL")
    if not backend or importlib.util.find_spec("mujoco") is None:
        return
    try:
        import mujoco  # noqa: F401
    except Exception as exc:
        raise VideoError(
            f"MuJoCo cannot load its MUJOCO_GL={backend} rendering backend "
            f"({type(exc).__name__}: {exc}). Use MUJOCO_GL=egl (needs libEGL) or "
            "MUJOCO_GL=osmesa (needs libOSMesa), or install that library."
        ) from None


def check_writer() -> None:
    """Raise ``VideoError`` now (not after an evaluation) when the mp4 writer is missing."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio writes mp4 with)
    except ImportError as exc:
        raise VideoError(f"video=true needs the package {exc.name}: {_INSTALL}.") from None


def _open_writer(path: Path, fps: float) -> Any:
    check_writer()
    import imageio.v2 as imageio

    # macro_block_size=2: keep even frame sizes as they are (yuv420p needs even sizes)
    return imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=2)


def _render(env: Any, env_id: str) -> Any:
    from gymnasium.error import DependencyNotInstalled

    try:
        frame = env.render()
    except DependencyNotInstalled as exc:  # e.g. pygame for the classic-control envs
        raise VideoError(f"cannot render {env_id}: {exc}") from None
    except Exception as exc:  # no GL context, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VideoError(
            f"cannot render {env_id} off-screen ({type(exc).__name__}: {first}). MuJoCo "
            "needs MUJOCO_GL=egl (with libEGL) or MUJOCO_GL=osmesa (with libOSMesa)."
        ) from None
    if frame is None:
        raise VideoError(f"{env_id} returned no frame for render_mode='rgb_array'.")
    return frame


def record_episode(
    policy: TanhGaussianPolicy,
    env_id: str,
    path: str | Path,
    env_kwargs: dict | None = None,
    seed: int | None = None,
    max_steps: int = 100_000,
) -> float:
    """Play one deterministic episode (reset with ``seed``, at most ``max_steps`` steps;
    ``evaluation.run_episode``), write its frames to ``path`` (mp4) and return the episode's
    return. Frames stream to the file;
    the file appears complete or not at all (it is written under a temp name first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    env = make_env(env_id, env_kwargs, render_mode="rgb_array")
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        writer = _open_writer(tmp, env.metadata.get("render_fps") or 30)
        try:
            frame = lambda: writer.append_data(_render(env, env_id))  # noqa: E731
            total = run_episode(policy, env, seed, max_steps, on_frame=frame)
        finally:
            writer.close()
        os.replace(tmp, path)
    finally:
        env.close()
        tmp.unlink(missing_ok=True)
    return total
