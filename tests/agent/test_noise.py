"""ColoredNoise: unit-variance Gaussian ε with a 1/f^β spectrum per env and action dim.

Monte Carlo checks use independent replicates (one per env, dim and sequence of ``seq_len``
steps: the sequences are independent of each other, the steps inside one are not), and their
tolerance is 5 standard errors estimated from those replicates, so it shrinks with the sample
size and a false failure has odds below one in a million per check.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rl_repara.agent.noise import ColoredNoise
from rl_repara.errors import CheckpointError, ConfigError


def _run(noise: ColoredNoise, steps: int) -> np.ndarray:
    """``steps`` consecutive samples, ``[steps, num_envs, act_dim]``."""
    return np.stack([noise.sample() for _ in range(steps)])


def _replicates(x: np.ndarray, seq_len: int) -> np.ndarray:
    """``[steps, ...]`` (steps a multiple of seq_len, starting at a sequence start) →
    ``[n_seq, seq_len, ...]``: one independent sequence per leading index and trailing index."""
    return x.reshape(x.shape[0] // seq_len, seq_len, *x.shape[1:])


def _assert_mean_within(stats: np.ndarray, target: float, what: str) -> None:
    """``stats`` are i.i.d. replicates: their mean is ``target`` within 5 standard errors."""
    stats = stats.ravel()
    se = stats.std(ddof=1) / np.sqrt(stats.size)
    assert abs(stats.mean() - target) < 5 * se, f"{what}: {stats.mean():.4f} vs {target} (se {se:.4f})"


def _lag1_of_spectrum(beta: float, n: int) -> float:
    """Lag-1 autocorrelation implied by power ∝ f^-β over the full DFT grid (f = 0 at 1/n's power)."""
    k = np.arange(n)
    f = np.minimum(k, n - k) / n
    f[0] = 1 / n
    power = f**-beta
    return float((power * np.cos(2 * np.pi * k / n)).sum() / power.sum())


def test_sample_is_a_fresh_float32_array_of_num_envs_by_act_dim():
    noise = ColoredNoise(1.0, num_envs=3, act_dim=2, seq_len=8, seed=0)
    eps = noise.sample()
    assert eps.shape == (3, 2) and eps.dtype == np.float32
    eps[...] = 1e9  # the caller owns it: the noise is not changed
    twin = ColoredNoise(1.0, num_envs=3, act_dim=2, seq_len=8, seed=0)
    twin.sample()
    np.testing.assert_array_equal(noise.sample(), twin.sample())


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_every_step_is_standard_normal(beta):
    seq_len = 64
    x = _replicates(_run(ColoredNoise(beta, 128, 4, seq_len, seed=1), 8 * seq_len), seq_len)
    # per-sequence averages: 8 x 128 x 4 = 4096 i.i.d. replicates of each moment
    _assert_mean_within(x.mean(axis=1), 0.0, "mean")
    _assert_mean_within((x**2).mean(axis=1), 1.0, "variance")
    _assert_mean_within((x**4).mean(axis=1), 3.0, "fourth moment (Gaussian: 3)")
    assert (x**2).mean(axis=1).std() / np.sqrt(x.shape[0] * 128 * 4) < 0.02  # the check has power


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_averaged_periodogram_has_log_log_slope_minus_beta(beta):
    seq_len = 256
    x = _run(ColoredNoise(beta, 64, 4, seq_len, seed=2), seq_len)  # one sequence per env and dim
    power = (np.abs(np.fft.rfft(x, axis=0)) ** 2).mean(axis=(1, 2))
    freqs = np.fft.rfftfreq(seq_len)
    inner = slice(1, seq_len // 2)  # without the zero and Nyquist frequencies
    slope = np.polyfit(np.log(freqs[inner]), np.log(power[inner]), 1)[0]
    assert abs(slope + beta) < 0.2, slope


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_lag1_autocorrelation_is_large_and_as_the_spectrum_says(beta):
    seq_len = 1000  # the paper's episode length
    x = _replicates(_run(ColoredNoise(beta, 32, 2, seq_len, seed=3), seq_len), seq_len)
    lagged = (x[:, 1:] * x[:, :-1]).mean(axis=1)  # E[x_t x_(t+1)] = ρ1 for unit variance: unbiased
    _assert_mean_within(lagged, _lag1_of_spectrum(beta, seq_len), "lag-1 autocorrelation")
    sample_acf = lagged / (x**2).mean(axis=1)  # each sequence's own (less noisy) estimate
    assert np.median(sample_acf) > {0.5: 0.3, 1.0: 0.7, 2.0: 0.95}[beta]  # white noise: 0


def test_white_noise_has_no_autocorrelation_also_across_sequence_ends():
    x = _run(ColoredNoise(0.0, 64, 4, seq_len=10, seed=4), 400)  # 40 sequence ends per series
    for lag in (1, 2, 10):
        products = (x[lag:] * x[:-lag]).ravel()  # i.i.d. pairs' products for white noise
        assert abs(products.mean()) < 5 / np.sqrt(products.size), lag


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_envs_and_dims_are_independent(beta):
    seq_len = 64
    x = _replicates(_run(ColoredNoise(beta, 128, 2, seq_len, seed=5), 4 * seq_len), seq_len)
    _assert_mean_within((x[..., 0] * x[..., 1]).mean(axis=1), 0.0, "dim 0 x dim 1")
    _assert_mean_within((x[:, :, 0::2] * x[:, :, 1::2]).mean(axis=1), 0.0, "env 2i x env 2i+1")


def test_reset_restarts_only_the_masked_envs_with_a_whole_fresh_sequence():
    seq_len = 16
    noise, twin = ColoredNoise(1.0, 4, 3, seq_len, seed=6), ColoredNoise(1.0, 4, 3, seq_len, seed=6)
    np.testing.assert_array_equal(_run(noise, 5), _run(twin, 5))
    noise.reset(np.array([True, False, True, False]))
    noise.reset(np.zeros(4, dtype=bool))  # nothing masked: nothing changes
    after, twin_after = _run(noise, 40), _run(twin, 40)  # across several sequence ends
    np.testing.assert_array_equal(after[:, [1, 3]], twin_after[:, [1, 3]])
    assert not np.any(after[0, [0, 2]] == twin_after[0, [0, 2]])
    # the masked envs skipped the rest of their sequence and start the next one from its beginning
    np.testing.assert_array_equal(after[:seq_len, [0, 2]], twin_after[11 : 11 + seq_len, [0, 2]])


@pytest.mark.parametrize("where", ["fresh", "mid_sequence", "just_reset", "sequence_end"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_state_dict_round_trip_continues_bit_identically(where, beta):
    noise = ColoredNoise(beta, 3, 2, seq_len=8, seed=7)
    if where == "mid_sequence":
        _run(noise, 11)
    elif where == "just_reset":
        _run(noise, 5)
        noise.reset(np.array([False, True, False]))
    elif where == "sequence_end":
        _run(noise, 16)
    state = pickle.loads(pickle.dumps(noise.state_dict()))  # as it goes through a checkpoint
    restored = ColoredNoise(beta, 3, 2, seq_len=8, seed=99)
    restored.load_state_dict(state)
    expected = _run(noise, 30)  # moving on does not change the saved state (it holds copies)
    assert _run(restored, 30).tobytes() == expected.tobytes()
    again = ColoredNoise(beta, 3, 2, seq_len=8, seed=0)
    again.load_state_dict(state)
    assert _run(again, 30).tobytes() == expected.tobytes()


def test_a_state_for_other_noise_is_refused_in_one_line_and_changes_nothing():
    state = ColoredNoise(1.0, 3, 2, seq_len=8, seed=7).state_dict()
    noise, twin = ColoredNoise(1.0, 3, 2, seq_len=8, seed=1), ColoredNoise(1.0, 3, 2, seq_len=8, seed=1)
    bad_states = [
        {**state, "beta": 2.0},
        {**state, "seq_len": 9},
        {**state, "rngs": state["rngs"][:2]},
        {**state, "rngs": [*state["rngs"][:2], {"bit_generator": "PCG64"}]},
        {**state, "pos": np.array([0, 9, 1])},
        {k: v for k, v in state.items() if k != "buffer"},
    ]
    for bad in bad_states:
        with pytest.raises(CheckpointError) as info:
            noise.load_state_dict(bad)
        assert "\n" not in str(info.value)
    np.testing.assert_array_equal(_run(noise, 20), _run(twin, 20))


def test_same_seed_same_noise_other_seed_other_noise_and_env_i_ignores_num_envs():
    a = _run(ColoredNoise(1.0, 2, 3, 16, seed=8), 20)
    np.testing.assert_array_equal(a, _run(ColoredNoise(1.0, 2, 3, 16, seed=8), 20))
    assert not np.any(a == _run(ColoredNoise(1.0, 2, 3, 16, seed=9), 20))
    np.testing.assert_array_equal(a, _run(ColoredNoise(1.0, 5, 3, 16, seed=8), 20)[:, :2])


def test_the_global_numpy_generator_is_neither_used_nor_changed():
    before = np.random.get_state()[1].copy()
    noise = ColoredNoise(1.0, 2, 2, 8, seed=0)
    a = _run(noise, 10)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(123)
    np.testing.assert_array_equal(a, _run(ColoredNoise(1.0, 2, 2, 8, seed=0), 10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -0.5}, "beta must be a finite number >= 0, got -0.5"),
        ({"beta": float("nan")}, "beta must be a finite number >= 0, got nan"),
        ({"beta": float("inf")}, "beta must be a finite number >= 0, got inf"),
        ({"beta": "pink"}, "beta must be a number >= 0, got 'pink'"),
        ({"beta": True}, "beta must be a number >= 0, got True"),
        ({"seq_len": 0}, "seq_len must be an integer >= 1, got 0"),
        ({"seq_len": 2.5}, "seq_len must be an integer >= 1, got 2.5"),
        ({"num_envs": 0}, "num_envs must be an integer >= 1, got 0"),
        ({"act_dim": -1}, "act_dim must be an integer >= 1, got -1"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments_give_one_line_value_errors(kwargs, message):
    args = {"beta": 1.0, "num_envs": 2, "act_dim": 2, "seq_len": 8, "seed": 0, **kwargs}
    with pytest.raises(ValueError) as info:
        ColoredNoise(**args)
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == f"colored noise {message}"


@pytest.mark.parametrize("mask", [np.array([True, False]), np.array([1, 0, 1]), [True, False, True, True]])
def test_reset_needs_a_bool_mask_of_num_envs(mask):
    noise = ColoredNoise(1.0, 3, 2, 8, seed=0)
    with pytest.raises(ValueError, match=r"bool mask of shape \(3,\)") as info:
        noise.reset(mask)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("seq_len", [1, 2, 3])
def test_very_short_sequences_still_give_unit_variance(seq_len):
    x = _replicates(_run(ColoredNoise(1.0, 256, 4, seq_len, seed=10), 12), seq_len)
    _assert_mean_within((x**2).mean(axis=1), 1.0, "variance")


def _run_lengths(x: np.ndarray) -> np.ndarray:
    """Lengths of the runs of equal consecutive values along axis 0 of ``x [steps]``, without
    the last run (cut by the end of ``x``)."""
    change = np.flatnonzero(np.diff(x) != 0) + 1
    return np.diff(np.concatenate([[0], change]))


def test_held_noise_runs_follow_the_truncated_zeta_law():
    """FlashSAC's noise repetition: ε held for k steps, P(k) ∝ k^-2 on 1..16. Runs are counted
    inside each sequence (continuous draws never repeat by chance); each P(k) is within 5
    standard errors of the law, and the run is the same in every action dim."""
    seq_len, repeat_max = 4096, 16
    x = _run(ColoredNoise(0.0, 4, 3, seq_len, seed=3, repeat_max=repeat_max), 2 * seq_len)
    same = np.diff(x, axis=0) == 0
    assert np.array_equal(same[..., 0], same[..., 1]) and np.array_equal(same[..., 0], same[..., 2])
    lengths = np.concatenate(
        [_run_lengths(seq[:, env, 0]) for seq in _replicates(x, seq_len) for env in range(4)]
    )
    law = 1.0 / np.arange(1, repeat_max + 1) ** 2
    law /= law.sum()
    assert lengths.max() <= repeat_max and lengths.size > 5000
    for k in range(1, repeat_max + 1):
        hits = (lengths == k).astype(float)
        se = np.sqrt(law[k - 1] * (1 - law[k - 1]) / lengths.size)
        assert abs(hits.mean() - law[k - 1]) < 5 * se, f"P(k={k}): {hits.mean():.4f} vs {law[k - 1]:.4f}"


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_held_noise_is_still_standard_normal_at_every_step(beta):
    seq_len = 64
    x = _replicates(_run(ColoredNoise(beta, 128, 4, seq_len, seed=1, repeat_max=16), 8 * seq_len), seq_len)
    # one value per sequence (its step 5): 4096 i.i.d. replicates
    _assert_mean_within(x[:, 5], 0.0, "mean")
    _assert_mean_within(x[:, 5] ** 2, 1.0, "variance")


@pytest.mark.parametrize("where", ["fresh", "mid_sequence", "sequence_end"])
def test_held_noise_state_round_trip_continues_bit_identically(where):
    noise = ColoredNoise(0.0, 3, 2, seq_len=40, seed=7, repeat_max=16)
    for _ in range({"fresh": 0, "mid_sequence": 23, "sequence_end": 40}[where]):
        noise.sample()
    restored = ColoredNoise(0.0, 3, 2, seq_len=40, seed=99, repeat_max=16)
    restored.load_state_dict(pickle.loads(pickle.dumps(noise.state_dict())))
    assert _run(restored, 100).tobytes() == _run(noise, 100).tobytes()


def test_held_noise_state_needs_the_same_repeat_max_and_old_states_load_as_one():
    held = ColoredNoise(0.0, 3, 2, seq_len=8, seed=7, repeat_max=4).state_dict()
    with pytest.raises(CheckpointError, match=r"repeat_max\) = \(0.0, 3, 2, 8, 4\)"):
        ColoredNoise(0.0, 3, 2, seq_len=8, seed=7).load_state_dict(held)
    plain = ColoredNoise(1.0, 3, 2, seq_len=8, seed=7)
    _run(plain, 3)
    old = plain.state_dict()
    del old["repeat_max"]  # a checkpoint written before held noise existed
    restored = ColoredNoise(1.0, 3, 2, seq_len=8, seed=0)
    restored.load_state_dict(old)
    assert _run(restored, 20).tobytes() == _run(plain, 20).tobytes()
