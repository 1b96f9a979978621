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
# window geometry is literal, so the window loops unroll. A dim the window
# does not slide over (window 1, stride 1, no padding: the channels of a
# pooling) indexes the operand with the loop variable itself, so the loop
# over it vectorizes (a clamped index made every load a gather).
# scatter_positions: out.flat[pos] += src (out zero on entry); rows
# [lo, hi) of dim 0.
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
                        q0 = {q0}
                        for w1 in range({k1}):
                            q1 = {q1}
                            for w2 in range({k2}):
                                q2 = {q2}
                                for w3 in range({k3}):
                                    q3 = {q3}
                                    inside = {inside}
                                    v = op[{index}]
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


def window_argmax(dtype, window, strides, lows, identity=()):
    """The window_argmax kernel for a 4-D window geometry; ``identity``: the
    dims where the source and the operand have the same size and the
    window does not slide (window 1, stride 1, low padding 0)."""
    dtype = np.dtype(dtype)
    lowest = "-np.inf" if dtype.kind == "f" else str(int(np.iinfo(dtype).min))
    slides = [d for d in range(4) if d not in identity]
    q = {f"q{d}": f"i{d}" if d in identity else f"i{d} * {strides[d]} + w{d} - {lows[d]}"
         for d in range(4)}
    inside = " and ".join(f"0 <= q{d} < N{d}" for d in slides) or "True"
    index = ", ".join(f"q{d}" if d in identity else f"min(max(q{d}, 0), N{d} - 1)"
                      for d in range(4))
    source = WINDOW_ARGMAX.format(
        lowest=f"np.{dtype.name}({lowest})", inside=f"({inside})", index=index, **q,
        **{f"k{d}": window[d] for d in range(4)})
    return cache.load(source, (dtype.name, "int64"), "window_argmax")


# Patches of x[N, D, H, W, G, CG] for a 3-D convolution, for images n in
# [lo, hi), group g and the kernel rows kk = kd * KH + kh in [k0, k1):
# col[n - lo, od, oh, ow, kk - k0, kw, c] = x[n, zd, zh, zw, g, c], where
# zd = td[od * KD + kd] is the input index that output od and window offset
# kd read, -1 where that is padding or a hole of the lhs dilation (zeros);
# likewise th and tw (Conv computes the tables: no division in the kernel).
# The channel loop copies a contiguous run and vectorizes. zero: one 0.
# dims: N D H W G CG, OD OH OW, KD KH KW, g, k0, k1.
SOURCES["im2col"] = _HEADER + """
def kernel(lo, hi, dims, p_x, p_td, p_th, p_tw, p_zero, p_col):
    N, D, H, W, G, CG = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]
    OD, OH, OW, KD, KH, KW = dims[6], dims[7], dims[8], dims[9], dims[10], dims[11]
    g, k0, k1 = dims[12], dims[13], dims[14]
    x = carray(p_x, (N, D, H, W, G, CG))
    td = carray(p_td, (OD * KD,))
    th = carray(p_th, (OH * KH,))
    tw = carray(p_tw, (OW * KW,))
    zero = carray(p_zero, (1,))
    col = carray(p_col, (hi - lo, OD, OH, OW, k1 - k0, KW, CG))
    z = zero[0]
    # loops in the order of col's layout: its writes are sequential
    for n in range(lo, hi):
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    for kd in range(KD):
                        zd = td[od * KD + kd]
                        for kh in range(KH):
                            kk = kd * KH + kh
                            if kk >= k0 and kk < k1:
                                zh = th[oh * KH + kh]
                                for kw in range(KW):
                                    zw = tw[ow * KW + kw]
                                    if zd >= 0 and zh >= 0 and zw >= 0:
                                        for c in range(CG):
                                            col[n - lo, od, oh, ow, kk - k0, kw, c] = x[n, zd, zh, zw, g, c]
                                    else:
                                        for c in range(CG):
                                            col[n - lo, od, oh, ow, kk - k0, kw, c] = z
"""


# Patches of a zero-padded x[N, D, H, W, C] (Conv pads it: one feature
# group, no lhs dilation, no dilation along W), for images n in [lo, hi)
# and kernel rows kk = kd * KH + kh in [k0, k1): one kernel row's patch is
# the contiguous run x[n, zd, zh, ow * SW : ow * SW + KW, :], copied as one
# loop (im2col's loop per window offset copies runs of C elements: 3 for
# an image). dims: N D H W C, OD OH OW, KD KH KW, SD SH SW, RD RH, k0, k1.
SOURCES["im2col_padded"] = _HEADER + """
def kernel(lo, hi, dims, p_x, p_col):
    N, D, H, W, C = dims[0], dims[1], dims[2], dims[3], dims[4]
    OD, OH, OW, KD, KH, KW = dims[5], dims[6], dims[7], dims[8], dims[9], dims[10]
    SD, SH, SW, RD, RH, k0, k1 = dims[11], dims[12], dims[13], dims[14], dims[15], dims[16], dims[17]
    x = carray(p_x, (N, D, H, W * C))
    col = carray(p_col, (hi - lo, OD, OH, OW, k1 - k0, KW * C))
    for n in range(lo, hi):
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    for kd in range(KD):
                        for kh in range(KH):
                            kk = kd * KH + kh
                            if kk >= k0 and kk < k1:
                                # max(v, 0): known >= 0, so no wraparound: the copy vectorizes
                                zd = od * SD + kd * RD
                                zh = oh * SH + kh * RH
                                for j in range(KW * C):
                                    col[n - lo, od, oh, ow, kk - k0, j] = \
                                        x[n, zd, zh, ow * max(SW, 0) * max(C, 0) + j]
"""


def get(name: str, *dtypes):
    """The compiled kernel ``name`` for arrays of these dtypes."""
    return cache.load(SOURCES[name], tuple(np.dtype(d).name for d in dtypes), name)
