"""Pathwise (reparameterized) vs score-function gradients of E[f(a)] for a tanh-Gaussian.

Toy problem, one action dim::

    a = tanh(u),   u = μ + σ·ε,   ε ~ N(0, 1),   f(a) = −(a − target)²

We estimate g_μ = ∂/∂μ E[f(a)] and g_σ = ∂/∂σ E[f(a)] from N samples with

* pathwise:  mean_i ∂f(a_i)/∂(μ, σ), with a_i = ``TanhNormal.rsample()`` (backprop through a);
* score:     mean_i f(a_i)·∇ log p(a_i)  (REINFORCE), with a_i = ``sample()`` and
             ``log_prob`` from ``TanhNormal``;
* score+b:   the same with a leave-one-out mean baseline b_i = mean_{j≠i} f(a_j)
             (unbiased for N ≥ 2, undefined for N = 1).

Each estimator is drawn ``--repeats`` times per sample size N; the script prints its variance and
checks its mean against a Gauss–Hermite quadrature reference (central finite differences of
E[f], so the reference does not share any derivative formula with the estimators).

    python scripts/gradient_variance.py [--out docs/gradient_variance.png]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from rl_repara import TanhNormal

MU, SIGMA, TARGET = -0.5, 0.7, 0.5  # defaults; --mu and --sigma change the first two
METHODS = ("pathwise", "score", "score+b")


def f(a: torch.Tensor) -> torch.Tensor:
    return -(a - TARGET).square()


def expected_f(mu: float, sigma: float, nodes: int = 120) -> float:
    """E[f(tanh(μ + σε))] by Gauss–Hermite quadrature (weight e^{−x²/2})."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    a = np.tanh(mu + sigma * x)
    return float(np.sum(w * -((a - TARGET) ** 2)) / math.sqrt(2 * math.pi))


def reference_gradient(mu: float, sigma: float, h: float = 1e-5) -> tuple[float, float]:
    """(∂/∂μ, ∂/∂σ) E[f] by central differences of the quadrature."""
    g_mu = (expected_f(mu + h, sigma) - expected_f(mu - h, sigma)) / (2 * h)
    g_sigma = (expected_f(mu, sigma + h) - expected_f(mu, sigma - h)) / (2 * h)
    return g_mu, g_sigma


def estimates(method: str, n: int, repeats: int, mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``repeats`` independent N-sample estimates of (g_μ, g_σ), in one batched pass.

    Repeat r has its own leaf (μ_r, σ_r); the surrogate is Σ_r mean_i(...), so ∂/∂μ_r of it is
    exactly the r-th estimate.
    """
    loc = torch.full((repeats, 1), mu, dtype=torch.float64, requires_grad=True)
    scale = torch.full((repeats, 1), sigma, dtype=torch.float64, requires_grad=True)
    dist = TanhNormal(loc, scale)
    if method == "pathwise":
        surrogate = f(dist.rsample((n,))).mean(0).sum()
    else:
        a = dist.sample((n,))  # [n, repeats, 1], no gradient path through a
        reward = f(a).squeeze(-1)  # [n, repeats]
        if method == "score+b":
            if n < 2:
                nan = np.full(repeats, np.nan)
                return nan, nan
            reward = reward - (reward.sum(0, keepdim=True) - reward) / (n - 1)
        surrogate = (reward * dist.log_prob(a)).mean(0).sum()
    g_mu, g_sigma = torch.autograd.grad(surrogate, (loc, scale))
    return g_mu.squeeze(-1).numpy(), g_sigma.squeeze(-1).numpy()


def run(sizes: list[int], repeats: int, mu: float = MU, sigma: float = SIGMA) -> dict:
    """Per (param, method, N): variance of the estimate and z = (mean − ref)/stderr."""
    ref = dict(zip(("mu", "sigma"), reference_gradient(mu, sigma)))
    table = {}
    for method in METHODS:
        for n in sizes:
            for param, values in zip(("mu", "sigma"), estimates(method, n, repeats, mu, sigma)):
                var = float(np.var(values, ddof=1))
                z = (float(np.mean(values)) - ref[param]) / math.sqrt(var / repeats)
                table[param, method, n] = (var, z)
    return {"ref": ref, "table": table, "mu": mu, "sigma": sigma}


def _cell(value: float, width: int, spec: str) -> str:
    return f"{value:{width}{spec}}" if np.isfinite(value) else f"{'-':>{width}}"


def print_table(result: dict, sizes: list[int], repeats: int) -> None:
    ref, table = result["ref"], result["table"]
    mu, sigma = result["mu"], result["sigma"]
    print(f"f(a) = -(a - {TARGET})^2, a = tanh(u), u ~ N({mu}, {sigma}^2); {repeats} repeats per N")
    print(f"reference (quadrature): dE/dmu = {ref['mu']:.6f}, dE/dsigma = {ref['sigma']:.6f}")
    for param in ("mu", "sigma"):
        print(f"\nvariance of the d/d{param} estimate")
        print(
            f"{'N':>5} " + " ".join(f"{m:>12}" for m in METHODS) + f" {'score/path':>11} {'score+b/path':>13}"
        )
        for n in sizes:
            var = [table[param, m, n][0] for m in METHODS]
            cells = " ".join(_cell(v, 12, ".3e") for v in var)
            ratios = f"{_cell(var[1] / var[0], 11, '.1f')} {_cell(var[2] / var[0], 13, '.1f')}"
            print(f"{n:5d} {cells} {ratios}")
    zs = [z for _, z in table.values() if np.isfinite(z)]
    worst = max(zs, key=abs)
    verdict = "consistent with unbiased" if abs(worst) < 4.5 else "BIASED?"
    print(f"\nbias check: max |mean - ref| / stderr over all cells = {abs(worst):.2f} ({verdict})")


def plot(result: dict, sizes: list[int], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=False)
    styles = {"pathwise": "o-", "score": "s--", "score+b": "^:"}
    for ax, param in zip(axes, ("mu", "sigma")):
        for m in METHODS:
            ns = [n for n in sizes if np.isfinite(result["table"][param, m, n][0])]
            ax.loglog(ns, [result["table"][param, m, n][0] for n in ns], styles[m], label=m)
        ax.set_xlabel("samples per estimate N")
        ax.set_title(f"d/d{'μ' if param == 'mu' else 'σ'} E[f(a)]")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("variance of the estimate")
    axes[0].legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    p.add_argument("--repeats", type=int, default=4000)
    p.add_argument("--mu", type=float, default=MU)
    p.add_argument("--sigma", type=float, default=SIGMA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("docs/gradient_variance.png"))
    args = p.parse_args()
    torch.manual_seed(args.seed)
    result = run(args.sizes, args.repeats, args.mu, args.sigma)
    print_table(result, args.sizes, args.repeats)
    plot(result, args.sizes, args.out)
    print(f"plot written to {args.out}")


if __name__ == "__main__":
    main()
