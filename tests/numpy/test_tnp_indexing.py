"""NumPy indexing on traced arrays (basic, advanced, masks), ``.at[]``
updates, take and take_along_axis, against NumPy 2."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
from tnp_check import ALL_DTYPES, arrays, assert_same, check, check_raises, shapes

SETTINGS = settings(max_examples=30, deadline=None)


def getitem(idx):
    """``x[idx]``: NumPy's own indexing, or tnp's on arrays and tracers."""
    return lambda m, x: x[idx] if m is np else m.base._getitem(x, idx)


def check_index(x, idx):
    check(getitem(idx), x)


@st.composite
def indexed_array(draw, **kw):
    dtype = draw(st.sampled_from(ALL_DTYPES))
    return draw(arrays(dtype, draw(shapes(**kw))))


@SETTINGS
@given(data=st.data())
def test_basic_indexing(data):
    """Slices with negative starts/stops/steps, integers, None, Ellipsis."""
    x = data.draw(indexed_array())
    idx = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    check_index(x, idx)


@st.composite
def mixed_index(draw, shape):
    """Per dim: a slice, an integer, an integer array (all arrays broadcast
    to a drawn shape) or nothing; sometimes a None or an Ellipsis."""
    bshape = draw(shapes(max_dims=2, max_side=3))
    kinds = [draw(st.sampled_from(["slice", "int", "array"] if n else ["slice"]))
             for n in shape]
    if "array" not in kinds:
        arrayable = [d for d, n in enumerate(shape) if n]
        if not arrayable:
            return tuple(slice(None) for _ in shape)
        kinds[draw(st.sampled_from(arrayable))] = "array"
    idx = []
    for n, kind in zip(shape, kinds):
        if kind == "slice":
            idx.append(slice(draw(st.none() | st.integers(-n - 1, n + 1)),
                             draw(st.none() | st.integers(-n - 1, n + 1)),
                             draw(st.none() | st.sampled_from([1, 2, -1, -2]))))
        elif kind == "int":
            idx.append(draw(st.integers(-n, n - 1)))
        else:
            ndrop = draw(st.integers(0, len(bshape)))
            sub = tuple(1 if draw(st.booleans()) else b for b in bshape[ndrop:])
            idx.append(draw(hnp.arrays(draw(st.sampled_from([np.int32, np.int64])), sub,
                                       elements=st.integers(-n, n - 1))))
    k = draw(st.integers(0, len(idx)))
    if draw(st.booleans()):
        idx.insert(k, None)
    if draw(st.booleans()):   # drop a trailing run of full slices behind an Ellipsis
        j = draw(st.integers(0, len(idx)))
        if all(isinstance(i, slice) and i == slice(None) for i in idx[:j]):
            idx = [Ellipsis] + idx[j:]
    return tuple(idx)


@SETTINGS
@given(data=st.data())
def test_advanced_indexing(data):
    """Several index arrays at once, adjacent or not, mixed with integers,
    slices, None and Ellipsis; the arrays concrete or traced."""
    x = data.draw(indexed_array(min_dims=1, max_dims=4, max_side=3))
    idx = data.draw(mixed_index(x.shape))
    check_index(x, idx)
    # The same index arrays passed in as traced arguments.
    arrs = [i for i in idx if isinstance(i, np.ndarray)]

    def traced(m, x, *a):
        it = iter(a)
        return getitem(tuple(next(it) if isinstance(i, np.ndarray) else i for i in idx))(m, x)
    check(traced, x, *arrs, eager=False)


def test_labels_gather():
    """``logp[arange(n), labels]``, the cross-entropy pattern."""
    logp = np.log(np.random.default_rng(0).dirichlet(np.ones(5), size=4)).astype(np.float32)
    labels = np.array([3, 0, 4, 4], np.int32)
    check(lambda m, lp, y: getitem((m.arange(4), y))(m, lp), logp, labels)
    check(lambda m, lp, y: getitem((m.arange(lp.shape[0]), y))(m, lp).mean(), logp, labels)


@SETTINGS
@given(data=st.data())
def test_boolean_masks_and_lists(data):
    x = data.draw(indexed_array(min_dims=1, max_dims=3, max_side=3))
    k = data.draw(st.integers(1, x.ndim))
    mask = data.draw(hnp.arrays(np.bool_, x.shape[:k]))
    check_index(x, mask)
    check_index(x, (Ellipsis, data.draw(hnp.arrays(np.bool_, x.shape[-1:]))))
    if x.shape[0]:
        lst = data.draw(st.lists(st.integers(-x.shape[0], x.shape[0] - 1), max_size=4))
        check_index(x, lst)
        check_index(x, (lst, Ellipsis))


def test_index_errors():
    x = np.zeros((3, 4))
    for idx in [(3,), (0, -5), (np.array([0, 4]),), (0, 0, 0), (Ellipsis, 0, Ellipsis),
                (np.array([0.5]),)]:
        check_raises(getitem(idx), x, exc=IndexError)
    with pytest.raises(IndexError):   # traced boolean masks have no static shape
        tracejit.jit(lambda x: x[x > 0], backend="reference")(x)


def test_traced_indices_are_clamped():
    x = np.arange(5.0)
    f = tracejit.jit(lambda x, i: x[i], backend="reference")
    np.testing.assert_array_equal(f(x, np.array([-1, 7, -9, 2])), [4.0, 4.0, 0.0, 2.0])


def test_tracer_methods_and_properties():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check(lambda m, x: x[None, ..., ::-2], x, eager=False)
    check(lambda m, x: x[1][-1][::3], x, eager=False)
    check(lambda m, x: x[:, np.array([2, 0])][..., 1:], x, eager=False)
    check(lambda m, x: [row.sum() for row in x], x, eager=False)
    assert tracejit.jit(lambda x: len(x) + x.ndim + x.size, backend="reference")(x) == 29


def _at_reference(x, idx, op, v):
    y = x.copy()
    # np.add.at reads garbage when it has to broadcast the values (NumPy 2.4)
    v = np.broadcast_to(v, y[idx].shape).copy()
    if op == "set":
        y[idx] = v
    elif op == "add":
        np.add.at(y, idx, v)
    else:
        np.multiply.at(y, idx, v)
    return y


@pytest.mark.parametrize("op", ["set", "add", "multiply", "get"])
@SETTINGS
@given(data=st.data())
def test_at(op, data):
    x = data.draw(arrays(data.draw(st.sampled_from(["float32", "float64", "int32", "int64"])),
                         shapes(min_dims=1, max_dims=3, max_side=3)))
    idx = data.draw(st.one_of(mixed_index(x.shape),
                              hnp.basic_indices(x.shape, allow_newaxis=True)))
    target = x[idx]
    positions = np.arange(x.size).reshape(x.shape)[idx]
    unique = np.unique(positions).size == positions.size
    v = data.draw(arrays(x.dtype, target.shape[data.draw(st.integers(0, target.ndim)):]))
    traced_idx = isinstance(idx, tuple) and any(isinstance(i, np.ndarray) for i in idx)
    if op == "get":
        f = tracejit.jit(lambda x: x.at[idx].get(), backend="reference")
        assert_same(x[idx], f(x))
        return
    if op == "multiply" and not unique:
        return
    expected = _at_reference(x, idx, op, v)
    f = tracejit.jit(lambda x, v: getattr(x.at[idx], op)(v), backend="reference")
    assert_same(expected, f(x, v), rtol=1e-5 if x.dtype == np.float32 else 1e-12)
    if traced_idx and (unique or op == "add"):
        arrs = [i for i in idx if isinstance(i, np.ndarray)]

        def g(x, v, *a):
            it = iter(a)
            ti = tuple(next(it) if isinstance(i, np.ndarray) else i for i in idx)
            return getattr(x.at[ti], op)(v)
        assert_same(expected, tracejit.jit(g, backend="reference")(x, v, *arrs),
                    rtol=1e-5 if x.dtype == np.float32 else 1e-12)


def test_at_set_scalar_and_casts():
    x = np.zeros((3, 4), np.int32)
    f = tracejit.jit(lambda x: x.at[1, ::2].set(2.7).at[np.array([0, 0]), 3].add(5),
                     backend="reference")
    expected = x.copy()
    expected[1, ::2] = 2
    np.add.at(expected, (np.array([0, 0]), 3), 5)
    assert_same(expected, f(x))


@SETTINGS
@given(data=st.data())
def test_take(data):
    x = data.draw(indexed_array(min_dims=1, max_side=3))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    n = x.size if axis is None else x.shape[axis]
    if n == 0:
        return
    ishape = data.draw(shapes(max_dims=2, max_side=3))
    i = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(-n, n - 1)))
    check(lambda m, x: m.take(x, i, axis=axis), x)
    check(lambda m, x, i: m.take(x, i, axis=axis), x, i)
    wide = data.draw(hnp.arrays(np.int32, ishape, elements=st.integers(-2 * n, 2 * n)))
    for mode in ("clip", "wrap"):
        check(lambda m, x, i: m.take(x, i, axis=axis, mode=mode), x, wide)
    check(lambda m, x: m.take(x, int(i.flat[0]) if i.size else 0, axis=axis), x)
    if x.ndim:
        check(lambda m, x: x.take(i, axis), x, eager=False)


@SETTINGS
@given(data=st.data())
def test_take_along_axis(data):
    x = data.draw(indexed_array(min_dims=1, max_side=3))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    if n == 0:
        return
    ishape = list(x.shape)
    ishape[axis] = data.draw(st.integers(0, 4))
    ishape = [1 if data.draw(st.booleans()) and d != axis % x.ndim else s
              for d, s in enumerate(ishape)]
    i = data.draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(-n, n - 1)))
    check(lambda m, x, i: m.take_along_axis(x, i, axis=axis), x, i)
    if x.size:
        check(lambda m, x: m.take_along_axis(x, np.array([0, -1]), axis=None), x)
