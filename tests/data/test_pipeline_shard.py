"""Pipeline.shard: equal, disjoint shards whose union is each epoch's order
(all but n % num_shards positions); resume across shard counts."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracejit.data import Pipeline


def epoch_examples(pipe, epoch):
    return np.concatenate([b[0] for b in pipe.epoch(epoch)])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), shards=st.integers(1, 6), batch=st.integers(1, 7),
       seed=st.integers(0, 3), epoch=st.integers(0, 2), drop=st.booleans())
def test_shards_are_disjoint_equal_and_cover_the_epoch(n, shards, batch, seed, epoch, drop):
    if shards > n:
        shards = n
    x = np.arange(n)
    base = Pipeline((x, x * 10)).shuffle(seed)
    parts = [base.shard(shards, i) for i in range(shards)]
    per_shard = n // shards
    if drop and batch > per_shard:
        with pytest.raises(ValueError, match="no batches"):
            parts[0].batch(batch, drop_remainder=True)
        return
    parts = [p.batch(batch, drop_remainder=drop) for p in parts]
    assert len({p.num_batches for p in parts}) == 1
    seen = [epoch_examples(p, epoch) for p in parts]
    assert all(len(s) == len(seen[0]) for s in seen)
    union = np.concatenate(seen)
    assert len(np.unique(union)) == len(union)                 # disjoint
    order = next(Pipeline(x).shuffle(seed).epoch(epoch))
    kept = order[:per_shard * shards]
    if not drop:
        assert sorted(union) == sorted(kept)                   # complete
        if n % shards == 0:
            assert sorted(union) == list(range(n))
    # Batch k of all shards together is batch k of the unsharded pipeline
    # with the global batch size.
    if batch * shards > n:
        return
    whole = Pipeline(x).shuffle(seed).batch(batch * shards, drop_remainder=True)
    for k, big in enumerate(whole.epoch(epoch)):
        if k >= parts[0].num_batches:
            break
        small = np.concatenate([list(p.epoch(epoch))[k][0] for p in parts])
        assert sorted(small) == sorted(big)


def test_default_batch_is_the_whole_shard_and_repr():
    p = Pipeline(np.arange(10)).shard(3, 2)
    assert p.num_examples == 3 and p.num_batches == 1
    assert list(next(iter(p))) == [2, 5, 8]
    assert "shard=2/3" in repr(p)


@pytest.mark.parametrize("args, error", [((0, 0), ValueError), ((2, 2), ValueError),
                                         ((2, -1), ValueError), ((11, 0), ValueError),
                                         ((2.0, 0), TypeError)])
def test_bad_shards_raise(args, error):
    with pytest.raises(error):
        Pipeline(np.arange(10)).shard(*args)


def test_already_sharded_raises():
    with pytest.raises(ValueError, match="already sharded"):
        Pipeline(np.arange(10)).shard(2, 0).shard(2, 1)


def test_restore_with_another_shard_count_continues_after_the_same_examples():
    x = np.arange(48)
    two = [Pipeline(x).shuffle(1).shard(2, i).batch(4, drop_remainder=True) for i in range(2)]
    for p in two:
        it = iter(p)
        for _ in range(3):          # 3 global batches of 8 = 24 examples consumed
            next(it)
        it.close()
    state = two[0].state()
    one = Pipeline(x).shuffle(1).batch(8, drop_remainder=True).restore(state)
    assert one.position == (0, 3)
    rest = np.concatenate(list(one))
    order = next(Pipeline(x).shuffle(1).epoch(0))
    assert sorted(rest) == sorted(order[24:])
    four = Pipeline(x).shuffle(1).shard(4, 3).batch(2, drop_remainder=True).restore(state)
    assert four.position == (0, 3)
    # Rounded down to a whole global batch when it does not divide.
    three = Pipeline(x).shuffle(1).shard(3, 0).batch(5, drop_remainder=True).restore(state)
    assert three.position == (0, 1)
