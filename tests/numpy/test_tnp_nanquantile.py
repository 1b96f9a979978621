"""nanquantile, nanpercentile and nanmedian against NumPy (hypothesis
shapes, axes, NaN-filled and all-NaN slices, ties, infinities), eager and
jitted on the reference and cpu backends, and their gradients."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads

from tnp_check import assert_same

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # eager inf - inf

METHODS = ("linear", "lower", "higher", "midpoint", "nearest")
# small integers: ties; NaN: ignored values; inf: at the ends
ELEMENTS = st.one_of(st.integers(-3, 3).map(float), st.just(np.nan),
                     st.sampled_from([np.inf, -np.inf, 0.5, -0.0]))


def _numpy(f, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return f(np, *args)


def _runs(f, x):
    yield "eager", f(tnp, x)
    for backend in ("reference", "cpu"):
        yield backend, tracejit.jit(lambda x: f(tnp, x), backend=backend)(x)


@st.composite
def case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    x = draw(hnp.arrays(np.float64, shape, elements=ELEMENTS))
    axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    return x, axis


@settings(max_examples=25, deadline=None)
@given(case(), st.sampled_from(METHODS), st.booleans(),
       st.lists(st.floats(0, 1), min_size=1, max_size=3))
def test_nanquantile_matches_numpy(xa, method, keepdims, q):
    x, axis = xa
    q = np.asarray(q)

    def f(xp, x):
        return xp.nanquantile(x, q, axis=axis, method=method, keepdims=keepdims)
    want = _numpy(f, x)
    for where, got in _runs(f, x):
        # linear interpolation between infinities is NaN-prone in both; compare where finite
        assert_same(want, got, rtol=1e-12, atol=1e-12, where=where)


@settings(max_examples=15, deadline=None)
@given(case(), st.booleans())
def test_nanmedian_and_nanpercentile(xa, keepdims):
    x, axis = xa
    for f in (lambda xp, x: xp.nanmedian(x, axis=axis, keepdims=keepdims),
              lambda xp, x: xp.nanpercentile(x, 37.5, axis=axis, keepdims=keepdims),
              lambda xp, x: xp.nanpercentile(x, [0, 100], axis=axis)):
        want = _numpy(f, x)
        for where, got in _runs(f, x):
            assert_same(want, got, rtol=1e-12, atol=1e-12, where=where)


def test_all_nan_slices_and_integers():
    x = np.array([[np.nan, np.nan], [1.0, np.nan], [2.0, 4.0]])
    got = tracejit.jit(lambda x: tnp.nanmedian(x, axis=1), backend="cpu")(x)
    np.testing.assert_array_equal(np.asarray(got), [np.nan, 1.0, 3.0])
    i = np.array([[3, 1, 2], [7, 7, 1]])
    assert_same(np.nanmedian(i, axis=1), tnp.nanmedian(i, axis=1))
    with pytest.raises(ValueError, match="method"):
        tnp.nanquantile(x, 0.5, method="weibull")


def test_gradients():
    x = np.array([[0.3, np.nan, -1.2, 2.0, 0.7], [1.5, -0.4, np.nan, np.nan, 0.1]])

    def f(x):
        return tnp.nanquantile(x, np.array([0.25, 0.6]), axis=1) * 1.0
    g = tracejit.grad(lambda x: tnp.sum(f(x)))(x)
    assert np.isnan(x).sum() == 3 and np.all(np.asarray(g)[np.isnan(x)] == 0)
    ok = np.where(np.isnan(x), 0.0, x)
    check_grads(lambda v: f(tnp.where(tnp.isnan(x), np.nan, v)), (ok,), order=2)
    check_grads(lambda v: tnp.nanmedian(v, axis=0), (ok,), order=1)
