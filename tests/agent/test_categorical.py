"""Categorical critics' math (``agent/categorical.py``) against independent references: C51's
projection against the textbook loop (lower and upper neighbour) in float64, HL-Gauss against
the Gaussian's CDF computed with ``math.erf``, the cross-entropy against torch's."""

from __future__ import annotations

import math

import pytest
import torch

from rl_repara.agent.categorical import cross_entropy, hl_gauss, project, support


def brute_force_projection(atoms: torch.Tensor, probs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Bellemare et al. (2017), Algorithm 1, one atom at a time: ``b = (Tz − v_min)/Δ``, ``l =
    ⌊b⌋``, ``u = ⌈b⌉``; ``m_l += p·(u − b)``, ``m_u += p·(b − l)``, and all of ``p`` to ``l`` when
    ``l = u``."""
    v_min, v_max, m = float(z[0]), float(z[-1]), z.shape[0]
    delta = (v_max - v_min) / (m - 1)
    out = torch.zeros(atoms.shape[0], m, dtype=torch.float64)
    for i in range(atoms.shape[0]):
        for j in range(atoms.shape[1]):
            b = (min(max(float(atoms[i, j]), v_min), v_max) - v_min) / delta
            lo, up, p = math.floor(b), math.ceil(b), float(probs[i, j])
            if lo == up:
                out[i, lo] += p
            else:
                out[i, lo] += p * (up - b)
                out[i, up] += p * (b - lo)
    return out


def _random_distribution(rows: int, atoms: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(rows, atoms, generator=g, dtype=torch.float64), dim=-1)
    return torch.randn(rows, atoms, generator=g, dtype=torch.float64) * 6, probs


def test_the_projection_is_the_textbook_one_in_float64():
    """Atoms inside, outside and exactly on the bins of a 11-bin support on [-5, 5]."""
    z = support(-5.0, 5.0, 11, dtype=torch.float64)
    atoms, probs = _random_distribution(16, 11, seed=0)
    atoms[0, :4] = torch.tensor([-5.0, 2.0, 5.0, 7.5], dtype=torch.float64)  # on bins, clipped
    torch.testing.assert_close(project(atoms, probs, z), brute_force_projection(atoms, probs, z))


def test_the_projection_keeps_the_mass_and_an_in_range_mean():
    z = support(-10.0, 10.0, 101, dtype=torch.float64)
    atoms, probs = _random_distribution(32, 51, seed=1)
    atoms = atoms.clamp(-9.9, 9.9)
    projected = project(atoms, probs, z)
    torch.testing.assert_close(projected.sum(-1), torch.ones(32, dtype=torch.float64))
    assert (projected >= 0).all()
    torch.testing.assert_close(projected @ z, (atoms * probs).sum(-1))  # all atoms inside


def test_an_atom_past_the_support_lands_on_its_edge():
    z = support(-1.0, 1.0, 5, dtype=torch.float64)
    projected = project(
        torch.tensor([[3.0, -9.0]], dtype=torch.float64), torch.tensor([[0.25, 0.75]]).double(), z
    )
    torch.testing.assert_close(projected, torch.tensor([[0.75, 0, 0, 0, 0.25]], dtype=torch.float64))


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("y", [-3.3, 0.0, 0.37, 4.9, 6.0])
def test_hl_gauss_is_the_gaussians_mass_between_the_bin_edges(y):
    z = support(-5.0, 5.0, 21, dtype=torch.float64)
    sigma, delta = 0.75 * 0.5, 0.5
    edges = [float(zk) - delta / 2 for zk in z] + [float(z[-1]) + delta / 2]
    mass = [_phi((edges[k + 1] - y) / sigma) - _phi((edges[k] - y) / sigma) for k in range(21)]
    inside = _phi((edges[-1] - y) / sigma) - _phi((edges[0] - y) / sigma)
    want = torch.tensor([m / inside for m in mass], dtype=torch.float64)
    got = hl_gauss(torch.tensor([y], dtype=torch.float64), z, sigma)[0]
    torch.testing.assert_close(got, want)
    assert got.sum().item() == pytest.approx(1.0, abs=1e-12)
    if -4.0 <= y <= 4.0:  # far from the edges the spread keeps the mean (up to binning)
        assert float(got @ z) == pytest.approx(y, abs=1e-5)


def test_cross_entropy_is_torchs_with_probability_targets_summed_over_critics():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 8, 11, generator=g, dtype=torch.float64)
    target = torch.softmax(torch.randn(8, 11, generator=g, dtype=torch.float64), dim=-1)
    want = sum(torch.nn.functional.cross_entropy(logits[n], target) for n in range(2))
    torch.testing.assert_close(cross_entropy(logits, target), want)
