"""tracejit.numpy.linalg and tracejit.scipy.linalg: values against NumPy and
SciPy (eager and jitted), derivatives against finite differences in both
modes to order 2, on well-conditioned drawn matrices; singular and
non-square input raise tracejit errors naming the user's line."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.errors import LinAlgError, ShapeError
from tracejit.testing import check_grads

from tnp_check import assert_same, run_numpy


def check(f, *args, rtol=None, atol=0.0):
    """``f(np, ...)`` against tracejit.numpy eagerly and jitted on the
    reference and cpu backends."""
    want = run_numpy(f, args)
    assert_same(want, f(tnp, *args), rtol, atol, "eager")
    for backend in ("reference", "cpu"):
        got = tracejit.jit(lambda *a: f(tnp, *a), backend=backend)(*args)
        assert_same(want, got, rtol, atol, backend)

SETTINGS = settings(max_examples=15, deadline=None)
GRAD_SETTINGS = settings(max_examples=4, deadline=None)
TOL = dict(rtol=1e-6, atol=1e-8)


@st.composite
def matrices(draw, kind="general", min_n=0, max_n=4, batch=True, rect=False):
    """float64 matrices (with batch dims) that are well conditioned:
    diagonally dominant (general), symmetric positive definite (spd), or
    rectangular with full rank (rect)."""
    n = draw(st.integers(min_n, max_n))
    m = draw(st.integers(max(min_n, 1), max_n + 2)) if rect else n
    bshape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2)) if batch else ()
    x = draw(hnp.arrays(np.float64, bshape + (m, n), elements=st.floats(-1, 1)))
    if kind in ("spd", "distinct"):
        # distinct: eigenvalues at least 2n apart (|x x^T| <= n), so eigenvectors are
        # unique and differentiable
        spread = np.diag(4.0 * n * np.arange(n)) if kind == "distinct" else 0
        return x @ np.swapaxes(x, -1, -2) + n * np.eye(n) + spread
    if kind == "general":
        sign = draw(st.sampled_from([1.0, -1.0]))
        return x + sign * 2 * (n + 1) * np.eye(n)
    # rectangular: orthonormal-ish columns scaled to distinct singular values
    k = min(m, n)
    q1 = np.linalg.qr(np.eye(m)[:, ::-1] + 0.3 * x[..., :m, :1])[0][..., :, :k] if k else \
        np.zeros(bshape + (m, 0))
    q2 = np.linalg.qr(np.eye(n) + 0.3 * np.swapaxes(x, -1, -2)[..., :n, :1])[0][..., :, :k] if k \
        else np.zeros(bshape + (n, 0))
    s = np.arange(k, 0, -1) + 1.0
    return q1 * s @ np.swapaxes(q2, -1, -2) + 0.01 * x


@SETTINGS
@given(a=matrices())
def test_inv_det_slogdet(a):
    check(lambda m, a: m.linalg.inv(a), a, **TOL)
    check(lambda m, a: m.linalg.det(a), a, **TOL)
    check(lambda m, a: tuple(m.linalg.slogdet(a)), a, **TOL)


@SETTINGS
@given(a=matrices(), k=st.integers(0, 3), vector=st.booleans())
def test_solve(a, k, vector):
    b = np.linspace(-1, 1, a.shape[-1] * max(k, 1)).reshape(a.shape[-1], max(k, 1))
    if vector:
        b = b[:, 0]
    check(lambda m, a, b: m.linalg.solve(a, b), a, b, **TOL)


@SETTINGS
@given(a=matrices("spd"))
def test_cholesky_eigh(a):
    check(lambda m, a: m.linalg.cholesky(a), a, **TOL)
    check(lambda m, a: m.linalg.cholesky(a, upper=True), a, **TOL)
    check(lambda m, a: m.linalg.eigvalsh(a), a, **TOL)
    w, v = tnp.linalg.eigh(a)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a), **TOL)
    # eigenvectors are unique up to sign: check the decomposition instead
    np.testing.assert_allclose((v * w[..., None, :]) @ np.swapaxes(v, -1, -2), a, rtol=1e-6, atol=1e-8)


@SETTINGS
@given(a=matrices("rect", min_n=1, rect=True))
def test_qr_svd_pinv_values(a):
    check(lambda m, a: m.linalg.qr(a, mode="r") if a.shape[-2] >= a.shape[-1] else a, a, **TOL)
    q, r = tnp.linalg.qr(a)
    np.testing.assert_allclose(q @ r, a, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.abs(q), np.abs(np.linalg.qr(a)[0]), rtol=1e-6, atol=1e-8)
    check(lambda m, a: m.linalg.svd(a, compute_uv=False), a, **TOL)
    u, s, vt = tnp.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose((u * s[..., None, :]) @ vt, a, rtol=1e-6, atol=1e-8)
    check(lambda m, a: m.linalg.pinv(a), a, rtol=1e-6, atol=1e-7)
    check(lambda m, a: m.linalg.matrix_rank(a), a)


@SETTINGS
@given(a=matrices("rect", min_n=1, batch=False, rect=True), vector=st.booleans())
def test_lstsq(a, vector):
    b = np.linspace(-1, 1, a.shape[0] * 2).reshape(a.shape[0], 2)
    if vector:
        b = b[:, 0]
    x, res, rank, s = tnp.linalg.lstsq(a, b)
    ex, eres, erank, es = np.linalg.lstsq(a, b)
    np.testing.assert_allclose(x, ex, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(s, es, rtol=1e-6, atol=1e-8)
    assert int(rank) == erank
    np.testing.assert_allclose(res, eres, rtol=1e-6, atol=1e-8)


ORDS = [None, "fro", "nuc", np.inf, -np.inf, 1, -1, 2, -2]
VECTOR_ORDS = [None, np.inf, -np.inf, 0, 1, -1, 2, -2, 3, 0.5]


@SETTINGS
@given(a=matrices("rect", min_n=1, rect=True), ord=st.sampled_from(ORDS),
       keepdims=st.booleans())
def test_matrix_norms(a, ord, keepdims):
    check(lambda m, a: m.linalg.norm(a, ord, axis=(-2, -1), keepdims=keepdims), a, **TOL)
    check(lambda m, a: m.linalg.norm(a, ord, axis=(-1, -2)), a, **TOL)
    if a.ndim == 2:
        check(lambda m, a: m.linalg.norm(a, ord), a, **TOL)
    if ord in ("fro", "nuc", np.inf, 1, 2):
        check(lambda m, a: m.linalg.matrix_norm(a, ord=ord), a, **TOL)


@SETTINGS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, min_side=1),
                    elements=st.floats(-3, 3)),
       ord=st.sampled_from(VECTOR_ORDS), keepdims=st.booleans())
def test_vector_norms(x, ord, keepdims):
    check(lambda m, x: m.linalg.norm(x, ord, axis=-1, keepdims=keepdims), x, **TOL)
    check(lambda m, x: m.linalg.vector_norm(x, ord=ord if ord is not None else 2), x, **TOL)


def test_norm_int_input_and_bad_ord():
    check(lambda m, x: m.linalg.norm(x), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError):
        tnp.linalg.norm(np.ones((2, 2)), "bad")


def test_matrix_power_multi_dot_cond():
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    for n in (-2, -1, 0, 1, 3):
        check(lambda m, a: m.linalg.matrix_power(a, n), a, **TOL)
    check(lambda m, a: m.linalg.multi_dot([a, a.T, a]), a, **TOL)
    for p in (None, 2, -2, 1, np.inf, "fro"):
        check(lambda m, a: m.linalg.cond(a, p), a, **TOL)


# --- derivatives ---------------------------------------------------------------------
def _eigh_signless(a):
    """Eigenvalues and eigenvectors with each vector's sign (which LAPACK
    picks freely, so finite differences would see it flip) factored out:
    v[:, j] * (r . v[:, j]) for a fixed r."""
    w, v = tnp.linalg.eigh(a)
    r = np.linspace(0.3, 1.1, a.shape[-1])
    return w, v * tnp.sum(v * r[:, None], axis=-2, keepdims=True)


def _qr_signless(a):
    """Q and R with the sign of each of Q's columns (R's rows), which
    Householder QR flips where a pivot crosses 0, factored out."""
    q, r = tnp.linalg.qr(a)
    d = tnp.diagonal(r, 0, -2, -1)
    return q * d[..., None, :], r * d[..., :, None]


def _svd_signless(a):
    """U, s, Vh with the joint sign of each singular pair factored out:
    u_j * c_j and vh_j * c_j for c_j = r . u_j."""
    u, s, vt = tnp.linalg.svd(a, full_matrices=False)
    r = np.linspace(0.3, 1.1, a.shape[-2])
    c = tnp.sum(u * r[:, None], axis=-2)
    return u * c[..., None, :], s, vt * c[..., :, None]


GRAD_CASES = [
    ("inv", lambda a: tnp.linalg.inv(a), "general"),
    ("det", lambda a: tnp.linalg.det(a), "general"),
    ("slogdet", lambda a: tnp.linalg.slogdet(a)[1], "general"),
    ("solve", lambda a: tnp.linalg.solve(a, tnp.sin(a)), "general"),
    ("cholesky", lambda a: tnp.linalg.cholesky(a), "spd"),
    ("eigh", lambda a: _eigh_signless(a), "distinct"),
    ("qr", lambda a: _qr_signless(a), "tall"),
    ("svd", lambda a: _svd_signless(a), "rect"),
    ("pinv", lambda a: tnp.linalg.pinv(a), "rect"),
    ("norm2", lambda a: tnp.linalg.norm(a, 2, axis=(-2, -1)), "rect"),
    ("nuc", lambda a: tnp.linalg.norm(a, "nuc", axis=(-2, -1)), "rect"),
    ("lstsq", lambda a: tnp.linalg.lstsq(a, tnp.ones(a.shape[0]))[0], "tall2d"),
    ("solve_triangular", lambda a: tsl.solve_triangular(a, tnp.cos(a), lower=True), "general"),
    ("solve_triangular_T", lambda a: tsl.solve_triangular(a, a[..., :1], trans=1), "general"),
    ("cho_solve", lambda a: tsl.cho_solve(tsl.cho_factor(a), a[..., :2]), "spd"),
]


@pytest.mark.parametrize("name,f,kind", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
@GRAD_SETTINGS
@given(data=st.data())
def test_gradients(name, f, kind, data):
    if kind in ("rect", "tall", "tall2d"):
        a = data.draw(matrices("rect", min_n=1, max_n=3, rect=True, batch=kind != "tall2d"))
        if kind != "rect" and a.shape[-2] < a.shape[-1]:
            a = np.swapaxes(a, -1, -2)
    else:
        a = data.draw(matrices(kind, min_n=1, max_n=3))
    if name == "cho_solve" and a.shape[-1] < 2:
        a = np.kron(np.eye(2), a[..., :1, :1]) + 0 * a[..., :1, :1]
    check_grads(f, (a,), order=2, rtol=1e-4, atol=1e-5)


def test_gradients_inside_jit_and_float32():
    a = np.array([[3.0, 1.0], [1.0, 2.0]], np.float32)
    g = tracejit.jit(tracejit.grad(lambda a: tnp.linalg.slogdet(a)[1]))(a)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-5)
    lc = tracejit.jit(lambda a: tnp.linalg.cholesky(a))(a)
    np.testing.assert_allclose(lc, np.linalg.cholesky(a), rtol=1e-6)


def test_normal_equation():
    """The book's first example: theta = inv(X^T X) X^T y."""
    rng = np.random.default_rng(0)
    X = np.c_[np.ones(20), rng.uniform(0, 2, 20)]
    y = 4 + 3 * X[:, 1] + 0.01 * rng.normal(size=20)
    theta = tracejit.jit(lambda X, y: tnp.linalg.inv(X.T @ X) @ X.T @ y)(X, y)
    np.testing.assert_allclose(theta, np.linalg.inv(X.T @ X) @ X.T @ y, rtol=1e-10)


# --- scipy.linalg -------------------------------------------------------------------------
@SETTINGS
@given(a=matrices(batch=False), trans=st.sampled_from([0, 1, 2, "N", "T"]),
       lower=st.booleans(), unit=st.booleans(), vector=st.booleans())
def test_solve_triangular(a, trans, lower, unit, vector):
    b = np.linspace(-1, 1, 2 * a.shape[0]).reshape(a.shape[0], 2)
    if vector:
        b = b[:, 0]
    want = scipy.linalg.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)
    for run in (lambda *x: tsl.solve_triangular(*x, trans=trans, lower=lower, unit_diagonal=unit),
                tracejit.jit(lambda *x: tsl.solve_triangular(*x, trans=trans, lower=lower,
                                                              unit_diagonal=unit))):
        np.testing.assert_allclose(run(a, b), want, **TOL)


@SETTINGS
@given(a=matrices("spd", batch=False), lower=st.booleans())
def test_cho_factor_solve(a, lower):
    b = np.linspace(-1, 1, 3 * a.shape[0]).reshape(a.shape[0], 3)
    want = scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, lower=lower), b)
    got = tracejit.jit(lambda a, b: tsl.cho_solve(tsl.cho_factor(a, lower=lower), b))(a, b)
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(tsl.cholesky(a, lower=lower), scipy.linalg.cholesky(a, lower=lower),
                               **TOL)


# --- errors ---------------------------------------------------------------------------------
def _inv_user(a):
    return tnp.linalg.inv(a)   # the line the error names


def test_singular_matrix_names_the_user_line():
    for run in (_inv_user, tracejit.jit(_inv_user)):
        with pytest.raises(LinAlgError, match="Singular") as e:
            run(np.zeros((3, 3)))
        assert "the line the error names" in str(e.value)
        assert isinstance(e.value, np.linalg.LinAlgError)


def test_not_positive_definite_and_non_square():
    with pytest.raises(np.linalg.LinAlgError) as e:
        tracejit.jit(lambda a: tnp.linalg.cholesky(a))(-np.eye(2))
    assert "test_tnp_linalg_lapack.py" in str(e.value)
    for f in (tnp.linalg.inv, tnp.linalg.det, tnp.linalg.cholesky, tnp.linalg.eigh):
        with pytest.raises(ShapeError, match="square"):
            tracejit.jit(f)(np.ones((2, 3)))
    with pytest.raises(ShapeError):
        tnp.linalg.solve(np.eye(3), np.ones(2))


def test_unsupported_forms_are_refused_clearly():
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        tnp.linalg.svd(np.ones((3, 2)))
    with pytest.raises(tracejit.ShapeError, match="m >= n"):
        tracejit.grad(lambda a: tnp.sum(tnp.linalg.qr(a)[0]))(np.ones((2, 3)))
