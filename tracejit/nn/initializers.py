"""Weight initializers: pure functions ``init(key, shape, dtype=float32) -> array``.

``zeros`` and ``ones`` are initializers themselves; every other name is a
factory that returns one (``glorot_uniform()``, ``constant(0.1)``), as in
``jax.nn.initializers``. Layers also accept the names as strings
(``kernel_initializer="he_normal"``), resolved by :func:`get`.

- ``zeros``, ``ones``, ``constant(value)`` (also ``constant_initializer``)
- ``random_normal(mean=0, stddev=1)``, ``truncated_normal(mean=0, stddev=1)``
  (redrawn beyond two standard deviations, as TensorFlow),
  ``random_uniform(minval=0, maxval=1)``
- ``variance_scaling(scale=1, mode="fan_in", distribution="truncated_normal")``
  and its named cases (Table 11-1 of Hands-On ML):

  ======================  =====  ========  ==================  ==========================
  name                    scale  mode      distribution        for
  ======================  =====  ========  ==================  ==========================
  ``glorot_uniform``      1      fan_avg   uniform             logistic, tanh, softmax
  ``glorot_normal``       1      fan_avg   truncated_normal
  ``he_uniform``          2      fan_in    uniform             ReLU and its variants
  ``he_normal``           2      fan_in    truncated_normal
  ``lecun_uniform``       1      fan_in    uniform             SELU
  ``lecun_normal``        1      fan_in    truncated_normal
  ======================  =====  ========  ==================  ==========================

  ``xavier_uniform`` / ``xavier_normal`` are the Glorot ones under the book's name.
- ``variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False)``:
  TensorFlow 1.x's ``tf.contrib.layers.variance_scaling_initializer`` under
  its name and with its defaults (He initialization), as the book calls it
  (``he_init = variance_scaling_initializer()``). It keeps TF 1.x's formula:
  a normal truncated at two standard deviations with ``stddev =
  sqrt(1.3 * factor / fan)`` (1.3 approximates the truncation's correction),
  or uniform on ``[-r, r]`` with ``r = sqrt(3 * factor / fan)``.

Variance scaling draws with variance ``scale / fan``: ``uniform`` on
``[-r, r]`` with ``r = sqrt(3 * scale / fan)``; ``normal`` with
``sigma = sqrt(scale / fan)``; ``truncated_normal`` draws a normal truncated
at two standard deviations and divides by that truncation's standard
deviation (0.8796), so the drawn weights also have standard deviation
``sigma`` (TensorFlow 2's choice; TF 1's contrib initializer did not
correct). ``fan_avg = (fan_in + fan_out) / 2``, so ``glorot_uniform``'s
``r = sqrt(6 / (fan_in + fan_out))``, the book's Equation 11-1.

Fans follow TensorFlow: a dense kernel ``[in, out]`` has ``fan_in = in``,
``fan_out = out``; a convolution kernel ``[*window, in, out]`` multiplies
both by the window's size; a vector ``[n]`` has both fans ``n``; a scalar 1.
"""
from __future__ import annotations

import math

import numpy as np

from .. import numpy as tnp
from .. import random

__all__ = ["zeros", "ones", "constant", "constant_initializer", "random_normal",
           "truncated_normal", "random_uniform", "variance_scaling", "glorot_uniform",
           "glorot_normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
           "lecun_uniform", "lecun_normal", "variance_scaling_initializer", "compute_fans",
           "get"]

# Standard deviation of a standard normal truncated to [-2, 2].
TRUNCATED_STDDEV = 0.87962566103423978


def zeros(key, shape, dtype=np.float32):
    return tnp.zeros(shape, dtype)


def ones(key, shape, dtype=np.float32):
    return tnp.ones(shape, dtype)


def constant(value):
    """Every element ``value`` (a scalar, or an array broadcast to the shape)."""
    def init(key, shape, dtype=np.float32):
        return tnp.broadcast_to(tnp.asarray(value, dtype), tuple(shape))
    return init


constant_initializer = constant   # TensorFlow's name (tf.constant_initializer)


def random_normal(mean=0.0, stddev=1.0):
    def init(key, shape, dtype=np.float32):
        return random.normal(key, shape, dtype) * stddev + mean
    return init


def truncated_normal(mean=0.0, stddev=1.0):
    """Normal values redrawn beyond two standard deviations (TensorFlow's
    ``truncated_normal_initializer``: ``stddev`` is before truncation)."""
    def init(key, shape, dtype=np.float32):
        return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev + mean
    return init


def random_uniform(minval=0.0, maxval=1.0):
    def init(key, shape, dtype=np.float32):
        return random.uniform(key, shape, dtype, minval, maxval)
    return init


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight of ``shape``, as TensorFlow computes them."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal"):
    """Weights with variance ``scale / fan`` (see the module docstring)."""
    mode, distribution = mode.lower(), distribution.lower()
    if mode not in _MODES:
        raise ValueError(f"variance_scaling: mode must be one of {_MODES}, got {mode!r}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"variance_scaling: distribution must be one of {_DISTRIBUTIONS}, "
                         f"got {distribution!r}")
    if scale <= 0:
        raise ValueError(f"variance_scaling: scale must be positive, got {scale}")

    def init(key, shape, dtype=np.float32):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return random.uniform(key, shape, dtype, -limit, limit)
        if distribution == "normal":
            return random.normal(key, shape, dtype) * math.sqrt(variance)
        stddev = math.sqrt(variance) / TRUNCATED_STDDEV
        return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev
    return init


def glorot_uniform():
    return variance_scaling(1.0, "fan_avg", "uniform")


def glorot_normal():
    return variance_scaling(1.0, "fan_avg", "truncated_normal")


def he_uniform():
    return variance_scaling(2.0, "fan_in", "uniform")


def he_normal():
    return variance_scaling(2.0, "fan_in", "truncated_normal")


def lecun_uniform():
    return variance_scaling(1.0, "fan_in", "uniform")


def lecun_normal():
    return variance_scaling(1.0, "fan_in", "truncated_normal")


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal


def variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False):
    """TensorFlow 1.x's ``tf.contrib.layers.variance_scaling_initializer``
    (the module docstring gives its formula); ``mode`` is ``"FAN_IN"``,
    ``"FAN_OUT"`` or ``"FAN_AVG"`` (any case)."""
    mode = str(mode).lower()
    if mode not in _MODES:
        raise ValueError(f"variance_scaling_initializer: mode must be FAN_IN, FAN_OUT or "
                         f"FAN_AVG, got {mode.upper()!r}")
    if factor <= 0:
        raise ValueError(f"variance_scaling_initializer: factor must be positive, got {factor}")

    def init(key, shape, dtype=np.float32):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        fan = max(1.0, fan)
        if uniform:
            limit = math.sqrt(3.0 * factor / fan)
            return random.uniform(key, shape, dtype, -limit, limit)
        stddev = math.sqrt(1.3 * factor / fan)
        return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev
    return init

_FACTORIES = {"random_normal": random_normal,
              "truncated_normal": truncated_normal, "random_uniform": random_uniform,
              "variance_scaling": variance_scaling, "glorot_uniform": glorot_uniform,
              "glorot_normal": glorot_normal, "xavier_uniform": xavier_uniform,
              "xavier_normal": xavier_normal, "he_uniform": he_uniform,
              "he_normal": he_normal, "lecun_uniform": lecun_uniform,
              "lecun_normal": lecun_normal,
              "variance_scaling_initializer": variance_scaling_initializer}


def get(initializer):
    """An initializer from a name (``"zeros"``, ``"he_normal"``: the factory's
    defaults) or the initializer function itself."""
    if callable(initializer):
        return initializer
    if initializer == "zeros":
        return zeros
    if initializer == "ones":
        return ones
    if initializer in _FACTORIES:
        return _FACTORIES[initializer]()
    raise ValueError(f"unknown initializer {initializer!r}; choose one of "
                     f"{sorted(['zeros', 'ones', *_FACTORIES])} or pass a function "
                     f"(key, shape, dtype) -> array")
