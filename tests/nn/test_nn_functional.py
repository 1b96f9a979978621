"""tracejit.nn functional ops against NumPy references written here (direct
loops for convolutions and pooling, TensorFlow's formulas for LRN and the
losses), and their gradients against central finite differences.

Ops run eagerly (the reference interpreter evaluates each primitive); a few
run under jit on the default backend at the end."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, random

SETTINGS = settings(max_examples=25, deadline=None)
rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# --- references -------------------------------------------------------------------
def tf_padding(n, k, s, d, padding):
    """(output size, (pad low, pad high)) of one spatial dim, TensorFlow's rule."""
    span = (k - 1) * d + 1
    if padding == "VALID":
        return -(-(n - span + 1) // s), (0, 0)
    out = -(-n // s)
    total = max((out - 1) * s + span - n, 0)
    return out, (total // 2, total - total // 2)


def ref_conv(x, w, strides, padding, dilations):
    """Direct loop: y[n, o..., :] = sum over the window of x[n, o*s + k*d, :] @ w[k]."""
    nd = x.ndim - 2
    window = w.shape[:nd]
    outs, pads = zip(*(tf_padding(n, k, s, d, padding) for n, k, s, d in
                       zip(x.shape[1:-1], window, strides, dilations)))
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    y = np.zeros((x.shape[0], *outs, w.shape[-1]))
    for pos in itertools.product(*map(range, outs)):
        for kpos in itertools.product(*map(range, window)):
            idx = tuple(p * s + k * d for p, s, k, d in zip(pos, strides, kpos, dilations))
            y[(slice(None), *pos)] += xp[(slice(None), *idx)] @ w[kpos]
    return y


def ref_depthwise(x, f, strides, padding, rate):
    """Output channel c * multiplier + m is input channel c convolved with f[..., c, m]."""
    kh, kw, c, mult = f.shape
    out = np.zeros(ref_conv(x[..., :1], f[:, :, :1, :1], strides, padding, rate).shape[:3]
                   + (c * mult,))
    for ci in range(c):
        for m in range(mult):
            out[..., ci * mult + m] = ref_conv(x[..., ci:ci + 1], f[:, :, ci:ci + 1, m:m + 1],
                                               strides, padding, rate)[..., 0]
    return out


def ref_pool(x, ksize, strides, padding, reduce):
    """Pool over each window's valid (unpadded) elements only."""
    outs, pads = zip(*(tf_padding(n, k, s, 1, padding) for n, k, s in
                       zip(x.shape[1:3], ksize, strides)))
    xp = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=np.nan)
    y = np.zeros((x.shape[0], *outs, x.shape[3]))
    for i, j in itertools.product(*map(range, outs)):
        win = xp[:, i * strides[0]:i * strides[0] + ksize[0],
                 j * strides[1]:j * strides[1] + ksize[1], :]
        y[:, i, j, :] = reduce(win, axis=(1, 2))
    return y


def ref_lrn(x, r, bias, alpha, beta):
    """TensorFlow: sqr_sum[c] = sum of x[c']**2 for |c' - c| <= r within range;
    out = x / (bias + alpha * sqr_sum) ** beta."""
    out = np.empty_like(x)
    depth = x.shape[-1]
    for c in range(depth):
        lo, hi = max(0, c - r), min(depth - 1, c + r)
        sqr_sum = np.sum(x[..., lo:hi + 1] ** 2, axis=-1)
        out[..., c] = x[..., c] / (bias + alpha * sqr_sum) ** beta
    return out


def check_grad(f, x, rtol=1e-6, h=1e-6):
    """<grad, v> of sum(f(x) * ct) equals its central difference along v."""
    ct = randn(*np.shape(f(x)))
    v = randn(*np.shape(x))

    def scalar(z):
        return tnp.sum(f(z) * ct)
    g = np.asarray(tracejit.grad(scalar)(x))
    analytic = float(np.sum(g * v))
    numeric = (float(scalar(x + h * v)) - float(scalar(x - h * v))) / (2 * h)
    assert abs(analytic - numeric) <= rtol * (abs(numeric) + np.sum(np.abs(g * v))) + 1e-7, \
        (analytic, numeric)


# --- strategies ----------------------------------------------------------------
@st.composite
def conv_cases(draw, nd):
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    window = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    strides = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    dilations = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd))
    sizes = [draw(st.integers((k - 1) * d + 1, (k - 1) * d + 5))
             for k, d in zip(window, dilations)]
    batch, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = randn(batch, *sizes, c_in)
    w = randn(*window, c_in, c_out)
    return x, w, tuple(strides), padding, tuple(dilations)


# --- activations ------------------------------------------------------------------
X = np.linspace(-6, 6, 49)


@pytest.mark.parametrize("op, ref", [
    (nn.relu, lambda x: np.maximum(x, 0)),
    (nn.relu6, lambda x: np.clip(x, 0, 6)),
    (nn.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (nn.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    (nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (nn.tanh, np.tanh),
    (nn.softplus, lambda x: np.log1p(np.exp(x))),
])
def test_activations(op, ref):
    np.testing.assert_allclose(op(X), ref(X), rtol=1e-12, atol=1e-12)
    check_grad(op, X + 0.01)   # away from the kinks at 0


def test_activations_by_name():
    assert nn.get_activation("elu") is nn.elu
    assert nn.get_activation(None) is None and nn.get_activation("linear") is None
    assert nn.get_activation(np.cos) is np.cos
    with pytest.raises(ValueError, match="unknown activation"):
        nn.get_activation("swishy")


def test_softplus_and_sigmoid_do_not_overflow():
    x = np.array([-1000.0, 1000.0], np.float32)
    np.testing.assert_allclose(nn.softplus(x), [0, 1000])
    np.testing.assert_allclose(nn.sigmoid(x), [0, 1])


@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 1))
@SETTINGS
def test_softmax_family(rows, cols, axis):
    x = randn(rows, cols) * 5
    np.testing.assert_allclose(nn.softmax(x, axis), special.softmax(x, axis), rtol=1e-12)
    np.testing.assert_allclose(nn.log_softmax(x, axis), special.log_softmax(x, axis),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nn.logsumexp(x, axis), special.logsumexp(x, axis), rtol=1e-12)


def test_softmax_extreme_logits():
    x = np.array([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(nn.softmax(x), [[1, 0, 0]])
    np.testing.assert_allclose(nn.log_softmax(x), [[0, -1000, -2000]])
    check_grad(lambda z: nn.log_softmax(z), randn(3, 4))


def test_softmax_family_gradients():
    """The subtracted max is under stop_gradient: the gradients are still
    those of the mathematical functions, ties in the max included."""
    x = randn(4, 5) * 3
    ties = np.array([[2.0, 2.0, -1.0], [0.5, 0.5, 0.5]])
    for z in (x, ties):
        for axis in (0, 1, -1):
            check_grad(lambda z: nn.log_softmax(z, axis), z)
            check_grad(lambda z: nn.logsumexp(z, axis), z)
            check_grad(lambda z: nn.logsumexp(z, axis, keepdims=True), z)
        check_grad(lambda z: nn.logsumexp(z), z)
    # logsumexp's gradient is softmax; log_softmax's vjp is ct - softmax * sum(ct)
    np.testing.assert_allclose(tracejit.grad(lambda z: tnp.sum(nn.logsumexp(z, 1)))(x),
                               special.softmax(x, 1), rtol=1e-12)
    ct = randn(4, 5)
    np.testing.assert_allclose(
        tracejit.grad(lambda z: tnp.sum(nn.log_softmax(z) * ct))(x),
        ct - special.softmax(x, 1) * ct.sum(1, keepdims=True), rtol=1e-10, atol=1e-12)
    labels = rng.integers(0, 5, 4)
    g = tracejit.grad(lambda z: tnp.mean(nn.sparse_softmax_cross_entropy_with_logits(labels, z)))(x)
    np.testing.assert_allclose(g, (special.softmax(x, 1) - np.eye(5)[labels]) / 4, rtol=1e-10)


def test_softmax_family_backward_does_not_differentiate_the_max():
    """The max's vjp (an eq mask and a tie count, i.e. an extra reduction)
    is gone: one reduce_sum fewer in the gradient than without stop_gradient."""
    from collections import Counter
    from tracejit.stages import simplify as optimize
    x = randn(8, 10, dtype=np.float32)
    labels = rng.integers(0, 10, 8).astype(np.int32)
    # sizes include the zero-cotangent guards' is_finite tests (primitives/ad_util.guard)
    cases = [(lambda z: tnp.sum(nn.logsumexp(z, axis=1)), (x,), 2, 25),
             (lambda z, y: tnp.mean(nn.sparse_softmax_cross_entropy_with_logits(y, z)),
              (x, labels), 3, 62)]
    for f, args, reduce_sums, size in cases:
        fn = optimize(tracejit.make_ir(tracejit.value_and_grad(f))(*args))
        counts = Counter(ins.prim for ins in fn.body)
        assert counts["reduce_max"] == 1 and counts["reduce_sum"] == reduce_sums, counts
        assert fn.num_instructions() <= size, fn.num_instructions()


# --- convolutions -----------------------------------------------------------------
@given(conv_cases(2))
@SETTINGS
def test_conv2d_matches_direct_loop(case):
    x, w, strides, padding, dilations = case
    np.testing.assert_allclose(nn.conv2d(x, w, strides, padding, dilations),
                               ref_conv(x, w, strides, padding, dilations), rtol=1e-10, atol=1e-10)


@given(conv_cases(1))
@SETTINGS
def test_conv1d_matches_direct_loop(case):
    x, w, strides, padding, dilations = case
    np.testing.assert_allclose(nn.conv1d(x, w, strides[0], padding, dilations[0]),
                               ref_conv(x, w, strides, padding, dilations), rtol=1e-10, atol=1e-10)


@given(conv_cases(3))
@settings(max_examples=8, deadline=None)
def test_conv3d_matches_direct_loop(case):
    x, w, strides, padding, dilations = case
    np.testing.assert_allclose(nn.conv3d(x, w, strides, padding, dilations),
                               ref_conv(x, w, strides, padding, dilations), rtol=1e-10, atol=1e-10)


def test_conv2d_tensorflow_argument_forms():
    x, w = randn(1, 7, 6, 2), randn(3, 3, 2, 4)
    ref = ref_conv(x, w, (2, 2), "SAME", (1, 1))
    np.testing.assert_allclose(nn.conv2d(x, w, [1, 2, 2, 1], "SAME"), ref, rtol=1e-10)
    np.testing.assert_allclose(nn.conv2d(x, w, (2, 2), "same"), ref, rtol=1e-10)
    # the book's stride diagram: 5x7 input, 3x3 window, stride 2, SAME -> 3x4
    assert nn.conv2d(randn(1, 5, 7, 1), randn(3, 3, 1, 1), 2, "SAME").shape == (1, 3, 4, 1)
    with pytest.raises(tracejit.ShapeError, match="channels"):
        nn.conv2d(x, randn(3, 3, 3, 4))
    with pytest.raises(tracejit.ShapeError, match="batch and channel"):
        nn.conv2d(x, w, [2, 2, 2, 2])


@given(st.integers(1, 3), st.sampled_from(["SAME", "VALID"]))
@settings(max_examples=10, deadline=None)
def test_atrous_conv2d_is_dilated_conv(rate, padding):
    x, w = randn(1, 9, 8, 2), randn(3, 2, 2, 3)
    np.testing.assert_allclose(nn.atrous_conv2d(x, w, rate, padding),
                               ref_conv(x, w, (1, 1), padding, (rate, rate)), rtol=1e-10, atol=1e-10)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["SAME", "VALID"]))
@SETTINGS
def test_depthwise_conv2d_channel_order(channels, multiplier, stride, rate, padding):
    if stride > 1 and rate > 1:
        rate = 1   # TensorFlow allows one or the other
    x, f = randn(2, 6, 5, channels), randn(3, 2, channels, multiplier)
    np.testing.assert_allclose(nn.depthwise_conv2d(x, f, stride, padding, rate),
                               ref_depthwise(x, f, (stride, stride), padding, (rate, rate)),
                               rtol=1e-10, atol=1e-10)


def test_separable_conv2d_is_depthwise_then_pointwise():
    x, dw, pw = randn(2, 6, 6, 3), randn(3, 3, 3, 2), randn(1, 1, 6, 4)
    depth = ref_depthwise(x, dw, (2, 2), "SAME", (1, 1))
    np.testing.assert_allclose(nn.separable_conv2d(x, dw, pw, 2, "SAME"),
                               ref_conv(depth, pw, (1, 1), "VALID", (1, 1)), rtol=1e-10)


@given(conv_cases(2))
@SETTINGS
def test_conv2d_transpose_is_the_adjoint_of_conv2d(case):
    x, w, strides, padding, _ = case
    y = randn(*nn.conv2d(x, w, strides, padding).shape)
    lhs = np.sum(nn.conv2d(x, w, strides, padding) * y)
    rhs = np.sum(x * nn.conv2d_transpose(y, w, x.shape, strides, padding))
    assert nn.conv2d_transpose(y, w, x.shape, strides, padding).shape == x.shape
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_conv2d_transpose_upsamples():
    y = randn(1, 4, 4, 3)
    assert nn.conv2d_transpose(y, randn(3, 3, 2, 3), (1, 8, 8, 2), 2, "SAME").shape == (1, 8, 8, 2)
    with pytest.raises(tracejit.ShapeError):
        nn.conv2d_transpose(y, randn(3, 3, 2, 5), (1, 8, 8, 2), 2)


# --- pooling and normalization --------------------------------------------------------
@st.composite
def pool_cases(draw):
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    ksize = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(ksize[0], 7)), draw(st.integers(ksize[1], 7))
    return randn(2, h, w, draw(st.integers(1, 3))), ksize, strides, padding


@given(pool_cases())
@SETTINGS
def test_max_pool(case):
    x, ksize, strides, padding = case
    np.testing.assert_allclose(nn.max_pool(x, ksize, strides, padding),
                               ref_pool(x, ksize, strides, padding, np.nanmax))


@given(pool_cases())
@SETTINGS
def test_avg_pool_counts_only_valid_elements(case):
    x, ksize, strides, padding = case
    np.testing.assert_allclose(nn.avg_pool(x, ksize, strides, padding),
                               ref_pool(x, ksize, strides, padding, np.nanmean), rtol=1e-12)


def test_avg_pool_same_corner_is_mean_of_valid_cells():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    # 3x3 SAME stride 1: the corner window covers x[0:2, 0:2] only
    assert nn.avg_pool(x, 3, 1, "SAME")[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)


@given(st.integers(0, 3), st.floats(0.5, 2), st.floats(1e-4, 1), st.floats(0.25, 1),
       st.integers(1, 7))
@SETTINGS
def test_lrn_tensorflow_formula(r, bias, alpha, beta, depth):
    x = randn(2, 3, 2, depth)
    np.testing.assert_allclose(nn.local_response_normalization(x, r, bias, alpha, beta),
                               ref_lrn(x, r, bias, alpha, beta), rtol=1e-12)
    assert nn.lrn is nn.local_response_normalization


def test_moments_and_batch_normalization():
    x = randn(8, 3, 3, 4) * 3 + 1
    mean, var = nn.moments(x, (0, 1, 2))
    np.testing.assert_allclose(mean, x.mean((0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var((0, 1, 2)), rtol=1e-12)
    m, v = nn.moments(x, (0, 1, 2), keepdims=True)
    assert m.shape == v.shape == (1, 1, 1, 4)
    offset, scale = randn(4), randn(4)
    np.testing.assert_allclose(nn.batch_normalization(x, mean, var, offset, scale, 1e-3),
                               (x - mean) / np.sqrt(var + 1e-3) * scale + offset, rtol=1e-12)
    np.testing.assert_allclose(nn.batch_normalization(x, mean, var, None, None, 0.0),
                               (x - mean) / np.sqrt(var), rtol=1e-10)


def test_dropout_statistics():
    x = np.ones((200, 500), np.float32)
    y = np.asarray(nn.dropout(x, 0.3, random.key(0)))
    dropped = np.mean(y == 0)
    assert abs(dropped - 0.3) < 0.01            # 100,000 draws: 7 standard deviations
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02             # inverted dropout keeps the mean
    assert nn.dropout(x, 0.0, random.key(0)) is x
    assert not np.array_equal(y, nn.dropout(x, 0.3, random.key(1)))
    with pytest.raises(ValueError, match="rate"):
        nn.dropout(x, 1.0, random.key(0))


# --- losses and metrics --------------------------------------------------------------------
def test_losses():
    logits, labels = randn(6, 5) * 3, rng.integers(0, 5, 6)
    logp = special.log_softmax(logits, axis=-1)
    np.testing.assert_allclose(nn.sparse_softmax_cross_entropy_with_logits(labels, logits),
                               -logp[np.arange(6), labels], rtol=1e-12)
    onehot = np.eye(5)[labels]
    np.testing.assert_allclose(nn.softmax_cross_entropy_with_logits(onehot, logits),
                               -logp[np.arange(6), labels], rtol=1e-12)
    z = rng.random((6, 5))
    naive = -(z * np.log(special.expit(logits)) + (1 - z) * np.log(1 - special.expit(logits)))
    np.testing.assert_allclose(nn.sigmoid_cross_entropy_with_logits(z, logits), naive, rtol=1e-9)
    pred = randn(6, 5)
    assert float(nn.mean_squared_error(onehot, pred)) == pytest.approx(np.mean((pred - onehot) ** 2))
    assert float(nn.l2_loss(pred)) == pytest.approx(np.sum(pred ** 2) / 2)
    with pytest.raises(tracejit.ShapeError, match="labels shape"):
        nn.sparse_softmax_cross_entropy_with_logits(labels[:3], logits)


def test_cross_entropy_is_stable_for_extreme_logits():
    logits = np.array([[1000.0, -1000.0]], np.float32)
    np.testing.assert_allclose(nn.sparse_softmax_cross_entropy_with_logits(np.array([1]), logits),
                               [2000.0])
    np.testing.assert_allclose(nn.sigmoid_cross_entropy_with_logits(np.zeros((1, 2), np.float32),
                                                                    logits), [[1000.0, 0.0]])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_in_top_k(k):
    preds = randn(50, 6)
    targets = rng.integers(0, 6, 50)
    order = np.argsort(-preds, axis=1)[:, :k]
    expected = np.any(order == targets[:, None], axis=1)
    np.testing.assert_array_equal(nn.in_top_k(preds, targets, k), expected)


def test_in_top_k_ties_count_as_in_as_tensorflow():
    preds = np.array([[1.0, 1.0, 0.0]])
    assert bool(nn.in_top_k(preds, np.array([1]), 1)[0])
    assert bool(nn.in_top_k(preds, np.array([0]), 1)[0])


# --- gradients against finite differences ------------------------------------------------
@given(conv_cases(2))
@settings(max_examples=10, deadline=None)
def test_conv2d_gradients(case):
    x, w, strides, padding, dilations = case
    check_grad(lambda z: nn.conv2d(z, w, strides, padding, dilations), x)
    check_grad(lambda z: nn.conv2d(x, z, strides, padding, dilations), w)


def test_other_convolution_gradients():
    x, f = randn(2, 6, 5, 3), randn(3, 3, 3, 2)
    check_grad(lambda z: nn.depthwise_conv2d(z, f, 2, "SAME"), x)
    check_grad(lambda z: nn.depthwise_conv2d(x, z, 1, "VALID", 2), f)
    y, w = randn(1, 3, 3, 4), randn(3, 3, 2, 4)
    check_grad(lambda z: nn.conv2d_transpose(z, w, (1, 6, 6, 2), 2, "SAME"), y)
    check_grad(lambda z: nn.conv2d_transpose(y, z, (1, 6, 6, 2), 2, "SAME"), w)
    w1 = randn(2, 3, 2)
    check_grad(lambda z: nn.conv1d(z, w1, 2, "SAME"), randn(2, 7, 3))


@given(pool_cases())
@settings(max_examples=10, deadline=None)
def test_pooling_gradients(case):
    x, ksize, strides, padding = case
    check_grad(lambda z: nn.max_pool(z, ksize, strides, padding), x)
    check_grad(lambda z: nn.avg_pool(z, ksize, strides, padding), x)


def test_normalization_and_loss_gradients():
    x = randn(2, 2, 3, 6)
    check_grad(lambda z: nn.lrn(z, 2, 1.0, 0.3, 0.75), x)
    offset, scale = randn(6), randn(6)

    def bn(z):
        mean, var = nn.moments(z, (0, 1, 2))
        return nn.batch_normalization(z, mean, var, offset, scale, 1e-3)
    check_grad(bn, x)
    labels, probabilities = rng.integers(0, 5, 4), rng.random((4, 5))
    check_grad(lambda z: nn.sparse_softmax_cross_entropy_with_logits(labels, z), randn(4, 5))
    check_grad(lambda z: nn.sigmoid_cross_entropy_with_logits(probabilities, z), randn(4, 5))
    check_grad(lambda z: nn.softmax(z) * nn.logsumexp(z, 1, keepdims=True), randn(4, 5))


def test_sparse_softmax_cross_entropy_gradient_is_softmax_minus_onehot():
    logits, labels = randn(4, 5), np.array([0, 3, 3, 1])
    g = tracejit.grad(lambda z: tnp.sum(nn.sparse_softmax_cross_entropy_with_logits(labels, z)))(
        logits)
    np.testing.assert_allclose(g, special.softmax(logits, -1) - np.eye(5)[labels], rtol=1e-12,
                               atol=1e-14)


# --- compiled --------------------------------------------------------------------------------
def test_ops_under_jit_on_the_default_backend():
    x, w = randn(2, 8, 8, 3, dtype=np.float32), randn(3, 3, 3, 4, dtype=np.float32)

    @tracejit.jit
    def f(x, w):
        h = nn.relu(nn.conv2d(x, w, 1, "SAME"))
        h = nn.lrn(nn.max_pool(h, 3, 2, "SAME"), 2, 1.0, 1e-3, 0.75)
        return nn.avg_pool(h, 2, 2, "VALID")
    h = ref_lrn(ref_pool(np.maximum(ref_conv(x, w, (1, 1), "SAME", (1, 1)), 0), (3, 3), (2, 2),
                         "SAME", np.nanmax), 2, 1.0, 1e-3, 0.75)
    np.testing.assert_allclose(f(x, w), ref_pool(h, (2, 2), (2, 2), "VALID", np.nanmean),
                               rtol=2e-5, atol=1e-6)
    assert math.isfinite(float(tracejit.jit(tracejit.grad(lambda w: tnp.sum(f(x, w))))(w)[0, 0, 0, 0]))
