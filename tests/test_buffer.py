"""ReplayBuffer: circular storage, its own RNG, and a state_dict that resumes sampling exactly."""

from __future__ import annotations

import io

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
        assert torch.equal(x, y)


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
