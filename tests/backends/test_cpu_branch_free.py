"""Kernels choose values without branches (snippets.py: ``select``, ``&``,
``|``), which keeps Numba's compile time linear in the kernel's length, and
compute what the reference interpreter computes."""
import re

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp

# A Python conditional expression or short-circuit operator in kernel source.
BRANCH = re.compile(r" if .* else |\band\b|\bor\b")


def my_func(a, b):
    """The book's my_func (chapter 9), unrolled: a long scalar chain whose
    gradient is full of selects."""
    z = 0
    for i in range(12):
        z = a * tnp.cos(z + i) + z * tnp.sin(b - i)
    return z


def choices(x, y, k, m):
    """Every elementwise choice the CPU table makes without a branch."""
    return (tnp.maximum(x, y), tnp.minimum(x, y), tnp.sign(x), tnp.where(x > y, x, y),
            tnp.maximum(k, 3), tnp.minimum(k, -2), tnp.sign(k), tnp.max(k, axis=1),
            tnp.min(k, axis=1), m & (x > 0), m | (y > 0), tnp.any(m, axis=1),
            tnp.all(m, axis=1), tnp.logical_xor(m, x > y))


def _kernel_sources(err):
    return [block for block in err.split("[tracejit:source]") if "def kernel(" in block]


def test_scalar_chain_gradient_matches_reference_and_has_no_branches(capsys, monkeypatch):
    monkeypatch.setenv("TRACEJIT_LOG", "source")
    f = tracejit.value_and_grad(my_func, argnums=(0, 1))
    args = (np.float32(0.2), np.float32(0.3))
    got = tracejit.jit(f, backend="cpu")(*args)
    sources = _kernel_sources(capsys.readouterr().err)
    want = tracejit.jit(f, backend="reference")(*args)
    for u, v in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert sources
    for src in sources:
        body = src.split("def kernel(", 1)[1]
        assert not BRANCH.search(body), body


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_choices_match_reference_with_nan_and_signed_zero(dtype, capsys, monkeypatch):
    monkeypatch.setenv("TRACEJIT_LOG", "source")
    x = np.array([[np.nan, 1.0, -0.0, 0.0, -2.5, np.inf],
                  [3.0, np.nan, 0.0, -0.0, -np.inf, 7.0]], dtype)
    y = np.array([[0.5, np.nan, 0.0, -0.0, -2.5, 1.0],
                  [3.0, 2.0, np.nan, -1.0, -np.inf, np.inf]], dtype)
    k = np.array([[-7, 0, 3, 9, -2, 1], [5, -5, 2, 2, 0, -9]], np.int32)
    m = np.array([[True, False, True, False, True, True],
                  [False, False, False, False, False, True]])
    got = tracejit.jit(choices, backend="cpu")(x, y, k, m)
    sources = _kernel_sources(capsys.readouterr().err)
    want = tracejit.jit(choices, backend="reference")(x, y, k, m)
    for u, v in zip(got, want):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
        if u.dtype.kind == "f":   # the sign of zero too
            np.testing.assert_array_equal(np.signbit(u), np.signbit(v))
    assert sources
    for src in sources:
        body = src.split("def kernel(", 1)[1]
        assert not BRANCH.search(body), body
