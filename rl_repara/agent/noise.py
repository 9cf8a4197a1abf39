"""Temporally correlated ("colored") exploration noise for the policy's ε while collecting.

Eberhard et al., "Pink Noise Is All You Need" (ICLR 2023): SAC acts with
``u = μ + σ·ε``, ``ε ~ N(0, I)`` drawn afresh each step (white noise). Drawing ε instead from a
Gaussian process whose power spectrum is ``∝ 1/f^β`` (β = 1 pink, β = 0 white, β = 2
red/Brownian) makes the exploration wander further per episode; pink is a good default.

:class:`ColoredNoise` keeps, for every env and action dim, its own sequence of ``seq_len`` steps
(the paper uses the episode length, e.g. 1000), made by the FFT method of Timmer & König (1995):
random Fourier coefficients with amplitude ``∝ f^(−β/2)`` (the zero frequency gets the amplitude
of the lowest one, ``1/seq_len``, as in the authors' ``pink-noise-rl``), transformed back to
time. Every step of a sequence is exactly N(0, 1) on its own (unit marginal variance); the
steps are correlated with each other as the spectrum says. When a sequence runs out (an episode
longer than ``seq_len``) a new, independent one follows. β = 0 is plain white noise: i.i.d.
N(0, 1) draws, no FFT.

Why not a library: ``colorednoise.powerlaw_psd_gaussian`` (and its copy inside
``pink-noise-rl``) scales its output by a standard deviation that leaves out the zero-frequency
component it adds, so each step's variance is above 1 (≈ 1.07 for pink and ≈ 1.30 for red at
1000 steps; 1.16 for white at 7 steps) and it fails for a length of 1. ``pink-noise-rl`` also
resets all sequences at once, has no state to checkpoint, and imports stable-baselines3 when it
is installed. The generator here is the same construction, normalized exactly, in a few lines.

Randomness: one seeded :class:`numpy.random.Generator` per env, spawned from ``seed`` (never the
global generator). So env ``i``'s noise depends only on ``seed``, ``i`` and that env's own
resets: resetting one env leaves every other env's future noise unchanged, and env ``i`` gets
the same noise whatever ``num_envs`` is.

How the trainer uses it (with ``agent.noise_beta > 0``)::

    noise = ColoredNoise(cfg.agent.noise_beta, num_envs, policy.act_dim, seq_len, seed)

    # acting (Trainer._actions, after learning_starts): the policy's sample uses colored ε.
    # The log-density is not needed while acting, so only the action is formed.
    dist = policy.unit_distribution(obs)
    eps = torch.as_tensor(noise.sample(), device=dist.loc.device, dtype=dist.loc.dtype)
    unit = torch.tanh(dist.loc + dist.scale * eps)  # the unit box; env action = policy.to_env(unit)

    # after each env step: envs whose episode ended (terminated | truncated, and any env the
    # collector restarted) start a fresh sequence for their next episode
    noise.reset(done)

    # checkpoint / exact resume: save noise.state_dict() next to the other RNG states and
    # restore it with noise.load_state_dict(state); the noise then continues bit-identically.

Held noise (FlashSAC's "noise repetition", ``repeat_max > 1``): each sequence is cut into runs
of ``k`` steps, ``k`` drawn from the truncated Zeta law ``P(k) ∝ k^−2`` on ``1..repeat_max``
(FlashSAC: 16), and every step of a run takes the ε of the run's first step; each step is
still exactly N(0, 1) on its own. The run lengths come from the same per-env generator, after
that sequence's ε, so holding is checkpointed and resumed with the rest.

The learner's updates are unchanged: they keep drawing white ε through ``rsample``. With
``noise_beta == 0`` and ``noise_repeat_max == 1`` the trainer keeps the policy's own sampling
and makes no ColoredNoise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rl_repara.errors import CheckpointError, ConfigError

__all__ = ["ColoredNoise"]


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _amplitudes(beta: float, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency scales ``(real, imag)`` of the ``seq_len // 2 + 1`` rfft coefficients.

    Coefficient ``k`` is ``s_k·√(n/2)·(a + ib)`` with ``a, b ~ N(0, 1)``, except the zero and (for
    even ``n``) Nyquist frequencies, which are real: ``s_k·√n·a``. Then ``irfft`` has per-step
    variance ``(1/n) Σ_k m_k s_k²`` (``m_k`` = 1 for those two, 2 for the others), and ``s`` is
    scaled to make that exactly 1. With ``s ≡ 1`` this is the spectrum of white N(0, 1) noise.
    """
    n = seq_len
    freqs = np.fft.rfftfreq(n)
    if n > 1:
        freqs[0] = freqs[1]  # the zero frequency gets the lowest one's power (cutoff 1/n)
    else:
        freqs[0] = 1.0  # one step: a single N(0, 1) draw
    s = freqs ** (-beta / 2.0)
    real = np.full_like(s, math.sqrt(n / 2.0))
    imag = real.copy()
    single = [0] + ([n // 2] if n % 2 == 0 and n > 1 else [])  # the real-only coefficients
    real[single] = math.sqrt(n)
    imag[single] = 0.0
    mult = np.full_like(s, 2.0)
    mult[single] = 1.0
    s = s / math.sqrt(float(np.sum(mult * s**2)) / n)
    return s * real, s * imag


class ColoredNoise:
    """Standard-normal ε per env and action dim, correlated over time with spectrum ``∝ 1/f^β``.

    ``sample()`` returns the next ε, ``[num_envs, act_dim]`` float32; each (env, dim) is its own
    independent sequence of ``seq_len`` steps, followed by a fresh one when it runs out.
    ``reset(mask)`` starts fresh sequences for the masked envs (call it when their episodes end).
    ``state_dict()`` / ``load_state_dict()`` hold the generators, the current sequences and the
    positions in them, so a restored instance continues bit-identically.
    """

    def __init__(
        self, beta: float, num_envs: int, act_dim: int, seq_len: int, seed: int, repeat_max: int = 1
    ) -> None:
        if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.integer, np.floating)):
            raise ConfigError(f"colored noise beta must be a number >= 0, got {beta!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ConfigError(f"colored noise beta must be a finite number >= 0, got {beta!r}")
        sizes = {"num_envs": num_envs, "act_dim": act_dim, "seq_len": seq_len, "repeat_max": repeat_max}
        for name, value in sizes.items():
            if not _is_int(value) or value < 1:
                raise ConfigError(f"colored noise {name} must be an integer >= 1, got {value!r}")
        if not _is_int(seed) or seed < 0:
            raise ConfigError(f"colored noise seed must be an integer >= 0, got {seed!r}")
        self.beta = float(beta)
        self.num_envs, self.act_dim, self.seq_len = int(num_envs), int(act_dim), int(seq_len)
        self._rngs = [
            np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(self.num_envs)
        ]
        self.repeat_max = int(repeat_max)
        self._amp = None if self.beta == 0.0 else _amplitudes(self.beta, self.seq_len)
        zeta = 1.0 / np.arange(1, self.repeat_max + 1) ** 2.0
        self._zeta = zeta / zeta.sum()  # P(k) ∝ k^−2 on 1..repeat_max
        # [num_envs, seq_len, act_dim]: row t of env e is that env's ε at position t
        self._buffer = np.zeros((self.num_envs, self.seq_len, self.act_dim), dtype=np.float32)
        self._pos = np.full(self.num_envs, self.seq_len, dtype=np.int64)  # all used up: drawn lazily
        self._rows = np.arange(self.num_envs)

    def __repr__(self) -> str:
        return (
            f"ColoredNoise(beta={self.beta}, num_envs={self.num_envs}, act_dim={self.act_dim}, "
            f"seq_len={self.seq_len}, repeat_max={self.repeat_max})"
        )

    def _draw(self, env: int) -> np.ndarray:
        """A new sequence ``[seq_len, act_dim]`` from env ``env``'s generator, held in runs
        when ``repeat_max > 1``."""
        rng = self._rngs[env]
        if self._amp is None:
            seq = rng.standard_normal((self.seq_len, self.act_dim))
        else:
            real, imag = self._amp
            z = rng.standard_normal((2, real.shape[0], self.act_dim))
            coeffs = real[:, None] * z[0] + 1j * (imag[:, None] * z[1])
            seq = np.fft.irfft(coeffs, n=self.seq_len, axis=0)
        return seq if self.repeat_max == 1 else seq[self._held_steps(rng)]

    def _held_steps(self, rng: np.random.Generator) -> np.ndarray:
        """For each step, the first step of its run: run lengths ``k ~ P(k) ∝ k^−2`` on
        ``1..repeat_max``, one after another until they cover ``seq_len`` steps."""
        lengths = rng.choice(self.repeat_max, size=self.seq_len, p=self._zeta) + 1
        starts = np.cumsum(lengths) - lengths
        return np.repeat(starts, lengths)[: self.seq_len]

    def sample(self) -> np.ndarray:
        """The next ε of every env, ``[num_envs, act_dim]`` float32 (a new array each call)."""
        for env in np.flatnonzero(self._pos >= self.seq_len):
            self._buffer[env] = self._draw(int(env))
            self._pos[env] = 0
        eps = self._buffer[self._rows, self._pos]  # advanced indexing: a copy
        self._pos += 1
        return eps

    def reset(self, mask: np.ndarray) -> None:
        """Start fresh sequences for the envs where ``mask`` (bool ``[num_envs]``) is True.

        The new sequence is drawn at the next ``sample()``; the other envs are untouched.
        """
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ConfigError(
                f"ColoredNoise.reset needs a bool mask of shape ({self.num_envs},), "
                f"got {mask.dtype} {mask.shape}"
            )
        self._pos[mask] = self.seq_len

    def state_dict(self) -> dict[str, Any]:
        """Everything ``sample`` depends on (copies): config, generator states, sequences, positions."""
        return {
            "beta": self.beta,
            "num_envs": self.num_envs,
            "act_dim": self.act_dim,
            "seq_len": self.seq_len,
            "repeat_max": self.repeat_max,
            "rngs": [rng.bit_generator.state for rng in self._rngs],
            "buffer": self._buffer.copy(),
            "pos": self._pos.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output; it must come from noise with the same config."""
        try:
            config = (
                float(state["beta"]), state["num_envs"], state["act_dim"], state["seq_len"],
                state.get("repeat_max", 1),  # checkpoints from before held noise
            )  # fmt: skip
            rngs, buffer, pos = state["rngs"], np.asarray(state["buffer"]), np.asarray(state["pos"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"not a ColoredNoise state: {exc!r}") from None
        mine = (self.beta, self.num_envs, self.act_dim, self.seq_len, self.repeat_max)
        if config != mine:
            raise CheckpointError(
                f"the colored-noise state is for (beta, num_envs, act_dim, seq_len, repeat_max) = {config}, "
                f"this noise has {mine}"
            )
        if (
            len(rngs) != self.num_envs
            or buffer.shape != self._buffer.shape
            or buffer.dtype != self._buffer.dtype
            or pos.shape != self._pos.shape
            or not np.issubdtype(pos.dtype, np.integer)
            or not ((pos >= 0) & (pos <= self.seq_len)).all()
        ):
            raise CheckpointError(
                "the colored-noise state has generators, buffer or positions of the wrong shape"
            )
        restored = []
        for rng, rng_state in zip(self._rngs, rngs):  # all checked before any is replaced
            bit_generator = type(rng.bit_generator)(0)
            try:
                bit_generator.state = rng_state
            except (TypeError, ValueError, KeyError) as exc:
                raise CheckpointError(f"the colored-noise state has a bad generator state: {exc!r}") from None
            restored.append(np.random.Generator(bit_generator))
        self._rngs = restored
        self._buffer[...] = buffer
        self._pos[...] = pos
