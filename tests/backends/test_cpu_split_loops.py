"""Split loops (codegen.py): a kernel whose pads or concatenates change
branch along a dimension loops over that dimension once per segment,
computing only the branch each segment takes and reading without clamps,
and computes what NumPy and the reference interpreter compute."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives.shape import pad


def _kernel_sources(err):
    return [block.split("def kernel(", 1)[1] for block in err.split("[tracejit:source]")
            if "def kernel(" in block]


def _run(f, *args, capsys, monkeypatch):
    monkeypatch.setenv("TRACEJIT_LOG", "source")
    got = tracejit.jit(f, backend="cpu")(*args)
    sources = _kernel_sources(capsys.readouterr().err)
    want = tracejit.jit(f, backend="reference")(*args)
    for u, v in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    return got, sources


def gates_grad(z, c):
    """The gradient of slicing a matrix into four gates: a sum of four
    pads (a concatenate), with a column sum (a bias gradient) beside it."""
    def loss(z):
        n = z.shape[1] // 4
        i, f, g, o = (z[:, k * n:(k + 1) * n] for k in range(4))
        return tnp.sum(tnp.tanh(i) * f + g * g * c + tnp.sin(o))
    return tracejit.grad(loss)(z)


def test_gate_gradient_kernel_is_split_and_matches(capsys, monkeypatch):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4 * 5)).astype(np.float32)
    c = rng.standard_normal((6, 5)).astype(np.float32)
    got, sources = _run(lambda z, c: (gates_grad(z, c), tnp.sum(gates_grad(z, c), axis=0)),
                        z, c, capsys=capsys, monkeypatch=monkeypatch)
    split = [s for s in sources if "range(5, 10)" in s or "min(hi, 10)" in s]
    assert split, sources
    for s in split:
        assert "min(max(" not in s, s   # each segment reads its operand in place
    zi, zf, zg, zo = np.split(z, 4, axis=1)
    want = np.concatenate([(1 - np.tanh(zi) ** 2) * zf, np.tanh(zi), 2 * zg * c, np.cos(zo)], 1)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], want.sum(0), rtol=1e-5, atol=1e-5)


def test_pad_of_a_broadcast_along_the_split_dimension(capsys, monkeypatch):
    """The padded value does not depend on the split loop variable: what
    one segment knows of it (inside the pad) must not leak into the next."""
    def f(r, x):
        b = tnp.broadcast_to(r[:, None], (3, 4))
        return tnp.pad(b, ((0, 0), (2, 3))) + tnp.pad(x, ((0, 0), (5, 0))) + 1.0
    r = np.arange(3, dtype=np.float32) + 1
    x = np.ones((3, 4), np.float32) * 10
    got, _ = _run(f, r, x, capsys=capsys, monkeypatch=monkeypatch)
    want = np.pad(np.broadcast_to(r[:, None], (3, 4)), ((0, 0), (2, 3))) + \
        np.pad(x, ((0, 0), (5, 0))) + 1.0
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_along_each_axis(axis, capsys, monkeypatch):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((4, 3, 5)).astype(np.float32) for _ in range(3)]
    xs[1] = xs[1][:, :, :5] if axis != -1 else xs[1][:, :, :2]

    def f(a, b, c):
        return tnp.exp(tnp.concatenate([a, b * 2, tnp.sin(c)], axis=axis))
    got, _ = _run(f, *xs, capsys=capsys, monkeypatch=monkeypatch)
    want = np.exp(np.concatenate([xs[0], xs[1] * 2, np.sin(xs[2])], axis=axis))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_crop_interior_padding_and_column_sums(capsys, monkeypatch):
    """Negative padding (a crop), interior padding (never split), and a
    reduction over the split dimension and across it."""
    def f(x, y):
        zero = np.float32(0)
        p = pad(x, zero, config=((1, 0, 0), (-1, 3, 0))) + pad(y, zero, config=((0, 1, 0), (2, -1, 0)))
        lax_pad = pad(x, zero, config=((0, 1, 0), (0, 0, 1)))
        return p, tnp.sum(p, axis=0), tnp.sum(p, axis=1), lax_pad * 3
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.standard_normal((4, 7)).astype(np.float32)
    got, _ = _run(f, x, y, capsys=capsys, monkeypatch=monkeypatch)
    p = np.pad(x[:, 1:], ((1, 0), (0, 3))) + np.pad(y[:, :-1], ((0, 1), (2, 0)))
    np.testing.assert_allclose(got[0], p, rtol=1e-6)
    np.testing.assert_allclose(got[1], p.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], p.sum(1), rtol=1e-5, atol=1e-6)
    interior = np.zeros((5, 11), np.float32)
    interior[:4, ::2] = x
    np.testing.assert_allclose(got[3], interior * 3, rtol=1e-6)
