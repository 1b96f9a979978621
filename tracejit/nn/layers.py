"""Layers: descriptions of computations whose weights are plain pytrees.

A layer object holds only hyperparameters. Its parameters are a dict of
arrays that the caller owns and passes in, so a training step is a pure
function of ``(params, state, x)`` that ``jit`` and ``grad`` see through::

    model = nn.Sequential([nn.Conv2D(32, 3, activation="relu"), nn.MaxPool2D(2),
                           nn.Flatten(), nn.Dense(10)])
    params = model.init(key, (28, 28, 1))    # one example's shape: no batch dim
    logits = model.apply(params, x)          # x: [batch, 28, 28, 1]

The convention, the same for every layer and model:

- ``init(key, input_shape)`` returns ``params``; a model with *state*
  (``model.has_state``: batch norm's moving averages) returns
  ``(params, state)`` instead. ``input_shape`` is one example's shape,
  without the batch dimension (Keras's ``input_shape``).
- ``apply(params, x, *, state=None, train=False, key=None)`` returns ``y``;
  given ``state`` it returns ``(y, new_state)``, and a model with state
  needs it. ``train`` switches dropout and batch norm to their training
  behaviour (a Python bool: a different value is a different trace);
  ``key`` (a ``tracejit.random`` key) feeds dropout.

Parameters are named like TensorFlow variables: ``{"conv1": {"kernel": ...,
"bias": ...}, "dense1": ...}``, so ``tracejit.tree.tree_flatten_with_path``
gives ``"conv1/kernel"``. Layers without parameters (pooling, flatten) take
no entry. Composites (``Sequential``, ``ResidualUnit``, ``Inception``) nest
their children's dicts under the children's names.

Layers here: ``Dense``, ``Conv2D``, ``MaxPool2D``, ``AvgPool2D``,
``GlobalAvgPool2D``, ``DepthMaxPool``, ``LocalResponseNorm``, ``BatchNorm``,
``Dropout``, ``Flatten``, ``Activation``, ``PReLU``, ``RReLU``. Writing a new layer means subclassing
:class:`Layer` and defining ``output_shape``, ``build`` and ``call``.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import numpy as tnp
from .. import random
from ..api import make_ir
from ..errors import ShapeError
from ..naming import name_scope, valid_scope_name
from ..transforms.custom_derivatives import stop_gradient
from ..tree import tree_leaves
from . import functional as F
from . import initializers

__all__ = ["Layer", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D",
           "LocalResponseNorm", "BatchNorm", "Dropout", "Flatten", "Activation",
           "PReLU", "RReLU", "DepthMaxPool", "count_params", "param_types"]


def count_params(params, input_shape=None) -> int:
    """The number of scalars in a pytree of arrays, or, given a layer and one
    example's ``input_shape``, in the parameters it would create (traced,
    never allocated: ``count_params(nn.alexnet(), (224, 224, 3))``; batch
    norm's moving averages are state, not parameters)."""
    if isinstance(params, Layer):
        if input_shape is None:
            raise ValueError("count_params(layer, input_shape): a layer needs one example's "
                             "input shape")
        return sum(math.prod(t.shape) for t in param_types(params, input_shape))
    return sum(int(np.prod(np.shape(leaf))) for leaf in tree_leaves(params))


def param_types(layer, input_shape):
    """The types (shape and dtype) of the parameters ``layer.init`` would
    create for ``input_shape``, flattened in the order of ``tree_leaves``;
    found by tracing the initializers, so nothing is allocated."""
    input_shape = _shape_tuple(input_shape)
    layer.output_shape(input_shape)
    return list(make_ir(lambda key: layer.build(key, input_shape)[0])(random.key(0)).out_types)


class Layer:
    """The base of every layer and model.

    Subclasses set ``default_name`` (the stem of automatic names: "dense"
    gives "dense1", "dense2", ... inside a composite) and define:

    - ``output_shape(input_shape) -> shape`` (shapes exclude the batch dim),
    - ``build(key, input_shape) -> (params, state)`` (dicts, possibly empty),
    - ``call(params, state, x, train, key) -> (y, new_state)``.

    :meth:`init` and :meth:`apply` wrap these in the public convention.
    """

    default_name = "layer"
    #: Whether an unnamed layer applied on its own names its values
    #: ``default_name/...`` (a Sequential does not: its children name theirs).
    scoped = True

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"a layer name must be a non-empty string without '/', got {name!r}")
        self.name = name

    @property
    def has_state(self) -> bool:
        """Whether the layer keeps non-trainable state (see the module docstring)."""
        return False

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def build(self, key, input_shape):
        return {}, {}

    def call(self, params, state, x, train, key):
        raise NotImplementedError

    def init(self, key, input_shape):
        """``params``, or ``(params, state)`` when :attr:`has_state`."""
        if key is None:
            raise ValueError("init needs a random key: init(tracejit.random.key(seed), input_shape)")
        input_shape = _shape_tuple(input_shape)
        self.output_shape(input_shape)   # validates the shape before drawing weights
        params, state = self.build(key, input_shape)
        return (params, state) if self.has_state else params

    def apply(self, params, x, *, state=None, train=False, key=None):
        """``y``, or ``(y, new_state)`` when ``state`` is given."""
        if state is None and self.has_state:
            raise ValueError(f"{type(self).__name__} has state (batch-norm moving averages): "
                             f"pass state=... (the second value init returned); apply "
                             f"then returns (y, new_state)")
        scope = self.name or (self.default_name if self.scoped else None)
        with name_scope(valid_scope_name(scope)) if scope else contextlib.nullcontext():
            y, new_state = self.call(params, {} if state is None else state, x, bool(train), key)
        return y if state is None else (y, new_state)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _shape_tuple(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        out = tuple(int(d) for d in shape)
    except TypeError:
        raise ShapeError(f"input_shape must be a tuple of ints (one example's shape, "
                         f"without the batch dimension), got {shape!r}") from None
    if any(d <= 0 for d in out):
        raise ShapeError(f"input_shape {out} has a non-positive dimension")
    return out


def _pair(value, what):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {value}")
    return value


def _padding(padding):
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f'padding must be "SAME" or "VALID" (any case), got {padding!r}')
    return padding.upper()


def _spatial_output(name, input_shape, window, strides, padding, dilation=(1, 1)):
    """Output (height, width) of a window op on an NHWC example shape, as TensorFlow."""
    if len(input_shape) != 3:
        raise ShapeError(f"{name} expects examples of shape (height, width, channels) "
                         f"(the batch dimension is not part of input_shape), got "
                         f"{tuple(input_shape)}")
    out = []
    for n, k, s, d in zip(input_shape[:2], window, strides, dilation):
        span = (k - 1) * d + 1
        size = -(-n // s) if padding == "SAME" else -(-(n - span + 1) // s)
        if size <= 0:
            raise ShapeError(f"{name}: a {k}x{k} window (dilation {d}) does not fit an input "
                             f"of size {n} with VALID padding")
        out.append(size)
    return tuple(out)


def init_param(initializer, key, shape, dtype):
    return initializers.get(initializer)(key, shape, dtype)


def split_key(key, n):
    return random.split(key, n) if key is not None else [None] * n


class Dense(Layer):
    """``activation(x @ kernel + bias)`` over the last axis; kernel ``[in, units]``."""

    default_name = "dense"

    def __init__(self, units, activation=None, *, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 dtype=np.float32, name=None):
        super().__init__(name)
        self.units = int(units)
        self.activation = F.get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.dtype = dtype

    def output_shape(self, input_shape):
        if not input_shape:
            raise ShapeError("Dense needs inputs with at least one (feature) dimension")
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, key, input_shape):
        k1, k2 = split_key(key, 2)
        params = {"kernel": init_param(self.kernel_initializer, k1, (input_shape[-1], self.units),
                                  self.dtype)}
        if self.use_bias:
            params["bias"] = init_param(self.bias_initializer, k2, (self.units,), self.dtype)
        return params, {}

    def call(self, params, state, x, train, key):
        y = tnp.matmul(x, params["kernel"], name="linear")
        if self.use_bias:
            y = tnp.add(y, params["bias"], name="bias_add")
        return (self.activation(y) if self.activation else y), state


class Conv2D(Layer):
    """2-D convolution of NHWC inputs; kernel ``[kh, kw, in, filters]``."""

    default_name = "conv"

    def __init__(self, filters, kernel_size, strides=1, padding="VALID", *, activation=None,
                 dilation_rate=1, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", dtype=np.float32, name=None):
        super().__init__(name)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.activation = F.get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.dtype = dtype

    def output_shape(self, input_shape):
        hw = _spatial_output("Conv2D", input_shape, self.kernel_size, self.strides,
                             self.padding, self.dilation_rate)
        return hw + (self.filters,)

    def build(self, key, input_shape):
        k1, k2 = split_key(key, 2)
        shape = self.kernel_size + (input_shape[-1], self.filters)
        params = {"kernel": init_param(self.kernel_initializer, k1, shape, self.dtype)}
        if self.use_bias:
            params["bias"] = init_param(self.bias_initializer, k2, (self.filters,), self.dtype)
        return params, {}

    def call(self, params, state, x, train, key):
        y = F.conv2d(x, params["kernel"], self.strides, self.padding, self.dilation_rate)
        if self.use_bias:
            y = tnp.add(y, params["bias"], name="bias_add")
        return (self.activation(y) if self.activation else y), state


class _Pool2D(Layer):
    def __init__(self, pool_size=2, strides=None, padding="VALID", *, name=None):
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding(padding)

    def output_shape(self, input_shape):
        return _spatial_output(type(self).__name__, input_shape, self.pool_size, self.strides,
                               self.padding) + (input_shape[-1],)


class MaxPool2D(_Pool2D):
    """Max over ``pool_size`` windows; ``strides`` default to ``pool_size`` (Keras)."""

    default_name = "max_pool"

    def call(self, params, state, x, train, key):
        return F.max_pool(x, self.pool_size, self.strides, self.padding), state


class AvgPool2D(_Pool2D):
    """Mean over ``pool_size`` windows, counting only the unpadded elements (TensorFlow)."""

    default_name = "avg_pool"

    def call(self, params, state, x, train, key):
        return F.avg_pool(x, self.pool_size, self.strides, self.padding), state


class GlobalAvgPool2D(Layer):
    """The mean of each feature map: ``[batch, h, w, c] -> [batch, c]``."""

    default_name = "global_avg_pool"

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"GlobalAvgPool2D expects examples of shape (height, width, "
                             f"channels), got {tuple(input_shape)}")
        return (input_shape[-1],)

    def call(self, params, state, x, train, key):
        return tnp.mean(x, axis=(1, 2)), state


class LocalResponseNorm(Layer):
    """TensorFlow's ``local_response_normalization`` across channels
    (``depth_radius`` is the half-width: the book's r/2)."""

    default_name = "lrn"

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, *, name=None):
        super().__init__(name)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, params, state, x, train, key):
        return F.lrn(x, self.depth_radius, self.bias, self.alpha, self.beta), state


class BatchNorm(Layer):
    """Batch normalization over the last (channel) axis (Equation 11-3).

    Parameters ``gamma`` (scale, ones) and ``beta`` (offset, zeros); state
    ``moving_mean`` (zeros) and ``moving_variance`` (ones). Training
    normalizes with the batch's mean and (biased) variance and returns the
    state updated as ``moving = moving * momentum + batch * (1 - momentum)``;
    evaluation normalizes with the moving averages and returns the state
    unchanged.
    """

    default_name = "batch_norm"

    def __init__(self, momentum=0.99, epsilon=1e-3, *, center=True, scale=True,
                 dtype=np.float32, name=None):
        super().__init__(name)
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm momentum must be in [0, 1], got {momentum}")
        self.momentum, self.epsilon = momentum, epsilon
        self.center, self.scale = center, scale
        self.dtype = dtype

    @property
    def has_state(self):
        return True

    def build(self, key, input_shape):
        c = (input_shape[-1],) if input_shape else ()
        params = {}
        if self.scale:
            params["gamma"] = tnp.ones(c, self.dtype)
        if self.center:
            params["beta"] = tnp.zeros(c, self.dtype)
        state = {"moving_mean": tnp.zeros(c, self.dtype),
                 "moving_variance": tnp.ones(c, self.dtype)}
        return params, state

    def call(self, params, state, x, train, key):
        gamma, beta = params.get("gamma"), params.get("beta")
        if not train:
            y = F.batch_normalization(x, state["moving_mean"], state["moving_variance"],
                                      beta, gamma, self.epsilon)
            return y, state
        axes = tuple(range(tnp.ndim(x) - 1))
        mean, variance = F.moments(x, axes)
        y = F.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        m = self.momentum

        def moving(old, batch):
            return tnp.astype(old * m + stop_gradient(batch) * (1 - m), tnp.result_type_of(old))
        return y, {"moving_mean": moving(state["moving_mean"], mean),
                   "moving_variance": moving(state["moving_variance"], variance)}


class Dropout(Layer):
    """Inverted dropout while training (needs ``key``); the identity otherwise."""

    default_name = "dropout"

    def __init__(self, rate, *, name=None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = rate

    def call(self, params, state, x, train, key):
        if not train or self.rate == 0:
            return x, state
        if key is None:
            raise ValueError("Dropout while training needs a random key: "
                             "apply(..., train=True, key=tracejit.random.key(seed))")
        return F.dropout(x, self.rate, key), state


class PReLU(Layer):
    """Parametric leaky ReLU: ``x`` where positive, else ``alpha * x``, with a
    learned slope ``alpha`` per channel (the last axis; He et al. 2015,
    initialized to 0.25). Parameter ``{"alpha": [channels]}``."""

    default_name = "prelu"

    def __init__(self, alpha_initializer=None, *, dtype=np.float32, name=None):
        super().__init__(name)
        self.alpha_initializer = (initializers.constant(0.25) if alpha_initializer is None
                                  else alpha_initializer)
        self.dtype = dtype

    def build(self, key, input_shape):
        if not input_shape:
            raise ShapeError("PReLU needs inputs with a channel (last) dimension")
        return {"alpha": init_param(self.alpha_initializer, key, (input_shape[-1],), self.dtype)}, {}

    def call(self, params, state, x, train, key):
        return F.prelu(x, params["alpha"]), state


class RReLU(Layer):
    """Randomized leaky ReLU: while training, a random slope in ``[lower,
    upper)`` for each negative element (needs ``key``); at evaluation, the
    average slope. Defaults from Xu et al. (2015): 1/8 and 1/3."""

    default_name = "rrelu"

    def __init__(self, lower=F.RRELU_LOWER, upper=F.RRELU_UPPER, *, name=None):
        super().__init__(name)
        if not 0 <= lower <= upper:
            raise ValueError(f"RReLU needs 0 <= lower <= upper, got {lower}, {upper}")
        self.lower, self.upper = float(lower), float(upper)

    def call(self, params, state, x, train, key):
        if train and key is None:
            raise ValueError("RReLU while training needs a random key: "
                             "apply(..., train=True, key=tracejit.random.key(seed))")
        return F.rrelu(x, self.lower, self.upper, training=train, key=key), state


class DepthMaxPool(Layer):
    """Max pooling over the channels: each output channel is the max of
    ``pool_size`` consecutive input channels; height and width are kept
    (``tf.nn.max_pool(x, ksize=[1, 1, 1, k], strides=[1, 1, 1, k], "VALID")``)."""

    default_name = "depth_max_pool"

    def __init__(self, pool_size, *, name=None):
        super().__init__(name)
        self.pool_size = int(pool_size)
        if self.pool_size < 1:
            raise ValueError(f"DepthMaxPool pool_size must be positive, got {pool_size}")

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] % self.pool_size:
            raise ShapeError(f"DepthMaxPool({self.pool_size}) expects examples of shape "
                             f"(height, width, channels) with channels divisible by "
                             f"{self.pool_size}, got {tuple(input_shape)}")
        return tuple(input_shape[:-1]) + (input_shape[-1] // self.pool_size,)

    def call(self, params, state, x, train, key):
        k = self.pool_size
        return F.max_pool(x, (1, 1, 1, k), (1, 1, 1, k), "VALID") if k > 1 else x, state


class Flatten(Layer):
    """``[batch, d1, d2, ...] -> [batch, d1 * d2 * ...]``."""

    default_name = "flatten"

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def call(self, params, state, x, train, key):
        return tnp.reshape(x, (tnp.shape(x)[0], -1)), state


class Activation(Layer):
    """An activation by name (``"relu"``, ``"elu"``, ...) or function, as a layer."""

    default_name = "activation"

    def __init__(self, activation, *, name=None):
        super().__init__(name)
        self.activation = F.get_activation(activation)
        if self.activation is None:
            raise ValueError("Activation needs an activation (a name or a function)")

    def call(self, params, state, x, train, key):
        return self.activation(x), state
