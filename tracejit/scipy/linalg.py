"""tracejit.scipy.linalg: SciPy's triangular and Cholesky solves (as JAX's
jax.scipy.linalg), differentiable in both modes, plus the NumPy routines
SciPy repeats under the same names."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..numpy import base as tnp
from ..numpy import linalg as _nl
from ..primitives import linalg_lapack as _lp

det = _nl.det
inv = _nl.inv
pinv = _nl.pinv
qr = _nl.qr
svd = _nl.svd
LinAlgError = np.linalg.LinAlgError


def _trans_flag(trans):
    if trans in (0, "N"):
        return False
    if trans in (1, "T", 2, "C"):     # real matrices: conjugate transpose is the transpose
        return True
    raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """x with ``op(a) @ x = b``, reading only the ``lower`` (else upper)
    triangle of ``a`` (and not its diagonal when ``unit_diagonal``)."""
    a, b = tnp.float_operands(a, b)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"solve_triangular: a must be square matrices, got shape {a.shape}")
    if unit_diagonal:
        n = a.shape[-1]
        a = a * (1 - tnp.eye(n, dtype=a.dtype)) + tnp.eye(n, dtype=a.dtype)
    vector = b.ndim == a.ndim - 1
    if vector:
        b = b[..., None]
    if b.ndim != a.ndim or b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"solve_triangular: b of shape {b.shape} does not fit a of shape {a.shape}")
    batch = tnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = tnp.broadcast_to(a, batch + a.shape[-2:])
    b = tnp.broadcast_to(b, batch + b.shape[-2:])
    x = _lp.triangular_solve(a, b, lower=bool(lower), transpose_a=_trans_flag(trans))
    return x[..., 0] if vector else x


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """SciPy's default is the upper factor (``a = U^T U``)."""
    return _nl.cholesky(a, upper=not lower)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """``(c, lower)`` for cho_solve; ``c``'s other triangle is zero here
    (SciPy leaves arbitrary values there)."""
    return cholesky(a, lower=lower), lower


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """x with ``a @ x = b`` given ``cho_factor(a)``: two triangular solves."""
    c, lower = c_and_lower
    if lower:
        y = solve_triangular(c, b, lower=True)
        return solve_triangular(c, y, trans=1, lower=True)
    y = solve_triangular(c, b, trans=1, lower=False)
    return solve_triangular(c, y, lower=False)


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
          assume_a=None, transposed=False):
    a = tnp.asarray(a)
    if transposed:
        a = tnp.swapaxes(a, -1, -2)
    if assume_a in ("pos", "positive definite"):
        return cho_solve(cho_factor(a, lower=True), b)
    return _nl.solve(a, b)


def eigh(a, b=None, lower=True, eigvals_only=False, **kwargs):
    if b is not None:
        raise NotImplementedError("tracejit.scipy.linalg.eigh: the generalized problem (b=) "
                                  "is not supported")
    w, v = _nl.eigh(a)
    return w if eigvals_only else (w, v)
