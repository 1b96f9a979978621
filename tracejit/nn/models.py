"""Ready-made models of the book and the TensorFlow tutorials, as
:class:`~tracejit.nn.Sequential` models (``init`` / ``apply`` as every layer).

- :func:`mlp` -- the MNIST DNN of Hands-On ML Ch. 10-11: hidden layers of
  300 and 100 units (ReLU, He initialization) and a linear output layer
  (266,610 parameters on 784 inputs); parameters ``hidden1``, ``hidden2``,
  ..., ``outputs``, as in the book (and the ``mlp`` training recipe).
- :func:`lenet5` -- LeNet-5 as in the book's Table 13-1: conv 6@5x5, average
  pool 2x2, conv 16@5x5, average pool 2x2, conv 120@5x5, dense 84, dense 10,
  tanh everywhere but the output (61,706 parameters on 32x32x1; the book
  zero-pads MNIST's 28x28 images to 32x32).  The pooling layers are plain
  average pools (the original's subsampling layers also had a trainable
  coefficient and bias per map, and its output layer was RBF units; the
  book's count, and this one, leaves those out).
- :func:`cifar10_cnn` -- the TensorFlow CIFAR-10 tutorial's ``inference()``
  (1,068,298 parameters on 24x24x3), with its variable names and
  initializers; the ``cnn`` training recipe uses it.

All return logits: train them with ``sparse_softmax_cross_entropy_with_logits``
(the default loss of :mod:`tracejit.train`).
"""
from __future__ import annotations

from . import initializers
from .composite import Sequential
from .layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, LocalResponseNorm, MaxPool2D

__all__ = ["mlp", "lenet5", "cifar10_cnn"]


def mlp(hidden_units=(300, 100), n_classes: int = 10, activation="relu", *,
        kernel_initializer="he_normal", dropout_rate: float = 0.0,
        name: str | None = None) -> Sequential:
    """A fully connected classifier: one ``Dense(units, activation)`` per entry of
    ``hidden_units`` (named ``hidden1``, ``hidden2``, ...), then a linear
    ``Dense(n_classes)`` named ``outputs`` (logits).

    ``mlp()`` is the book's MNIST DNN (784 -> 300 -> 100 -> 10, ReLU, He
    initialization: 266,610 parameters).  With ``dropout_rate`` > 0 a
    :class:`Dropout` follows every hidden layer (training then needs a key).
    """
    hidden_units = [int(u) for u in hidden_units]
    if any(u < 1 for u in hidden_units):
        raise ValueError(f"hidden_units must be positive, got {hidden_units}")
    if int(n_classes) < 1:
        raise ValueError(f"n_classes must be positive, got {n_classes}")
    layers = []
    for i, units in enumerate(hidden_units, 1):
        layers.append(Dense(units, activation, kernel_initializer=kernel_initializer,
                            name=f"hidden{i}"))
        if dropout_rate:
            layers.append(Dropout(dropout_rate, name=f"dropout{i}"))
    layers.append(Dense(int(n_classes), kernel_initializer=kernel_initializer, name="outputs"))
    return Sequential(layers, name=name)


def lenet5(n_classes: int = 10, activation="tanh", *, name: str | None = None) -> Sequential:
    """LeNet-5 (Hands-On ML Table 13-1) for 32x32x1 images: layers named as in
    the table, ``c1``, ``s2``, ``c3``, ``s4``, ``c5``, ``f6``, ``outputs``.

    ============  =========  ========  ======  ======  ==========
    layer         type       maps      size    kernel  activation
    ============  =========  ========  ======  ======  ==========
    c1            conv       6         28x28   5x5     tanh
    s2            avg pool   6         14x14   2x2     --
    c3            conv       16        10x10   5x5     tanh
    s4            avg pool   16        5x5     2x2     --
    c5            conv       120       1x1     5x5     tanh
    f6            dense      84        --      --      tanh
    outputs       dense      10        --      --      (logits)
    ============  =========  ========  ======  ======  ==========

    61,706 parameters; VALID padding everywhere, stride 1 for the
    convolutions and 2 for the pools.
    """
    return Sequential([
        Conv2D(6, 5, activation=activation, name="c1"),
        AvgPool2D(2, 2, name="s2"),
        Conv2D(16, 5, activation=activation, name="c3"),
        AvgPool2D(2, 2, name="s4"),
        Conv2D(120, 5, activation=activation, name="c5"),
        Flatten(name="flatten"),
        Dense(84, activation, name="f6"),
        Dense(int(n_classes), name="outputs"),
    ], name=name)


def cifar10_cnn(width: float = 1.0, n_classes: int = 10, *,
                name: str | None = None) -> Sequential:
    """The TensorFlow CIFAR-10 tutorial's ``inference()`` (sizes and initializers
    from its reference code): conv 5x5x64 -> max pool 3/2 -> LRN -> conv
    5x5x64 -> LRN -> max pool 3/2 -> dense 384 -> dense 192 -> linear 10,
    every layer's width scaled by ``width``; expects 24x24x3 images
    (1,068,298 parameters at ``width=1``)."""
    conv, local3, local4 = (max(1, int(round(n * width))) for n in (64, 384, 192))
    lrn = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    trunc = initializers.truncated_normal
    const = initializers.constant
    return Sequential([
        Conv2D(conv, 5, padding="SAME", activation="relu", name="conv1",
               kernel_initializer=trunc(stddev=5e-2), bias_initializer=const(0.0)),
        MaxPool2D(3, 2, padding="SAME", name="pool1"),
        LocalResponseNorm(**lrn, name="norm1"),
        Conv2D(conv, 5, padding="SAME", activation="relu", name="conv2",
               kernel_initializer=trunc(stddev=5e-2), bias_initializer=const(0.1)),
        LocalResponseNorm(**lrn, name="norm2"),
        MaxPool2D(3, 2, padding="SAME", name="pool2"),
        Flatten(),
        Dense(local3, "relu", name="local3",
              kernel_initializer=trunc(stddev=0.04), bias_initializer=const(0.1)),
        Dense(local4, "relu", name="local4",
              kernel_initializer=trunc(stddev=0.04), bias_initializer=const(0.1)),
        Dense(int(n_classes), name="softmax_linear",
              kernel_initializer=trunc(stddev=1 / float(local4)), bias_initializer=const(0.0)),
    ], name=name)
