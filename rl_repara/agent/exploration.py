"""How actions are chosen while collecting: the env's uniform random actions during the warm-up,
then samples of the policy, with white noise or colored noise (``noise.ColoredNoise``).

The replay buffer gets the unit-box action ``y``, the env gets ``a = mid + half·y``. Each
observation acted on also updates the policy's observation statistics, once (when it has them).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from rl_repara.agent.noise import ColoredNoise
from rl_repara.nn.policies import TanhGaussianPolicy

__all__ = ["explore"]


@torch.inference_mode()
def explore(
    policy: TanhGaussianPolicy,
    obs: np.ndarray,
    noise: Optional[ColoredNoise] = None,
    random_actions: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(unit-box actions, env-unit actions)`` for ``obs [num_envs, obs_dim]``.

    With ``random_actions`` (env units, the warm-up) those are taken and mapped to the unit box;
    otherwise ``y = tanh(μ + σ·ε)`` with ε white (``noise=None``) or colored."""
    device = policy.action_low.device
    obs_t = torch.as_tensor(obs, device=device)
    if policy.obs_normalizer is not None:
        policy.obs_normalizer.update(obs_t)  # each obs acted on, once
    if random_actions is not None:
        return policy.to_unit(torch.as_tensor(random_actions, device=device)).cpu().numpy(), random_actions
    eps = None if noise is None else torch.as_tensor(noise.sample(), device=device)  # colored ε
    unit, env_action = policy.unit_and_env_action(obs_t, eps)  # y = tanh(μ + σ·ε), mid + half·y
    return unit.cpu().numpy(), env_action.cpu().numpy()
