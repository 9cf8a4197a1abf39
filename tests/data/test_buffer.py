"""ReplayBuffer: circular storage, its own RNG, and a state_dict that resumes sampling exactly."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import torch

from rl_repara import Batch, ReplayBuffer

OBS_DIM, ACT_DIM = 2, 1


def transitions(ids) -> tuple:
    """Transitions tagged by id: obs = [id, −id], action = id/10, reward = id,
    next_obs = obs + 1, terminated = id odd."""
    ids = np.asarray(ids, dtype=np.float32)
    obs = np.stack([ids, -ids], axis=1)
    return obs, ids[:, None] / 10, ids, obs + 1, (ids % 2 == 1)


def filled(capacity: int, n: int, seed: int = 0) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, OBS_DIM, ACT_DIM, seed=seed)
    buffer.add(*transitions(range(n)))
    return buffer


def assert_batches_equal(a: Batch, b: Batch) -> None:
    for x, y in zip(a, b):
        assert x is not None and y is not None and torch.equal(x, y)


def test_sample_returns_stored_transitions_with_their_fields_aligned():
    buffer = filled(10, 6)
    batch = buffer.sample(64)
    assert batch.obs.shape == (64, OBS_DIM) and batch.action.shape == (64, ACT_DIM)
    assert batch.reward.shape == (64,) and batch.terminated.shape == (64,)
    assert all(t.dtype == torch.float32 for t in batch)
    ids = batch.reward
    torch.testing.assert_close(batch.obs, torch.stack([ids, -ids], 1))
    torch.testing.assert_close(batch.action[:, 0], ids / 10)
    torch.testing.assert_close(batch.next_obs, batch.obs + 1)
    torch.testing.assert_close(batch.terminated, (ids % 2 == 1).float())


def test_circular_overwrite_keeps_the_newest_transitions():
    buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    buffer.add(*transitions(range(3)))
    assert len(buffer) == 3 and buffer.pos == 3
    buffer.add(*transitions(range(3, 7)))  # wraps: ids 5, 6 overwrite ids 0, 1
    assert len(buffer) == 5 and buffer.pos == 2
    stored = buffer.state_dict()["data"]["reward"]
    torch.testing.assert_close(stored, torch.tensor([5.0, 6.0, 2.0, 3.0, 4.0]))
    buffer.add(*transitions([7]))
    assert buffer.pos == 3
    torch.testing.assert_close(buffer.state_dict()["data"]["reward"], torch.tensor([5.0, 6.0, 7.0, 3.0, 4.0]))
    drawn = set(buffer.sample(500).reward.tolist())
    assert drawn == {3.0, 4.0, 5.0, 6.0, 7.0}  # every stored one, and only those


def test_sampling_is_uniform_over_the_stored_transitions():
    """Chi-square with 4 degrees of freedom; 18.47 is its 0.1% quantile."""
    buffer = filled(5, 5)
    n = 5000
    counts = np.bincount(buffer.sample(n).reward.long().numpy(), minlength=5)
    chi2 = ((counts - n / 5) ** 2 / (n / 5)).sum()
    assert chi2 < 18.47


def test_accepts_torch_tensors_and_numpy_alike():
    from_numpy = filled(8, 4, seed=1)
    from_torch = ReplayBuffer(8, OBS_DIM, ACT_DIM, seed=1)
    from_torch.add(*(torch.as_tensor(np.asarray(x)) for x in transitions(range(4))))
    assert_batches_equal(from_numpy.sample(16), from_torch.sample(16))


def test_adding_torch_tensors_warns_of_nothing():
    """NumPy 2.4 deprecates ``np.array(tensor, dtype=...)`` (a ``DeprecationWarning``: torch's
    ``Tensor.__array__`` takes no ``copy`` keyword), an error under ``-W error``: ``add`` turns
    torch inputs (float32, float64, bf16, bool) into NumPy through ``Tensor.numpy()`` instead,
    and stores the same values."""
    obs, action, reward, next_obs, terminated = transitions(range(4))
    fields = (
        torch.as_tensor(obs),
        torch.as_tensor(action).to(torch.bfloat16),
        torch.as_tensor(reward, dtype=torch.float64),
        torch.as_tensor(next_obs),
        torch.as_tensor(terminated),
    )
    buffer = ReplayBuffer(8, OBS_DIM, ACT_DIM, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        buffer.add(*fields, truncated=torch.zeros(4, dtype=torch.bool), valid=torch.ones(4))
    data = buffer.state_dict()["data"]
    torch.testing.assert_close(data["obs"][:4], torch.as_tensor(obs))
    torch.testing.assert_close(data["action"][:4], fields[1].float())
    torch.testing.assert_close(data["reward"][:4], torch.as_tensor(reward))
    torch.testing.assert_close(data["terminated"][:4], torch.as_tensor(terminated).float())


def test_sample_uses_its_own_generator():
    a, b = filled(20, 20, seed=3), filled(20, 20, seed=3)
    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    batch_a = a.sample(32)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is untouched
    torch.manual_seed(12345)  # and does not matter
    assert_batches_equal(batch_a, b.sample(32))
    other = filled(20, 20, seed=4).sample(32)
    assert not torch.equal(batch_a.reward, other.reward)


def test_state_dict_round_trip_reproduces_later_samples_and_writes():
    original = filled(8, 6, seed=5)
    original.add(*transitions(range(6, 11)))  # wraps around
    original.sample(7)  # advance its generator
    stream = io.BytesIO()
    torch.save(original.state_dict(), stream)
    stream.seek(0)
    restored = ReplayBuffer(8, OBS_DIM, ACT_DIM, seed=99)
    restored.load_state_dict(torch.load(stream))
    assert (len(restored), restored.pos) == (len(original), original.pos)
    for _ in range(3):
        assert_batches_equal(original.sample(16), restored.sample(16))
    for buffer in (original, restored):  # the write position carries over too
        buffer.add(*transitions([100, 101]))
    assert_batches_equal(original.sample(64), restored.sample(64))


def test_generator_state_from_another_device_type_reseeds_with_a_warning():
    """A CUDA run resumed on a CPU node: a CUDA generator's state (16 bytes) does not fit a CPU
    generator. The data is restored, and sampling goes on from a seed derived from that state
    (the same one on every such resume), with a warning that batches differ."""
    state = filled(8, 6, seed=5).state_dict()
    state["generator"] = torch.arange(16, dtype=torch.uint8)  # the size of a CUDA state
    batches = []
    for _ in range(2):
        restored = ReplayBuffer(8, OBS_DIM, ACT_DIM, seed=99)
        with pytest.warns(UserWarning, match="saved on another device type"):
            restored.load_state_dict(state)
        assert len(restored) == 6
        batches.append(restored.sample(16))
    assert_batches_equal(*batches)
    assert set(batches[0].reward.tolist()) <= set(range(6))


def test_state_dict_of_a_partly_filled_buffer():
    original = filled(50, 3, seed=2)
    restored = ReplayBuffer(50, OBS_DIM, ACT_DIM, seed=0)
    restored.load_state_dict(original.state_dict())
    assert len(restored) == 3
    assert_batches_equal(original.sample(10), restored.sample(10))


def test_clear_errors():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        ReplayBuffer(0, OBS_DIM, ACT_DIM)
    with pytest.raises(RuntimeError, match="empty ReplayBuffer"):
        ReplayBuffer(4, OBS_DIM, ACT_DIM).sample(1)
    with pytest.raises(ValueError, match="cannot add 5 transitions to a buffer of capacity 4"):
        ReplayBuffer(4, OBS_DIM, ACT_DIM).add(*transitions(range(5)))
    with pytest.raises(ValueError, match="capacity 8 != this buffer's 4"):
        ReplayBuffer(4, OBS_DIM, ACT_DIM).load_state_dict(filled(8, 2).state_dict())


# ----------------------------------------------------------------------------- n-step returns
GAMMA = 0.5  # a power of two: every n-step sum of small integers below is exact in float32


def steps(ids, terminated=(), truncated=(), invalid=()) -> dict:
    """One transition per id: obs = [id, −id], action = id/10, reward = id + 1,
    next_obs = obs + 1; the flags set for the ids listed. Invalid rows carry NaN data."""
    ids = np.asarray(ids, dtype=np.float32)
    obs = np.stack([ids, -ids], axis=1)
    out = {
        "obs": obs,
        "action": ids[:, None] / 10,
        "reward": ids + 1,
        "next_obs": obs + 1,
        "terminated": np.isin(ids, terminated),
        "truncated": np.isin(ids, truncated),
        "valid": ~np.isin(ids, invalid),
    }
    for key in ("obs", "action", "reward", "next_obs"):
        out[key][~out["valid"]] = np.nan
    return out


def add_steps(buffer: ReplayBuffer, s: dict) -> None:
    buffer.add(s["obs"], s["action"], s["reward"], s["next_obs"], s["terminated"], s["truncated"], s["valid"])


def by_start(buffer: ReplayBuffer, n_step: int, gamma: float = GAMMA, draws: int = 3000) -> dict:
    """``{start id: (reward, id of the last step taken, terminated, discount)}`` from one big
    sample, checking that every draw of a start gives the same window."""
    batch = buffer.sample(draws, n_step=n_step, gamma=gamma)
    assert batch.discount is not None
    for field in batch:
        assert field is not None and torch.isfinite(field).all()
    torch.testing.assert_close(batch.action[:, 0], batch.obs[:, 0] / 10)
    torch.testing.assert_close(batch.next_obs[:, 1], -batch.next_obs[:, 0] + 2)  # a real next_obs
    rows = zip(batch.obs[:, 0], batch.reward, batch.next_obs[:, 0] - 1, batch.terminated, batch.discount)
    table: dict = {}
    for start, *fields in rows:
        window = tuple(float(x) for x in fields)
        assert table.setdefault(float(start), window) == window
    return table


def test_n_step_windows_of_one_env_stop_at_termination_truncation_and_the_head():
    """12 steps of one env: terminated at step 2, truncated at step 8, step 11 the newest."""
    buffer = ReplayBuffer(16, OBS_DIM, ACT_DIM)
    add_steps(buffer, steps(range(12), terminated=[2], truncated=[8]))
    expected = {  # start: (n-step reward, last step taken, terminated, discount)
        1: {t: (t + 1.0, t, float(t == 2), 0.0 if t == 2 else 0.5) for t in range(12)},
        3: {
            0: (1 + 1 + 0.75, 2, 1.0, 0.0),  # the termination at 2 ends the window: no bootstrap
            1: (2 + 1.5, 2, 1.0, 0.0),
            2: (3, 2, 1.0, 0.0),
            3: (4 + 2.5 + 1.5, 5, 0.0, 0.125),
            4: (5 + 3 + 1.75, 6, 0.0, 0.125),
            5: (6 + 3.5 + 2, 7, 0.0, 0.125),
            6: (7 + 4 + 2.25, 8, 0.0, 0.125),
            7: (8 + 4.5, 8, 0.0, 0.25),  # the truncation at 8 ends it, and bootstraps
            8: (9, 8, 0.0, 0.5),
            9: (10 + 5.5 + 3, 11, 0.0, 0.125),
            10: (11 + 6, 11, 0.0, 0.25),  # step 11 is the newest: the window stops there
            11: (12, 11, 0.0, 0.5),
        },
        5: {
            0: (2.75, 2, 1.0, 0.0),
            1: (3.5, 2, 1.0, 0.0),
            2: (3, 2, 1.0, 0.0),
            3: (4 + 2.5 + 1.5 + 0.875 + 0.5, 7, 0.0, 0.03125),
            4: (5 + 3 + 1.75 + 1 + 0.5625, 8, 0.0, 0.03125),
            5: (6 + 3.5 + 2 + 1.125, 8, 0.0, 0.0625),
            6: (7 + 4 + 2.25, 8, 0.0, 0.125),
            7: (12.5, 8, 0.0, 0.25),
            8: (9, 8, 0.0, 0.5),
            9: (18.5, 11, 0.0, 0.125),
            10: (17, 11, 0.0, 0.25),
            11: (12, 11, 0.0, 0.5),
        },
    }
    for n_step, table in expected.items():
        want = {float(t): tuple(float(x) for x in w) for t, w in table.items()}
        assert by_start(buffer, n_step) == want, n_step


def reference(stream: dict, n_step: int, gamma: float) -> dict:
    """The n-step window of every valid start of one env's stream (its steps in time order)."""
    out = {}
    ids = stream["obs"][:, 0]
    for t in range(len(ids)):
        if not stream["valid"][t]:
            continue
        total, k = 0.0, 0
        while True:
            total += gamma**k * float(stream["reward"][t + k])
            k += 1
            last = t + k - 1
            if stream["terminated"][last] or stream["truncated"][last] or k == n_step:
                break
            if t + k == len(ids) or not stream["valid"][t + k]:
                break
        term = float(stream["terminated"][t + k - 1])
        out[float(ids[t])] = (total, float(ids[last]), term, gamma**k * (1 - term))
    return out


def interleave(*streams: dict) -> dict:
    """Rows of one vector step per time step, in env order."""
    return {
        k: np.stack([s[k] for s in streams], axis=1).reshape(-1, *streams[0][k].shape[1:]) for k in streams[0]
    }


def test_n_step_windows_never_mix_the_envs():
    env0 = steps(range(10), terminated=[3], truncated=[7])
    env1 = steps(range(100, 110), terminated=[108], truncated=[101])

    def stepwise() -> ReplayBuffer:
        buffer = ReplayBuffer(40, OBS_DIM, ACT_DIM, num_envs=2)
        for t in range(10):  # one vector step at a time, as the trainer adds them
            add_steps(buffer, interleave(*({k: v[t : t + 1] for k, v in s.items()} for s in (env0, env1))))
        return buffer

    buffer = stepwise()
    assert len(buffer) == 20 and buffer.pos == 20
    for n_step in (1, 3, 5):
        got = by_start(buffer, n_step)
        assert got == {**reference(env0, n_step, GAMMA), **reference(env1, n_step, GAMMA)}
        assert all((start >= 100) == (last >= 100) for start, (_, last, _, _) in got.items())
    # Several vector steps in one add store the same thing.
    bulk = ReplayBuffer(40, OBS_DIM, ACT_DIM, num_envs=2)
    add_steps(bulk, interleave(env0, env1))
    assert_batches_equal(stepwise().sample(64, n_step=4), bulk.sample(64, n_step=4))


def test_n_step_windows_stop_at_the_write_head_after_wrapping():
    buffer = ReplayBuffer(6, OBS_DIM, ACT_DIM)
    add_steps(buffer, steps(range(4)))
    add_steps(buffer, steps(range(4, 9)))  # wraps: ids 6, 7, 8 overwrite ids 0, 1, 2
    assert buffer.pos == 3  # id 8 sits just before id 3, the oldest: no window goes 8 → 3
    got = by_start(buffer, 3)
    assert got == {
        3.0: (4 + 2.5 + 1.5, 5.0, 0.0, 0.125),
        4.0: (5 + 3 + 1.75, 6.0, 0.0, 0.125),  # crosses the physical end of the storage
        5.0: (6 + 3.5 + 2, 7.0, 0.0, 0.125),
        6.0: (7 + 4 + 2.25, 8.0, 0.0, 0.125),
        7.0: (8 + 4.5, 8.0, 0.0, 0.25),  # near the head: shorter windows
        8.0: (9, 8.0, 0.0, 0.5),
    }
    # Two envs, capacity 7 rounded down to 3 rows of 2; 5 vector steps keep the last 3.
    env0, env1 = steps(range(5)), steps(range(100, 105), terminated=[103])
    two = ReplayBuffer(7, OBS_DIM, ACT_DIM, num_envs=2)
    assert two.capacity == 6
    add_steps(two, interleave(*({k: v[:2] for k, v in s.items()} for s in (env0, env1))))
    add_steps(two, interleave(*({k: v[2:] for k, v in s.items()} for s in (env0, env1))))
    kept0, kept1 = ({k: v[2:] for k, v in s.items()} for s in (env0, env1))
    for n_step in (2, 5):
        assert by_start(two, n_step) == {**reference(kept0, n_step, GAMMA), **reference(kept1, n_step, GAMMA)}
    # One more step: the newest rows before it now go on into it.
    add_steps(two, interleave(steps([5]), steps([105])))
    assert by_start(two, 2)[4.0] == (5 + 3, 5.0, 0.0, 0.25)


def test_invalid_rows_are_never_sampled_and_cut_the_windows():
    env0 = steps(range(8), invalid=[3, 6])
    env1 = steps(range(100, 108), invalid=[100])
    buffer = ReplayBuffer(16, OBS_DIM, ACT_DIM, num_envs=2)
    add_steps(buffer, interleave(env0, env1))
    assert len(buffer) == 16 and buffer.num_valid == 13
    got = by_start(buffer, 3)
    assert set(got) == {0.0, 1.0, 2.0, 4.0, 5.0, 7.0, *map(float, range(101, 108))}
    assert got[1.0] == (2 + 1.5, 2.0, 0.0, 0.25)  # stops before the invalid step 3
    assert got[2.0] == (3, 2.0, 0.0, 0.5)
    assert got[5.0] == (6, 5.0, 0.0, 0.5)
    assert got[101.0] == (102 + 51.5 + 26, 103.0, 0.0, 0.125)  # env 1 is not cut by env 0's
    assert got == {**reference(env0, 3, GAMMA), **reference(env1, 3, GAMMA)}
    stepwise = ReplayBuffer(16, OBS_DIM, ACT_DIM, num_envs=2)
    for t in range(8):  # one vector step at a time: an invalid row cuts the window before it
        add_steps(stepwise, interleave(*({k: v[t : t + 1] for k, v in s.items()} for s in (env0, env1))))
    assert by_start(stepwise, 3) == got
    # Uniform among the valid rows: chi-square with 12 degrees of freedom (32.91: its 0.1% quantile).
    n = 13_000
    counts = np.unique(buffer.sample(n).obs[:, 0].numpy(), return_counts=True)[1]
    assert len(counts) == 13 and ((counts - n / 13) ** 2 / (n / 13)).sum() < 32.91
    # Overwriting an invalid row with a valid one makes it sampleable again, and the reverse.
    small = ReplayBuffer(2, OBS_DIM, ACT_DIM)
    add_steps(small, steps([0, 1], invalid=[0]))
    assert small.num_valid == 1 and set(small.sample(50).obs[:, 0].tolist()) == {1.0}
    add_steps(small, steps([2], invalid=[2]))  # overwrites id 0
    assert small.num_valid == 1 and set(small.sample(50).obs[:, 0].tolist()) == {1.0}
    add_steps(small, steps([3]))  # overwrites id 1
    assert small.num_valid == 1 and set(small.sample(50).obs[:, 0].tolist()) == {3.0}
    add_steps(small, steps([4, 5], invalid=[4, 5]))
    assert len(small) == 2 and small.num_valid == 0
    with pytest.raises(RuntimeError, match="without valid transitions"):
        small.sample(1)


def test_n_step_1_is_the_stored_transition_with_discount_gamma_times_not_terminated():
    buffer = filled(50, 40, seed=7)
    for gamma in (0.99, 0.5, 0.9):
        batch = buffer.sample(256, n_step=1, gamma=gamma)
        ids = batch.reward
        torch.testing.assert_close(batch.obs, torch.stack([ids, -ids], 1), rtol=0, atol=0)
        torch.testing.assert_close(batch.next_obs, batch.obs + 1, rtol=0, atol=0)
        torch.testing.assert_close(batch.terminated, (ids % 2 == 1).float(), rtol=0, atol=0)
        assert batch.discount is not None and batch.discount.dtype == torch.float32
        assert torch.equal(batch.discount, gamma * (1 - batch.terminated))
        assert set(batch.discount.tolist()) == {0.0, float(torch.tensor(gamma))}
    # The draws are the ones the buffer always made: uniform indices from its own generator.
    generator = torch.Generator().manual_seed(7)
    idx = torch.randint(0, 40, (256,), generator=generator)
    assert torch.equal(filled(50, 40, seed=7).sample(256).reward, idx.float())
    # A longer window that takes one step (every id odd here ends its episode) agrees exactly.
    a, b = filled(50, 40, seed=7), filled(50, 40, seed=7)
    one, longer = a.sample(256, n_step=1, gamma=0.99), b.sample(256, n_step=4, gamma=0.99)
    odd = one.terminated == 1
    for x, y in zip(one, longer):
        assert x is not None and y is not None and torch.equal(x[odd], y[odd])
    # A batch built by hand from the first five fields has no discount.
    assert Batch(*one[:5]).discount is None


def test_n_step_state_dict_round_trip_is_bit_exact():
    env0 = steps(range(12), terminated=[4], truncated=[9], invalid=[6])
    env1 = steps(range(100, 112), terminated=[110], invalid=[102])
    rows = interleave(env0, env1)
    original = ReplayBuffer(17, OBS_DIM, ACT_DIM, seed=3, num_envs=2)  # 8 rows of 2
    add_steps(original, {k: v[:14] for k, v in rows.items()})
    add_steps(original, {k: v[14:20] for k, v in rows.items()})  # wraps
    original.sample(9, n_step=3, gamma=0.9)
    stream = io.BytesIO()
    torch.save(original.state_dict(), stream)
    stream.seek(0)
    restored = ReplayBuffer(17, OBS_DIM, ACT_DIM, seed=42, num_envs=2)
    restored.load_state_dict(torch.load(stream))
    assert (len(restored), restored.pos, restored.num_valid) == (
        len(original),
        original.pos,
        original.num_valid,
    )
    for n_step in (1, 3, 6):
        assert_batches_equal(original.sample(32, n_step, 0.9), restored.sample(32, n_step, 0.9))
    for buffer in (original, restored):  # the newest rows link on into the next add alike
        add_steps(buffer, {k: v[20:] for k, v in rows.items()})
    for n_step in (1, 4):
        assert_batches_equal(original.sample(64, n_step, 0.9), restored.sample(64, n_step, 0.9))
    with pytest.raises(ValueError, match="num_envs 2 != this buffer's 1"):
        ReplayBuffer(16, OBS_DIM, ACT_DIM).load_state_dict(original.state_dict())


def test_ended_streams_do_not_link_into_the_next_add():
    """A resume that starts new episodes: the stored rows (mid-episode) must not join the
    new episode's rows in an n-step window (rewards and next_obs of two episodes)."""
    first, later = steps(range(3)), steps(range(100, 103))
    buffer = ReplayBuffer(16, OBS_DIM, ACT_DIM)
    add_steps(buffer, first)
    restored = ReplayBuffer(16, OBS_DIM, ACT_DIM)
    restored.load_state_dict(buffer.state_dict())
    restored.end_streams()
    again = ReplayBuffer(16, OBS_DIM, ACT_DIM)  # the mark survives the next checkpoint
    again.load_state_dict(restored.state_dict())
    for b in (restored, again):
        add_steps(b, later)
    assert by_start(again, 3, gamma=0.5) == by_start(restored, 3, gamma=0.5)
    window = by_start(restored, 3, gamma=0.5)
    assert window[2.0] == (3.0, 2.0, 0.0, 0.5)  # one step: its own reward, bootstraps as a truncation
    assert window[1.0] == (2 + 1.5, 2.0, 0.0, 0.25)  # the old episode's own steps still link
    assert window[100.0] == (101 + 51 + 25.75, 102.0, 0.0, 0.125)
    add_steps(buffer, later)  # without end_streams the window runs on into the new episode
    assert by_start(buffer, 3, gamma=0.5)[2.0] == (3 + 50.5 + 25.5, 101.0, 0.0, 0.125)


def test_a_state_without_flags_loads_as_all_valid_and_untruncated():
    """A checkpoint written before the flags existed."""
    original = filled(8, 6, seed=5)
    original.add(*transitions(range(6, 11)))  # wraps
    state = original.state_dict()
    del state["num_envs"], state["data"]["truncated"], state["data"]["valid"]
    restored = ReplayBuffer(8, OBS_DIM, ACT_DIM, seed=0)
    restored.load_state_dict(state)
    assert restored.num_valid == 8
    for n_step in (1, 3):
        assert_batches_equal(original.sample(32, n_step), restored.sample(32, n_step))


def test_n_step_clear_errors():
    with pytest.raises(ValueError, match=r"capacity \(3\) must be >= num_envs \(4\)"):
        ReplayBuffer(3, OBS_DIM, ACT_DIM, num_envs=4)
    with pytest.raises(ValueError, match="cannot add 3 transitions to a buffer of num_envs 2"):
        ReplayBuffer(8, OBS_DIM, ACT_DIM, num_envs=2).add(*transitions(range(3)))
    with pytest.raises(ValueError, match="n_step must be >= 1"):
        filled(4, 4).sample(1, n_step=0)


def test_the_cpu_paths_store_and_sample_what_the_device_paths_do():
    """A CPU buffer writes and samples through NumPy views of its tensors; a buffer on another
    device uses torch ops. Forced on the CPU, the torch ops give the same state and the same
    batches, bit for bit: float64, float32, bf16, int and bool inputs, torch and NumPy, dropped
    rows holding NaN stored as zeros (the caller's tensor left as it was), truncations, and the
    wrap-around of a full buffer."""
    rng = np.random.default_rng(0)
    views, torch_ops = (ReplayBuffer(10, OBS_DIM, ACT_DIM, num_envs=2) for _ in range(2))
    torch_ops._store.host = None  # the writes a CUDA buffer makes (storage.Storage.write)
    for t in range(8):
        obs = torch.as_tensor(rng.normal(size=(2, OBS_DIM)), dtype=torch.float32)
        if t == 3:
            obs[1, 0] = np.nan
        fields = (
            obs,
            torch.as_tensor(rng.uniform(-1, 1, (2, ACT_DIM)), dtype=torch.bfloat16),
            rng.normal(size=2),
            torch.as_tensor(rng.normal(size=(2, OBS_DIM))),
            np.array([t == 5, False]),
            np.array([0, int(t == 6)]),
            np.array([True, t != 3]),
        )
        for buffer in (views, torch_ops):
            buffer.add(*fields)
        assert t != 3 or torch.isnan(obs[1, 0]), "the caller's dropped row was zeroed in place"
    a, b = views.state_dict(), torch_ops.state_dict()
    assert a.keys() == b.keys() and a["data"].keys() == b["data"].keys()
    for key in a["data"]:
        assert torch.equal(a["data"][key], b["data"][key]), key
    assert not torch.isnan(a["data"]["obs"]).any()
    assert (a["pos"], a["size"]) == (b["pos"], b["size"]) == (6, 10)
    for n_step in (1, 3, 1):
        batches = views.sample(64, n_step, 0.9), torch_ops.sample(64, n_step, 0.9)
        assert all(torch.equal(x, y) for x, y in zip(*batches)), n_step


def test_a_copied_buffer_writes_into_its_own_tensors():
    """``copy.deepcopy`` (or pickle) of a CPU buffer: the copy's NumPy views are of its own
    tensors, so what it stores is in its state and its samples, and the original is untouched."""

    def rows(n: int, value: float) -> tuple[np.ndarray, ...]:
        obs = np.full((n, OBS_DIM), value)
        return obs, np.zeros((n, ACT_DIM)), np.full(n, value), obs, np.zeros(n)

    original = ReplayBuffer(8, OBS_DIM, ACT_DIM)
    original.add(*rows(2, 0.0))
    copied = copy.deepcopy(original)
    copied.add(*rows(6, 7.0))
    assert torch.equal(copied.state_dict()["data"]["obs"][2:], torch.full((6, OBS_DIM), 7.0))
    assert copied.state_dict()["data"]["valid"].all()
    assert set(copied.sample(200).reward.tolist()) == {0.0, 7.0}
    assert len(original) == 2 and original.state_dict()["data"]["obs"].abs().sum() == 0
