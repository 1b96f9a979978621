"""The rest of NumPy's real-valued API in tracejit.numpy (trigonometric and
hyperbolic functions, NaN-aware reductions, quantiles, polynomials,
convolution, interpolation, r_/c_, rot90, gradient, ...): eager and jitted
(reference and cpu backends) against NumPy, with edge cases (0, -0, +-1,
inf, NaN, huge values), and gradients against finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads

from tnp_check import assert_same, run_numpy

RNG = np.random.default_rng(0)
EDGES = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 1e-9, -1e-9, 0.5, 30.0, -40.0, 800.0, -800.0,
                  np.inf, -np.inf, np.nan, 1e10, -1e10, 1e300])
X = np.concatenate([RNG.uniform(-1, 1, 9), EDGES])
Y = np.concatenate([RNG.uniform(-3, 3, 9), [0.0, 1.0, -1.0, -0.0, 2.0, -3.0, 1e-9, 0.5, 30.0,
                                            -40.0, 800.0, np.inf, np.nan, 1.0, -0.0, 5.0, np.inf,
                                            -np.inf, 2.0]])


def check_all(f, *args, rtol=1e-12, atol=1e-300):
    """``f(np, ...)`` against tracejit.numpy eagerly and jitted on the
    reference and cpu backends."""
    want = run_numpy(f, args)
    runs = {"eager": lambda: f(tnp, *args)}
    for backend in ("reference", "cpu"):
        runs[backend] = lambda b=backend: tracejit.jit(lambda *a: f(tnp, *a), backend=b)(*args)
    for name, run in runs.items():
        with np.errstate(all="ignore"):
            got = run()
        if isinstance(want, tuple):
            got = tuple(got)
        assert_same(want, got, rtol=rtol, atol=atol, where=name)


UNARY = ["arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
         "exp2", "deg2rad", "rad2deg", "radians", "degrees", "sinc", "cbrt", "signbit", "real",
         "imag", "conj", "conjugate", "angle", "modf", "isreal", "iscomplex"]
BINARY = ["arctan2", "hypot", "logaddexp", "logaddexp2", "copysign", "heaviside", "fmod",
          "divmod", "ldexp"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_edge_cases(name):
    check_all(lambda m, x: getattr(m, name)(x), X)
    check_all(lambda m, x: getattr(m, name)(x), X.astype(np.float32), rtol=2e-6)


@pytest.mark.parametrize("name", BINARY)
def test_binary_edge_cases(name):
    y = np.round(Y) if name == "ldexp" else Y
    if name == "ldexp":
        y = np.clip(np.nan_to_num(y), -50, 50).astype(np.int64)
    check_all(lambda m, x, y: getattr(m, name)(x, y), X, y)


@settings(max_examples=20, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4),
                    elements=st.floats(-1e6, 1e6)),
       name=st.sampled_from(["arctan", "sinh", "cosh", "arcsinh", "sinc", "cbrt", "exp2",
                             "deg2rad", "signbit"]))
def test_unary_drawn(x, name):
    check_all(lambda m, x: getattr(m, name)(x), x)


def test_int_inputs_promote_like_numpy():
    i = np.array([-2, 0, 1, 3])
    for name in ("arctan", "sinh", "exp2", "deg2rad", "cbrt", "sinc"):
        check_all(lambda m, x: getattr(m, name)(x), i)
    check_all(lambda m, a, b: m.fmod(a, b), np.array([7, -7, 7, -7, 3]), np.array([3, 3, -3, -3, 5]))
    check_all(lambda m, a, b: m.arctan2(a, b), i, i[::-1])


GRADS = {
    "arcsin": (lambda x: tnp.arcsin(x), lambda r: r.uniform(-0.9, 0.9, 5)),
    "arccos": (lambda x: tnp.arccos(x), lambda r: r.uniform(-0.9, 0.9, 5)),
    "arctan": (lambda x: tnp.arctan(x), lambda r: r.normal(size=5) * 3),
    "arctan2": (lambda x: tnp.arctan2(x, 1.5 + x * x), lambda r: r.normal(size=5)),
    "sinh": (lambda x: tnp.sinh(x), lambda r: r.normal(size=5) * 3),
    "cosh": (lambda x: tnp.cosh(x), lambda r: r.normal(size=5) * 3),
    "arcsinh": (lambda x: tnp.arcsinh(x), lambda r: r.normal(size=5) * 3),
    "arccosh": (lambda x: tnp.arccosh(x), lambda r: r.uniform(1.2, 5, 5)),
    "arctanh": (lambda x: tnp.arctanh(x), lambda r: r.uniform(-0.9, 0.9, 5)),
    "hypot": (lambda x: tnp.hypot(x, 2 * x + 1), lambda r: r.normal(size=5)),
    "exp2": (lambda x: tnp.exp2(x), lambda r: r.normal(size=5)),
    "logaddexp2": (lambda x: tnp.logaddexp2(x, 1 - x), lambda r: r.normal(size=5)),
    "sinc": (lambda x: tnp.sinc(x), lambda r: np.concatenate([r.normal(size=4), [0.0]])),
    "cbrt": (lambda x: tnp.cbrt(x), lambda r: r.uniform(0.5, 3, 5) * r.choice([-1, 1], 5)),
    "kron": (lambda x: tnp.kron(x[:2], x), lambda r: r.normal(size=5)),
    "cross": (lambda x: tnp.cross(x[:3], x[2:]), lambda r: r.normal(size=5)),
    "cumprod": (lambda x: tnp.cumprod(x), lambda r: r.normal(size=5)),
    "gradient": (lambda x: tnp.gradient(x * x), lambda r: r.normal(size=5)),
    "quantile": (lambda x: tnp.quantile(x, 0.3), lambda r: r.normal(size=5)),
    "interp": (lambda x: tnp.interp(x, np.array([-5., 0, 5]), np.array([1., 3, -1])),
               lambda r: r.normal(size=5)),
    "convolve": (lambda x: tnp.convolve(x, x[:3]), lambda r: r.normal(size=5)),
    "trapezoid": (lambda x: tnp.trapezoid(x * x), lambda r: r.normal(size=5)),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients(name):
    f, draw = GRADS[name]
    check_grads(f, (draw(np.random.default_rng(1)),), order=2)


def test_ties_split_the_derivative():
    g = tracejit.grad(tnp.logaddexp, argnums=(0, 1))(0.6, 0.6)
    np.testing.assert_allclose(g, (0.5, 0.5))
    g = tracejit.grad(tnp.logaddexp2, argnums=(0, 1))(0.6, 0.6)
    np.testing.assert_allclose(g, (0.5, 0.5))
    assert tnp.logaddexp(np.inf, np.inf) == np.inf and tnp.logaddexp(-np.inf, -np.inf) == -np.inf


A = RNG.normal(size=(3, 5))
ANAN = A.copy()
ANAN[0, 1] = np.nan


@pytest.mark.parametrize("name", ["nanmax", "nanmin", "nanargmax", "nanargmin", "nanprod",
                                  "nancumsum", "nancumprod", "nanvar", "nanstd", "ptp",
                                  "cumprod"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_nan_reductions(name, axis):
    a = A if name in ("ptp", "cumprod") else ANAN
    check_all(lambda m, a: getattr(m, name)(a, axis=axis), a)


def test_cumprod_int_and_cumulative():
    check_all(lambda m: m.cumprod(np.arange(1, 8)))
    check_all(lambda m, a: m.cumulative_sum(a, axis=1, include_initial=True), A)


@pytest.mark.parametrize("q", [0.3, [0.0, 0.5, 1.0]])
@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("axis", [None, 1, (0, 1)])
def test_quantile(q, method, axis):
    check_all(lambda m, a: m.quantile(a, q, axis=axis, method=method), A)
    check_all(lambda m, a: m.quantile(a, q, axis=axis, method=method, keepdims=True), A)
    check_all(lambda m, a: m.percentile(a, np.multiply(q, 100), axis=axis, method=method), A)


def test_statistics():
    check_all(lambda m, a: m.cov(a), A)
    check_all(lambda m, a: m.cov(a, rowvar=False, bias=True), A)
    check_all(lambda m, a: m.cov(a[0], a[1], ddof=0), A)
    check_all(lambda m, a: m.corrcoef(a), A)
    check_all(lambda m, a: m.trapezoid(a, dx=0.5), A)
    check_all(lambda m, a: m.trapezoid(a, np.array([0.0, 1, 3, 4, 7])), A)
    check_all(lambda m, a: m.trapezoid(a, axis=0), A)


def test_polynomials():
    check_all(lambda m, p, x: m.polyval(p, x), np.array([1.0, -2, 3]), A)
    check_all(lambda m, v: m.vander(v, 4), np.array([1.0, 2, 3]))
    check_all(lambda m, v: m.vander(v, increasing=True), np.array([1.0, 2, 3]))
    check_all(lambda m, x, y: m.polyfit(x, y, 2), np.arange(6.0), np.arange(6.0) ** 2 + 1,
              rtol=1e-8, atol=1e-12)
    check_all(lambda m, p: m.polyder(p), np.array([1.0, 2, 3, 4]))
    check_all(lambda m, p: m.polyder(p, 2), np.array([1.0, 2, 3, 4]))
    check_all(lambda m, p: m.polyint(p), np.array([1.0, 2, 3, 4]))


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n,m_", [(5, 3), (3, 5), (4, 4), (1, 3)])
def test_convolve_correlate(mode, n, m_):
    a, v = RNG.normal(size=n), RNG.normal(size=m_)
    check_all(lambda m, a, v: m.convolve(a, v, mode), a, v)
    check_all(lambda m, a, v: m.correlate(a, v, mode), a, v)


def test_search_and_interpolation():
    a, v = np.array([1.0, 2, 2, 5]), np.array([0.0, 2, 3, 9])
    check_all(lambda m, a, v: m.searchsorted(a, v), a, v)
    check_all(lambda m, a, v: m.searchsorted(a, v, side="right"), a, v)
    check_all(lambda m, v: m.digitize(v, np.array([0.0, 1, 2.5])), np.array([-1.0, 0, 1.2, 3]))
    check_all(lambda m, v: m.digitize(v, np.array([0.0, 1, 2.5]), right=True),
              np.array([-1.0, 0, 1.2, 3]))
    check_all(lambda m, v: m.interp(v, np.array([0.0, 1, 3]), np.array([1.0, 3, -1])),
              np.array([-1.0, 0, 0.5, 2, 3, 4]))
    check_all(lambda m, v: m.interp(v, np.array([0.0, 1, 3]), np.array([1.0, 3, -1]), -7, 9),
              np.array([-1.0, 0, 0.5, 2, 3, 4]))
    check_all(lambda m: m.bincount(np.array([0, 1, 1, 3]), minlength=6))
    check_all(lambda m: m.bincount(np.array([0, 1, 1, 3]), weights=np.array([0.5, 1, 2, 3])))
    check_all(lambda m, e: m.isin(e, [2, 3]), np.arange(5))
    check_all(lambda m, e: m.isin(e, [2, 3], invert=True), np.arange(5))
    check_all(lambda m, e: m.ediff1d(e, to_end=[9], to_begin=-1), np.arange(5.0))


def test_bincount_traced_needs_length():
    f = tracejit.jit(lambda x: tnp.bincount(x, length=4))
    np.testing.assert_array_equal(f(np.array([0, 1, 1, 3])), [1, 2, 0, 1])
    with pytest.raises(tracejit.ConcretizationError, match="length="):
        tracejit.jit(lambda x: tnp.bincount(x))(np.array([0, 1]))


V, W = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
C = np.arange(24.0).reshape(2, 3, 4)


def test_cross_kron():
    check_all(lambda m, a, b: m.cross(a, b), V, W)
    check_all(lambda m, a, b: m.cross(a[:, :2], b[:, :2]), V, W)
    check_all(lambda m, a, b: m.cross(a[:, :2], b), V, W)
    check_all(lambda m, a, b: m.cross(a.T, b.T, axisa=0, axisb=0, axisc=0), V, W)
    check_all(lambda m, a, b: m.cross(a.T, b.T, axis=0), V, W)
    check_all(lambda m, a, b: m.kron(a, b), V[:2, :2], W)
    check_all(lambda m, a, b: m.kron(a[0], b), V, W)
    check_all(lambda m, a: m.kron(a, np.eye(2, dtype=np.int64)), np.arange(4).reshape(2, 2))


def test_splits_and_stacks():
    check_all(lambda m, c: tuple(m.hsplit(c, 3)), C)
    check_all(lambda m, c: tuple(m.vsplit(c, 2)), C)
    check_all(lambda m, c: tuple(m.dsplit(c, [1, 3])), C)
    check_all(lambda m, c: tuple(m.hsplit(c[0, 0], 2)), C)
    check_all(lambda m, a, b: m.row_stack((a, b)) if hasattr(m, "row_stack") else m.vstack((a, b)),
              V, W)
    check_all(lambda m, a, b: m.block([[a, b], [b, a]]), V, W)
    check_all(lambda m, a: m.block([a, a]), np.arange(3.0))


def test_select_piecewise_rot90():
    check_all(lambda m, a: m.select([a < 0, a > 0.5], [a, a * 2], -1.0), A)
    check_all(lambda m, a: m.piecewise(a, [a < 0, a >= 0], [lambda t: -t, lambda t: t * 2]), A)
    check_all(lambda m, a: m.piecewise(a, [a < 0], [lambda t: -t, 7.0]), A)
    for k in range(-1, 5):
        check_all(lambda m, c: m.rot90(c, k), C)
        check_all(lambda m, c: m.rot90(c, k, axes=(1, 2)), C)


def test_index_helpers():
    check_all(lambda m, a: m.diagflat(a, 1), np.array([[1.0, 2], [3, 4]]))
    check_all(lambda m, a: m.resize(a, (3, 5)), np.arange(4.0))
    check_all(lambda m, c: m.delete(c, [0, 2], axis=2), C)
    check_all(lambda m, c: m.delete(c, 3), C)
    check_all(lambda m, c: m.insert(c, 1, 5.0, axis=1), C)
    check_all(lambda m, a: m.insert(a, [1, 1, 3, 5], [7.0, 8, 9, 10]), np.arange(5.0))
    check_all(lambda m, i: m.unravel_index(i, (3, 4)), np.array([0, 5, 11]))
    check_all(lambda m, i, j: m.ravel_multi_index((i, j), (3, 4)), np.array([0, 1, 2]),
              np.array([3, 0, 1]))
    assert [x.tolist() for x in tnp.tril_indices(3, -1)] == [x.tolist() for x in np.tril_indices(3, -1)]
    assert [x.tolist() for x in tnp.triu_indices_from(np.ones((3, 4)), 1)] == \
        [x.tolist() for x in np.triu_indices_from(np.ones((3, 4)), 1)]


def test_gradient_function():
    f = np.array([1.0, 4, 9, 16, 25, 36])
    check_all(lambda m, a: m.gradient(a), f)
    check_all(lambda m, a: m.gradient(a, edge_order=2), f)
    check_all(lambda m, a: tuple(m.gradient(a, 2.0)), C)
    check_all(lambda m, a: m.gradient(a, 0.5, axis=1), C)
    x = np.array([0.0, 1, 1.5, 3.5, 4, 6])
    check_all(lambda m, a: m.gradient(a, x), f)
    check_all(lambda m, a: m.gradient(a, x, edge_order=2), f)


def test_partition_property():
    a = RNG.normal(size=(3, 7))
    for kth in (0, 3, 6):
        p = tnp.partition(a, kth, axis=1)
        np.testing.assert_array_equal(p[:, kth], np.partition(a, kth, axis=1)[:, kth])
        assert (p[:, :kth] <= p[:, kth:kth + 1]).all() and (p[:, kth + 1:] >= p[:, kth:kth + 1]).all()
        i = tnp.argpartition(a, kth, axis=1)
        np.testing.assert_array_equal(np.take_along_axis(a, np.asarray(i), 1)[:, kth], p[:, kth])


def test_r_and_c():
    check_all(lambda m, a: m.r_[a, 1:4, [7.0, 8]], np.array([1.0, 2]))
    check_all(lambda m: m.r_[0:1:5j])
    check_all(lambda m, a: m.r_["-1", a, a], V)
    check_all(lambda m, a: m.r_["0,2", a, a], np.array([1.0, 2]))
    check_all(lambda m, a, b: m.c_[a, b], np.array([1.0, 2]), np.array([3.0, 4]))
    check_all(lambda m, a, b: m.c_[a, b], V, W)
