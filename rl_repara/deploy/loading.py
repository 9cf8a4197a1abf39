"""``load_policy``: a trained ``TanhGaussianPolicy`` from a checkpoint, for other people's code."""

from __future__ import annotations

from pathlib import Path

import torch

from rl_repara.errors import CheckpointError
from rl_repara.nn.policies import TanhGaussianPolicy
from rl_repara.training.checkpoint import find_checkpoint, load_checkpoint
from rl_repara.training.config import TrainConfig

__all__ = ["load_policy"]


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> TanhGaussianPolicy:
    """Load the policy saved in ``path``: a checkpoint file (``last.pt`` or ``best.pt``) or a
    run dir (its ``checkpoints/last.pt``). Returned in eval mode on ``device``.

    The shapes come from the checkpoint (``obs_dim`` as saved, or for an older checkpoint from
    the first layer; ``act_dim`` and the bounds from the saved action bounds), so no env needs
    to be built.
    """
    file = find_checkpoint(path)
    ckpt = load_checkpoint(file, map_location="cpu")
    try:
        cfg = TrainConfig.from_dict(ckpt["config"])
        state = ckpt["sac"]["policy"]
        obs_dim = ckpt["sac"].get("obs_dim") or next(  # saved since 0.2.0; before, the MLP's input
            v.shape[1] for k, v in state.items() if k.startswith("trunk.") and v.dim() == 2
        )
        low, high = state["action_low"], state["action_high"]
    except (KeyError, TypeError, StopIteration) as exc:
        raise CheckpointError(f"{file} has no policy in it (missing {exc}).") from None
    policy = TanhGaussianPolicy(
        obs_dim,
        low.shape[0],
        action_low=low,
        action_high=high,
        **cfg.agent.policy_kwargs(),
    )
    policy.load_state_dict(state)
    return policy.to(device).eval()
