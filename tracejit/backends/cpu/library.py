"""Library calls: dot_general through BLAS (``np.matmul`` on 2-D or batched
3-D views, transposed operands passed as views so BLAS reads them in
place; large products split by rows across the thread pool), and
conv_general as im2col (kernels.py) and a matrix product per feature
group, done a chunk of images at a time, each chunk's patches multiplied
while they are still in cache, the chunks shared by the pool's threads."""
from __future__ import annotations

import numpy as np

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
#: Rows of patches a convolution chunk computes and multiplies at once.
CONV_ROWS = 1024


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


class Conv:
    """conv_general as im2col + matrix products, on a scratch buffer."""

    def __init__(self, ins):
        a = ins.attrs
        lhs, rhs = ins.operands
        out = ins.results[0]
        nd = len(lhs.shape) - 2
        pad3 = 3 - nd
        self.x_shape = (lhs.shape[0],) + (1,) * pad3 + tuple(lhs.shape[1:])
        self.strides = (1,) * pad3 + tuple(a["window_strides"])
        self.rhs_dil = (1,) * pad3 + tuple(a["rhs_dilation"])
        self.lhs_dil = (1,) * pad3 + tuple(a["lhs_dilation"])
        self.pad_lo = (0,) * pad3 + tuple(lo for lo, _ in a["padding"])
        self.groups = g = a["feature_group_count"]
        n, c, o = lhs.shape[0], lhs.shape[-1], rhs.shape[-1]
        self.cg, self.og = c // g, o // g
        self.out_sp = (1,) * pad3 + tuple(out.shape[1:-1])
        self.k_sp = (1,) * pad3 + tuple(rhs.shape[:-2])
        self.rows = n * _prod(self.out_sp)
        self.depth = _prod(self.k_sp) * self.cg
        self.col_shape = (n,) + self.out_sp + self.k_sp + (self.cg,)
        # a 1x1 stride-1 convolution without padding is already a matrix product
        self.direct = (g == 1 and _prod(self.k_sp) == 1 and self.strides == (1, 1, 1)
                       and self.lhs_dil == (1, 1, 1) and all(p == 0 for p in self.pad_lo)
                       and all(lo == 0 and hi == 0 for lo, hi in a["padding"]))
        self.scratch = 0 if self.direct else _prod(self.col_shape)
        self.parallel = self.scratch >= MIN_PARALLEL_WORK and n > 1
        if not self.direct:
            self.im2col = kernels.get("im2col", lhs.dtype, lhs.dtype)
            self.dims = np.array(self.x_shape + self.out_sp + self.k_sp + (self.cg, 0) +
                                 self.strides + self.rhs_dil + self.lhs_dil + self.pad_lo, np.int64)

    def __call__(self, lhs, rhs, out, scratch):
        w = rhs.reshape(self.depth, -1)
        out2 = out.reshape(self.rows, -1)
        if self.direct:
            parallel_matmul(lhs.reshape(self.rows, -1), w, out2)
            return
        col = scratch[:self.scratch].reshape(self.rows, self.depth)
        n = self.x_shape[0]
        per_image = self.rows // n if n else 0
        x_address, col_address = lhs.ctypes.data, col.ctypes.data
        for k in range(self.groups):
            self.dims[12] = k * self.cg
            wk = w if self.groups == 1 else np.ascontiguousarray(w[:, k * self.og:(k + 1) * self.og])

            def images(lo, hi):
                # patches of these images, then their product while still in cache
                self.im2col(lo, hi, self.dims.ctypes.data, x_address, col_address)
                rows = slice(lo * per_image, hi * per_image)
                if self.groups == 1:
                    matmul_into(col[rows], wk, out2[rows])
                else:
                    out2[rows, k * self.og:(k + 1) * self.og] = col[rows] @ wk
            if self.parallel:
                # chunks of about CONV_ROWS rows: the patches stay in cache
                chunks = max(1, min(n, self.rows // CONV_ROWS))
                pool().run(images, n, (), per_thread=max(1, chunks // pool().n))
            else:
                images(0, n)
