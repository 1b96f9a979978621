"""Neural-network ops with TensorFlow 1.x names and conventions (NHWC
activations, HWIO filters, ``padding="SAME"|"VALID"``), each decomposed into
tracejit primitives, so they work eagerly, under ``jit`` and under ``grad``.
"""
from __future__ import annotations

import numpy as np

from .. import lax, random
from .. import numpy as tnp
from ..errors import ShapeError
from ..naming import add_name_keyword
from ..transforms.custom_derivatives import stop_gradient


# --- basic ops with TensorFlow's names ---------------------------------------------
def add_n(inputs):
    """The elementwise sum of a list of same-shape tensors (``tf.add_n``)."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("add_n needs at least one input")
    total = inputs[0]
    for x in inputs[1:]:
        total = total + x
    return total


def one_hot(indices, depth, on_value=1.0, off_value=0.0, dtype="float32"):
    """``[..., depth]`` with ``on_value`` at each index and ``off_value``
    elsewhere (an out-of-range index gives a row of ``off_value``), as
    ``tf.one_hot``."""
    hit = tnp.expand_dims(indices, -1) == tnp.arange(depth, dtype=tnp.result_type_of(indices))
    return tnp.where(hit, tnp.asarray(on_value, dtype), tnp.asarray(off_value, dtype))


def cast(x, dtype):
    """``tf.cast``: ``x`` converted to ``dtype``."""
    return tnp.astype(x, dtype)


# --- activations -----------------------------------------------------------------
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def relu(x):
    """max(x, 0), with gradient 0 at x == 0 as in TensorFlow (``maximum``
    would split a tie's gradient 1/2 : 1/2); NaN stays NaN."""
    return tnp.where(x > 0, x, tnp.where(tnp.isnan(x), x, 0))


def relu6(x):
    return tnp.clip(x, 0, 6)


def elu(x, alpha=1.0):
    # expm1 of min(x, 0): the branch not taken never overflows.
    return tnp.where(x > 0, x, alpha * tnp.expm1(tnp.minimum(x, 0)))


def selu(x):
    return SELU_SCALE * elu(x, SELU_ALPHA)


def leaky_relu(x, alpha=0.2):
    return tnp.where(x > 0, x, alpha * x)


def prelu(x, alpha):
    """Parametric leaky ReLU (He et al. 2015): ``x`` where positive, else
    ``alpha * x`` with a learned ``alpha`` (broadcast against ``x``: one per
    channel, usually)."""
    return tnp.where(x > 0, x, alpha * x)


# Xu et al. (2015), the paper the book cites: slopes drawn from U(1/8, 1/3)
# (their a ~ U(3, 8) divides), the mean (1/8 + 1/3) / 2 = 11/48 at test time.
RRELU_LOWER, RRELU_UPPER = 1.0 / 8.0, 1.0 / 3.0


def rrelu(x, lower=RRELU_LOWER, upper=RRELU_UPPER, *, training=False, key=None):
    """Randomized leaky ReLU: while ``training``, each negative element gets
    its own slope drawn uniformly from ``[lower, upper)`` (needs ``key``);
    otherwise the slope is the average ``(lower + upper) / 2``."""
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu needs 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    if key is None:
        raise ValueError("rrelu while training draws random slopes: "
                         "pass key=tracejit.random.key(seed)")
    slope = random.uniform(key, tnp.shape(x), tnp.result_type_of(x), lower, upper)
    return tnp.where(x > 0, x, slope * x)


def sigmoid(x):
    return lax.logistic(x)


def tanh(x):
    return tnp.tanh(x)


def softplus(x):
    """log(1 + exp(x)) without overflow."""
    return tnp.maximum(x, 0) + tnp.log1p(tnp.exp(-tnp.abs(x)))


def softmax(logits, axis=-1):
    shifted = logits - tnp.max(logits, axis=axis, keepdims=True)
    e = tnp.exp(shifted)
    return e / tnp.sum(e, axis=axis, keepdims=True)


def log_softmax(logits, axis=-1):
    # The max only keeps exp from overflowing: the result does not depend on
    # it, so its gradient is zero and need not be computed.
    shifted = logits - stop_gradient(tnp.max(logits, axis=axis, keepdims=True))
    return shifted - tnp.log(tnp.sum(tnp.exp(shifted), axis=axis, keepdims=True))


def logsumexp(x, axis=None, keepdims=False):
    m = stop_gradient(tnp.max(x, axis=axis, keepdims=True))   # as in log_softmax
    m = tnp.where(tnp.isfinite(m), m, 0)
    out = tnp.log(tnp.sum(tnp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else tnp.squeeze(out, axis)


ACTIVATIONS = {"relu": relu, "relu6": relu6, "elu": elu, "selu": selu,
               "leaky_relu": leaky_relu, "sigmoid": sigmoid, "tanh": tanh,
               "softplus": softplus, "softmax": softmax, "linear": None, None: None}


def get_activation(name_or_fn):
    """An activation by name ("relu", "elu", ...) or the function itself."""
    if callable(name_or_fn) or name_or_fn is None:
        return name_or_fn
    if name_or_fn not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name_or_fn!r}; "
                         f"choose one of {sorted(k for k in ACTIVATIONS if k)}")
    return ACTIVATIONS[name_or_fn]


# --- argument normalisation (TensorFlow's int / pair / 4-element forms) ------------
def _spatial(value, nd, name):
    """An int, an nd-tuple, or TensorFlow's full (nd+2)-list [1, ..., 1]."""
    if isinstance(value, int):
        return (value,) * nd
    value = tuple(int(v) for v in value)
    if len(value) == nd:
        return value
    if len(value) == nd + 2:
        if value[0] != 1 or value[-1] != 1:
            raise ShapeError(f"{name}={list(value)}: batch and channel entries must be 1")
        return value[1:-1]
    raise ShapeError(f"{name} must be an int, {nd} values or {nd + 2} values, got {value}")


def _padding(padding, in_sizes, windows, strides, dilations=None):
    """TensorFlow's SAME/VALID as explicit (low, high) pairs."""
    dilations = dilations or (1,) * len(in_sizes)
    if isinstance(padding, str):
        padding = padding.upper()
        if padding == "VALID":
            return tuple((0, 0) for _ in in_sizes)
        if padding == "SAME":
            pads = []
            for n, k, s, d in zip(in_sizes, windows, strides, dilations):
                k_eff = (k - 1) * d + 1
                out = -(-n // s)
                total = max((out - 1) * s + k_eff - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ShapeError(f'padding must be "SAME" or "VALID", got {padding!r}')
    return tuple((int(lo), int(hi)) for lo, hi in padding)


# --- convolutions ----------------------------------------------------------------------
def _conv(input, filters, strides, padding, dilations, nd, name, groups=1):
    x_shape, f_shape = tnp.shape(input), tnp.shape(filters)
    if len(x_shape) != nd + 2 or len(f_shape) != nd + 2:
        raise ShapeError(f"{name}: input {x_shape} must have rank {nd + 2} and filters "
                         f"{f_shape} rank {nd + 2}")
    if f_shape[-2] * groups != x_shape[-1]:
        raise ShapeError(f"{name}: input {x_shape} has {x_shape[-1]} channels but filters "
                         f"{f_shape} expect {f_shape[-2] * groups}")
    strides = _spatial(strides, nd, "strides")
    dilations = _spatial(dilations, nd, "dilations")
    pads = _padding(padding, x_shape[1:-1], f_shape[:-2], strides, dilations)
    return lax.conv_general(input, filters, strides, pads, rhs_dilation=dilations,
                            feature_group_count=groups)


def conv1d(value, filters, stride=1, padding="VALID", dilations=1):
    """value [N, W, C], filters [W, C, O]."""
    return _conv(value, filters, stride, padding, dilations, 1, "conv1d")


def conv2d(input, filters, strides=1, padding="VALID", dilations=1):
    """input [N, H, W, C], filters [H, W, C, O]."""
    return _conv(input, filters, strides, padding, dilations, 2, "conv2d")


def conv3d(input, filters, strides=1, padding="VALID", dilations=1):
    """input [N, D, H, W, C], filters [D, H, W, C, O]."""
    return _conv(input, filters, strides, padding, dilations, 3, "conv3d")


def atrous_conv2d(value, filters, rate, padding):
    return conv2d(value, filters, 1, padding, dilations=rate)


def depthwise_conv2d(input, filter, strides=1, padding="VALID", rate=1):
    """filter [H, W, C, multiplier]: each input channel gets its own filters;
    output channel c * multiplier + m, as in TensorFlow."""
    h, w, c, m = tnp.shape(filter)
    rhs = tnp.reshape(filter, (h, w, 1, c * m))
    return _conv(input, rhs, strides, padding, rate, 2, "depthwise_conv2d", groups=c)


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides=1, padding="VALID",
                     rate=1):
    """A depthwise convolution followed by a 1x1 pointwise one."""
    return conv2d(depthwise_conv2d(input, depthwise_filter, strides, padding, rate),
                  pointwise_filter, 1, "VALID")


def conv2d_transpose(input, filters, output_shape, strides=1, padding="SAME"):
    """The gradient of conv2d with respect to its input (a "deconvolution").
    filters [H, W, out_channels, in_channels], as in TensorFlow."""
    strides = _spatial(strides, 2, "strides")
    kh, kw, o, c = tnp.shape(filters)
    n, out_h, out_w, out_c = (int(d) for d in output_shape)
    if out_c != o or tnp.shape(input)[-1] != c:
        raise ShapeError(f"conv2d_transpose: filters {tnp.shape(filters)} do not match input "
                         f"{tnp.shape(input)} and output_shape {tuple(output_shape)}")
    fwd = _padding(padding, (out_h, out_w), (kh, kw), strides)
    in_sizes = tnp.shape(input)[1:3]
    pads = []
    for (lo, _), k, s, n_in, n_out in zip(fwd, (kh, kw), strides, in_sizes, (out_h, out_w)):
        plo = k - 1 - lo
        phi = n_out - (n_in - 1) * s - 1 - plo + k - 1
        pads.append((plo, phi))
    rhs = tnp.transpose(tnp.flip(filters, (0, 1)), (0, 1, 3, 2))
    return lax.conv_general(input, rhs, (1, 1), pads, lhs_dilation=strides)


# --- pooling and normalisation ----------------------------------------------------------
def _pool(value, ksize, strides, padding, computation):
    shape = tnp.shape(value)
    if len(shape) != 4:
        raise ShapeError(f"pooling expects NHWC input, got shape {shape}")
    k = _spatial(ksize, 2, "ksize")
    s = _spatial(strides, 2, "strides")
    pads = _padding(padding, shape[1:3], k, s)
    full = ((0, 0),) + pads + ((0, 0),)
    return lax.reduce_window(value, computation, (1, *k, 1), (1, *s, 1), full), (k, s, full)


def max_pool(value, ksize, strides, padding):
    """Max over windows of the height and width, or, with TensorFlow's
    4-element ``ksize=[1, 1, 1, k]`` and ``strides=[1, 1, 1, k]``, over ``k``
    consecutive channels (depthwise max pooling, Hands-On ML Ch. 13:
    ``[n, h, w, c] -> [n, h, w, c // k]``; as in TensorFlow, ``k`` must
    divide the depth and a window cannot span both space and channels)."""
    if _depth_window(ksize):
        return _depth_max_pool(value, ksize, strides)
    return _pool(value, ksize, strides, padding, "max")[0]


def _depth_window(ksize) -> bool:
    return not isinstance(ksize, int) and len(ksize) == 4 and int(ksize[3]) != 1


def _depth_max_pool(value, ksize, strides):
    shape = tnp.shape(value)
    if len(shape) != 4:
        raise ShapeError(f"max_pool expects NHWC input, got shape {shape}")
    ksize = tuple(int(k) for k in ksize)
    strides = (1, 1, 1, strides) if isinstance(strides, int) else tuple(int(s) for s in strides)
    depth = ksize[3]
    if ksize[:3] != (1, 1, 1):
        raise ShapeError(f"max_pool ksize={list(ksize)}: pooling over the channels cannot also "
                         f"pool over the batch, height or width (TensorFlow's rule)")
    if strides != (1, 1, 1, depth):
        raise ShapeError(f"max_pool over the channels needs strides=[1, 1, 1, {depth}] "
                         f"(the depth window equal to the depth stride), got {list(strides)}")
    if shape[3] % depth:
        raise ShapeError(f"max_pool over the channels: a window of {depth} must divide the "
                         f"input depth {shape[3]}")
    return lax.reduce_window(value, "max", ksize, strides, ((0, 0),) * 4)


def _valid_counts(n, k, s, pads):
    """How many of each window's k positions fall inside the n unpadded ones."""
    lo, hi = pads
    starts = np.arange((n + lo + hi - k) // s + 1) * s - lo
    return np.minimum(starts + k, n) - np.maximum(starts, 0)


def avg_pool(value, ksize, strides, padding):
    """Average over the window's valid (unpadded) elements, as TensorFlow."""
    total, (k, s, full) = _pool(value, ksize, strides, padding, "sum")
    h, w = (_valid_counts(n, kk, ss, p) for n, kk, ss, p in
            zip(tnp.shape(value)[1:3], k, s, full[1:3]))
    count = np.outer(h, w)[None, :, :, None]
    return total * tnp.asarray(1.0 / count, dtype=tnp.result_type_of(value))


def local_response_normalization(input, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5):
    """TensorFlow's LRN: input / (bias + alpha * sum of squares over the
    2 * depth_radius + 1 neighbouring channels) ** beta."""
    r = int(depth_radius)
    sqr_sum = lax.reduce_window(input * input, "sum", (1, 1, 1, 2 * r + 1), (1, 1, 1, 1),
                                ((0, 0), (0, 0), (0, 0), (r, r)))
    return input * tnp.exp(-beta * tnp.log(bias + alpha * sqr_sum))


lrn = local_response_normalization


def moments(x, axes, keepdims=False):
    """Mean and variance over ``axes``."""
    mean = tnp.mean(x, axis=tuple(axes), keepdims=True)
    variance = tnp.mean(tnp.square(x - mean), axis=tuple(axes), keepdims=True)
    if not keepdims:
        mean, variance = tnp.squeeze(mean, tuple(axes)), tnp.squeeze(variance, tuple(axes))
    return mean, variance


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon):
    inv = lax.rsqrt(variance + variance_epsilon)
    if scale is not None:
        inv = inv * scale
    y = (x - mean) * inv
    return y + offset if offset is not None else y


def dropout(x, rate, key):
    """Inverted dropout: zero each element with probability ``rate`` and scale
    the kept ones by 1 / (1 - rate), so evaluation needs no rescaling."""
    if not 0 <= rate < 1:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if rate == 0:
        return x
    keep = random.bernoulli(key, 1.0 - rate, tnp.shape(x))
    return tnp.where(keep, x / (1.0 - rate), 0)


def zero_fraction(value):
    """The fraction of zeros in ``value`` (``tf.nn.zero_fraction``: the
    sparsity of ReLU activations that the CIFAR-10 tutorial plots), a float32
    scalar."""
    return tnp.mean(tnp.astype(tnp.asarray(value) == 0, np.float32))


# --- losses ------------------------------------------------------------------------------
def l2_loss(t):
    return tnp.sum(tnp.square(t)) / 2


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """Per-example cross-entropy for integer class labels."""
    logp = log_softmax(logits)
    n = tnp.shape(logits)[0]
    if tnp.shape(labels) != (n,):
        raise ShapeError(f"labels shape {tnp.shape(labels)} must be ({n},) for logits "
                         f"{tnp.shape(logits)}")
    return -logp[tnp.arange(n), labels]


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """Per-example cross-entropy for a probability distribution over classes."""
    return -tnp.sum(labels * log_softmax(logits, axis), axis=axis)


def sigmoid_cross_entropy_with_logits(labels, logits):
    """max(x, 0) - x * z + log(1 + exp(-|x|)), TensorFlow's stable form."""
    return tnp.maximum(logits, 0) - logits * labels + tnp.log1p(tnp.exp(-tnp.abs(logits)))


def mean_squared_error(labels, predictions):
    return tnp.mean(tnp.square(predictions - labels))


def in_top_k(predictions, targets, k=1):
    """Whether each target is among the top-k predictions: fewer than ``k``
    predictions beat it, so ties at the boundary count as in (TensorFlow)."""
    target_logit = predictions[tnp.arange(tnp.shape(predictions)[0]), targets]
    better = tnp.sum(predictions > target_logit[:, None], axis=-1)
    return better < k


# ``name=`` on every op here (tracejit.naming): ``nn.relu(z, name="act")`` names
# its result ``act`` and computes it in the scope ``act/``.
add_name_keyword(globals(), [n for n, v in list(globals().items())
                             if not n.startswith("_") and getattr(v, "__module__", None) == __name__])
ACTIVATIONS = {k: f if f is None else globals()[f.__name__] for k, f in ACTIVATIONS.items()}
