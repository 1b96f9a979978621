"""Matrix decompositions and solves: LAPACK through NumPy and SciPy.

Each primitive works on the last two dims of its operands (leading dims are a
batch) and takes float32 or float64. Backends do not generate code for them:
the CPU and CUDA plans call the reference implementation below on the host
(their fallback list names this family), as NumPy itself would. The matrix
calculus rules are written next to each primitive, in both modes:

- ``cholesky(a)`` -> L (lower, ``a = L L^T``), for a symmetric ``a``
  (tracejit.numpy.linalg.cholesky symmetrizes its input first, as JAX does)
- ``triangular_solve(a, b, lower, transpose_a)`` -> x with ``op(a) x = b``,
  reading only ``a``'s ``lower`` (or upper) triangle
- ``solve(a, b)`` -> x with ``a x = b`` (LU with partial pivoting)
- ``slogdet(a)`` -> sign, log|det a|
- ``eigh(a)`` -> w (ascending), v, for a symmetric ``a``
- ``qr(a)`` -> q, r (reduced: k = min(m, n))
- ``svd(a)`` -> u, s (descending), vt (reduced)

A singular or indefinite matrix raises tracejit.errors.LinAlgError, which is
also a ``numpy.linalg.LinAlgError``.

Derivatives follow the standard rules (Giles 2008, "Extended collection of
matrix derivative results"; Murray 2016 for the Cholesky factor; Townsend
2016 for QR and SVD, as in JAX). The eigenvector and singular-vector rules
divide by differences of eigenvalues (squared singular values): they are
infinite at repeated values, where those vectors are not unique.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, LinAlgError, ShapeError
from ..ir.types import FLOATS, TensorType
from . import ad_util as ad


def _check_float(name, *xs):
    for x in xs:
        if x.dtype not in FLOATS:
            raise DTypeError(f"{name}: needs float32 or float64 matrices, got {x}")
    if len({x.dtype for x in xs}) > 1:
        raise DTypeError(f"{name}: operand dtypes differ: {', '.join(map(str, xs))}")


def _check_square(name, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{name}: needs square matrices (..., n, n), got {a}")


def _check_rhs(name, a, b):
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"{name}: right-hand side {b} does not fit the matrices {a} "
                         f"(want {a.shape[:-1]} + (k,))")


def _t(shape, like):
    return TensorType(tuple(shape), like.dtype)


def _lapack(name, fn, *arrays, **kw):
    """``fn(*arrays)``, NumPy's LinAlgError turned into tracejit's."""
    try:
        with np.errstate(all="ignore"):
            return fn(*arrays, **kw)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"{name}: {e}") from None


def _per_matrix(fn, *arrays):
    """Apply a matrix function that does not take batches over the leading dims."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((-1,) + a.shape[-2:]) for a in arrays]
    outs = [fn(*ms) for ms in zip(*flat)]
    if not outs:
        return np.zeros(batch + arrays[-1].shape[-2:], arrays[-1].dtype)
    return np.stack(outs).reshape(batch + outs[0].shape)


# --- helpers for the rules: batched matrix algebra with primitive binds -------
def _mT(x):
    n = ad.aval(x).ndim
    return ad.p("transpose", x, permutation=tuple(range(n - 2)) + (n - 1, n - 2))


def _mm(a, b):
    """Batched matrix product of (..., m, k) and (..., k, n)."""
    n = ad.aval(a).ndim
    batch = tuple(range(n - 2))
    return ad.p("dot_general", a, b, dimension_numbers=(((n - 1,), (n - 2,)), (batch, batch)))


def _const(x, like_shape, dtype):
    """A NumPy constant broadcast into ``like_shape`` along its trailing dims."""
    c = np.asarray(x, dtype=dtype)
    return ad.p("broadcast_in_dim", c, shape=tuple(like_shape),
                broadcast_dimensions=tuple(range(len(like_shape) - c.ndim, len(like_shape))))


def _mask(x, keep):
    """``x`` with the entries where ``keep`` (a NumPy (m, n) array) is 0 zeroed."""
    t = ad.aval(x)
    return ad.p("mul", x, _const(keep, t.shape, t.dtype))


def _tril(x, k=0):
    m, n = ad.shape(x)[-2:]
    return _mask(x, np.tri(m, n, k))


def _triu(x, k=0):
    m, n = ad.shape(x)[-2:]
    return _mask(x, 1 - np.tri(m, n, k - 1))


def _eye_like(x):
    t = ad.aval(x)
    return _const(np.eye(t.shape[-1]), t.shape, t.dtype)


def _diag(x):
    """The diagonal of square (..., n, n) matrices: (..., n)."""
    n = ad.aval(x).ndim
    return ad.p("reduce_sum", ad.p("mul", x, _eye_like(x)), axes=(n - 1,))


def _diag_matrix(v):
    """(..., n) -> (..., n, n) with ``v`` on the diagonal."""
    t = ad.aval(v)
    shape = t.shape + (t.shape[-1],)
    col = ad.p("broadcast_in_dim", v, shape=shape,
               broadcast_dimensions=tuple(range(t.ndim - 1)) + (t.ndim,))
    return ad.p("mul", col, _const(np.eye(t.shape[-1]), shape, t.dtype))


def _rows(v, shape):
    """(..., n) broadcast to (..., m, n): ``v`` scales columns."""
    t = ad.aval(v)
    return ad.p("broadcast_in_dim", v, shape=tuple(shape),
                broadcast_dimensions=tuple(range(t.ndim - 1)) + (t.ndim,))


def _cols(v, shape):
    """(..., m) broadcast to (..., m, n): ``v`` scales rows."""
    t = ad.aval(v)
    return ad.p("broadcast_in_dim", v, shape=tuple(shape),
                broadcast_dimensions=tuple(range(t.ndim)))


def _scale(x, v):
    """``x * v[..., None, None]`` for a batch of scalars ``v``."""
    t = ad.aval(x)
    return ad.p("mul", x, ad.p("broadcast_in_dim", v, shape=t.shape,
                               broadcast_dimensions=tuple(range(t.ndim - 2))))


def _sym(x):
    return ad.p("mul", ad.p("add", x, _mT(x)), ad.full_like(x, 0.5))


def _neg(x):
    return ad.p("neg", x)


def _sub(a, b):
    return ad.p("sub", a, b)


# --- cholesky -------------------------------------------------------------------
def _cholesky_rule(a):
    _check_float("cholesky", a)
    _check_square("cholesky", a)
    return _t(a.shape, a)


def _cholesky_impl(a):
    return [_lapack("cholesky", np.linalg.cholesky, a).astype(a.dtype)]


cholesky = Primitive("cholesky", "linalg", _cholesky_rule, _cholesky_impl)


def _phi(x):
    """The lower triangle of ``x`` with its diagonal halved."""
    n = ad.shape(x)[-1]
    return _mask(x, np.tri(n) - 0.5 * np.eye(n))


def _cholesky_jvp(primals, tangents, outs):
    L, = outs
    # dL = L phi(L^-1 dA L^-T)
    x = triangular_solve(L, tangents[0], lower=True, transpose_a=False)
    x = _mT(triangular_solve(L, _mT(x), lower=True, transpose_a=False))
    return [_mm(L, _phi(x))]


def _cholesky_vjp(cts, primals, outs):
    L, = outs
    # A_bar = sym(L^-T phi(L^T L_bar) L^-1)
    p = _phi(_mm(_mT(L), cts[0]))
    x = triangular_solve(L, p, lower=True, transpose_a=True)          # L^-T p
    x = _mT(triangular_solve(L, _mT(x), lower=True, transpose_a=True))  # (L^-T x^T)^T = x L^-1
    return [_sym(x)]


cholesky.def_jvp(_cholesky_jvp)
cholesky.def_vjp(_cholesky_vjp)


# --- triangular_solve -------------------------------------------------------------
def _trsolve_rule(a, b, *, lower, transpose_a):
    _check_float("triangular_solve", a, b)
    _check_square("triangular_solve", a)
    _check_rhs("triangular_solve", a, b)
    return _t(b.shape, b)


def _trsolve_impl(a, b, *, lower, transpose_a):
    import scipy.linalg   # on first use: importing SciPy costs 0.3 s

    def one(m, r):
        return scipy.linalg.solve_triangular(m, r, lower=lower, trans=1 if transpose_a else 0,
                                             check_finite=False)
    if a.shape[-1] == 0 or b.shape[-1] == 0:
        return [np.zeros(b.shape, b.dtype)]
    return [np.asarray(_lapack("triangular_solve", _per_matrix, one, a, b), dtype=b.dtype)]


triangular_solve = Primitive("triangular_solve", "linalg", _trsolve_rule, _trsolve_impl)


def _triangle(x, lower):
    return _tril(x) if lower else _triu(x)


def _trsolve_jvp(primals, tangents, outs, *, lower, transpose_a):
    a, b = primals
    ta, tb = tangents
    x, = outs
    rhs = ad.instantiate(tb, b)
    if ta is not None:
        da = _triangle(ta, lower)
        rhs = _sub(rhs, _mm(_mT(da) if transpose_a else da, x))
    return [triangular_solve(a, rhs, lower=lower, transpose_a=transpose_a)]


def _trsolve_vjp(cts, primals, outs, *, lower, transpose_a):
    a, b = primals
    x, = outs
    gb = triangular_solve(a, cts[0], lower=lower, transpose_a=not transpose_a)

    def ga():
        g = _mm(x, _mT(gb)) if transpose_a else _mm(gb, _mT(x))
        return _neg(_triangle(g, lower))
    return [ga, gb]


triangular_solve.def_jvp(_trsolve_jvp)
triangular_solve.def_vjp(_trsolve_vjp)


# --- solve --------------------------------------------------------------------------
def _solve_rule(a, b):
    _check_float("solve", a, b)
    _check_square("solve", a)
    _check_rhs("solve", a, b)
    return _t(b.shape, b)


def _solve_impl(a, b):
    if a.shape[-1] == 0 or b.shape[-1] == 0:
        return [np.zeros(b.shape, b.dtype)]
    return [np.asarray(_lapack("solve", np.linalg.solve, a, b), dtype=b.dtype)]


solve = Primitive("solve", "linalg", _solve_rule, _solve_impl)


def _solve_jvp(primals, tangents, outs):
    a, b = primals
    ta, tb = tangents
    x, = outs
    rhs = ad.instantiate(tb, b)
    if ta is not None:
        rhs = _sub(rhs, _mm(ta, x))
    return [solve(a, rhs)]


def _solve_vjp(cts, primals, outs):
    a, b = primals
    x, = outs
    gb = solve(_mT(a), cts[0])
    return [lambda: _neg(_mm(gb, _mT(x))), gb]


solve.def_jvp(_solve_jvp)
solve.def_vjp(_solve_vjp)


# --- slogdet ------------------------------------------------------------------------
def _slogdet_rule(a):
    _check_float("slogdet", a)
    _check_square("slogdet", a)
    return [_t(a.shape[:-2], a), _t(a.shape[:-2], a)]


def _slogdet_impl(a):
    sign, logdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logdet, a.dtype)]


slogdet = Primitive("slogdet", "linalg", _slogdet_rule, _slogdet_impl)


def _slogdet_jvp(primals, tangents, outs):
    a, = primals
    # d log|det a| = trace(a^-1 da)
    return [None, _diag_sum(solve(a, tangents[0]))]


def _diag_sum(x):
    return ad.p("reduce_sum", _diag(x), axes=(ad.aval(x).ndim - 2,))


def _slogdet_vjp(cts, primals, outs):
    a, = primals
    g = cts[1]
    if g is None:
        return [None]
    # a_bar = g a^-T
    return [_scale(solve(_mT(a), _eye_like(a)), g)]


slogdet.def_jvp(_slogdet_jvp)
slogdet.def_vjp(_slogdet_vjp)


# --- eigh ---------------------------------------------------------------------------
def _eigh_rule(a):
    _check_float("eigh", a)
    _check_square("eigh", a)
    return [_t(a.shape[:-1], a), _t(a.shape, a)]


def _eigh_impl(a):
    w, v = _lapack("eigh", np.linalg.eigh, a)
    return [np.asarray(w, a.dtype), np.asarray(v, a.dtype)]


eigh = Primitive("eigh", "linalg", _eigh_rule, _eigh_impl)


def _eig_gaps(w):
    """F[i, j] = 1 / (w[j] - w[i]) off the diagonal, 0 on it."""
    t = ad.aval(w)
    shape = t.shape + (t.shape[-1],)
    diff = _sub(_rows(w, shape), _cols(w, shape))
    eye = _const(np.eye(t.shape[-1]), shape, t.dtype)
    # 1 / (diff + eye) - eye: the diagonal becomes 0 without dividing by 0
    return _sub(ad.p("div", ad.full_like(diff, 1), ad.p("add", diff, eye)), eye)


def _eigh_jvp(primals, tangents, outs):
    w, v = outs
    s = _mm(_mT(v), _mm(tangents[0], v))
    return [_diag(s), _mm(v, ad.p("mul", _eig_gaps(w), s))]


def _eigh_vjp(cts, primals, outs):
    w, v = outs
    gw, gv = cts
    inner = None
    if gw is not None:
        inner = _diag_matrix(gw)
    if gv is not None:
        inner = ad.add(inner, ad.p("mul", _eig_gaps(w), _mm(_mT(v), gv)))
    return [_mm(v, _mm(inner, _mT(v)))]


eigh.def_jvp(_eigh_jvp)
eigh.def_vjp(_eigh_vjp)


# --- qr -----------------------------------------------------------------------------
def _qr_rule(a):
    _check_float("qr", a)
    if a.ndim < 2:
        raise ShapeError(f"qr: needs matrices (..., m, n), got {a}")
    m, n = a.shape[-2:]
    k = min(m, n)
    return [_t(a.shape[:-2] + (m, k), a), _t(a.shape[:-2] + (k, n), a)]


def _qr_impl(a):
    q, r = np.linalg.qr(a, mode="reduced")
    return [np.asarray(q, a.dtype), np.asarray(r, a.dtype)]


qr = Primitive("qr", "linalg", _qr_rule, _qr_impl)


def _check_tall(a, mode):
    m, n = ad.shape(a)[-2:]
    if m < n:
        raise ShapeError(f"the {mode} derivative of qr is defined for m >= n only "
                         f"(got a {m}x{n} matrix: its Q is not a smooth function of it)")


def _qr_jvp(primals, tangents, outs):
    a, = primals
    _check_tall(a, "forward-mode")
    q, r = outs
    # D = dA r^-1; C = q^T D; O = tril(C, -1) - tril(C, -1)^T
    d = _mT(triangular_solve(r, _mT(tangents[0]), lower=False, transpose_a=True))
    c = _mm(_mT(q), d)
    low = _tril(c, -1)
    o = _sub(low, _mT(low))
    dq = ad.p("add", _mm(q, _sub(o, c)), d)
    dr = _mm(_sub(c, o), r)
    return [dq, dr]


def _qr_vjp(cts, primals, outs):
    a, = primals
    _check_tall(a, "reverse-mode")
    q, r = outs
    gq = ad.instantiate(cts[0], q)
    gr = ad.instantiate(cts[1], r)
    m_ = _sub(_mm(_mT(q), gq), _mm(gr, _mT(r)))
    gc = ad.p("add", _neg(m_), _tril(_sub(m_, _mT(m_)), -1))
    gd = ad.p("add", gq, _mm(q, gc))
    # a_bar = gd r^-T
    return [_mT(triangular_solve(r, _mT(gd), lower=False, transpose_a=False))]


qr.def_jvp(_qr_jvp)
qr.def_vjp(_qr_vjp)


# --- svd ----------------------------------------------------------------------------
def _svd_rule(a):
    _check_float("svd", a)
    if a.ndim < 2:
        raise ShapeError(f"svd: needs matrices (..., m, n), got {a}")
    m, n = a.shape[-2:]
    k = min(m, n)
    b = a.shape[:-2]
    return [_t(b + (m, k), a), _t(b + (k,), a), _t(b + (k, n), a)]


def _svd_impl(a):
    u, s, vt = _lapack("svd", np.linalg.svd, a, full_matrices=False)
    return [np.asarray(u, a.dtype), np.asarray(s, a.dtype), np.asarray(vt, a.dtype)]


svd = Primitive("svd", "linalg", _svd_rule, _svd_impl)


def _svd_gaps(s):
    """F[i, j] = 1 / (s[j]^2 - s[i]^2) off the diagonal, 0 on it."""
    return _eig_gaps(ad.p("mul", s, s))


def _inv_nonzero(s):
    """1 / s where s != 0, else 0."""
    zero = ad.zeros_like(s)
    is_zero = ad.p("eq", s, zero)
    one = ad.full_like(s, 1)
    return ad.p("select", is_zero, zero, ad.p("div", one, ad.p("select", is_zero, one, s)))


def _svd_jvp(primals, tangents, outs):
    a, = primals
    da = tangents[0]
    u, s, vt = outs
    v = _mT(vt)
    m, n = ad.shape(a)[-2:]
    ds_mat = _mm(_mT(u), _mm(da, v))
    shape = ad.shape(ds_mat)
    f = _svd_gaps(s)
    dss = ad.p("mul", ds_mat, _rows(s, shape))      # dS Sigma
    sds = ad.p("mul", ds_mat, _cols(s, shape))      # Sigma dS
    du = _mm(u, ad.p("mul", f, ad.p("add", dss, _mT(dss))))
    dv = _mm(v, ad.p("mul", f, ad.p("add", sds, _mT(sds))))
    s_inv = _inv_nonzero(s)
    if m > n:
        dav = _mm(da, v)
        proj = _sub(dav, _mm(u, _mm(_mT(u), dav)))
        du = ad.p("add", du, ad.p("mul", proj, _rows(s_inv, ad.shape(proj))))
    if n > m:
        dau = _mm(_mT(da), u)
        proj = _sub(dau, _mm(v, _mm(vt, dau)))
        dv = ad.p("add", dv, ad.p("mul", proj, _rows(s_inv, ad.shape(proj))))
    return [du, _diag(ds_mat), _mT(dv)]


def _svd_vjp(cts, primals, outs):
    a, = primals
    u, s, vt = outs
    gu, gs, gvt = cts
    v = _mT(vt)
    m, n = ad.shape(a)[-2:]
    k = ad.shape(s)[-1]
    sq = ad.shape(a)[:-2] + (k, k)
    f = _svd_gaps(s)
    gS = None
    if gs is not None:
        gS = _diag_matrix(gs)
    if gu is not None:
        j = ad.p("mul", f, _mm(_mT(u), gu))
        gS = ad.add(gS, ad.p("mul", ad.p("add", j, _mT(j)), _rows(s, sq)))
    if gvt is not None:
        gv = _mT(gvt)
        g = ad.p("mul", f, _mm(vt, gv))
        gS = ad.add(gS, ad.p("mul", _cols(s, sq), ad.p("add", g, _mT(g))))
    ga = None if gS is None else _mm(u, _mm(gS, vt))
    s_inv = _inv_nonzero(s)
    if m > n and gu is not None:
        proj = _sub(gu, _mm(u, _mm(_mT(u), gu)))
        ga = ad.add(ga, _mm(ad.p("mul", proj, _rows(s_inv, ad.shape(proj))), vt))
    if n > m and gvt is not None:
        gv = _mT(gvt)
        proj = _sub(gv, _mm(v, _mm(vt, gv)))
        ga = ad.add(ga, _mm(u, _mT(ad.p("mul", proj, _rows(s_inv, ad.shape(proj))))))
    return [ga]


svd.def_jvp(_svd_jvp)
svd.def_vjp(_svd_vjp)


#: This family, run on the host by every backend (their fallback lists name it).
NAMES = ("cholesky", "triangular_solve", "solve", "slogdet", "eigh", "qr", "svd")


# --- batching rules (vmap): leading dims are already a batch ------------------------
from . import batch_util as bu  # noqa: E402

for _prim in (cholesky, triangular_solve, solve, slogdet, eigh, qr, svd):
    _prim.def_batch(bu.all_batched(_prim.name))
