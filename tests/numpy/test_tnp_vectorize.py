"""tnp.vectorize against np.vectorize: scalar functions with broadcasting,
excluded arguments, keywords, several outputs, otypes, size-0 input, and
signature= (gufunc core dimensions); eager and jitted on the reference and
cpu backends; gradients through it."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads

from tnp_check import assert_same


def run(vec, *args, **kw):
    yield "eager", vec(*args, **kw)
    for backend in ("reference", "cpu"):
        yield backend, tracejit.jit(lambda *a: vec(*a, **kw), backend=backend)(*args)


def _f(xp):
    def f(a, b):
        return xp.where(a > b, a - b, a * b + 1.0)
    return f


FLOATS = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_broadcasting_scalar_function(data):
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3,
                                                                   max_side=4)).input_shapes
    a = data.draw(hnp.arrays(np.float64, shape_a, elements=FLOATS))
    b = data.draw(hnp.arrays(np.float64, shape_b, elements=FLOATS))
    want = np.vectorize(_f(np))(a, b)
    for where, got in run(tnp.vectorize(_f(tnp)), a, b):
        assert_same(want, got, where=where)


def test_excluded_keywords_outputs_and_otypes():
    def f(x, scale, power=2):
        return x * scale, x ** power

    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    want = np.vectorize(f, excluded={1})(x, 3.0, power=3)
    for where, got in run(tnp.vectorize(f, excluded={1}), x, 3.0, power=3):
        assert_same(tuple(want), tuple(got), where=where)
    want = np.vectorize(lambda v: v * 2.5, otypes=[np.float32])(x)
    for where, got in run(tnp.vectorize(lambda v: v * 2.5, otypes=[np.float32]), x):
        assert_same(want, got, where=where)


def test_size_zero_needs_otypes():
    e = np.zeros((0, 3))
    with pytest.raises(ValueError, match="otypes"):
        tnp.vectorize(lambda v: v + 1)(e)
    got = tnp.vectorize(lambda v: v + 1, otypes=["float64"])(e)
    assert_same(np.vectorize(lambda v: v + 1, otypes=["float64"])(e), got)


def test_signature():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 1, 3)), rng.standard_normal((5, 3))
    for sig, fn in [("(n),(n)->()", lambda u, v: (u * v).sum()),
                    ("(n),(n)->(n)", lambda u, v: u - v.mean()),
                    ("(n),(n)->(),(n)", lambda u, v: ((u * v).sum(), u + v))]:
        want = np.vectorize(fn, signature=sig)(a, b)
        for where, got in run(tnp.vectorize(fn, signature=sig), a, b):
            assert_same(want, got, rtol=1e-12, where=f"{sig} {where}")
    with pytest.raises(ValueError, match="core dimension"):
        tnp.vectorize(lambda u, v: u, signature="(n),(n)->(n)")(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="signature"):
        tnp.vectorize(lambda u: u, signature="(n->()")


def test_decorator_and_gradient():
    @tnp.vectorize
    def softplus(v):
        return tnp.log1p(tnp.exp(v))

    x = np.array([[-2.0, 0.5], [3.0, 0.0]])
    np.testing.assert_allclose(np.asarray(softplus(x)), np.log1p(np.exp(x)))
    check_grads(lambda v: softplus(v), (x,), order=2)
    assert softplus.__name__ == "softplus"
