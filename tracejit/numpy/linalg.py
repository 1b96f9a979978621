"""tracejit.numpy.linalg: NumPy's linear algebra, differentiable in both modes.

Decompositions and solves are primitives (tracejit/primitives/linalg_lapack.py)
that call LAPACK through NumPy and SciPy; everything else (inv, det, pinv,
lstsq, norm, cond, matrix_rank, ...) is built from them here. Integer and
boolean matrices are promoted to float64, as NumPy does. Differences from
NumPy, all because a traced program's shapes must not depend on its values:

- ``lstsq`` assumes full rank for the shape of ``residuals`` (present when
  m > n, as NumPy's for a full-rank matrix); ``rank`` is an array.
- ``svd(..., full_matrices=True)`` of a non-square matrix and
  ``qr(..., mode='complete')`` of a tall one are refused (use the reduced
  forms, which are what gradients are defined for).
- ``eig``/``eigvals`` (complex results) are not provided: tracejit has no
  complex dtype.
"""
from __future__ import annotations

import builtins
from typing import NamedTuple

import numpy as np

from ..errors import ShapeError
from ..naming import add_name_keyword
from ..primitives import linalg_lapack as _lp
from . import base as tnp

LinAlgError = np.linalg.LinAlgError


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class QRResult(NamedTuple):
    Q: object
    R: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


def _float(a):
    """``a`` as an array of float32 or float64 (NumPy's linalg promotion)."""
    a = tnp.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = tnp.astype(a, np.float64)
    return a


def _matrices(name, a, square=True):
    a = _float(a)
    if a.ndim < 2:
        raise ShapeError(f"linalg.{name}: needs an array of at least 2 dims, got shape {a.shape}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"linalg.{name}: last 2 dims must be square, got shape {a.shape}")
    return a


def matrix_transpose(x):
    return tnp.swapaxes(x, -1, -2)


def _sym(a):
    return (a + matrix_transpose(a)) * 0.5


def _eye_like(a):
    n = a.shape[-1]
    return tnp.broadcast_to(tnp.eye(n, dtype=a.dtype), a.shape)


# --- solves and inverses ----------------------------------------------------------
def solve(a, b):
    """x with ``a @ x = b``; ``b`` is a vector when it is 1-D (NumPy 2 rules)."""
    a, b = tnp.float_operands(a, b)
    a = _matrices("solve", a)
    vector = b.ndim == 1
    if vector:
        b = tnp.reshape(b, b.shape + (1,))
    if b.ndim < 2:
        raise ShapeError(f"linalg.solve: b must be at least 1-D, got shape {b.shape}")
    batch = tnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = tnp.broadcast_to(a, batch + a.shape[-2:])
    b = tnp.broadcast_to(b, batch + b.shape[-2:])
    x = _lp.solve(a, b)
    return tnp.reshape(x, x.shape[:-1]) if vector else x


def inv(a):
    a = _matrices("inv", a)
    return _lp.solve(a, _eye_like(a))


def matrix_power(a, n):
    a = _matrices("matrix_power", a)
    n = int(n)
    if n < 0:
        a, n = inv(a), -n
    result, base = _eye_like(a), a
    first = True
    while n:
        if n & 1:
            result = base if first else tnp.matmul(result, base)
            first = False
        n >>= 1
        if n:
            base = tnp.matmul(base, base)
    return result


def tensorsolve(a, b, axes=None):
    a, b = tnp.float_operands(a, b)
    if axes is not None:
        rest = [d for d in range(a.ndim) if d not in [x % a.ndim for x in axes]]
        a = tnp.transpose(a, rest + [x % a.ndim for x in axes])
    q = a.shape[-(a.ndim - b.ndim):] if a.ndim > b.ndim else ()
    n = int(np.prod(q))
    x = solve(tnp.reshape(a, (-1, n)), tnp.ravel(b))
    return tnp.reshape(x, q)


def tensorinv(a, ind=2):
    a = _float(a)
    out_shape = a.shape[ind:] + a.shape[:ind]
    m = int(np.prod(a.shape[:ind]))
    return tnp.reshape(inv(tnp.reshape(a, (m, -1))), out_shape)


def cholesky(a, /, *, upper=False):
    """The lower Cholesky factor of the symmetric part of ``a`` (as JAX;
    NumPy reads only the lower triangle, which agrees on symmetric input)."""
    a = _matrices("cholesky", a)
    L = _lp.cholesky(_sym(a))
    return matrix_transpose(L) if upper else L


# --- determinants -----------------------------------------------------------------
def slogdet(a):
    a = _matrices("slogdet", a)
    sign, logdet = _lp.slogdet(a)
    return SlogdetResult(sign, logdet)


def det(a):
    sign, logdet = slogdet(a)
    return sign * tnp.exp(logdet)


# --- eigenvalues and singular values ------------------------------------------------
def eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of the symmetric part of ``a``."""
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = _matrices("eigh", a)
    w, v = _lp.eigh(_sym(a))
    return EighResult(w, v)


def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO).eigenvalues


def qr(a, mode="reduced"):
    a = _matrices("qr", a, square=False)
    m, n = a.shape[-2:]
    if mode == "complete" and m > n:
        raise NotImplementedError("linalg.qr: mode='complete' of a tall matrix is not "
                                  "supported; use mode='reduced'")
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: unsupported mode {mode!r} (reduced, complete, r)")
    q, r = _lp.qr(a)
    return r if mode == "r" else QRResult(q, r)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Reduced SVD; ``full_matrices=True`` (NumPy's default) is the same
    thing for square matrices and is refused for others."""
    a = _matrices("svd", a, square=False)
    u, s, vt = _lp.svd(a)
    if not compute_uv:
        return s
    if full_matrices and a.shape[-1] != a.shape[-2]:
        raise NotImplementedError(
            f"linalg.svd: full_matrices=True of a non-square {a.shape[-2:]} matrix is "
            f"not supported (its extra singular vectors are not unique, so not "
            f"differentiable); pass full_matrices=False")
    return SVDResult(u, s, vt)


def svdvals(x, /):
    return svd(x, compute_uv=False)


def _cutoff(s, rcond):
    """``rcond`` times the largest singular value (the first: they are sorted
    in descending order), per matrix, kept as (..., 1)."""
    return s[..., :1] * rcond


def _inv_singular(s, cutoff):
    keep = s > cutoff
    return tnp.where(keep, 1.0 / tnp.where(keep, s, 1.0), 0.0).astype(s.dtype)


_NO_VALUE = object()


def pinv(a, rcond=None, hermitian=False, *, rtol=_NO_VALUE):
    a = _matrices("pinv", a, square=False)
    if rcond is None:
        if rtol is _NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = builtins.max(a.shape[-2:]) * np.finfo(a.dtype).eps
        else:
            rcond = rtol
    u, s, vt = _lp.svd(a)
    s_inv = _inv_singular(s, _cutoff(s, rcond))
    return tnp.matmul(matrix_transpose(vt) * s_inv[..., None, :], matrix_transpose(u))


def lstsq(a, b, rcond=None):
    """NumPy's lstsq. ``residuals`` assumes ``a`` has full column rank (its
    shape cannot depend on the computed rank in a traced program)."""
    a, b = tnp.float_operands(a, b)
    a = _matrices("lstsq", a, square=False)
    if a.ndim != 2:
        raise ShapeError(f"linalg.lstsq: a must be 2-D, got shape {a.shape}")
    m, n = a.shape
    vector = b.ndim == 1
    b2 = tnp.reshape(b, (m, 1)) if vector else b
    if b2.ndim != 2 or b2.shape[0] != m:
        raise ShapeError(f"linalg.lstsq: b of shape {b.shape} does not fit a of shape {a.shape}")
    if rcond is None:
        rcond = np.finfo(a.dtype).eps * builtins.max(m, n)
    u, s, vt = _lp.svd(a)
    s_inv = _inv_singular(s, _cutoff(s, rcond))
    x = tnp.matmul(matrix_transpose(vt), s_inv[:, None] * tnp.matmul(matrix_transpose(u), b2))
    rank = tnp.sum(s > _cutoff(s, rcond)).astype(np.int32)
    if m > n:
        r = b2 - tnp.matmul(a, x)
        residuals = tnp.sum(r * r, axis=0)
    else:
        residuals = tnp.zeros((0,), a.dtype)
    if vector:
        x = tnp.reshape(x, (n,))
    return x, residuals, rank, s


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    A = _float(A)
    if A.ndim < 2:
        return tnp.astype(tnp.any(A != 0), np.int64)
    s = svd(A, compute_uv=False)
    if tol is None:
        if rtol is None:
            rtol = builtins.max(A.shape[-2:]) * np.finfo(A.dtype).eps
        tol = s[..., :1] * rtol
    else:
        tol = tnp.asarray(tol)[..., None]
    return tnp.astype(tnp.sum(s > tol, axis=-1), np.int64)


# --- norms ----------------------------------------------------------------------------
def _basic_norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (any ``ord``) and the matrix norms 'fro', 1, -1, inf, -inf."""
    if axis is None and (ord is None or x.ndim == 1):
        r = _basic_norm(tnp.ravel(x), ord, 0, False)
        return tnp.reshape(r, (1,) * x.ndim) if keepdims else r
    if axis is None:
        axis = (0, 1) if x.ndim == 2 else tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(int(d) % x.ndim if -x.ndim <= int(d) < x.ndim else _bad_axis(d, x)
                 for d in axes)   # (row, col): order matters
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ShapeError(f"linalg.norm: duplicate axes {axis}")
        if ord in (None, "fro"):
            return tnp.sqrt(tnp.sum(x * x, axes, keepdims=keepdims))
        if ord in (1, -1, np.inf, -np.inf):
            rows, cols = axes if ord in (1, -1) else axes[::-1]
            s = tnp.sum(tnp.abs(x), rows, keepdims=True)
            r = (tnp.max if ord > 0 else tnp.min)(s, cols, keepdims=True)
            return r if keepdims else tnp.squeeze(r, axes)
        raise ValueError(f"linalg.norm: invalid norm order {ord!r} for matrices")
    if len(axes) != 1:
        raise ShapeError(f"linalg.norm: axis {axis} must name one or two axes")
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: invalid norm order {ord!r} for vectors")
    a = tnp.abs(x)
    if ord is None or ord == 2:
        return tnp.sqrt(tnp.sum(x * x, axes, keepdims=keepdims))
    if ord == np.inf:
        return tnp.max(a, axes, keepdims=keepdims)
    if ord == -np.inf:
        return tnp.min(a, axes, keepdims=keepdims)
    if ord == 0:
        return tnp.astype(tnp.count_nonzero(x, axes, keepdims=keepdims), x.dtype)
    if ord == 1:
        return tnp.sum(a, axes, keepdims=keepdims)
    return tnp.power(tnp.sum(tnp.power(a, ord), axes, keepdims=keepdims), 1.0 / ord)


def _bad_axis(d, x):
    raise ShapeError(f"linalg.norm: axis {d} is out of bounds for an array of {x.ndim} dims")


def _matrix_norm2(x, axes, ord, keepdims):
    """The 2-norm, -2 'norm' and nuclear norm through singular values."""
    row, col = axes
    moved = tnp.moveaxis(x, (row, col), (-2, -1))
    s = svd(moved, compute_uv=False)
    # singular values come sorted in descending order
    r = s[..., 0] if ord == 2 else s[..., -1] if ord == -2 else tnp.sum(s, -1)
    if keepdims:
        for d in sorted((row % x.ndim, col % x.ndim)):
            r = tnp.expand_dims(r, d)
    return r


def norm(x, ord=None, axis=None, keepdims=False):
    """NumPy's vector norms (any ``ord``) and matrix norms (None, 'fro',
    'nuc', inf, -inf, 1, -1, 2, -2)."""
    x = _float(x)
    if isinstance(axis, (list, tuple)) and len(axis) == 2 or \
            axis is None and ord is not None and x.ndim == 2:
        axes = (0, 1) if axis is None else tuple(int(d) for d in axis)
        if ord in (2, -2, "nuc"):
            return _matrix_norm2(x, axes, ord, keepdims)
    return _basic_norm(x, ord, axis, keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    x = _float(x)
    if axis is None:
        r = norm(tnp.ravel(x), ord=ord, axis=0)
        return tnp.reshape(r, (1,) * x.ndim) if keepdims else r
    if isinstance(axis, (list, tuple)):
        axes = [d % x.ndim for d in axis]
        rest = [d for d in range(x.ndim) if d not in axes]
        y = tnp.reshape(tnp.transpose(x, rest + axes), tuple(x.shape[d] for d in rest) + (-1,))
        r = norm(y, ord=ord, axis=-1)
        if keepdims:
            for d in sorted(axes):
                r = tnp.expand_dims(r, d)
        return r
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


def cond(x, p=None):
    x = _matrices("cond", x, square=p in (None, 2, -2))
    if p in (None, 2, -2):
        s = svd(x, compute_uv=False)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


# --- products -------------------------------------------------------------------------
def multi_dot(arrays, *, out=None):
    if out is not None:
        raise NotImplementedError("linalg.multi_dot: out= (in-place) is not supported")
    result = arrays[0]
    for a in arrays[1:]:
        result = tnp.dot(result, a)
    return result


def vecdot(x1, x2, /, *, axis=-1):
    return tnp.sum(x1 * x2, axis=axis)


def matmul(x1, x2, /):
    return tnp.matmul(x1, x2)


def outer(x1, x2, /):
    return tnp.outer(x1, x2)


def tensordot(x1, x2, /, *, axes=2):
    return tnp.tensordot(x1, x2, axes=axes)


def trace(x, /, *, offset=0, dtype=None):
    return tnp.trace(x, offset, -2, -1, dtype=dtype)


def diagonal(x, /, *, offset=0):
    return tnp.diagonal(x, offset, -2, -1)


__all__ = sorted(n for n, v in globals().items()
                 if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == __name__)
__all__ += ["LinAlgError"]
add_name_keyword(globals(), __all__)
