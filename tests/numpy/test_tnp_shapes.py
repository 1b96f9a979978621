"""tracejit.numpy shape manipulation and array creation, eager and jitted,
against NumPy 2."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tnp_check import ALL_DTYPES, arrays, check, check_raises, shapes

SETTINGS = settings(max_examples=15, deadline=None)


@st.composite
def any_array(draw, min_dims=0, max_dims=4, min_side=0, max_side=4):
    dtype = draw(st.sampled_from(ALL_DTYPES))
    return draw(arrays(dtype, shapes(min_dims, max_dims, min_side, max_side)))


@st.composite
def reshape_target(draw, shape):
    """A shape with as many elements: the dims permuted, some merged, maybe
    one of them written as -1."""
    dims = list(draw(st.permutations(shape))) + [1] * draw(st.integers(0, 2))
    dims = draw(st.permutations(dims))
    merged = []
    for d in dims:
        if merged and draw(st.booleans()):
            merged[-1] *= d
        else:
            merged.append(d)
    if merged and 0 not in merged and draw(st.booleans()):
        merged[draw(st.integers(0, len(merged) - 1))] = -1
    return tuple(merged)


@SETTINGS
@given(data=st.data())
def test_reshape(data):
    x = data.draw(any_array())
    new = data.draw(reshape_target(x.shape))
    check(lambda m, x: m.reshape(x, new), x)
    check(lambda m, x: x.reshape(new), x, eager=False)
    check(lambda m, x: x.reshape(*new) if new else x.reshape(()), x, eager=False)
    check(lambda m, x: m.ravel(x), x)
    check(lambda m, x: x.flatten(), x, eager=False)


def test_reshape_errors():
    x = np.zeros((2, 3))
    for new in [(4, -1), (-1, -1), (5,), (0, -1)]:
        check_raises(lambda m, x: m.reshape(x, new), x, exc=ValueError)


@SETTINGS
@given(data=st.data())
def test_transpose_swapaxes_moveaxis(data):
    x = data.draw(any_array())
    nd = x.ndim
    perm = data.draw(st.permutations(range(nd)))
    perm = [p - nd if data.draw(st.booleans()) else p for p in perm]
    check(lambda m, x: m.transpose(x), x)
    check(lambda m, x: m.transpose(x, perm), x)
    check(lambda m, x: x.T, x, eager=False)
    check(lambda m, x: x.transpose(perm), x, eager=False)
    if nd:
        a, b = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
        check(lambda m, x: m.swapaxes(x, a, b), x)
        check(lambda m, x: x.swapaxes(a, b), x, eager=False)
        k = data.draw(st.integers(1, nd))
        src = data.draw(st.permutations(range(nd)))[:k]
        dst = data.draw(st.permutations(range(nd)))[:k]
        check(lambda m, x: m.moveaxis(x, src, dst), x)
        check(lambda m, x: m.moveaxis(x, a, b), x)


@SETTINGS
@given(data=st.data())
def test_expand_dims_squeeze(data):
    x = data.draw(any_array(max_dims=3, max_side=2))
    out_nd = x.ndim + data.draw(st.integers(1, 2))
    axes = data.draw(st.lists(st.integers(-out_nd, out_nd - 1), min_size=out_nd - x.ndim,
                              max_size=out_nd - x.ndim,
                              unique_by=lambda a: a % out_nd))
    check(lambda m, x: m.expand_dims(x, tuple(axes)), x)
    one = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check(lambda m, x: m.expand_dims(x, one), x)
    check(lambda m, x: m.squeeze(x), x)
    ones = [d for d in range(x.ndim) if x.shape[d] == 1]
    if ones:
        ax = data.draw(st.sampled_from(ones))
        check(lambda m, x: m.squeeze(x, ax), x)
        check(lambda m, x: m.squeeze(x, ax - x.ndim), x)
        check(lambda m, x: x.squeeze(tuple(ones)), x, eager=False)
    others = [d for d in range(x.ndim) if x.shape[d] != 1]
    if others:
        check_raises(lambda m, x: m.squeeze(x, others[0]), x, exc=ValueError)


@st.composite
def arrays_along(draw, n_min=1, n_max=3, same_shape=False):
    """Arrays that fit together along a drawn axis (for concatenate)."""
    base = list(draw(shapes(min_dims=1, max_dims=3, max_side=3)))
    axis = draw(st.integers(-len(base), len(base) - 1))
    out = []
    for _ in range(draw(st.integers(n_min, n_max))):
        s = list(base)
        if not same_shape:
            s[axis] = draw(st.integers(0, 3))
        out.append(draw(arrays(draw(st.sampled_from(ALL_DTYPES)), tuple(s))))
    return out, axis


@SETTINGS
@given(aa=arrays_along())
def test_concatenate(aa):
    xs, axis = aa
    check(lambda m, *xs: m.concatenate(xs, axis=axis), *xs)
    check(lambda m, *xs: m.concatenate(list(xs), axis=None), *xs)


@SETTINGS
@given(aa=arrays_along(same_shape=True), data=st.data())
def test_stack(aa, data):
    xs, _ = aa
    nd = xs[0].ndim + 1
    axis = data.draw(st.integers(-nd, nd - 1))
    check(lambda m, *xs: m.stack(xs, axis=axis), *xs)
    check(lambda m, *xs: m.vstack(xs), *xs)
    check(lambda m, *xs: m.hstack(xs), *xs)
    check(lambda m, *xs: m.dstack(xs), *xs)
    check(lambda m, *xs: m.column_stack(xs), *xs)


@SETTINGS
@given(data=st.data())
def test_split(data):
    x = data.draw(any_array(min_dims=1, max_side=6))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    divisors = [k for k in range(1, 7) if n % k == 0]
    k = data.draw(st.sampled_from(divisors))
    check(lambda m, x: m.split(x, k, axis=axis), x)
    idx = data.draw(st.lists(st.integers(-n - 2, n + 2), max_size=4))
    check(lambda m, x: m.split(x, idx, axis=axis), x)
    check(lambda m, x: m.array_split(x, idx, axis=axis), x)
    sections = data.draw(st.integers(1, 7))
    check(lambda m, x: m.array_split(x, sections, axis=axis), x)
    if n % 4:
        check_raises(lambda m, x: m.split(x, 4, axis=axis), x, exc=ValueError)


@SETTINGS
@given(data=st.data())
def test_pad(data):
    x = data.draw(any_array(min_dims=1, max_dims=3))   # NumPy cannot pad 0-d arrays
    nd = x.ndim
    width = data.draw(st.one_of(
        st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(nd)])))
    value = data.draw(st.sampled_from([0, 1, -2.5, True]))
    check(lambda m, x: m.pad(x, width), x)
    check(lambda m, x: m.pad(x, width, constant_values=value), x)
    if x.size:
        mode = data.draw(st.sampled_from(["edge", "reflect", "symmetric", "wrap"]))
        if mode != "reflect" or all(d > 1 for d in x.shape):
            check(lambda m, x: m.pad(x, width, mode=mode), x)


@SETTINGS
@given(data=st.data())
def test_tile_repeat_flip_roll(data):
    x = data.draw(any_array(max_dims=3, max_side=3))
    reps = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 2), max_size=4)
                               .map(tuple)))
    check(lambda m, x: m.tile(x, reps), x)
    r = data.draw(st.integers(0, 3))
    check(lambda m, x: m.repeat(x, r), x)
    if x.ndim:
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
        check(lambda m, x: m.repeat(x, r, axis=axis), x)
        per = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[axis],
                                 max_size=x.shape[axis]))
        check(lambda m, x: m.repeat(x, per, axis=axis), x)
        check(lambda m, x: x.repeat(r, axis), x, eager=False)
        check(lambda m, x: m.flip(x, axis), x)
        shift = data.draw(st.integers(-5, 5))
        check(lambda m, x: m.roll(x, shift, axis=axis), x)
        check(lambda m, x: m.roll(x, (shift, 1), axis=(axis, 0)), x)
    check(lambda m, x: m.flip(x), x)
    check(lambda m, x: m.roll(x, 2), x)
    check(lambda m, x: m.fliplr(x) if x.ndim >= 2 else m.flipud(x) if x.ndim else x, x)


@SETTINGS
@given(x=any_array(max_dims=4))
def test_atleast_and_broadcast_to(x):
    check(lambda m, x: m.atleast_1d(x), x)
    check(lambda m, x: m.atleast_2d(x), x)
    check(lambda m, x: m.atleast_3d(x), x)
    target = (2,) + tuple(d if d != 1 else 3 for d in x.shape)
    check(lambda m, x: m.broadcast_to(x, target), x)
    check(lambda m, x: m.broadcast_arrays(x, np.zeros(target[-1:], np.float32)), x)


@SETTINGS
@given(data=st.data())
def test_triangles_and_diagonals(data):
    x = data.draw(any_array(min_dims=2, max_dims=3))
    k = data.draw(st.integers(-3, 3))
    check(lambda m, x: m.tril(x, k), x)
    check(lambda m, x: m.triu(x, k), x)
    check(lambda m, x: m.diagonal(x), x)
    check(lambda m, x: m.diagonal(x, k), x)
    check(lambda m, x: m.trace(x), x)
    v = x.reshape(-1)
    check(lambda m, v: m.diag(v, k), v)
    if x.ndim == 2:
        check(lambda m, x: m.diag(x, k), x)


@SETTINGS
@given(data=st.data())
def test_diff(data):
    x = data.draw(any_array(min_dims=1))
    if x.dtype == np.bool_:
        return
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = data.draw(st.integers(0, 2))
    check(lambda m, x: m.diff(x, n=n, axis=axis), x)


# --- creation ---------------------------------------------------------------------
CREATE_DTYPES = [None] + list(ALL_DTYPES) + ["uint32"]


@pytest.mark.parametrize("dtype", CREATE_DTYPES)
def test_zeros_ones_full_empty(dtype):
    for s in [(), 3, (0,), (2, 3), (1, 0, 2)]:
        check(lambda m: m.zeros(s, dtype))
        check(lambda m: m.ones(s, dtype=dtype))
        check(lambda m: m.full(s, 7, dtype))
        check(lambda m: m.full(s, 2.5) if dtype is None else m.full(s, 1, dtype=dtype))
        check(lambda m: m.full(s, True))
        check(lambda m: m.empty(s, dtype).shape)
        check(lambda m: m.eye(3, dtype=dtype))
        check(lambda m: m.identity(2, dtype=dtype))


@pytest.mark.parametrize("dtype", [None, "float32", "int32", "bool"])
@SETTINGS
@given(x=any_array())
def test_like(dtype, x):
    check(lambda m, x: m.zeros_like(x, dtype), x)
    check(lambda m, x: m.ones_like(x, dtype=dtype), x)
    check(lambda m, x: m.full_like(x, 3, dtype), x)
    check(lambda m, x: m.empty_like(x, dtype).shape, x)


def test_full_broadcasts_fill_value():
    check(lambda m: m.full((2, 3), np.array([1.0, 2.0, 3.0], np.float32)))
    check(lambda m: m.full((2, 3), [1, 2, 3]))


@SETTINGS
@given(start=st.integers(-5, 5), stop=st.integers(-5, 10), step=st.integers(-3, 3)
       .filter(bool), fstep=st.sampled_from([0.5, 0.25, -0.75, 1.0]),
       dtype=st.sampled_from([None, "int32", "int64", "float32", "float64"]))
def test_arange(start, stop, step, fstep, dtype):
    check(lambda m: m.arange(stop, dtype=dtype))
    check(lambda m: m.arange(start, stop, dtype=dtype))
    check(lambda m: m.arange(start, stop, step, dtype=dtype))
    check(lambda m: m.arange(float(start), stop, fstep), rtol=1e-12, atol=1e-12)
    check(lambda m: m.arange(start, stop, fstep, dtype="float32"), rtol=1e-6, atol=1e-6)


@SETTINGS
@given(start=st.floats(-10, 10), stop=st.floats(-10, 10), num=st.integers(0, 7),
       endpoint=st.booleans(),
       dtype=st.sampled_from([None, "float32", "float64", "int32", "int64"]))
def test_linspace(start, stop, num, endpoint, dtype):
    check(lambda m: m.linspace(start, stop, num, endpoint=endpoint, dtype=dtype),
          rtol=1e-6, atol=1e-12)
    check(lambda m: m.linspace(start, stop, num, endpoint=endpoint, retstep=True),
          rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("k", [-2, 0, 1, 4])
def test_eye_tri(k):
    for n, mm in [(3, None), (2, 4), (4, 2), (0, 3)]:
        check(lambda m: m.eye(n, mm, k=k))
        check(lambda m: m.eye(n, mm, k, "int32"))
        check(lambda m: m.tri(n, mm, k))


def test_meshgrid():
    a, b = np.arange(3.0), np.arange(4, dtype=np.int32)
    check(lambda m, a, b: m.meshgrid(a, b), a, b)
    check(lambda m, a, b: m.meshgrid(a, b, indexing="ij"), a, b)


def test_constants_and_dtype_names():
    import tracejit.numpy as tnp
    for name in ("float32", "float64", "int32", "int64", "uint32", "bool_", "pi", "e",
                 "inf", "nan", "newaxis"):
        a, b = getattr(tnp, name), getattr(np, name)
        assert a is b or (a != a and b != b)
    assert tnp.dtype("float32") == np.float32
    assert tnp.finfo(tnp.float32).eps == np.finfo(np.float32).eps
    assert tnp.iinfo("int32").max == 2 ** 31 - 1
    x = np.zeros((2, 3), np.float32)
    assert (tnp.ndim(x), tnp.shape(x), tnp.size(x)) == (2, (2, 3), 6)
    assert tnp.result_type(x, 2.0) == np.float32
    assert tnp.issubdtype(tnp.float32, tnp.floating)
    assert tnp.promote_types("int32", "float32") == np.float64


@SETTINGS
@given(data=st.data())
def test_append_copy(data):
    x = data.draw(any_array(min_dims=1, max_dims=3))
    y = data.draw(arrays(data.draw(st.sampled_from(ALL_DTYPES)), x.shape))
    check(lambda m, x, y: m.append(x, y), x, y)
    check(lambda m, x, y: m.append(x, y, axis=-1), x, y)
    check(lambda m, x: m.copy(x), x)


def test_shape_rules_reject_bad_attributes():
    """The primitives' own rules catch what tnp would never emit."""
    from tracejit.errors import DTypeError, ShapeError
    from tracejit.ir.types import TensorType
    from tracejit.primitives import linalg, shape as sh
    x = TensorType((2, 3), "float32")
    bad = [lambda: sh.rev.shape_rule(x, dimensions=(2,)),
           lambda: sh.rev.shape_rule(x, dimensions=(0, 0)),
           lambda: sh.concatenate.shape_rule(x, x, axis=2),
           lambda: sh.reshape.shape_rule(x, new_shape=(-1, -6)),
           lambda: sh.broadcast_in_dim.shape_rule(x, shape=(-2, 3), broadcast_dimensions=(0, 1)),
           lambda: sh.iota.shape_rule(shape=(2,), dimension=1, dtype="int32"),
           lambda: linalg.dot_general.shape_rule(
               x, TensorType((3, 3), "float32"), dimension_numbers=(((1, 1), (0, 1)), ((), ())))]
    for rule in bad:
        with pytest.raises(ShapeError):
            rule()
    with pytest.raises(DTypeError):
        sh.iota.shape_rule(shape=(2,), dimension=0, dtype="bool")
