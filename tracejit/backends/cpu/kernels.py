"""Hand-written kernels for the operations that are not index maps: scatter-add,
max pooling's gradient, and im2col for convolutions.

Each is the source of one kernel of fixed rank, compiled and cached like
generated ones (``kernel(lo, hi, dims, *pointers)``, see compiler.py); the
plan views its operands at that rank (leading dims of size 1) and passes
sizes, strides and paddings in ``dims``, so one compiled kernel per dtype
serves every shape.
"""
from __future__ import annotations

import numpy as np

from . import cache

_HEADER = """\
import numpy as np
from numba import carray
"""

SOURCES = {}

# out[p, idx[j], q] += upd[p, j, q] for p in [lo, hi); indices wrap once when
# negative and are clamped into range (gather's convention).
# dims: P, N, Q, J
SOURCES["scatter_add"] = _HEADER + """
def kernel(lo, hi, dims, p_idx, p_upd, p_out):
    P, N, Q, J = dims[0], dims[1], dims[2], dims[3]
    idx = carray(p_idx, (J,))
    upd = carray(p_upd, (P, J, Q))
    out = carray(p_out, (P, N, Q))
    for p in range(lo, hi):
        for j in range(J):
            t = np.int64(idx[j])
            if t < 0:
                t += N
            t = min(max(t, 0), N - 1)
            for q in range(Q):
                out[p, t, q] += upd[p, j, q]
"""

# Max pooling's gradient, in two kernels on rank-4 arrays. window_argmax:
# the flat position in the operand of each window's first maximum (padding
# counts as the lowest value; -1 when the first maximum is padding); the
# window geometry is literal, so the window loops unroll and the channel
# loop vectorizes. scatter_positions: out.flat[pos] += src (out zero on
# entry); rows [lo, hi) of dim 0.
# dims: source shape (4), operand shape (4).
WINDOW_ARGMAX = _HEADER + """
LOWEST = {lowest}


def kernel(lo, hi, dims, p_op, p_pos):
    S0, S1, S2, S3 = dims[0], dims[1], dims[2], dims[3]
    N0, N1, N2, N3 = dims[4], dims[5], dims[6], dims[7]
    op = carray(p_op, (N0, N1, N2, N3))
    pos = carray(p_pos, (S0, S1, S2, S3))
    for i0 in range(lo, hi):
        for i1 in range(S1):
            for i2 in range(S2):
                for i3 in range(S3):
                    best = LOWEST
                    bp = np.int64(-1)
                    first = True
                    for w0 in range({k0}):
                        q0 = i0 * {s0} + w0 - {l0}
                        for w1 in range({k1}):
                            q1 = i1 * {s1} + w1 - {l1}
                            for w2 in range({k2}):
                                q2 = i2 * {s2} + w2 - {l2}
                                for w3 in range({k3}):
                                    q3 = i3 * {s3} + w3 - {l3}
                                    inside = (0 <= q0 < N0 and 0 <= q1 < N1 and
                                              0 <= q2 < N2 and 0 <= q3 < N3)
                                    v = op[min(max(q0, 0), N0 - 1), min(max(q1, 0), N1 - 1),
                                           min(max(q2, 0), N2 - 1), min(max(q3, 0), N3 - 1)]
                                    v = v if inside else LOWEST
                                    take = first or v > best
                                    best = v if take else best
                                    here = ((q0 * N1 + q1) * N2 + q2) * N3 + q3 if inside else -1
                                    bp = here if take else bp
                                    first = False
                    pos[i0, i1, i2, i3] = bp
"""

SOURCES["scatter_positions"] = _HEADER + """
def kernel(lo, hi, dims, p_src, p_pos, p_out):
    S0, S1, S2, S3 = dims[0], dims[1], dims[2], dims[3]
    src = carray(p_src, (S0, S1, S2, S3))
    pos = carray(p_pos, (S0, S1, S2, S3))
    out = carray(p_out, (dims[4] * dims[5] * dims[6] * dims[7],))
    for i0 in range(lo, hi):
        for i1 in range(S1):
            for i2 in range(S2):
                for i3 in range(S3):
                    p = pos[i0, i1, i2, i3]
                    if p >= 0:
                        out[p] += src[i0, i1, i2, i3]
"""


def window_argmax(dtype, window, strides, lows):
    """The window_argmax kernel for a 4-D window geometry."""
    dtype = np.dtype(dtype)
    lowest = "-np.inf" if dtype.kind == "f" else str(int(np.iinfo(dtype).min))
    source = WINDOW_ARGMAX.format(
        lowest=f"np.{dtype.name}({lowest})",
        **{f"k{d}": window[d] for d in range(4)}, **{f"s{d}": strides[d] for d in range(4)},
        **{f"l{d}": lows[d] for d in range(4)})
    return cache.load(source, (dtype.name, "int64"), "window_argmax")


# Patches of x[N, D, H, W, C] for a 3-D convolution:
# col[n, od, oh, ow, kd, kh, kw, c] = xp[n, od*s + kd*r, ..., c0 + c], where
# xp is x dilated by lhs_dil and padded by pad_lo (zeros outside); rows n in
# [lo, hi). dims: N D H W C, OD OH OW, KD KH KW, CG, c0, strides (3),
# rhs dilation (3), lhs dilation (3), low paddings (3).
SOURCES["im2col"] = _HEADER + """
def kernel(lo, hi, dims, p_x, p_col):
    N, D, H, W, C = dims[0], dims[1], dims[2], dims[3], dims[4]
    OD, OH, OW, KD, KH, KW = dims[5], dims[6], dims[7], dims[8], dims[9], dims[10]
    CG, c0 = dims[11], dims[12]
    sd, sh, sw, rd, rh, rw = dims[13], dims[14], dims[15], dims[16], dims[17], dims[18]
    ld, lh, lw, pd, ph, pw = dims[19], dims[20], dims[21], dims[22], dims[23], dims[24]
    x = carray(p_x, (N, D, H, W, C))
    col = carray(p_col, (N, OD, OH, OW, KD, KH, KW, CG))
    zero = x.dtype.type(0)
    # loops in the order of col's layout: its writes are sequential
    for n in range(lo, hi):
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    for kd in range(KD):
                        qd = od * sd + kd * rd - pd
                        okd = qd >= 0 and qd % ld == 0 and qd // ld < D
                        zd = qd // ld
                        for kh in range(KH):
                            qh = oh * sh + kh * rh - ph
                            okh = okd and qh >= 0 and qh % lh == 0 and qh // lh < H
                            zh = qh // lh
                            for kw in range(KW):
                                qw = ow * sw + kw * rw - pw
                                if okh and qw >= 0 and qw % lw == 0 and qw // lw < W:
                                    zw = qw // lw
                                    for c in range(CG):
                                        col[n, od, oh, ow, kd, kh, kw, c] = x[n, zd, zh, zw, c0 + c]
                                else:
                                    for c in range(CG):
                                        col[n, od, oh, ow, kd, kh, kw, c] = zero
"""


def get(name: str, *dtypes):
    """The compiled kernel ``name`` for arrays of these dtypes."""
    return cache.load(SOURCES[name], tuple(np.dtype(d).name for d in dtypes), name)
