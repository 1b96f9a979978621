"""A small, explicit, deterministic and resumable input pipeline.

A :class:`Pipeline` wraps in-memory arrays that share their leading
dimension and produces batches in a fixed order::

    shuffle (per-epoch permutation) -> shard -> batch -> map, map, ... -> prefetch

Builder methods return a *new* pipeline that starts at the same position
(the arrays are shared, not copied)::

    pipe = (Pipeline((x_train, y_train))
            .shuffle(seed=42)
            .batch(128, drop_remainder=True)
            .map(augment, with_seed=True)    # augment(x, y, seed) -> (x, y)
            .prefetch(2))

    for epoch in range(pipe.position[0], num_epochs):
        for xb, yb in pipe:                  # the rest of the current epoch
            ...
            checkpoint["pipeline"] = pipe.state()

Determinism
    Epoch ``e`` visits the examples in the order
    ``np.random.default_rng([seed, e]).permutation(n)`` (identity order
    without :meth:`Pipeline.shuffle`).  Batch ``k`` of the epoch takes
    positions ``k*batch_size : (k+1)*batch_size`` of that order.  A map added
    with ``with_seed=True`` receives as its last argument the integer
    :func:`batch_seed` ``(seed, e, k, map_position)`` (a Python ``int`` in
    ``[0, 2**32)``), so random augmentations are a pure function of
    ``(seed, epoch, batch index)`` -- independent of prefetching, timing and
    where the run was resumed.

Sharding
    ``shard(num_shards, index)`` keeps positions ``index, index +
    num_shards, ...`` of each epoch's order, as ``tf.data``'s ``shard``, but
    always on examples (before batching, wherever it is called) and with
    equal shards: the last ``n % num_shards`` positions of each epoch's order
    are skipped (with shuffling, different examples each epoch), so every
    shard has ``n // num_shards`` examples and every rank the same number of
    batches.  With the same seed on every rank the shards of an epoch are
    disjoint, and complete when ``num_shards`` divides ``n``.  Batch ``k``
    of the shards together is positions ``k*b*num_shards : (k+1)*b*num_shards``
    of the epoch's order (``b`` the per-shard batch size): the same examples
    as batch ``k`` of the unsharded pipeline with batch size
    ``b*num_shards``.

Position and resumption
    The pipeline has a position ``(epoch, batch_index)``: the next batch to be
    *consumed*.  Iterating the pipeline itself (``for b in pipe``) or
    :meth:`Pipeline.stream` advances it as batches are handed to the consumer
    (not as they are produced in the background).  :meth:`Pipeline.state`
    returns a small JSON-able dict and :meth:`Pipeline.restore` puts a freshly
    built pipeline (same arrays and configuration) back at that position, so
    a resumed run sees exactly the remaining batches of an uninterrupted run.
    A sharded pipeline may restore a state saved with another number of
    shards (training resumed on another number of processes): the position
    is converted through the number of examples of the epoch already
    consumed by all shards, rounded down to a whole batch of all shards.
    :meth:`Pipeline.epoch` is a pure view of one epoch and does not move the
    position (useful for evaluation).

Prefetching
    With ``prefetch(n)``, batches (including the maps) are produced on a
    background daemon thread into a queue of at most ``n`` batches.
    Exceptions raised while producing are re-raised in the consumer; when the
    consumer stops early (``break``, exception, or ``close()`` on the
    iterator) the thread is told to stop and joined.  Map functions then run
    on that thread, so they must be thread-safe with respect to the consumer.
"""

from __future__ import annotations

import copy
import itertools
import math
import queue
import threading
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

__all__ = ["Pipeline", "batch_seed", "epoch_permutation", "STATE_VERSION"]

STATE_VERSION = 1


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch``: ``default_rng([seed, epoch]).permutation(n)``."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_seed(seed: int, epoch: int, batch_index: int, stream: int = 0) -> int:
    """Deterministic 32-bit seed for one batch.

    Derived with :class:`numpy.random.SeedSequence` from
    ``(seed, epoch, batch_index, stream)``; ``stream`` separates independent
    consumers (the pipeline uses the map's position in the map chain).
    """
    ss = np.random.SeedSequence([seed, epoch, batch_index, stream])
    return int(ss.generate_state(1, np.uint32)[0])


class _Map(NamedTuple):
    fn: Callable
    with_seed: bool


# Messages from the prefetch thread.
_ITEM, _END, _ERROR = 0, 1, 2
_thread_ids = itertools.count()


def _prefetched(source: Iterator, depth: int, join_timeout: float = 30.0):
    """Run ``source`` on a daemon thread, yielding its items via a bounded queue."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(msg) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def worker():
        try:
            for item in source:
                if not put((_ITEM, item)):
                    return
            put((_END, None))
        except BaseException as exc:   # forwarded to the consumer
            put((_ERROR, exc))
        finally:
            source.close()

    thread = threading.Thread(
        target=worker, name=f"tracejit-prefetch-{next(_thread_ids)}", daemon=True
    )
    thread.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=0.1)
            except queue.Empty:
                if not thread.is_alive() and q.empty():
                    raise RuntimeError("prefetch thread exited without a result") from None
                continue
            if kind == _ITEM:
                yield payload
            elif kind == _END:
                return
            else:
                raise payload
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then wait for it.
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
        thread.join(join_timeout)


class Pipeline:
    """Deterministic batches over in-memory arrays; see the module docstring.

    Parameters
    ----------
    arrays:
        One array, or a tuple/list of arrays with the same leading dimension
        (e.g. ``(images, labels)``).  Batches have the same structure: a single
        array, or a tuple of arrays.
    seed:
        Base seed for shuffling and for per-batch map seeds (default 0);
        :meth:`shuffle` sets it too.
    """

    def __init__(self, arrays, *, seed: int = 0):
        self._single = not isinstance(arrays, (tuple, list))
        arrs = (arrays,) if self._single else tuple(arrays)
        if not arrs:
            raise ValueError("Pipeline needs at least one array")
        arrs = tuple(np.asarray(a) for a in arrs)
        for i, a in enumerate(arrs):
            if a.ndim == 0:
                raise ValueError(f"array {i} is a scalar; arrays need a leading dimension")
        sizes = [a.shape[0] for a in arrs]
        if len(set(sizes)) != 1:
            raise ValueError(f"arrays must share their leading dimension, got sizes {sizes}")
        if sizes[0] == 0:
            raise ValueError("Pipeline needs at least one example")
        self._arrays = arrs
        self._n = sizes[0]
        self._seed = _check_seed(seed)
        self._shuffle = False
        self._batch_size = self._n
        self._drop_remainder = False
        self._maps: tuple[_Map, ...] = ()
        self._batched = False
        self._num_shards, self._shard_index = 1, 0
        self._prefetch = 0
        self._epoch = 0
        self._batch_index = 0

    # ------------------------------------------------------------------
    # Builders (each returns a new Pipeline sharing the arrays)
    # ------------------------------------------------------------------

    def _replace(self, **attrs) -> "Pipeline":
        new = copy.copy(self)
        for name, value in attrs.items():
            setattr(new, "_" + name, value)
        return new

    def shuffle(self, seed: int) -> "Pipeline":
        """Visit examples in a fresh permutation every epoch, derived from
        ``np.random.default_rng([seed, epoch])``.  Also sets the base seed."""
        return self._replace(shuffle=True, seed=_check_seed(seed))

    def batch(self, batch_size: int, drop_remainder: bool = False) -> "Pipeline":
        """Group examples into batches of ``batch_size``.

        The last batch of an epoch is smaller unless ``drop_remainder`` is
        true, in which case the leftover examples of that epoch are skipped
        (with shuffling, different ones each epoch).  Without :meth:`batch`,
        each epoch is one batch holding every example.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an integer, got {batch_size!r}")
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_remainder and batch_size > self.num_examples:
            raise ValueError(
                f"batch_size {batch_size} > {self.num_examples} examples with "
                "drop_remainder=True would give no batches"
            )
        if self._batch_index != 0:
            raise ValueError("cannot change the batch size in the middle of an epoch")
        return self._replace(batch_size=batch_size, drop_remainder=bool(drop_remainder),
                             batched=True)

    def shard(self, num_shards: int, index: int) -> "Pipeline":
        """Keep shard ``index`` of ``num_shards`` equal, disjoint shards of
        every epoch's examples (positions ``index::num_shards`` of the
        epoch's order, the last ``n % num_shards`` skipped); see Sharding in
        the module docstring.  In data-parallel training rank ``r`` of ``p``
        reads ``shard(p, r)``, every rank with the same seed."""
        for name, value in (("num_shards", num_shards), ("index", index)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"shard: {name} must be an integer, got {value!r}")
        num_shards, index = int(num_shards), int(index)
        if not 1 <= num_shards <= self._n:
            raise ValueError(f"shard: num_shards must be between 1 and the {self._n} "
                             f"examples, got {num_shards}")
        if not 0 <= index < num_shards:
            raise ValueError(f"shard: index must be in [0, {num_shards}), got {index}")
        if self._num_shards != 1:
            raise ValueError("shard: this pipeline is already sharded")
        if self._batch_index != 0:
            raise ValueError("cannot shard in the middle of an epoch")
        new = self._replace(num_shards=num_shards, shard_index=index)
        if not self._batched:
            new._batch_size = new.num_examples
        elif new._drop_remainder and new._batch_size > new.num_examples:
            raise ValueError(f"batch_size {new._batch_size} > {new.num_examples} examples "
                             f"per shard with drop_remainder=True would give no batches")
        return new

    def map(self, fn: Callable, *, with_seed: bool = False) -> "Pipeline":
        """Apply ``fn`` to every batch (after batching, in the order added).

        The batch is passed unpacked: ``fn(x, y)`` for a pipeline over
        ``(x, y)``, ``fn(x)`` for a single array.  If ``with_seed`` is true,
        ``fn`` gets one more positional argument: the per-batch seed
        ``batch_seed(seed, epoch, batch_index, map_position)``, a Python
        ``int`` in ``[0, 2**32)`` (``tracejit.jit`` treats Python scalars as
        traced values, so a jitted ``fn`` is not retraced per batch).  A
        tuple or list
        result becomes the new batch tuple; anything else a single value.
        ``fn`` may be a jitted function.
        """
        if not callable(fn):
            raise TypeError(f"map needs a callable, got {fn!r}")
        return self._replace(maps=self._maps + (_Map(fn, bool(with_seed)),))

    def prefetch(self, buffer_size: int = 1) -> "Pipeline":
        """Produce up to ``buffer_size`` batches ahead on a background thread
        (0 disables prefetching)."""
        buffer_size = int(buffer_size)
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0, got {buffer_size}")
        return self._replace(prefetch=buffer_size)

    # ------------------------------------------------------------------
    # Introspection and state
    # ------------------------------------------------------------------

    @property
    def num_examples(self) -> int:
        """Examples per epoch (of this shard, when sharded)."""
        return self._n // self._num_shards

    @property
    def num_shards(self) -> int:
        return self._num_shards

    @property
    def shard_index(self) -> int:
        return self._shard_index

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        if self._drop_remainder:
            return self.num_examples // self._batch_size
        return math.ceil(self.num_examples / self._batch_size)

    def __len__(self) -> int:
        return self.num_batches

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, batch_index)`` of the next batch to be consumed."""
        return self._epoch, self._batch_index

    def state(self) -> dict[str, Any]:
        """JSON-able position and configuration fingerprint, for checkpoints."""
        return {
            "version": STATE_VERSION,
            "epoch": self._epoch,
            "batch_index": self._batch_index,
            "seed": self._seed,
            "shuffle": self._shuffle,
            "num_examples": self._n,
            "batch_size": self._batch_size,
            "drop_remainder": self._drop_remainder,
            "num_shards": self._num_shards,
        }

    def restore(self, state: dict[str, Any]) -> "Pipeline":
        """Move this pipeline to a position saved by :meth:`state`.

        The pipeline must be built from the same arrays with the same
        configuration; the fingerprint fields (``num_examples``,
        ``batch_size``, ``drop_remainder``, ``shuffle``) are checked when
        present and a mismatch raises ``ValueError``.  The seed is taken from
        ``state``.  A state saved with another ``num_shards`` gives the
        position after the same number of examples of the epoch, rounded down
        to a whole batch of all shards (``batch_size`` may then differ).
        Mutates and returns ``self``.
        """
        try:
            epoch = int(state["epoch"])
            batch_index = int(state["batch_index"])
            seed = _check_seed(int(state["seed"]))
        except KeyError as exc:
            raise ValueError(f"pipeline state lacks key {exc.args[0]!r}") from None
        version = state.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"unsupported pipeline state version {version!r}")
        mine = self.state()
        saved_shards = int(state.get("num_shards", 1))
        keys = ["num_examples", "drop_remainder", "shuffle"]
        if saved_shards == self._num_shards:
            keys.append("batch_size")
        elif "batch_size" in state:
            consumed = batch_index * int(state["batch_size"]) * saved_shards
            batch_index = consumed // (self._batch_size * self._num_shards)
            batch_index = min(batch_index, self.num_batches)
        for key in keys:
            if key in state and state[key] != mine[key]:
                raise ValueError(
                    f"pipeline state was saved with {key}={state[key]!r} but this "
                    f"pipeline has {key}={mine[key]!r}"
                )
        if epoch < 0 or not 0 <= batch_index <= self.num_batches:
            raise ValueError(
                f"invalid pipeline position epoch={epoch}, batch_index={batch_index} "
                f"({self.num_batches} batches per epoch)"
            )
        if batch_index == self.num_batches:
            epoch, batch_index = epoch + 1, 0
        self._epoch, self._batch_index, self._seed = epoch, batch_index, seed
        return self

    # ------------------------------------------------------------------
    # Iteration
    # ------------------------------------------------------------------

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._shuffle:
            order = epoch_permutation(self._n, self._seed, epoch)
        else:
            order = np.arange(self._n)
        if self._num_shards > 1:
            usable = self.num_examples * self._num_shards
            order = order[:usable][self._shard_index::self._num_shards]
        return order

    def _make_batch(self, epoch: int, k: int, order: np.ndarray):
        idx = order[k * self._batch_size:(k + 1) * self._batch_size]
        # Fancy indexing copies, so maps may modify batches in place safely.
        batch = self._arrays[0][idx] if self._single else tuple(a[idx] for a in self._arrays)
        for position, m in enumerate(self._maps):
            args = batch if isinstance(batch, tuple) else (batch,)
            if m.with_seed:
                out = m.fn(*args, batch_seed(self._seed, epoch, k, position))
            else:
                out = m.fn(*args)
            batch = tuple(out) if isinstance(out, (tuple, list)) else out
        return batch

    def _produce(self, epoch: int, k: int, end_epoch, limit):
        """Yield ``(epoch, batch_index, batch)`` from the given position."""
        nb = self.num_batches
        produced = 0
        while end_epoch is None or epoch < end_epoch:
            order = self._permutation(epoch)
            while k < nb:
                if limit is not None and produced >= limit:
                    return
                yield epoch, k, self._make_batch(epoch, k, order)
                produced += 1
                k += 1
            epoch, k = epoch + 1, 0

    def _run(self, epoch, k, end_epoch=None, limit=None, track=False):
        # A snapshot: later restore()/builder calls don't affect this iterator.
        snap = copy.copy(self)
        items = snap._produce(epoch, k, end_epoch, limit)
        if snap._prefetch > 0:
            items = _prefetched(items, snap._prefetch)
        return self._consume(items, track)

    def _consume(self, items, track):
        nb = self.num_batches
        try:
            for e, k, batch in items:
                if track:
                    self._epoch, self._batch_index = (e + 1, 0) if k + 1 >= nb else (e, k + 1)
                yield batch
        finally:
            items.close()

    def __iter__(self) -> Iterator:
        """Yield the remaining batches of the current epoch, advancing the
        position; afterwards the position is ``(epoch + 1, 0)``."""
        return self._run(self._epoch, self._batch_index, end_epoch=self._epoch + 1, track=True)

    def stream(self, num_batches: int | None = None) -> Iterator:
        """Yield batches from the current position across epoch boundaries,
        advancing the position; endless unless ``num_batches`` is given."""
        if num_batches is not None and int(num_batches) < 0:
            raise ValueError("num_batches must be >= 0")
        limit = None if num_batches is None else int(num_batches)
        return self._run(self._epoch, self._batch_index, limit=limit, track=True)

    def epoch(self, epoch_index: int, start_batch: int = 0) -> Iterator:
        """Yield the batches of epoch ``epoch_index`` (from ``start_batch``).

        A pure view: does not read or move the pipeline's position.
        """
        epoch_index, start_batch = int(epoch_index), int(start_batch)
        if epoch_index < 0 or not 0 <= start_batch <= self.num_batches:
            raise ValueError(f"invalid epoch {epoch_index} / start_batch {start_batch}")
        return self._run(epoch_index, start_batch, end_epoch=epoch_index + 1)

    def __repr__(self) -> str:
        shapes = ", ".join(str(a.shape) for a in self._arrays)
        return (
            f"Pipeline([{shapes}], shuffle={self._shuffle}, seed={self._seed}, "
            f"batch_size={self._batch_size}, drop_remainder={self._drop_remainder}, "
            f"maps={len(self._maps)}, prefetch={self._prefetch}, "
            f"shard={self._shard_index}/{self._num_shards}, "
            f"position={self.position})"
        )
