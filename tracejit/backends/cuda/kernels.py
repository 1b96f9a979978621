"""Hand-written CUDA kernels for the library lowerings (library.py): a tiled
batched matrix product, an operand permutation, im2col, scatter-add and max
pooling's gradient, plus a fill.

Each kernel is compiled once per dtype with an explicit signature (so a
launch does no type inference) and takes its arrays flat (1-D, contiguous)
with the sizes, strides and window geometry in one small int64 device array
``p`` that the lowering uploads once, when it is built. Every kernel loops
grid-stride, so any launch size covers any problem size.

Under Numba's CUDA simulator every CUDA thread is a Python thread: blocks
and tiles are small there (``BLOCK``, ``TILE``, ``MICRO``) and large on a GPU.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import config, cuda, from_dtype

SIMULATOR = bool(config.ENABLE_CUDASIM)
#: Threads per block of the 1-D kernels.
BLOCK = 32 if SIMULATOR else 256
#: The matrix product's blocks have TILE x TILE threads, each computing
#: MICRO x MICRO outputs.
TILE = 4 if SIMULATOR else 16
MICRO = 2 if SIMULATOR else 4
#: Most blocks a 1-D launch uses; grid-stride loops cover the rest.
MAX_BLOCKS = 1 << 16
#: Dtypes the kernels are compiled for (atomics exist for all of them).
DTYPES = ("float32", "float64", "int32", "int64", "uint32")


def configure(kernel, grid, block):
    """``kernel[grid, block]``, a launcher to keep. On a GPU that is a new
    launch configuration; the simulator's ``kernel[grid, block]`` instead
    sets the grid on the one shared kernel object and returns it, so there
    it is applied at each call (else the last configuration wins for all)."""
    if SIMULATOR:
        return lambda *args: kernel[grid, block](*args)
    return kernel[grid, block]


def launch_1d(kernel, n: int):
    """``kernel`` configured for ``n`` elements, or None when ``n`` is 0 (a
    launch of zero blocks is an error)."""
    if n <= 0:
        return None
    return configure(kernel, min(MAX_BLOCKS, -(-n // BLOCK)), BLOCK)


def _t(dtype) -> str:
    return from_dtype(np.dtype(dtype)).name


@functools.cache
def fill(dtype):
    """x[:] = 0."""
    zero = np.dtype(dtype).type(0)

    @cuda.jit(f"void({_t(dtype)}[::1])")
    def kernel(x):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            x[i] = zero
    return kernel


@functools.cache
def permute(dtype):
    """y[i] = x[src(i)], y contiguous; p = [ndim, y's shape (ndim), x's
    stride (elements) for each of y's dims (ndim)]."""
    @cuda.jit(f"void({_t(dtype)}[::1], {_t(dtype)}[::1], int64[::1])")
    def kernel(x, y, p):
        nd = p[0]
        for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            rem = i
            src = 0
            for d in range(nd - 1, -1, -1):
                src += (rem % p[1 + d]) * p[1 + nd + d]
                rem //= p[1 + d]
            y[i] = x[src]
    return kernel


@functools.cache
def matmul(dtype):
    """Batched strided matrix product:

        c[z*sc0 + i*sc1 + j*sc2] = sum_k a[z*sa0 + i*sa1 + k*sa2] * b[z*sb0 + k*sb1 + j*sb2]

    p = [B, M, N, K, sa0, sa1, sa2, sb0, sb1, sb2, sc0, sc1, sc2]. A block
    of TILE x TILE threads computes an MT x MT tile of c (MT = TILE *
    MICRO), each thread MICRO x MICRO outputs strided by TILE (so a warp's
    shared-memory reads and global writes are consecutive); the operands
    pass through shared memory TILE values of k at a time. Grid x, y and z
    loop over c's column tiles, row tiles and the batch. The sum is in the
    dtype (products of integers wrap as in NumPy)."""
    nb = from_dtype(np.dtype(dtype))
    zero = np.dtype(dtype).type(0)
    T, R = TILE, MICRO
    MT = T * R

    @cuda.jit(f"void({nb.name}[::1], {nb.name}[::1], {nb.name}[::1], int64[::1])")
    def kernel(a, b, c, p):
        sa = cuda.shared.array((T, MT), nb)      # sa[k, i]
        sb = cuda.shared.array((T, MT), nb)      # sb[k, j]
        acc = cuda.local.array((R, R), nb)
        av = cuda.local.array(R, nb)
        bv = cuda.local.array(R, nb)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * T + tx
        nbatch, M, N, K = p[0], p[1], p[2], p[3]
        for z in range(cuda.blockIdx.z, nbatch, cuda.gridDim.z):
            a0, b0, c0 = z * p[4], z * p[7], z * p[10]
            for by in range(cuda.blockIdx.y, (M + MT - 1) // MT, cuda.gridDim.y):
                for bx in range(cuda.blockIdx.x, (N + MT - 1) // MT, cuda.gridDim.x):
                    for r in range(R):
                        for s in range(R):
                            acc[r, s] = zero
                    for k0 in range(0, K, T):
                        for e in range(R):
                            idx = tid + e * T * T
                            # consecutive threads: consecutive k of a, consecutive j of b
                            ka, ia = k0 + idx % T, by * MT + idx // T
                            sa[idx % T, idx // T] = (a[a0 + ia * p[5] + ka * p[6]]
                                                     if ia < M and ka < K else zero)
                            kb, jb = k0 + idx // MT, bx * MT + idx % MT
                            sb[idx // MT, idx % MT] = (b[b0 + kb * p[8] + jb * p[9]]
                                                       if kb < K and jb < N else zero)
                        cuda.syncthreads()
                        for kk in range(T):
                            for r in range(R):
                                av[r] = sa[kk, ty + r * T]
                                bv[r] = sb[kk, tx + r * T]
                            for r in range(R):
                                for s in range(R):
                                    acc[r, s] += av[r] * bv[s]
                        cuda.syncthreads()
                    for r in range(R):
                        i = by * MT + ty + r * T
                        for s in range(R):
                            j = bx * MT + tx + s * T
                            if i < M and j < N:
                                c[c0 + i * p[11] + j * p[12]] = acc[r, s]
    return kernel


def matmul_grid(nbatch: int, M: int, N: int):
    """(grid, block) of ``matmul`` for this problem."""
    mt = TILE * MICRO
    grid = (min(-(-N // mt), 65535), min(-(-M // mt), 65535), min(nbatch, 65535))
    return grid, (TILE, TILE)


@functools.cache
def im2col(dtype):
    """Patches of x[N, D, H, W, C] for a 3-D convolution with G groups:

        col[n, od, oh, ow, g, kd, kh, kw, c] = xp[n, od*sd + kd*rd, ..., g*CG + c]

    where xp is x dilated by lhs dilation (l*) and padded low by (p*), zero
    outside x. p = [N, D, H, W, C, OD, OH, OW, KD, KH, KW, CG, G,
    sd, sh, sw, rd, rh, rw, ld, lh, lw, pd, ph, pw]."""
    zero = np.dtype(dtype).type(0)

    @cuda.jit(f"void({_t(dtype)}[::1], {_t(dtype)}[::1], int64[::1])")
    def kernel(x, col, p):
        D, H, W, C = p[1], p[2], p[3], p[4]
        OD, OH, OW, KD, KH, KW, CG, G = p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12]
        for i in range(cuda.grid(1), col.size, cuda.gridsize(1)):
            r = i
            c = r % CG
            r //= CG
            kw = r % KW
            r //= KW
            kh = r % KH
            r //= KH
            kd = r % KD
            r //= KD
            g = r % G
            r //= G
            ow = r % OW
            r //= OW
            oh = r % OH
            r //= OH
            od = r % OD
            n = r // OD
            qd = od * p[13] + kd * p[16] - p[22]
            qh = oh * p[14] + kh * p[17] - p[23]
            qw = ow * p[15] + kw * p[18] - p[24]
            zd = qd // p[19]
            zh = qh // p[20]
            zw = qw // p[21]
            if (qd >= 0 and qh >= 0 and qw >= 0 and qd % p[19] == 0 and qh % p[20] == 0
                    and qw % p[21] == 0 and zd < D and zh < H and zw < W):
                col[i] = x[(((n * D + zd) * H + zh) * W + zw) * C + g * CG + c]
            else:
                col[i] = zero
    return kernel


@functools.cache
def scatter_add(idx_dtype, dtype):
    """out[q, t(j), r] += upd[q, j, r] with atomics (out holds x on entry);
    t(j) is idx[j] wrapped once when negative, then clamped into [0, n)
    (gather's convention). p = [P, n, Q, J] (P rows before the axis, Q
    elements after it, J indices)."""
    @cuda.jit(f"void({_t(idx_dtype)}[::1], {_t(dtype)}[::1], {_t(dtype)}[::1], int64[::1])")
    def kernel(idx, upd, out, p):
        n, Q, J = p[1], p[2], p[3]
        for i in range(cuda.grid(1), upd.size, cuda.gridsize(1)):
            q = i % Q
            r = i // Q
            j = r % J
            row = r // J
            t = np.int64(idx[j])
            if t < 0:
                t += n
            t = min(max(t, 0), n - 1)
            cuda.atomic.add(out, (row * n + t) * Q + q, upd[i])
    return kernel


@functools.cache
def select_and_scatter_add(dtype):
    """Max pooling's gradient on rank-4 arrays: each source element (one per
    window) is added, with atomics, at the operand position of its window's
    first maximum; padding counts as the lowest value and a window whose
    first maximum is padding adds nothing (as the reference impl, which
    scatters into the padded array and crops). out is zero on entry.
    p = [source shape (4), operand shape (4), window (4), strides (4),
    low paddings (4)]."""
    dt = np.dtype(dtype)
    lowest = dt.type(-np.inf) if dt.kind == "f" else np.iinfo(dt).min

    @cuda.jit(f"void({_t(dtype)}[::1], {_t(dtype)}[::1], {_t(dtype)}[::1], int64[::1])")
    def kernel(src, op, out, p):
        S1, S2, S3 = p[1], p[2], p[3]
        N0, N1, N2, N3 = p[4], p[5], p[6], p[7]
        for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
            i3 = i % S3
            r = i // S3
            i2 = r % S2
            r //= S2
            i1 = r % S1
            i0 = r // S1
            best = lowest
            bp = -1
            first = True
            for w0 in range(p[8]):
                q0 = i0 * p[12] + w0 - p[16]
                for w1 in range(p[9]):
                    q1 = i1 * p[13] + w1 - p[17]
                    for w2 in range(p[10]):
                        q2 = i2 * p[14] + w2 - p[18]
                        for w3 in range(p[11]):
                            q3 = i3 * p[15] + w3 - p[19]
                            here = -1
                            v = lowest
                            if 0 <= q0 < N0 and 0 <= q1 < N1 and 0 <= q2 < N2 and 0 <= q3 < N3:
                                here = ((q0 * N1 + q1) * N2 + q2) * N3 + q3
                                v = op[here]
                            if first or v > best:
                                best = v
                                bp = here
                            first = False
            if bp >= 0:
                cuda.atomic.add(out, bp, src[i])
    return kernel
