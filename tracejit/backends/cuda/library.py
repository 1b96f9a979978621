"""Library lowerings of the CUDA backend: the primitives that are not fused
kernels (dot_general, conv_general, scatter_add, select_and_scatter_add,
stop_gradient).

``LOWERINGS[prim](instr)`` is called once per plan and returns
``run(*operands) -> tuple of result device arrays``: operands are
C-contiguous Numba device arrays, results new ones. All shape and attribute
analysis, kernel selection, launch configuration and scratch allocation
happen when the lowering is built; ``run`` only views, launches and
allocates results.

Matrix products go through cuBLAS (``cupy.matmul`` on zero-copy views of
the Numba arrays) when CuPy is importable and we are not in Numba's CUDA
simulator, else through the tiled kernel of kernels.py. Convolutions are
im2col (one kernel, all groups) and a matrix product (batched over the
groups). Scatters use atomics, so float sums may differ from the reference
in rounding. Dtypes or ranks a kernel does not cover (bool operands, more
than 3 spatial dims, integer convolutions, whose reference accumulates in
float32) run the reference impl on the host, per instruction. argsort is
not lowered: the plan's host fallback runs it.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from numba import cuda

from ...core import PRIMITIVES
from . import allocator, kernels


def _prod(xs) -> int:
    return int(np.prod([int(x) for x in xs], dtype=np.int64))


def _free(ndim, *used):
    taken = {d for u in used for d in u}
    return [d for d in range(ndim) if d not in taken]


def _params(values):
    """A kernel's int64 parameter array, on the device."""
    return cuda.to_device(np.asarray([int(v) for v in values], np.int64))


@functools.cache
def cupy():
    """The CuPy module for cuBLAS products, or None (not installed, not
    working with this driver, or the simulator, whose arrays CuPy cannot
    read)."""
    if kernels.SIMULATOR:
        return None
    try:
        import cupy as cp
        cp.matmul(cp.ones((2, 2), cp.float32), cp.ones((2, 2), cp.float32))  # CuPy works here
    except Exception:   # not installed, or built for another CUDA than the driver's
        return None
    return cp


def _empty(var):
    return allocator.empty(tuple(var.shape), np.dtype(var.dtype))


class HostFallback:
    """The reference impl on the host: operands copied down, results up."""

    def __init__(self, ins):
        self.impl = PRIMITIVES[ins.prim].impl
        self.attrs = ins.attrs
        self.results = ins.results

    def __call__(self, *operands):
        outs = self.impl(*[x.copy_to_host() for x in operands], **self.attrs)
        return tuple(allocator.upload(np.array(o, dtype=np.dtype(v.dtype)))  # 0-d stays 0-d
                     for o, v in zip(outs, self.results))


class Matmul:
    """c[b, i, j] = sum_k a[b, i, k] * b[b, k, j] on flat arrays, each
    operand and the result given by its element strides (batch, row, col),
    with the tiled kernel."""

    def __init__(self, dtype, nbatch, M, N, K, a_strides, b_strides, c_strides):
        self.empty = nbatch * M * N == 0
        if self.empty:
            return
        grid, block = kernels.matmul_grid(nbatch, M, N)
        self.kernel = kernels.configure(kernels.matmul(np.dtype(dtype).name), grid, block)
        self.p = _params((nbatch, M, N, K, *a_strides, *b_strides, *c_strides))

    def __call__(self, a, b, c):
        if not self.empty:
            self.kernel(a, b, c, self.p)


class Permute:
    """A contiguous copy of an array with its dims in the order ``perm``."""

    def __init__(self, dtype, shape, perm):
        strides = [_prod(shape[d + 1:]) for d in range(len(shape))]
        self.size = _prod(shape)
        self.kernel = kernels.launch_1d(kernels.permute(np.dtype(dtype).name), self.size)
        self.p = _params([len(perm)] + [shape[d] for d in perm] + [strides[d] for d in perm])

    def __call__(self, x, y):
        if self.kernel is not None:
            self.kernel(x, y, self.p)


def _matrix(shape, batch, rows, cols):
    """How to see an operand as [B, rows, cols]: (element strides, or None
    when its dims must be permuted first)."""
    B, R, C = (_prod([shape[d] for d in g]) for g in (batch, rows, cols))
    if list(batch) + list(rows) + list(cols) == sorted(list(batch) + list(rows) + list(cols)):
        return (R * C, C, 1)
    if list(batch) + list(cols) + list(rows) == sorted(list(batch) + list(cols) + list(rows)):
        return (R * C, 1, R)
    return None


class Dot:
    """dot_general as one batched matrix product [B, M, K] x [B, K, N]."""

    def __init__(self, ins):
        (lc, rc), (lb, rb) = ins.attrs["dimension_numbers"]
        lhs, rhs = ins.operands
        self.out = ins.results[0]
        ls, rs = tuple(lhs.shape), tuple(rhs.shape)
        lf, rf = _free(len(ls), lc, lb), _free(len(rs), rc, rb)
        self.lhs_perm = list(lb) + lf + list(lc)
        self.rhs_perm = list(rb) + list(rc) + rf
        B = _prod([ls[d] for d in lb])
        M, N, K = _prod([ls[d] for d in lf]), _prod([rs[d] for d in rf]), _prod([ls[d] for d in lc])
        self.shapes = ((B, M, K), (B, K, N), (B, M, N))
        self.fallback = HostFallback(ins) if lhs.dtype not in kernels.DTYPES else None
        self.cp = cupy() if lhs.dtype in ("float32", "float64") else None
        if self.fallback or self.cp:
            return
        dtype = lhs.dtype
        self.lock = threading.Lock()
        self.prep = []          # (operand index, Permute, scratch) for operands copied first
        strides = []
        for k, (shape, perm, (nb, first, second)) in enumerate(
                [(ls, self.lhs_perm, (lb, lf, lc)), (rs, self.rhs_perm, (rb, rc, rf))]):
            s = _matrix(shape, nb, first, second)
            if s is None:
                rows, cols = self.shapes[k][1:]
                s = (rows * cols, cols, 1)
                self.prep.append((k, Permute(dtype, shape, perm),
                                  allocator.empty((max(_prod(shape), 1),), np.dtype(dtype))))
            strides.append(s)
        self.matmul = Matmul(dtype, B, M, N, K, strides[0], strides[1], (M * N, N, 1))

    def __call__(self, lhs, rhs):
        if self.fallback:
            return self.fallback(lhs, rhs)
        out = _empty(self.out)
        if self.cp is not None:
            self._cublas(lhs, rhs, out)
            return (out,)
        ops = [lhs.reshape(-1), rhs.reshape(-1)]
        with self.lock:
            for k, perm, scratch in self.prep:
                perm(ops[k], scratch)
                ops[k] = scratch
            self.matmul(ops[0], ops[1], out.reshape(-1))
        return (out,)

    def _cublas(self, lhs, rhs, out):
        cp = self.cp
        (B, M, K), (_, _, N), _ = self.shapes
        if B * M * N == 0:
            return
        o = cp.asarray(out).reshape(B, M, N)
        if K == 0:
            o.fill(0)
            return
        a = cp.asarray(lhs).transpose(self.lhs_perm).reshape(B, M, K)
        b = cp.asarray(rhs).transpose(self.rhs_perm).reshape(B, K, N)
        if B == 1:              # one GEMM rather than a batch of one
            a, b, o = a[0], b[0], o[0]
        cp.matmul(a, b, out=o)


class Conv:
    """conv_general as im2col into a scratch buffer [rows, G, window, C/G]
    and one matrix product batched over the G groups; a 1x1 stride-1
    ungrouped convolution without padding or dilation is already a matrix
    product. At most 3 spatial dims (fewer are padded with dims of 1)."""

    def __init__(self, ins):
        a = ins.attrs
        lhs, rhs = ins.operands
        self.out = out = ins.results[0]
        nd = len(lhs.shape) - 2
        self.fallback = (HostFallback(ins) if nd > 3 or lhs.dtype not in ("float32", "float64")
                         else None)
        if self.fallback:
            return
        dtype = np.dtype(lhs.dtype)
        ones = (1,) * (3 - nd)
        n, c, o = lhs.shape[0], lhs.shape[-1], rhs.shape[-1]
        self.groups = g = a["feature_group_count"]
        cg, og = c // g, o // g
        sp, out_sp, k_sp = (ones + tuple(s) for s in (lhs.shape[1:-1], out.shape[1:-1], rhs.shape[:-2]))
        strides, rhs_dil, lhs_dil = (ones + tuple(a[k]) for k in ("window_strides", "rhs_dilation",
                                                                 "lhs_dilation"))
        pad_lo = (0,) * (3 - nd) + tuple(lo for lo, _ in a["padding"])
        self.rows = rows = n * _prod(out_sp)
        self.depth = depth = _prod(k_sp) * cg
        self.direct = (g == 1 and _prod(k_sp) == 1 and strides == (1, 1, 1) and lhs_dil == (1, 1, 1)
                       and all(lo == 0 and hi == 0 for lo, hi in a["padding"]))
        self.zero = rows * o > 0 and depth == 0      # an empty sum: the result is zeros
        self.empty = rows * o == 0
        self.fill = kernels.launch_1d(kernels.fill(dtype.name), rows * o)
        self.cp = cupy() if g == 1 else None
        self.lock = threading.Lock()
        if self.empty or self.zero:
            return
        if not self.direct:
            self.col = allocator.empty((rows * g * depth,), dtype)
            self.im2col = kernels.launch_1d(kernels.im2col(dtype.name), rows * g * depth)
            self.p = _params((n, *sp, c, *out_sp, *k_sp, cg, g, *strides, *rhs_dil, *lhs_dil, *pad_lo))
        # batch = group: patches (depth, G*depth, 1), filter and result (og, O, 1)
        self.matmul = Matmul(dtype, g, rows, og, depth, (depth, g * depth, 1), (og, o, 1), (og, o, 1))

    def __call__(self, lhs, rhs):
        if self.fallback:
            return self.fallback(lhs, rhs)
        out = _empty(self.out)
        if self.empty:
            return (out,)
        if self.zero:
            self.fill(out.reshape(-1))
            return (out,)
        with self.lock:
            x = lhs.reshape(-1)
            if not self.direct:
                self.im2col(x, self.col, self.p)
                x = self.col
            if self.cp is not None:
                cp = self.cp
                cp.matmul(cp.asarray(x).reshape(self.rows, self.depth),
                          cp.asarray(rhs).reshape(self.depth, -1),
                          out=cp.asarray(out).reshape(self.rows, -1))
            else:
                self.matmul(x, rhs.reshape(-1), out.reshape(-1))
        return (out,)


class ScatterAdd:
    """scatter_add: the result starts as a copy of x; each update is added
    at its (wrapped, clamped) index with an atomic add."""

    def __init__(self, ins):
        x, idx, upd = ins.operands
        ax = ins.attrs["axis"]
        self.out = ins.results[0]
        self.fallback = (HostFallback(ins) if x.dtype not in kernels.DTYPES
                         or idx.dtype not in ("int32", "int64", "uint32") else None)
        if self.fallback:
            return
        P, n, Q = _prod(x.shape[:ax]), x.shape[ax], _prod(x.shape[ax + 1:])
        J = _prod(idx.shape)
        self.size = _prod(x.shape)
        self.kernel = (kernels.launch_1d(kernels.scatter_add(idx.dtype, x.dtype), P * J * Q)
                       if n > 0 else None)
        self.p = _params((P, n, Q, J))

    def __call__(self, x, idx, upd):
        if self.fallback:
            return self.fallback(x, idx, upd)
        out = _empty(self.out)
        if self.size:
            out.copy_to_device(x)
        if self.kernel is not None:
            self.kernel(idx.reshape(-1), upd.reshape(-1), out.reshape(-1), self.p)
        return (out,)


class SelectAndScatterAdd:
    """Max pooling's gradient (see kernels.select_and_scatter_add), on
    operands of rank at most 4 (padded with leading dims of 1)."""

    def __init__(self, ins):
        source, operand = ins.operands
        a = ins.attrs
        self.out = ins.results[0]
        rank = len(operand.shape)
        self.fallback = (HostFallback(ins) if rank > 4 or operand.dtype not in kernels.DTYPES
                         else None)
        if self.fallback:
            return
        ones = (1,) * (4 - rank)
        dims = (ones + tuple(source.shape) + ones + tuple(operand.shape) + ones
                + tuple(a["window_dimensions"]) + ones + tuple(a["window_strides"])
                + (0,) * (4 - rank) + tuple(lo for lo, _ in a["padding"]))
        self.p = _params(dims)
        self.fill = kernels.launch_1d(kernels.fill(operand.dtype), _prod(operand.shape))
        self.kernel = kernels.launch_1d(kernels.select_and_scatter_add(operand.dtype),
                                        _prod(source.shape))

    def __call__(self, source, operand):
        if self.fallback:
            return self.fallback(source, operand)
        out = _empty(self.out)
        if self.fill is None:
            return (out,)
        flat = out.reshape(-1)
        self.fill(flat)
        if self.kernel is not None:
            self.kernel(source.reshape(-1), operand.reshape(-1), flat, self.p)
        return (out,)


class Copy:
    """stop_gradient: a device-to-device copy."""

    def __init__(self, ins):
        self.out = ins.results[0]
        self.size = _prod(self.out.shape)

    def __call__(self, x):
        out = _empty(self.out)
        if self.size:
            out.copy_to_device(x)
        return (out,)


LOWERINGS = {
    "dot_general": Dot,
    "conv_general": Conv,
    "scatter_add": ScatterAdd,
    "select_and_scatter_add": SelectAndScatterAdd,
    "stop_gradient": Copy,
}
