import json
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracejit.data import Pipeline, batch_seed, epoch_permutation


def _data(n=50):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int32)
    return x, y


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("tracejit-prefetch")]


def _wait_no_prefetch_threads(timeout=2.0):
    deadline = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _prefetch_threads()


# ---------------------------------------------------------------------------
# Batching, shuffling, coverage
# ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    drop_remainder=st.booleans(),
    shuffle=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_batches_cover_epoch(n, batch_size, drop_remainder, shuffle, epoch):
    if drop_remainder and batch_size > n:
        with pytest.raises(ValueError):
            Pipeline(np.arange(n)).batch(batch_size, drop_remainder=True)
        return
    pipe = Pipeline(np.arange(n))
    if shuffle:
        pipe = pipe.shuffle(7)
    pipe = pipe.batch(batch_size, drop_remainder=drop_remainder)
    batches = list(pipe.epoch(epoch))
    assert len(batches) == pipe.num_batches == len(pipe)
    sizes = [len(b) for b in batches]
    if drop_remainder:
        assert sizes == [batch_size] * (n // batch_size)
    else:
        assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    seen = np.concatenate(batches)
    assert len(np.unique(seen)) == len(seen)  # nothing seen twice
    if not drop_remainder:
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))  # everything once
    expected_order = epoch_permutation(n, 7, epoch) if shuffle else np.arange(n)
    np.testing.assert_array_equal(seen, expected_order[: len(seen)])


def test_tuple_structure_and_alignment():
    x, y = _data()
    for xb, yb in Pipeline((x, y)).shuffle(1).batch(8).epoch(0):
        assert xb.shape[1:] == (3,) and xb.dtype == np.float32 and yb.dtype == np.int32
        np.testing.assert_array_equal(xb[:, 0], yb * 3)  # rows stay paired


def test_single_array_yields_arrays_and_default_is_full_batch():
    (only,) = list(Pipeline(np.arange(5)).epoch(0))
    assert isinstance(only, np.ndarray)
    np.testing.assert_array_equal(only, np.arange(5))


def test_shuffle_deterministic_and_varies_by_epoch_and_seed():
    x, y = _data()
    a = [yb for _, yb in Pipeline((x, y)).shuffle(3).batch(10).stream(15)]
    b = [yb for _, yb in Pipeline((x, y)).shuffle(3).batch(10).stream(15)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    epochs = [np.concatenate(a[i * 5:(i + 1) * 5]) for i in range(3)]
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(epochs[1], np.random.default_rng([3, 1]).permutation(50))
    other = np.concatenate(list(yb for _, yb in Pipeline((x, y)).shuffle(4).batch(10).epoch(0)))
    assert not np.array_equal(other, epochs[0])


def test_batches_are_copies():
    x, y = _data()
    for xb, _ in Pipeline((x, y)).batch(10).epoch(0):
        xb[:] = -1
    assert x.min() == 0


def test_builders_return_new_pipelines():
    base = Pipeline(np.arange(10))
    batched = base.batch(3)
    assert base.num_batches == 1 and batched.num_batches == 4
    assert batched.batch(3, drop_remainder=True).num_batches == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda: Pipeline((np.zeros(3), np.zeros(4))),
        lambda: Pipeline(np.zeros(0)),
        lambda: Pipeline(()),
        lambda: Pipeline(np.float32(1)),
        lambda: Pipeline(np.zeros(3)).batch(0),
        lambda: Pipeline(np.zeros(3)).shuffle(-1),
        lambda: Pipeline(np.zeros(3)).prefetch(-1),
    ],
)
def test_invalid_construction(make):
    with pytest.raises((ValueError, TypeError)):
        make()


# ---------------------------------------------------------------------------
# map
# ---------------------------------------------------------------------------


def test_map_applies_per_batch_in_order():
    pipe = (Pipeline(np.arange(10)).batch(4)
            .map(lambda b: (b, b * 2))
            .map(lambda a, b: a + b))
    out = list(pipe.epoch(0))
    np.testing.assert_array_equal(np.concatenate(out), np.arange(10) * 3)


def test_map_seed_is_deterministic_per_batch():
    seen = []

    def record(x, y, seed):
        assert isinstance(seed, int) and 0 <= seed < 2**32
        seen.append(seed)
        return x + np.random.default_rng(seed).normal(size=x.shape).astype(x.dtype), y

    x, y = _data()
    pipe = (Pipeline((x, y)).shuffle(5).batch(16)
            .map(record, with_seed=True)
            .map(lambda a, b, s: (a, b, s), with_seed=True))
    out = list(pipe.stream(8))
    assert len(out) == 8
    expected = [batch_seed(5, e, k, 0) for e in range(2) for k in range(4)]
    assert seen == expected
    assert [o[2] for o in out] == [batch_seed(5, e, k, 1) for e in range(2) for k in range(4)]
    assert len(set(seen)) == 8
    # the same batches again, bit for bit (and equal under prefetch)
    assert pipe.position == (2, 0)
    again = list(pipe.prefetch(3).restore(dict(pipe.state(), epoch=0)).stream(8))
    for u, v in zip(out, again):
        assert u[0].tobytes() == v[0].tobytes()
        np.testing.assert_array_equal(u[1], v[1])


def test_map_rejects_non_callable():
    with pytest.raises(TypeError):
        Pipeline(np.arange(3)).map(3)


# ---------------------------------------------------------------------------
# Position, state, resumption
# ---------------------------------------------------------------------------


def test_iter_yields_rest_of_current_epoch_and_advances():
    pipe = Pipeline(np.arange(10)).batch(3)
    it = iter(pipe)
    next(it)
    next(it)
    it.close()
    assert pipe.position == (0, 2)
    rest = list(pipe)
    assert [len(b) for b in rest] == [3, 1]
    assert pipe.position == (1, 0)
    assert len(list(pipe)) == 4 and pipe.position == (2, 0)


def test_epoch_view_is_pure():
    pipe = Pipeline(np.arange(10)).shuffle(2).batch(3)
    list(pipe.stream(5))
    pos = pipe.position
    view = list(pipe.epoch(1))
    assert pipe.position == pos
    fresh = Pipeline(np.arange(10)).shuffle(2).batch(3)
    stream = list(fresh.stream(8))
    for u, v in zip(view, stream[4:8]):
        np.testing.assert_array_equal(u, v)
    tail = list(pipe.epoch(1, start_batch=2))
    for u, v in zip(tail, view[2:]):
        np.testing.assert_array_equal(u, v)


def _training_pipeline(x, y, prefetch):
    def noise(xb, yb, seed):
        rng = np.random.default_rng(seed)
        return xb + rng.standard_normal(xb.shape).astype(np.float32), yb

    pipe = Pipeline((x, y)).shuffle(11).batch(7).map(noise, with_seed=True)
    return pipe.prefetch(prefetch) if prefetch else pipe


@pytest.mark.parametrize("prefetch", [0, 2])
def test_resume_matches_uninterrupted_run(prefetch):
    x, y = _data(50)  # 8 batches per epoch, the last one partial
    total = 8 * 4
    reference = list(_training_pipeline(x, y, prefetch).stream(total))

    first = _training_pipeline(x, y, prefetch)
    got = []
    for epoch in range(3):  # 2.5 epochs with the epoch-loop API
        for batch in first:
            got.append(batch)
            if epoch == 2 and first.position == (2, 4):
                break
        if epoch == 2:
            break
    assert len(got) == 20
    saved = json.loads(json.dumps(first.state()))
    assert saved["epoch"] == 2 and saved["batch_index"] == 4

    resumed = _training_pipeline(x, y, prefetch).restore(saved)
    assert resumed.position == (2, 4)
    while resumed.position[0] < 4:
        got.extend(resumed)
    assert len(got) == total
    for (xa, ya), (xb, yb) in zip(reference, got):
        assert xa.tobytes() == xb.tobytes()
        assert ya.tobytes() == yb.tobytes()


def test_restore_adopts_seed_and_checks_configuration():
    x, y = _data(20)
    pipe = Pipeline((x, y)).shuffle(1).batch(6)
    state = pipe.shuffle(9).state()
    assert Pipeline((x, y)).shuffle(1).batch(6).restore(state).seed == 9
    with pytest.raises(ValueError, match="batch_size"):
        Pipeline((x, y)).shuffle(1).batch(5).restore(state)
    with pytest.raises(ValueError, match="num_examples"):
        Pipeline((x[:10], y[:10])).shuffle(1).batch(6).restore(state)
    with pytest.raises(ValueError, match="shuffle"):
        Pipeline((x, y)).batch(6).restore(state)
    with pytest.raises(ValueError, match="lacks key"):
        pipe.restore({"epoch": 0})
    with pytest.raises(ValueError, match="invalid pipeline position"):
        pipe.restore(dict(state, batch_index=9))
    # the end of an epoch is the start of the next one
    assert pipe.restore(dict(state, epoch=3, batch_index=4)).position == (4, 0)


def test_position_counts_consumed_not_prefetched_batches():
    produced = []
    pipe = Pipeline(np.arange(100)).batch(5).map(lambda b: produced.append(1) or b).prefetch(4)
    it = pipe.stream()
    for _ in range(3):
        next(it)
    deadline = time.monotonic() + 2
    while len(produced) < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert 3 < len(produced) <= 3 + 4 + 1  # ran ahead, but boundedly
    assert pipe.position == (0, 3)
    it.close()
    assert pipe.position == (0, 3)
    assert not _wait_no_prefetch_threads()


# ---------------------------------------------------------------------------
# Prefetch
# ---------------------------------------------------------------------------


def test_prefetch_same_batches_as_synchronous():
    x, y = _data(33)
    sync = list(Pipeline((x, y)).shuffle(0).batch(4).stream(20))
    pre = list(Pipeline((x, y)).shuffle(0).batch(4).prefetch(3).stream(20))
    assert len(sync) == len(pre) == 20
    for (a, b), (c, d) in zip(sync, pre):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_prefetch_propagates_exceptions():
    def fail_on_third(b):
        if b[0] == 6:
            raise KeyError("boom in map")
        return b

    pipe = Pipeline(np.arange(12)).batch(3).map(fail_on_third).prefetch(2)
    got = []
    with pytest.raises(KeyError, match="boom in map"):
        for b in pipe:
            got.append(b)
    assert len(got) == 2
    assert pipe.position == (0, 2)  # the failed batch was not consumed
    assert not _wait_no_prefetch_threads()


def test_prefetch_early_stop_does_not_hang():
    def slow(b):
        time.sleep(0.002)
        return b

    pipe = Pipeline(np.arange(1000)).batch(1).map(slow).prefetch(2)
    t0 = time.monotonic()
    for i, _ in enumerate(pipe):
        if i == 2:
            break
    it = pipe.stream()  # endless stream, closed explicitly
    next(it)
    it.close()
    assert not _wait_no_prefetch_threads()
    assert time.monotonic() - t0 < 2.0


def test_prefetch_consumer_exception_stops_thread():
    pipe = Pipeline(np.arange(100)).batch(1).prefetch(1)
    with pytest.raises(RuntimeError, match="consumer"):
        for _ in pipe.stream():
            raise RuntimeError("consumer failed")
    assert not _wait_no_prefetch_threads()


def test_unstarted_iterator_starts_no_thread():
    before = len(_prefetch_threads())
    it = Pipeline(np.arange(10)).batch(2).prefetch(2).stream()
    assert len(_prefetch_threads()) == before
    del it
