"""The cpu backend's convolution (library.Conv: im2col blocked by images
and kernel rows, float32 depth blocks accumulated by gemm with beta = 1)
computes what the reference interpreter computes, for drawn geometries:
1-, 2- and 3-D, strides, paddings (negative too), both dilations, feature
groups, size-1 and odd sizes. Small CONV_ROWS and CONV_DEPTH make small
shapes take several tasks and depth blocks, shared by the pool's threads
by images, or, with fewer images than threads, by depth blocks summed."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.backends.cpu import library
from tracejit.testing import check_grads

# the fixture only sets two constants, the same for every example
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["channel runs", "padded rows"])
def small_blocks(request, monkeypatch):
    # both im2col kernels: channel runs, or window rows of a padded copy
    monkeypatch.setattr(library, "PADDED_CHANNELS", 0 if request.param == "channel runs" else 16)
    monkeypatch.setattr(library, "CONV_ROWS", 7)
    monkeypatch.setattr(library, "CONV_DEPTH", 5)
    monkeypatch.setattr(library, "MIN_PARALLEL_WORK", 0)   # the pool's threads share them


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    window = [draw(st.integers(1, 3)) for _ in range(nd)]
    rhs_dil = [draw(st.integers(1, 2)) for _ in range(nd)]
    lhs_dil = [draw(st.integers(1, 2)) for _ in range(nd)]
    strides = [draw(st.integers(1, 3)) for _ in range(nd)]
    padding = [(draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(nd)]
    sizes = []
    for k, rd, ld, (lo, hi) in zip(window, rhs_dil, lhs_dil, padding):
        # the dilated, padded input holds at least one window
        need = (k - 1) * rd + 1 - lo - hi
        least = max(1, -(-(need - 1) // ld) + 1)
        sizes.append(draw(st.integers(least, least + 4)))
    batch = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((batch, *sizes, cg * groups)).astype(np.float32)
    w = rng.standard_normal((*window, cg, og * groups)).astype(np.float32)
    attrs = dict(window_strides=tuple(strides), padding=tuple(padding),
                 lhs_dilation=tuple(lhs_dil), rhs_dilation=tuple(rhs_dil),
                 feature_group_count=groups)
    return x, w, attrs


def _both(fun, *args):
    got = tracejit.jit(fun, backend="cpu")(*args)
    want = tracejit.jit(fun, backend="reference")(*args)
    return tracejit.tree_leaves(got), tracejit.tree_leaves(want)


def _close(got, want, rtol):
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * max(1.0, np.abs(w).max(initial=0)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@SETTINGS
@given(case=conv_cases())
def test_conv_matches_reference(small_blocks, dtype, case):
    x, w, attrs = case
    got, want = _both(lambda x, w: lax.conv_general(x, w, **attrs),
                      x.astype(dtype), w.astype(dtype))
    _close(got, want, 1e-5 if dtype == "float32" else 1e-12)


@SETTINGS
@given(case=conv_cases())
def test_conv_gradients_match_reference(small_blocks, case):
    """Both cotangents: the input's is a convolution with the flipped
    kernel, the kernel's a convolution whose window is the output
    cotangent (a deep patch matrix, several depth blocks)."""
    x, w, attrs = case

    def loss(x, w):
        y = lax.conv_general(x, w, **attrs)
        return (y * y).sum()
    got, want = _both(tracejit.value_and_grad(loss, argnums=(0, 1)), x, w)
    _close(got, want, 2e-5)


def test_conv_gradients_finite_differences(small_blocks):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 6, 4))
    w = rng.standard_normal((3, 2, 2, 6))
    attrs = dict(window_strides=(2, 1), padding=((1, 1), (0, 2)), lhs_dilation=(1, 1),
                 rhs_dilation=(1, 2), feature_group_count=2)
    check_grads(tracejit.jit(lambda x, w: lax.conv_general(x, w, **attrs), backend="cpu"),
                (x, w), order=1)


def test_cnn_layer_shapes_in_blocks():
    """The CIFAR-10 CNN's second layer and its kernel gradient at the
    default block sizes (several tasks, depth blocks of one kernel row)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 12, 12, 64)).astype(np.float32)
    w = (rng.standard_normal((5, 5, 64, 64)) * 0.05).astype(np.float32)

    def loss(x, w):
        y = lax.conv_general(x, w, (1, 1), ((2, 2), (2, 2)))
        return (y * y).sum()
    got, want = _both(tracejit.value_and_grad(loss, argnums=(0, 1)), x, w)
    _close(got, want, 1e-4)


@st.composite
def pool_cases(draw):
    """Windows over any of the 4 dims (pooling slides over the spatial
    ones; batch and channels take window 1, stride 1, no padding), ties
    from integer-valued inputs, -inf and NaN."""
    shape, window, strides, padding = [], [], [], []
    for d in range(4):
        slides = d in (1, 2) or draw(st.integers(0, 4)) == 0
        k = draw(st.integers(1, 3)) if slides else 1
        window.append(k)
        strides.append(draw(st.integers(1, 3)) if slides else 1)
        padding.append((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) if slides
                       else (0, 0))
        shape.append(draw(st.integers(k, k + 5)) if slides else draw(st.integers(1, 9)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-3, 4, shape).astype(np.float32)
    if draw(st.booleans()):
        x.flat[rng.integers(0, x.size)] = draw(st.sampled_from([-np.inf, np.nan]))
    return x, tuple(window), tuple(strides), tuple(padding)


@SETTINGS
@given(case=pool_cases())
def test_max_pool_gradient_matches_reference(case):
    x, window, strides, padding = case

    def loss(x):
        y = lax.reduce_window(x, "max", window, strides, padding)
        return (tnp.where(tnp.isfinite(y), y, 0) * tnp.arange(y.size, dtype=y.dtype).reshape(y.shape)).sum()
    got, want = _both(tracejit.grad(loss), x)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("channels", [3, 20])   # padded window rows; channel runs
@pytest.mark.parametrize("strides, padding, rhs_dilation", [
    ((1, 1), ((2, 2), (2, 2)), (1, 1)),
    ((2, 3), ((1, 0), (0, 2)), (2, 1)),
    ((1, 2), ((0, 0), (3, 1)), (1, 1)),
])
def test_conv_scratch_garbage(channels, strides, padding, rhs_dilation):
    """Conv's scratch comes from the plan's arena, holding whatever the
    instructions before it left there: NaN in it must not reach the result
    (the padded copy's borders are zeroed on every call)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 9, 8, channels)).astype(np.float32)
    w = rng.standard_normal((3, 2, channels, 4)).astype(np.float32)
    attrs = dict(window_strides=strides, padding=padding, lhs_dilation=(1, 1),
                 rhs_dilation=rhs_dilation, feature_group_count=1)
    want = np.asarray(tracejit.jit(lambda x, w: lax.conv_general(x, w, **attrs),
                                   backend="reference")(x, w))
    t = lambda shape: SimpleNamespace(shape=shape, dtype="float32")   # noqa: E731
    conv = library.Conv(SimpleNamespace(attrs=attrs, operands=[t(x.shape), t(w.shape)],
                                        results=[t(want.shape)]))
    scratch = np.full(conv.scratch, np.nan, np.float32)
    for _ in range(2):
        out = np.full(want.shape, np.nan, np.float32)
        conv(x, w, out, scratch)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        scratch[:] = np.nan
