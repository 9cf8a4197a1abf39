"""Categorical (distributional) critics: a value distribution over ``M`` fixed bins, trained
with cross-entropy against a target distribution on the same bins.

The support is ``z_k = v_min + k·Δ``, ``Δ = (v_max − v_min)/(M − 1)``, ``k = 0..M−1``; a critic's
head gives logits ``[N, B, M]`` and its Q is the mean ``Σ_k softmax(logits)_k · z_k``
(``QEnsemble.q_values``). Two target rules (``parts.TARGET_RULES``):

* ``c51`` (Bellemare et al. 2017): the next distribution's atoms moved by the soft Bellman
  operator, ``r + d·(z_k − α·log π')``, clipped to ``[v_min, v_max]`` and projected back onto the
  support: each atom's mass split between its two neighbouring bins in proportion to nearness
  (``project``);
* ``hl_gauss`` (Imani & White 2018; Farebrother et al. 2024): the scalar soft target ``y``
  spread as a Gaussian ``N(y, σ²)`` over the bins, each bin getting the Gaussian's mass between
  its edges ``z_k ± Δ/2``, renormalized to the mass inside ``[v_min − Δ/2, v_max + Δ/2]``.

Both take the next distribution of one critic per row, the one whose mean is lowest (clipped
double Q on distributions).
"""

from __future__ import annotations

from typing import Optional

import torch

from rl_repara.agent.targets import TargetRule

__all__ = [
    "support",
    "project",
    "hl_gauss",
    "cross_entropy",
    "c51_rule",
    "hl_gauss_rule",
]


def support(v_min: float, v_max: float, bins: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``z_k = v_min + k·(v_max − v_min)/(bins − 1)``, ``[bins]``."""
    return torch.linspace(v_min, v_max, bins, device=device, dtype=dtype)


def project(atoms: torch.Tensor, probs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """C51's projection of the distribution with mass ``probs [B, K]`` at ``atoms [B, K]`` onto
    the support ``z [M]``: an atom at ``b = (clip(x) − v_min)/Δ`` bins, ``l = ⌊b⌋``, gives
    ``1 − (b − l)`` of its mass to bin ``l`` and ``b − l`` to bin ``l + 1`` (all to ``l`` when
    ``b`` is whole), i.e. ``max(0, 1 − |b − k|)`` to each bin ``k``. Two ``scatter_add`` calls,
    ``O(B·K)``. Returns ``[B, M]``; mass is kept, and so is the mean when every atom is inside."""
    v_min, v_max, m = z[0], z[-1], z.shape[0]
    b = (atoms.clamp(v_min, v_max) - v_min) / ((v_max - v_min) / (m - 1))  # [B, K]
    lower = b.floor().clamp(0, m - 1)
    frac = b - lower
    lower = lower.long()
    out = torch.zeros(*atoms.shape[:-1], m, dtype=probs.dtype, device=probs.device)
    out.scatter_add_(-1, lower, probs * (1 - frac))
    return out.scatter_add_(-1, (lower + 1).clamp(max=m - 1), probs * frac)


def hl_gauss(y: torch.Tensor, z: torch.Tensor, sigma: float) -> torch.Tensor:
    """The HL-Gauss distribution ``[B, M]`` of the scalar targets ``y [B]`` on support ``z``:
    bin ``k`` gets ``Φ((e_{k+1} − y)/σ) − Φ((e_k − y)/σ)`` with edges ``e_k = z_k − Δ/2``
    (``e_M = z_{M−1} + Δ/2``), divided by ``Φ((e_M − y)/σ) − Φ((e_0 − y)/σ)``."""
    delta = (z[-1] - z[0]) / (z.shape[0] - 1)
    edges = torch.cat([z - delta / 2, z[-1:] + delta / 2])  # [M + 1]
    cdf = torch.special.ndtr((edges - y[:, None]) / sigma)  # [B, M + 1]
    mass = cdf[:, 1:] - cdf[:, :-1]
    return mass / (cdf[:, -1:] - cdf[:, :1]).clamp_min(1e-12)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``Σ_n mean_B [−Σ_k target_k · log softmax(logits_n)_k]`` for ``logits [N, B, M]`` and a
    target distribution ``[B, M]`` (no gradient)."""
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean(-1).sum()


def _lowest_mean(next_logits: torch.Tensor, z: torch.Tensor, subset: Optional[torch.Tensor]) -> torch.Tensor:
    """The next distribution ``[B, M]`` of the critic whose mean is lowest, row by row."""
    if subset is not None:
        next_logits = next_logits[subset]
    probs = torch.softmax(next_logits.float(), dim=-1)  # [N, B, M]
    means = probs @ z  # [N, B]
    pick = means.argmin(dim=0)  # [B]
    return probs.gather(0, pick[None, :, None].expand(1, *probs.shape[1:]))[0]


def c51_rule(v_min: float, v_max: float, bins: int) -> TargetRule:
    """The ``c51`` rule: projected Bellman atoms, cross-entropy."""

    def target(next_logits, next_log_prob, alpha, reward, discount, subset=None):
        z = support(v_min, v_max, bins, next_logits.device)
        probs = _lowest_mean(next_logits, z, subset)
        atoms = reward[:, None] + discount[:, None] * (z - alpha * next_log_prob[:, None])
        return project(atoms, probs, z)

    return TargetRule(target, cross_entropy)


def hl_gauss_rule(v_min: float, v_max: float, bins: int, sigma_bins: float = 0.75) -> TargetRule:
    """The ``hl_gauss`` rule: the scalar soft target ``y = r + d·(Q'(s', a') − α·log π')`` (Q' the
    lowest critic mean) spread with ``σ = sigma_bins · Δ``, cross-entropy."""
    sigma = sigma_bins * (v_max - v_min) / (bins - 1)

    def target(next_logits, next_log_prob, alpha, reward, discount, subset=None):
        z = support(v_min, v_max, bins, next_logits.device)
        next_q = _lowest_mean(next_logits, z, subset) @ z
        y = reward + discount * (next_q - alpha * next_log_prob)
        return hl_gauss(y, z, sigma)

    return TargetRule(target, cross_entropy)
