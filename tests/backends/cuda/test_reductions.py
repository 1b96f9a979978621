"""Reduction layouts of the CUDA backend against the reference backend:
split full reductions (partials over several blocks, then a final pass),
column reductions (one thread per kept index), and the one-block-per-row
path, at sizes that are not multiples of the block, empty and single
element inputs, ties and NaNs. The simulator's thresholds are small
(plan.COLUMN_*, SPLIT_*), so tiny arrays take every layout."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends.cuda import codegen, plan


def _check(f, *args, layout=None, capsys=None, monkeypatch=None, exact=False):
    if layout is not None:
        monkeypatch.setenv("TRACEJIT_LOG", "compile")
    got = tracejit.jit(f, backend="cuda")(*args)
    want = tracejit.jit(f, backend="reference")(*args)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
        if exact or g.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)
    if layout is not None:
        assert f"reduction {layout}" in capsys.readouterr().err
    return got


def test_layout_choice():
    rs = codegen.ReductionShape
    assert plan.reduction_layout(rs(1, 10**6, False, True))[0] == "split"
    assert plan.reduction_layout(rs(1, 10**6, False, False)) == ("rows", 1)   # two phases
    assert plan.reduction_layout(rs(plan.COLUMN_THREADS, 10**6, True, True)) == ("columns", 1)
    assert plan.reduction_layout(rs(40, 3, True, True)) == ("columns", 1)     # too few rows
    layout, splits = plan.reduction_layout(rs(2, 10**6, True, True))
    assert layout == "column_split" and 2 <= splits <= plan.MAX_SPLITS
    assert plan.reduction_layout(rs(plan.SPLIT_BLOCKS, 10**6, False, True)) == ("rows", 1)
    assert plan.reduction_layout(rs(1, 3, False, True)) == ("rows", 1)      # too short to split
    layout, splits = plan.reduction_layout(rs(1, 10**9, False, True))
    assert 2 <= splits <= plan.MAX_SPLITS


@pytest.mark.parametrize("n", [37, 100])
def test_split_full_reductions(n, capsys, monkeypatch):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    x[[3, n - 5]] = x.max() + 1          # a tie for the maximum: the first index wins
    x[[7, n - 2]] = x.min() - 1
    f = lambda x: (tnp.sum(x), tnp.max(x), tnp.min(x), tnp.argmax(x), tnp.argmin(x),  # noqa: E731
                   tnp.mean(x * 2))
    got = _check(f, x, layout="split x", capsys=capsys, monkeypatch=monkeypatch)
    assert int(np.asarray(got[3])) == 3 and int(np.asarray(got[4])) == 7
    again = tracejit.jit(f, backend="cuda")(x)            # deterministic: bit-identical
    for a, b in zip(got, again):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_split_reductions_of_ints_and_nan(capsys, monkeypatch):
    xi = (np.arange(41, dtype=np.int32) * 7919) % 23 - 11
    _check(lambda x: (tnp.sum(x), tnp.max(x), tnp.argmin(x)), xi,
           layout="split x", capsys=capsys, monkeypatch=monkeypatch)
    xf = np.linspace(-1, 1, 40).astype(np.float32)
    xf[[17, 30]] = np.nan                  # the first NaN wins argmax; max is NaN
    got = _check(lambda x: (tnp.max(x), tnp.argmax(x), tnp.argmin(x)), xf)
    assert np.isnan(np.asarray(got[0])) and int(np.asarray(got[1])) == 17
    assert int(np.asarray(got[2])) == 17


def test_split_with_several_kept_indices(capsys, monkeypatch):
    x = np.arange(2 * 45, dtype=np.float32).reshape(2, 45) % 13 - 6
    _check(lambda x: (tnp.sum(x, axis=1), tnp.argmax(x, axis=1)), x,
           layout="split x", capsys=capsys, monkeypatch=monkeypatch)


@pytest.mark.parametrize("shape,axis,layout", [((5, 40), 0, "column_split x2"),
                                               ((3, 4, 17), (0, 1), "column_split x4"),
                                               ((3, 40), 0, "columns")])
def test_column_reductions(shape, axis, layout, capsys, monkeypatch):
    x = (np.arange(np.prod(shape)) % 11 - 5).astype(np.float32).reshape(shape)
    f = lambda x: (tnp.sum(x, axis=axis), tnp.max(x, axis=axis),   # noqa: E731
                   tnp.mean(x * x, axis=axis, keepdims=True))
    got = _check(f, x, layout=layout, capsys=capsys, monkeypatch=monkeypatch)
    again = tracejit.jit(f, backend="cuda")(x)            # deterministic: bit-identical
    for a, b in zip(got, again):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_column_argmax_ties_and_ints(capsys, monkeypatch):
    x = np.zeros((6, 20), np.int64)
    x[2, ::2] = 5
    x[4, :] = 5                          # ties in every even column: row 2 wins
    got = _check(lambda x: (tnp.argmax(x, axis=0), tnp.argmin(x, axis=0), tnp.sum(x, axis=0)),
                 x, layout="column_split x3", capsys=capsys, monkeypatch=monkeypatch)
    np.testing.assert_array_equal(np.asarray(got[0]), np.where(np.arange(20) % 2, 4, 2))


def test_empty_and_single_element_reductions():
    _check(lambda x: (tnp.sum(x), tnp.sum(x * 2, axis=0)), np.zeros((0, 3), np.float32))
    _check(lambda x: (tnp.sum(x, axis=1),), np.zeros((20, 0), np.float32))
    _check(lambda x: (tnp.sum(x), tnp.max(x), tnp.argmax(x)), np.array([2.5], np.float32))


def test_row_softmax_keeps_one_block_per_row(capsys, monkeypatch):
    x = np.linspace(-3, 3, 3 * 21).astype(np.float32).reshape(3, 21)

    def softmax(x):
        e = tnp.exp(x - tnp.max(x, axis=1, keepdims=True))
        return e / tnp.sum(e, axis=1, keepdims=True)
    _check(softmax, x, layout="rows", capsys=capsys, monkeypatch=monkeypatch)
