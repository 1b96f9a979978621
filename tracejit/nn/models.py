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
- :func:`alexnet` -- Table 13-2 (62,378,344 parameters on 224x224x3, the
  chapter's "60 million").
- :func:`googlenet` -- Figure 13-11, nine :class:`~tracejit.nn.Inception`
  modules (6,998,552 parameters: the chapter's "roughly 6 million").
- :func:`resnet34` -- Figure 13-14, 16 :class:`~tracejit.nn.ResidualUnit`
  layers (21,797,672 parameters; 34 weight layers); :func:`resnet152`, 50
  :class:`~tracejit.nn.BottleneckUnit` layers (60,192,808 parameters; 152).

The three ImageNet models are far too large to train on a CPU; they are
here to be read, counted, traced (``tracejit ir``) and measured
(:func:`tracejit.memory_estimate`), and to train scaled down
(``n_classes``, smaller inputs).

All return logits: train them with ``sparse_softmax_cross_entropy_with_logits``
(the default loss of :mod:`tracejit.train`).
"""
from __future__ import annotations

from . import initializers
from .composite import BottleneckUnit, Inception, ResidualUnit, Sequential
from .layers import (Activation, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten,
                     GlobalAvgPool2D, LocalResponseNorm, MaxPool2D)

__all__ = ["mlp", "lenet5", "cifar10_cnn", "alexnet", "googlenet", "resnet34", "resnet152"]


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


def alexnet(n_classes: int = 1000, *, dropout_rate: float = 0.5,
            name: str | None = None) -> Sequential:
    """AlexNet as in Hands-On ML Table 13-2, for 224x224x3 images (logits).

    - ``c1``: conv 96 maps 11x11, stride 4, SAME, ReLU (56x56);
    - ``s2``: max pool 3x3, stride 2, VALID (27x27);
    - ``c3``: conv 256 maps 5x5, stride 1, SAME, ReLU;
    - ``s4``: max pool 3x3, stride 2, VALID (13x13);
    - ``c5``, ``c6``, ``c7``: conv 384, 384, 256 maps 3x3, stride 1, SAME, ReLU;
    - ``s7``: max pool 3x3, stride 2, VALID (6x6);
    - ``f8``, ``f9``: dense 4,096, ReLU, each followed by 50% dropout while training;
    - ``outputs``: dense ``n_classes`` (logits: the table's softmax).

    Local response normalization (``lrn1``, ``lrn3``) follows the ReLU of
    C1 and C3 with the chapter's r = 2, alpha = 0.00002, beta = 0.75, k = 1
    (TensorFlow's ``depth_radius`` is the half-width r/2 = 1).

    Two departures from the table, both needed for its numbers to agree:
    C1 with an 11x11 stride-4 SAME convolution of 224x224 gives 56x56 (the
    table's 55 is a VALID convolution of 227x227); 56 still pools to 27.
    And the table leaves out the max pool after C7 (``s7``) that the
    original network has and that the chapter's "60 million parameters"
    needs: with it F8 sees 6*6*256 = 9,216 inputs and the model has
    62,378,344 parameters (201,838,952 without it).
    """
    lrn = dict(depth_radius=1, bias=1.0, alpha=0.00002, beta=0.75)

    def conv(filters, size, stride, layer_name):
        return Conv2D(filters, size, stride, "SAME", activation="relu", name=layer_name)

    def pool(layer_name):
        return MaxPool2D(3, 2, "VALID", name=layer_name)
    return Sequential([
        conv(96, 11, 4, "c1"), LocalResponseNorm(**lrn, name="lrn1"), pool("s2"),
        conv(256, 5, 1, "c3"), LocalResponseNorm(**lrn, name="lrn3"), pool("s4"),
        conv(384, 3, 1, "c5"), conv(384, 3, 1, "c6"), conv(256, 3, 1, "c7"), pool("s7"),
        Flatten(name="flatten"),
        Dense(4096, "relu", name="f8"), Dropout(dropout_rate, name="dropout8"),
        Dense(4096, "relu", name="f9"), Dropout(dropout_rate, name="dropout9"),
        Dense(int(n_classes), name="outputs"),
    ], name=name)


# GoogLeNet's inception modules (Szegedy et al. 2015, Table 1), in the order of
# Inception's arguments: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection.
GOOGLENET_INCEPTIONS = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(n_classes: int = 1000, *, dropout_rate: float = 0.4,
              name: str | None = None) -> Sequential:
    """GoogLeNet as in Hands-On ML Figure 13-11, for 224x224x3 images (logits).

    Stem: conv 64 7x7/2 -> max pool 3x3/2 (the two divide height and width
    by 4: 56x56) -> LRN -> conv 64 1x1 (bottleneck) -> conv 192 3x3 -> LRN ->
    max pool 3x3/2 (28x28); then the nine inception modules (each an
    :class:`~tracejit.nn.Inception` layer, sizes in
    :data:`GOOGLENET_INCEPTIONS`) with max pools 3x3/2 after ``inception_3b``
    (14x14) and ``inception_4e`` (7x7); global average pooling (the
    figure's 7x7 VALID average pool: 1,024 values), dropout 40%, and a
    dense layer to ``n_classes``.  Every convolution is SAME with ReLU; the
    pools are SAME.  LRN as in Caffe's GoogLeNet: 5 channels (``depth_radius``
    2), alpha = 0.0001 / 5, beta = 0.75.  The two auxiliary classifiers of
    the original (used only while training) are left out, as in the figure.

    6,998,552 parameters: the chapter's "roughly 6 million", ten times fewer
    than :func:`alexnet`.
    """
    lrn = dict(depth_radius=2, bias=1.0, alpha=0.0001 / 5, beta=0.75)

    def conv(filters, size, stride, layer_name):
        return Conv2D(filters, size, stride, "SAME", activation="relu", name=layer_name)

    def pool(layer_name):
        return MaxPool2D(3, 2, "SAME", name=layer_name)
    layers = [conv(64, 7, 2, "conv1"), pool("pool1"), LocalResponseNorm(**lrn, name="lrn1"),
              conv(64, 1, 1, "conv2_reduce"), conv(192, 3, 1, "conv2"),
              LocalResponseNorm(**lrn, name="lrn2"), pool("pool2")]
    for module_name, sizes in GOOGLENET_INCEPTIONS.items():
        layers.append(Inception(*sizes, name=module_name))
        if module_name in ("inception_3b", "inception_4e"):
            layers.append(pool("pool" + module_name[-2]))
    layers += [GlobalAvgPool2D(name="avg_pool"), Dropout(dropout_rate, name="dropout"),
               Dense(int(n_classes), name="outputs")]
    return Sequential(layers, name=name)


def _resnet(unit, stages, n_classes, name):
    """The stem, ``unit(filters, strides)`` layers per ``(filters, repeats)``
    stage (stride 2 at each stage but the first), the head."""
    layers = [Conv2D(64, 7, 2, "SAME", use_bias=False, name="conv1"),
              BatchNorm(name="bn1"), Activation("relu", name="relu1"),
              MaxPool2D(3, 2, "SAME", name="pool1")]
    for k, (filters, repeats) in enumerate(stages):
        for i in range(repeats):
            layers.append(unit(filters, 2 if i == 0 and k > 0 else 1))
    layers += [GlobalAvgPool2D(name="avg_pool"), Dense(int(n_classes), name="outputs")]
    return Sequential(layers, name=name)


def resnet34(n_classes: int = 1000, *, name: str | None = None) -> Sequential:
    """ResNet-34 as in Hands-On ML Figure 13-14, for 224x224x3 images (logits).

    Stem as GoogLeNet's: conv 64 7x7/2 (no bias) -> batch norm -> ReLU -> max
    pool 3x3/2 (SAME); then 3 :class:`~tracejit.nn.ResidualUnit` layers of
    64 maps, 4 of 128, 6 of 256 and 3 of 512 (the first unit of each new
    depth has stride 2 and a 1x1 projection shortcut); global average
    pooling and a dense layer to ``n_classes`` (no dropout).  34 weight
    layers (1 + 2 * 16 convolutions + 1 dense), 21,797,672 parameters
    (batch norm's gamma and beta included; its moving averages are state).
    ``init`` returns ``(params, state)``.
    """
    return _resnet(ResidualUnit, ((64, 3), (128, 4), (256, 6), (512, 3)), n_classes, name)


def resnet152(n_classes: int = 1000, *, name: str | None = None) -> Sequential:
    """ResNet-152 (Hands-On ML Ch. 13): :func:`resnet34`'s stem and head
    around :class:`~tracejit.nn.BottleneckUnit` layers: 3 that output 256
    maps, 8 with 512, 36 with 1,024 and 3 with 2,048.  152 weight layers
    (1 + 3 * 50 convolutions + 1 dense), 60,192,808 parameters."""
    return _resnet(BottleneckUnit, ((64, 3), (128, 8), (256, 36), (512, 3)), n_classes, name)
