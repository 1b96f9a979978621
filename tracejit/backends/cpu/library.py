"""Library calls: dot_general through BLAS (2-D float32 products as
:class:`Gemm` calls of the private OpenBLAS, blas.py; others ``np.matmul``
on 2-D or batched 3-D views; transposed operands read in place; large
products split across the thread pool), and
conv_general as im2col (kernels.py) and matrix products, blocked by
images and kernel rows so that each block of patches is multiplied while
it is still in cache, the blocks of images shared by the pool's threads."""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import numpy_dtype
from . import blas, kernels
from .threads import MIN_PARALLEL_WORK, pool


def _prod(xs):
    return int(np.prod([int(x) for x in xs], dtype=np.int64))


def _free(ndim, *used):
    taken = {d for u in used for d in u}
    return [d for d in range(ndim) if d not in taken]


def _operand(name, shape, batch, first, second):
    """``name`` viewed as [B, first, second] (or 2-D without batch dims):
    a reshape when its dims are already in that order, a transposed view
    when the two groups are swapped, else a copy."""
    sizes = [_prod([shape[d] for d in g]) for g in (batch, first, second)]
    want = tuple(sizes) if batch else tuple(sizes[1:])
    order = list(batch) + list(first) + list(second)
    if order == sorted(order):
        return f"{name}.reshape({want})"
    swapped = list(batch) + list(second) + list(first)
    if swapped == sorted(swapped):
        alt = (sizes[0], sizes[2], sizes[1]) if batch else (sizes[2], sizes[1])
        return f"{name}.reshape({alt}).swapaxes(-1, -2)"
    return f"np.transpose({name}, {tuple(order)}).reshape({want})"


#: Multiply-adds of a matrix product worth splitting across threads.
MIN_PARALLEL_FLOPS = 1 << 24
#: Rows of patches (whole images) one convolution task computes.
CONV_ROWS = 2048
#: Below this many channels (per group), im2col copies whole window rows
#: from a zero-padded copy of the input instead of channel runs.
PADDED_CHANNELS = 16
#: Depth (window offsets x channels) of the patches a convolution task
#: computes and multiplies at once.
CONV_DEPTH = 512


def parallel_matmul(a, b, out):
    """``np.matmul(a, b, out=out)`` with the rows (the batch, for 3-D) of the
    result split across the thread pool, BLAS single-threaded in each."""
    def rows(lo, hi):
        if b.ndim == 2:
            matmul_into(a[lo:hi], b, out[lo:hi])
        else:
            np.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])
    pool().run(rows, out.shape[0], (), per_thread=1)   # each chunk packs b again


class Gemm:
    """One 2-D float32 dot_general as a call of the private
    OpenBLAS's gemm (blas.py) on the operands' data in place, a transposed
    operand read as such; large products split by rows or by columns of
    the result (the larger side) across the thread pool, single-threaded
    BLAS in each."""

    def __init__(self, fn, itemsize, trans_a, trans_b, m, n, k):
        self.fn, self.itemsize = fn, itemsize
        self.trans_a, self.trans_b, self.m, self.n, self.k = trans_a, trans_b, m, n, k
        self.lda = k if trans_a == blas.NO_TRANS else m
        self.ldb = n if trans_b == blas.NO_TRANS else k
        # one row of the result down is a row of A down, or a column of A^T across;
        # one column across is a column of B across, or a row of B^T down
        self.a_row = itemsize * (self.lda if trans_a == blas.NO_TRANS else 1)
        self.b_col = itemsize * (1 if trans_b == blas.NO_TRANS else self.ldb)
        # each thread packs all of the operand it does not split: split the larger side
        self.by_rows = m >= n
        self.parallel = m * n * k >= MIN_PARALLEL_FLOPS and max(m, n) > 1 and pool().n > 1

    @classmethod
    def of(cls, ins):
        """The Gemm of dot_general ``ins``, or None where it is not one
        (batch dims, another dtype, an operand that needs a copy, a zero or
        beyond-int32 size, or no private OpenBLAS)."""
        (lc, rc), (lb, rb) = ins.attrs["dimension_numbers"]
        ls, rs = ins.operands[0].shape, ins.operands[1].shape
        dtype = ins.results[0].dtype
        fn = blas.gemm_function(dtype)
        if fn is None or lb or rb or ins.operands[0].dtype != dtype or ins.operands[1].dtype != dtype:
            return None
        lf, rf = _free(len(ls), lc, lb), _free(len(rs), rc, rb)
        m, k, n = _prod([ls[d] for d in lf]), _prod([ls[d] for d in lc]), _prod([rs[d] for d in rf])
        if not all(0 < x < 2**31 for x in (m, n, k)):
            return None
        ta = blas.NO_TRANS if list(lf) + list(lc) == list(range(len(ls))) else \
            blas.TRANS if list(lc) + list(lf) == list(range(len(ls))) else None
        tb = blas.NO_TRANS if list(rc) + list(rf) == list(range(len(rs))) else \
            blas.TRANS if list(rf) + list(rc) == list(range(len(rs))) else None
        if ta is None or tb is None:
            return None
        return cls(fn, np.dtype(dtype).itemsize, ta, tb, m, n, k)

    def __call__(self, a: int, b: int, c: int):
        """C = A @ B on data addresses."""
        if not self.parallel:
            self.rows(0, self.m, a, b, c)
        elif self.by_rows:
            pool().run(self.rows, self.m, (a, b, c), per_thread=1)
        else:
            pool().run(self.columns, self.n, (a, b, c), per_thread=1)

    def rows(self, lo, hi, a, b, c):
        self.fn(blas.ROW_MAJOR, self.trans_a, self.trans_b, hi - lo, self.n, self.k, 1.0,
                a + lo * self.a_row, self.lda, b, self.ldb, 0.0,
                c + lo * self.n * self.itemsize, self.n)

    def columns(self, lo, hi, a, b, c):
        self.fn(blas.ROW_MAJOR, self.trans_a, self.trans_b, self.m, hi - lo, self.k, 1.0,
                a, self.lda, b + lo * self.b_col, self.ldb, 0.0,
                c + lo * self.itemsize, self.n)


def matmul_into(a, b, out):
    """``np.matmul(a, b, out=out)`` for 2-D arrays, on the private OpenBLAS
    where it has a gemm for their dtype and they are C-contiguous."""
    fn = blas.gemm_function(out.dtype)
    m, k = a.shape
    n = b.shape[1]
    if fn is None or a.dtype != out.dtype or b.dtype != out.dtype or \
            not all(0 < x < 2**31 for x in (m, n, k)) or \
            not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous):
        np.matmul(a, b, out=out)
        return
    fn(blas.ROW_MAJOR, blas.NO_TRANS, blas.NO_TRANS, m, n, k, 1.0, a.ctypes.data, k,
       b.ctypes.data, n, 0.0, out.ctypes.data, n)


def dot_call(ins, lhs: str, rhs: str, out: str) -> str:
    """Python source of one matrix product that writes dot_general into ``out``."""
    (lc, rc), (lb, rb) = ins.attrs["dimension_numbers"]
    ls, rs = ins.operands[0].shape, ins.operands[1].shape
    lf, rf = _free(len(ls), lc, lb), _free(len(rs), rc, rb)
    a = _operand(lhs, ls, lb, lf, lc)
    b = _operand(rhs, rs, rb, rc, rf)
    B = _prod([ls[d] for d in lb])
    M, N = _prod([ls[d] for d in lf]), _prod([rs[d] for d in rf])
    o = f"{out}.reshape({(B, M, N) if lb else (M, N)})"
    K = _prod([ls[d] for d in lc])
    if B * M * N * K >= MIN_PARALLEL_FLOPS and (B if lb else M) > 1 and pool().n > 1:
        return f"parallel_matmul({a}, {b}, {o})"
    return f"np.matmul({a}, {b}, out={o})"


def _window_table(size, out, k, stride, rhs_dil, lhs_dil, pad_lo):
    """t[o * k + j]: the input index that output ``o`` reads at window offset
    ``j`` along one spatial dim, -1 where that is padding or a hole that the
    lhs dilation inserts."""
    q = (np.arange(out)[:, None] * stride + np.arange(k)[None, :] * rhs_dil - pad_lo).ravel()
    ok = (q >= 0) & (q % lhs_dil == 0) & (q // lhs_dil < size)
    return np.ascontiguousarray(np.where(ok, q // lhs_dil, -1), np.int64)


class Conv:
    """conv_general as im2col + matrix products, blocked for the cache.

    The rows of the patch matrix (image, output position) are split in
    tasks of whole images, about ``CONV_ROWS`` rows each, that the pool's
    threads take; its depth (window offset, channel) in blocks of whole
    kernel rows, about ``CONV_DEPTH`` deep, so that a task's block of
    patches is multiplied while it is still in cache. float32 products
    accumulate the depth blocks into the task's rows of the result (gemm
    with beta = 1), the groups' weights and results read in place; other
    dtypes take the whole depth at once through ``np.matmul``.

    A large depth is what a kernel gradient has (lowered as a convolution
    whose window is the output cotangent: depth = output positions x batch,
    9216 for the CIFAR-10 CNN's second layer): one im2col of it was a
    59 MB matrix, and the product memory bound."""

    def __init__(self, ins):
        a = ins.attrs
        lhs, rhs = ins.operands
        out = ins.results[0]
        nd = len(lhs.shape) - 2
        pad3 = 3 - nd
        self.groups = g = a["feature_group_count"]
        n, c, o = lhs.shape[0], lhs.shape[-1], rhs.shape[-1]
        self.n, self.o, self.cg, self.og = n, o, c // g, o // g
        x_shape = (n,) + (1,) * pad3 + tuple(lhs.shape[1:-1])
        strides = (1,) * pad3 + tuple(a["window_strides"])
        rhs_dil = (1,) * pad3 + tuple(a["rhs_dilation"])
        lhs_dil = (1,) * pad3 + tuple(a["lhs_dilation"])
        pad_lo = (0,) * pad3 + tuple(lo for lo, _ in a["padding"])
        out_sp = (1,) * pad3 + tuple(out.shape[1:-1])
        k_sp = (1,) * pad3 + tuple(rhs.shape[:-2])
        self.rows = n * _prod(out_sp)
        self.per_image = _prod(out_sp)
        self.depth = _prod(k_sp) * self.cg
        self.dtype = numpy_dtype(lhs.dtype)
        self.itemsize = self.dtype.itemsize
        # a 1x1 stride-1 convolution without padding is already a matrix product
        self.direct = (g == 1 and _prod(k_sp) == 1 and strides == (1, 1, 1)
                       and lhs_dil == (1, 1, 1) and all(p == 0 for p in pad_lo)
                       and all(lo == 0 and hi == 0 for lo, hi in a["padding"]))
        self.empty = self.rows == 0 or o == 0 or self.depth == 0
        self.scratch = 0
        if self.direct or self.empty:
            return
        self.gemm = blas.gemm_function(lhs.dtype) if lhs.dtype == rhs.dtype == out.dtype and \
            all(0 < x < 2**31 for x in (self.rows, self.depth, o)) else None
        # depth blocks of whole kernel rows (kd, kh), about CONV_DEPTH deep
        kernel_rows, self.row_depth = k_sp[0] * k_sp[1], k_sp[2] * self.cg
        per_block = kernel_rows if self.gemm is None else \
            max(1, min(kernel_rows, CONV_DEPTH // self.row_depth))
        self.blocks = [(k0, min(k0 + per_block, kernel_rows))
                       for k0 in range(0, kernel_rows, per_block)]
        self.block_depth = per_block * self.row_depth
        threads = pool().n if self.rows * self.depth >= MIN_PARALLEL_WORK else 1
        # too few images to share out (a first layer's kernel gradient: the
        # image's 3 channels are its images; one image): the threads share
        # the depth blocks instead, each summing its own part of the product
        self.depth_parts = threads if (
            self.gemm is not None and threads > 1 and n < 2 * threads and
            len(self.blocks) >= threads) else 1
        if self.depth_parts > 1:
            self.partials = np.zeros((self.depth_parts - 1, self.rows, o), self.dtype)
        # else tasks of whole images, about CONV_ROWS rows each, as many for each thread
        self.threads = threads if n > 1 and self.depth_parts == 1 else 1
        self.per_thread = max(1, -(-self.rows // (CONV_ROWS * self.threads)))
        self.tasks = min(n, self.threads * self.per_thread)
        self.col_size = self.rows * self.block_depth * self.depth_parts
        self.scratch = self.col_size
        # a few channels (an image's 3): copy whole window rows from a padded
        # copy, kept in the scratch buffer after the patches
        self.padded = None
        if g == 1 and self.cg < PADDED_CHANNELS and lhs_dil == (1, 1, 1) and rhs_dil[2] == 1 \
                and min(pad_lo) >= 0:
            shape = tuple(max((m - 1) * st + (k - 1) * r + 1, lo + size) for m, st, k, r, lo, size
                          in zip(out_sp, strides, k_sp, rhs_dil, pad_lo, x_shape[1:]))
            self.padded = (n,) + shape + (c,)
            self.scratch += _prod(self.padded)
            self.x_shape = x_shape + (c,)
            # the input's place in the padded copy, and the borders around it
            self.interior = (slice(None),) + tuple(slice(lo, lo + size) for lo, size
                                                   in zip(pad_lo, x_shape[1:]))
            self.borders = [(slice(None),) * d + (border,) for d, (lo, size) in
                            enumerate(zip(pad_lo, x_shape[1:]), start=1)
                            for border in (slice(0, lo), slice(lo + size, None))]
            self.im2col = kernels.get("im2col_padded", lhs.dtype, lhs.dtype)
            self.dims = [[np.array(self.padded + out_sp + k_sp + strides + rhs_dil[:2] +
                                   (k0, k1), np.int64) for k0, k1 in self.blocks]]
            return
        self.im2col = kernels.get("im2col", lhs.dtype, "int64", "int64", "int64", lhs.dtype,
                                  lhs.dtype)
        self.tables = [_window_table(*args) for args in zip(
            x_shape[1:], out_sp, k_sp, strides, rhs_dil, lhs_dil, pad_lo)]
        self.zero = np.zeros(1, self.dtype)
        self.dims = [[np.array(x_shape + (g, self.cg) + out_sp + k_sp + (k, k0, k1), np.int64)
                      for k0, k1 in self.blocks] for k in range(g)]

    def __call__(self, lhs, rhs, out, scratch):
        w = rhs.reshape(self.depth, -1)
        out2 = out.reshape(self.rows, -1)
        if self.empty:
            out2[...] = 0
            return
        if self.direct:
            parallel_matmul(lhs.reshape(self.rows, -1), w, out2)
            return
        if not out2.flags.c_contiguous:
            result = np.empty(out2.shape, out2.dtype)
            self(lhs, rhs, result, scratch)
            out2[...] = result
            return
        lhs, w = np.ascontiguousarray(lhs), np.ascontiguousarray(w)
        col = scratch[:self.col_size]
        if self.padded is not None:
            padded = scratch[self.col_size:self.scratch].reshape(self.padded)
            for border in self.borders:
                padded[border] = 0
            padded[self.interior] = lhs.reshape(self.x_shape)
            addresses = (padded.ctypes.data,)
        else:
            addresses = (lhs.ctypes.data,) + tuple(t.ctypes.data for t in self.tables) + \
                (self.zero.ctypes.data,)
        args = (w, out2, col, addresses)
        if self.depth_parts > 1:
            pool().run(self.depth_part, self.depth_parts, args, per_thread=1)
            out2 += self.partials.sum(axis=0)
        elif self.threads > 1:
            pool().run(self.images, self.n, args, per_thread=self.per_thread)
        else:
            for t in range(self.tasks):
                self.images(self.n * t // self.tasks, self.n * (t + 1) // self.tasks, *args)

    def depth_part(self, part, end, w, out2, col, addresses):
        """Parts [part, end) of the depth blocks, over all images, each into
        the result (part 0) or its own partial sum."""
        size = self.rows * self.block_depth
        for p in range(part, end):
            into = out2 if p == 0 else self.partials[p - 1]
            blocks = range(len(self.blocks) * p // self.depth_parts,
                           len(self.blocks) * (p + 1) // self.depth_parts)
            self.images(0, self.n, w, into, col[p * size:(p + 1) * size], addresses, blocks)

    def images(self, lo, hi, w, out2, col, addresses, blocks=None):
        """The result's rows of images [lo, hi): patches a depth block at a
        time (all of them, or those numbered ``blocks``), each multiplied
        while still in cache and summed into ``out2``."""
        r0, r1 = lo * self.per_image, hi * self.per_image
        block = col[r0 * self.block_depth:r1 * self.block_depth]
        blocks = range(len(self.blocks)) if blocks is None else blocks
        for k in range(self.groups):
            for first, b in enumerate(blocks):
                k0, k1 = self.blocks[b]
                d = (k1 - k0) * self.row_depth
                self.im2col(lo, hi, self.dims[k][b].ctypes.data, *addresses, block.ctypes.data)
                d0, o0 = k0 * self.row_depth, k * self.og
                if self.gemm is not None:
                    self.gemm(blas.ROW_MAJOR, blas.NO_TRANS, blas.NO_TRANS, r1 - r0, self.og, d,
                              1.0, block.ctypes.data, d,
                              w.ctypes.data + (d0 * self.o + o0) * self.itemsize, self.o,
                              0.0 if first == 0 else 1.0,
                              out2.ctypes.data + (r0 * self.o + o0) * self.itemsize, self.o)
                else:
                    patches = block[:(r1 - r0) * d].reshape(r1 - r0, d)
                    out2[r0:r1, o0:o0 + self.og] = patches @ w[d0:d0 + d, o0:o0 + self.og]
