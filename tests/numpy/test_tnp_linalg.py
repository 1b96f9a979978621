"""tracejit.numpy contractions (matmul, dot, einsum, tensordot, inner,
outer, vdot) and linalg.norm, eager and jitted, against NumPy 2."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tnp_check import NUM_DTYPES, arrays, check, check_raises

SETTINGS = settings(max_examples=25, deadline=None)
TOL = dict(rtol=1e-4, atol=1e-4)
DTYPES = NUM_DTYPES + ("bool",)


def _pair(draw, sa, sb):
    da, db = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(DTYPES))
    return draw(arrays(da, sa, special=False)), draw(arrays(db, sb, special=False))


@st.composite
def matmul_operands(draw):
    """Shapes NumPy's matmul takes: 1-D or N-D, broadcasting batch dims."""
    m, k, n = (draw(st.integers(0, 3)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    sa = draw(st.sampled_from([(k,), batch.input_shapes[0] + (m, k)]))
    sb = draw(st.sampled_from([(k,), batch.input_shapes[1] + (k, n)]))
    return _pair(draw, sa, sb)


@SETTINGS
@given(ab=matmul_operands())
def test_matmul(ab):
    a, b = ab
    check(lambda m, a, b: m.matmul(a, b), a, b, **TOL)
    check(lambda m, a, b: a @ b, a, b, eager=False, **TOL)
    check(lambda m, a: b @ a if b.ndim > 1 and a.ndim > 1 and b.shape[-1] == a.shape[-2]
          else a, a, eager=False, **TOL)


def test_matmul_errors():
    check_raises(lambda m, a, b: m.matmul(a, b), np.ones((2, 3)), np.ones((2, 3)),
                 exc=ValueError)
    check_raises(lambda m, a, b: m.matmul(a, b), np.ones(()), np.ones(3), exc=ValueError)


@st.composite
def dot_operands(draw):
    k = draw(st.integers(0, 3))
    sa = draw(st.sampled_from([(), (k,), (2, k), (1, 3, k)]))
    if sa == ():
        sb = draw(st.sampled_from([(), (3,), (2, 3)]))
    else:
        sb = draw(st.sampled_from([(k,), (k, 2), (2, k, 3)]))
    return _pair(draw, sa, sb)


@SETTINGS
@given(ab=dot_operands())
def test_dot(ab):
    a, b = ab
    check(lambda m, a, b: m.dot(a, b), a, b, **TOL)
    if a.ndim:
        check(lambda m, a, b: a.dot(b), a, b, eager=False, **TOL)


@SETTINGS
@given(data=st.data())
def test_inner_outer_vdot(data):
    k = data.draw(st.integers(0, 3))
    a, b = _pair(data.draw, data.draw(st.sampled_from([(), (k,), (2, k)])),
                 data.draw(st.sampled_from([(), (k,), (3, k), (1, 2, k)])))
    check(lambda m, a, b: m.inner(a, b), a, b, **TOL)
    check(lambda m, a, b: m.outer(a, b), a, b, **TOL)
    if a.size == b.size:
        check(lambda m, a, b: m.vdot(a, b), a, b, **TOL)


@SETTINGS
@given(data=st.data())
def test_tensordot(data):
    dims = data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=3))
    free_a = data.draw(st.lists(st.integers(0, 3), max_size=2))
    free_b = data.draw(st.lists(st.integers(0, 3), max_size=2))
    a, b = _pair(data.draw, tuple(free_a + dims), tuple(dims + free_b))
    check(lambda m, a, b: m.tensordot(a, b, len(dims)), a, b, **TOL)
    pa = data.draw(st.permutations(range(a.ndim)))
    pb = data.draw(st.permutations(range(b.ndim)))
    at, bt = a.transpose(pa), b.transpose(pb)
    axes = ([pa.index(len(free_a) + i) - a.ndim for i in range(len(dims))],
            [pb.index(i) for i in range(len(dims))])
    check(lambda m, a, b: m.tensordot(a, b, axes), at, bt, **TOL)


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 0)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 1)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...i,...i", [(3, 4), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("ijk,ikl,lm->jm", [(2, 3, 4), (2, 4, 5), (5, 2)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("nhwc,kc->nhwk", [(1, 2, 2, 3), (4, 3)]),
    ("i...->...", [(2, 3, 4)]),
    ("Ab,bA->A", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("spec,shapes", EINSUM, ids=[e[0] for e in EINSUM])
@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_einsum(spec, shapes, dtype):
    rng = np.random.default_rng(0)
    ops = [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    check(lambda m, *ops: m.einsum(spec, *ops), *ops, **TOL)


def test_einsum_mixed_dtypes_promote():
    a = np.ones((2, 3), np.int32)
    b = np.ones((3,), np.float32)
    check(lambda m, a, b: m.einsum("ij,j->i", a, b), a, b)


@pytest.mark.parametrize("ord", [None, 1, 2, 3, 0, -1, np.inf, -np.inf, 0.5])
@SETTINGS
@given(x=arrays("float64", (4,), special=False), keepdims=st.booleans())
def test_vector_norm(ord, x, keepdims):
    check(lambda m, x: m.linalg.norm(x, ord), x, **TOL)
    check(lambda m, x: m.linalg.norm(x.reshape(2, 2), ord, axis=1, keepdims=keepdims), x, **TOL)


@pytest.mark.parametrize("ord", [None, "fro", 1, -1, np.inf, -np.inf])
def test_matrix_norm(ord):
    x = np.arange(-6, 18, dtype=np.float32).reshape(2, 3, 4) / 7
    check(lambda m, x: m.linalg.norm(x[0], ord), x, **TOL)
    check(lambda m, x: m.linalg.norm(x, ord, axis=(2, 1)), x, **TOL)
    check(lambda m, x: m.linalg.norm(x, ord, axis=(0, -1), keepdims=True), x, **TOL)
    check(lambda m, x: m.linalg.norm(x), x, **TOL)
