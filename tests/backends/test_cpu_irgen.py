"""The direct LLVM translation of kernels (backends/cpu/irgen.py) computes
bit for bit what Numba's compilation of the same kernel source computes,
and kernels it does not cover are compiled by Numba."""
import re

import numpy as np
import pytest

import tracejit
import tracejit.lax as lax
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.backends.cpu import cache, irgen

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-40, -1e-30, 88.0, -104.0, 700.0, 1e30,
           np.inf, -np.inf, np.nan, 3.0, -3.0, 1e-8]


def floats(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    flat = x.reshape(-1)
    flat[:len(SPECIAL)] = np.array(SPECIAL[:flat.size], dtype)
    return x


def ints(dtype, shape, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(-9, 10, shape).astype(dtype)
    info = np.iinfo(dtype)
    x.reshape(-1)[:6] = np.array([0, -1, 1, info.min, info.max, 7], dtype)
    return x


def elementwise_float(x, y):
    return (tnp.exp(x), tnp.log(x), tnp.tanh(x), tnp.log1p(x), tnp.expm1(x), lax.logistic(x),
            tnp.sqrt(x), tnp.abs(x), tnp.sign(x), tnp.maximum(x, y), tnp.minimum(x, y),
            tnp.where(x > y, x, y), tnp.floor(x), tnp.ceil(x), tnp.round(x), tnp.sin(x),
            tnp.cos(x), x / y, x * y - x, tnp.isfinite(x), (x + 1) * 0.5 + y * y,
            tnp.clip(x, -1, 1), x.astype(np.int32), x.astype(np.int64))


def elementwise_int(a, b):
    return (tnp.floor_divide(a, b), tnp.remainder(a, b), tnp.abs(a), tnp.sign(a),
            tnp.maximum(a, b), tnp.minimum(a, b), a * b + a, a - b, a < b, a == b,
            tnp.bitwise_and(a, b), tnp.bitwise_xor(a, b), tnp.invert(a), a.astype(np.float32),
            a / b)


def logical(p, q):
    return (tnp.logical_and(p, q), tnp.logical_or(p, q), tnp.logical_not(p), tnp.any(p, axis=1),
            tnp.all(q, axis=0), tnp.where(p, 1.5, -2.0))


def reductions(x):
    e = tnp.exp(x - x.max(axis=1, keepdims=True))
    return (x.sum(axis=1), x.max(axis=0), x.min(axis=1), tnp.argmax(x, axis=1),
            tnp.argmin(x, axis=0), x.mean(), e / e.sum(axis=1, keepdims=True),
            tnp.prod(x[:, :3], axis=1))


def gathers(x, idx):
    return tnp.take_along_axis(x, idx[:, None], axis=1), x[tnp.arange(x.shape[0]), idx]


def gather_grad(x, idx):
    return tracejit.grad(lambda x: tnp.sum(tnp.tanh(x[tnp.arange(x.shape[0]), idx])))(x)


def conv_pool_grad(x, w):
    def loss(x, w):
        h = nn.conv2d(x, w, padding="SAME")
        return tnp.sum(nn.max_pool(h, 3, 2, "SAME") ** 2)
    return tracejit.grad(loss, argnums=(0, 1))(x, w)


CASES = {
    "float32": (elementwise_float, lambda: (floats(np.float32, (4, 9)),
                                            floats(np.float32, (4, 9), 2)[::-1].copy())),
    "float64": (elementwise_float, lambda: (floats(np.float64, (4, 9)), floats(np.float64, (4, 9), 3))),
    "int32": (elementwise_int, lambda: (ints(np.int32, (3, 7)), ints(np.int32, (3, 7), 2))),
    "int64": (elementwise_int, lambda: (ints(np.int64, (3, 7)), ints(np.int64, (3, 7), 2))),
    "bool": (logical, lambda: (ints(np.int64, (3, 5)) > 0, ints(np.int64, (3, 5), 2) > 0)),
    "reductions": (reductions, lambda: (floats(np.float32, (5, 9)),)),
    "gathers": (gathers, lambda: (floats(np.float32, (4, 6)), np.array([0, -1, 5, 9], np.int32))),
    "gather_grad": (gather_grad, lambda: (floats(np.float32, (4, 6)), np.array([0, -1, 5, 2], np.int64))),
    "conv_pool_grad": (conv_pool_grad, lambda: (floats(np.float32, (2, 6, 6, 3)) / 4,
                                                floats(np.float32, (3, 3, 3, 4), 5) / 4)),
}


def compiled_outputs(f, args, compiler, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path / compiler))
    monkeypatch.setenv("TRACEJIT_COMPILER", compiler)
    before = cache.stats()["numba_fallbacks"]
    with np.errstate(all="ignore"):
        out = tracejit.jit(f, backend="cpu")(*args)
    return [np.array(o) for o in tracejit.tree_leaves(out)], cache.stats()["numba_fallbacks"] - before


@pytest.mark.parametrize("case", sorted(CASES))
def test_translated_kernels_match_numba_bit_for_bit(case, tmp_path, monkeypatch):
    f, make = CASES[case]
    args = make()
    got, fallbacks = compiled_outputs(f, args, "llvm", tmp_path, monkeypatch)
    assert fallbacks == 0   # every kernel of these programs is translated
    want, _ = compiled_outputs(f, args, "numba", tmp_path, monkeypatch)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g.reshape(-1).view(np.uint8), w.reshape(-1).view(np.uint8))   # NaNs too


def test_kernels_it_does_not_cover_are_compiled_by_numba(tmp_path, monkeypatch):
    def f(x, n):
        return lax.erf(x) * 2, n ** 3   # math.erf and integer power: not translated
    args = (floats(np.float32, (3, 4)), ints(np.int64, (3, 4)))
    got, fallbacks = compiled_outputs(f, args, "llvm", tmp_path, monkeypatch)
    assert fallbacks >= 1
    with np.errstate(all="ignore"):
        want = tracejit.jit(f, backend="reference")(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1], want[1])


HEAD = "import numpy as np\nfrom numba import carray\n\n\n"


@pytest.mark.parametrize("body", [
    "    i = 0\n    while i < hi:\n        i += 1\n",                              # while loop
    "    a = carray(p_a, (3,))\n    a[0] = np.hypot(a[1], a[2])\n",              # unknown call
    "    a = carray(p_a, (3,))\n    t = a[0]\n    t = np.int64(1)\n",              # type change
    "    a = carray(p_a, (3,))\n    a[0] = a[1] ** a[2]\n",                      # float power
    "    a = carray(p_a, (3,))\n    for i in range(lo, hi, 2):\n        a[i] = 0\n",  # stepped range
    "    a = carray(p_a, (3,))\n    a[0] = a[1] // a[2]\n",                      # float floor division
])
def test_translation_refuses_what_it_does_not_cover(body):
    with pytest.raises(irgen.Unsupported):
        irgen.translate(HEAD + "def kernel(lo, hi, dims, p_a):\n" + body, "k_test", ("float64",))


def test_translation_is_a_valid_object():
    src = HEAD + ("def kernel(lo, hi, dims, p_a, p_o):\n    n = dims[0]\n    a = carray(p_a, (n,))\n"
                  "    o = carray(p_o, (n,))\n    for i in range(lo, hi):\n        o[i] = a[i] * 2.0\n")
    obj, symbol = irgen.compile_object(src, "k_double", ("float64", "float64"))
    assert obj[:4] == b"\x7fELF" and symbol == "k_double"


def _kernel(body, args="p_a, p_o"):
    return HEAD + f"def kernel(lo, hi, dims, {args}):\n    n = dims[0]\n" + body


def test_loop_indices_are_not_wrapped_so_loops_vectorize_without_gathers():
    # indices from range(lo, hi), range(n) and their sums are >= 0: no
    # wraparound select, so LLVM vectorizes with plain loads and stores
    src = _kernel("    m = dims[1]\n    k = dims[2]\n    a = carray(p_a, (n, k))\n"
                  "    o = carray(p_o, (n, m))\n    p = carray(p_p, (n, m))\n"
                  "    for i in range(lo, hi):\n        for j in range(m):\n"
                  "            t = a[i, j + 4]\n"
                  "            o[i, j] = t * 2.0\n            p[i, j] = t + 1.0\n",
                  "p_a, p_o, p_p")
    text = irgen.translate(src, "k_test", ("float32",) * 3)
    optimized = irgen.optimize(text)
    assert re.search(r"<\d+ x (float|double)>", optimized)   # vectorized
    assert "masked.gather" not in optimized and "masked.scatter" not in optimized


@pytest.mark.parametrize("body, want", [
    # an index that may be negative still wraps once, as Numba's basic indexing does
    ("    a = carray(p_a, (n,))\n    o = carray(p_o, (n,))\n"
     "    for i in range(lo, hi):\n        o[i] = a[i - 1]\n", [4.0, 1.0, 2.0, 3.0]),
    ("    a = carray(p_a, (n,))\n    o = carray(p_o, (n,))\n"
     "    for i in range(-2, 2):\n        o[i] = a[i]\n", [1.0, 2.0, 3.0, 4.0]),
    ("    a = carray(p_a, (n,))\n    o = carray(p_o, (n,))\n    j = 0\n"
     "    for i in range(lo, hi):\n        j = i - 4\n        o[i] = a[j]\n", [1.0, 2.0, 3.0, 4.0]),
])
def test_indices_that_may_be_negative_still_wrap(body, want, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    fn = cache.load(_kernel(body), ("float32", "float32"))
    a, o = np.array([1, 2, 3, 4], np.float32), np.zeros(4, np.float32)
    dims = np.array([4], np.int64)
    fn(0, 4, dims.ctypes.data, a.ctypes.data, o.ctypes.data)
    np.testing.assert_array_equal(o, want)
