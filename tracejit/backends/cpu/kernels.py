"""Hand-written kernels for the operations that are not index maps: scatter-add,
max pooling's gradient, and im2col for convolutions.

Each is one Numba function of fixed rank; the plan views its operands at
that rank (leading dims of size 1), so one compiled function per dtype
serves every shape. They live in this real module, so ``cache=True`` keeps
their machine code on disk between processes.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_opts = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_opts)
def scatter_add(lo, hi, idx, upd, out):
    """out[p, idx[j], q] += upd[p, j, q] for p in [lo, hi); indices wrap once
    when negative and are clamped into range (gather's convention)."""
    n = out.shape[1]
    for p in range(lo, hi):
        for j in range(idx.shape[0]):
            t = np.int64(idx[j])
            if t < 0:
                t += n
            t = min(max(t, 0), n - 1)
            for q in range(out.shape[2]):
                out[p, t, q] += upd[p, j, q]


@njit(**_opts)
def select_and_scatter_add(lo, hi, source, operand, out, window, strides, pad_lo):
    """Max pooling's gradient on rank-4 arrays: each window's ``source``
    value goes to the position of the window's first maximum of
    ``operand`` (padding counts as -inf and drops what lands on it).
    ``out`` must be zero on entry; rows [lo, hi) of dim 0 are done."""
    S0, S1, S2, S3 = source.shape
    N0, N1, N2, N3 = operand.shape
    for i0 in range(lo, hi):
        for i1 in range(S1):
            for i2 in range(S2):
                for i3 in range(S3):
                    best = operand[0, 0, 0, 0]
                    bpos0 = bpos1 = bpos2 = bpos3 = -1
                    first = True
                    for w0 in range(window[0]):
                        p0 = i0 * strides[0] + w0 - pad_lo[0]
                        for w1 in range(window[1]):
                            p1 = i1 * strides[1] + w1 - pad_lo[1]
                            for w2 in range(window[2]):
                                p2 = i2 * strides[2] + w2 - pad_lo[2]
                                for w3 in range(window[3]):
                                    p3 = i3 * strides[3] + w3 - pad_lo[3]
                                    inside = (0 <= p0 < N0 and 0 <= p1 < N1 and
                                              0 <= p2 < N2 and 0 <= p3 < N3)
                                    if inside:
                                        v = operand[p0, p1, p2, p3]
                                    else:
                                        v = -np.inf
                                    if first or v > best:
                                        first = False
                                        best = v
                                        if inside:
                                            bpos0, bpos1, bpos2, bpos3 = p0, p1, p2, p3
                                        else:
                                            bpos0 = -1
                    if bpos0 >= 0:
                        out[bpos0, bpos1, bpos2, bpos3] += source[i0, i1, i2, i3]


@njit(**_opts)
def im2col(lo, hi, x, col, c0, strides, rhs_dil, lhs_dil, pad_lo):
    """Patches of a rank-5 ``x[N, D, H, W, C]`` for a 3-D convolution:
    ``col[n, od, oh, ow, kd, kh, kw, c] = xp[n, od*s + kd*r, ..., c0 + c]``
    where ``xp`` is x dilated by ``lhs_dil`` and padded by ``pad_lo`` (zeros
    outside). Rows n in [lo, hi)."""
    _, D, H, W, _ = x.shape
    _, OD, OH, OW, KD, KH, KW, CG = col.shape
    sd, sh, sw = strides
    rd, rh, rw = rhs_dil
    ld, lh, lw = lhs_dil
    pd, ph, pw = pad_lo
    zero = x.dtype.type(0)
    for n in range(lo, hi):
        for od in range(OD):
            for kd in range(KD):
                qd = od * sd + kd * rd - pd
                okd = qd >= 0 and qd % ld == 0 and qd // ld < D
                zd = qd // ld
                for oh in range(OH):
                    for kh in range(KH):
                        qh = oh * sh + kh * rh - ph
                        okh = okd and qh >= 0 and qh % lh == 0 and qh // lh < H
                        zh = qh // lh
                        for ow in range(OW):
                            for kw in range(KW):
                                qw = ow * sw + kw * rw - pw
                                if okh and qw >= 0 and qw % lw == 0 and qw // lw < W:
                                    zw = qw // lw
                                    for c in range(CG):
                                        col[n, od, oh, ow, kd, kh, kw, c] = x[n, zd, zh, zw, c0 + c]
                                else:
                                    for c in range(CG):
                                        col[n, od, oh, ow, kd, kh, kw, c] = zero
