"""Neural networks with TensorFlow's names: functional ops, layers, models,
recurrent cells and initializers.

- Functional ops (:mod:`.functional`): activations (``relu``, ``elu``,
  ``selu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softplus``,
  ``softmax``, ...), convolutions (``conv1d/2d/3d``, ``atrous_conv2d``,
  ``depthwise_conv2d``, ``separable_conv2d``, ``conv2d_transpose``),
  ``max_pool``, ``avg_pool``, ``lrn``, ``moments``,
  ``batch_normalization``, ``dropout`` and losses.
- Layers (:mod:`.layers`, :mod:`.composite`): ``Dense``, ``Conv2D``,
  ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``, ``LocalResponseNorm``,
  ``BatchNorm``, ``Dropout``, ``Flatten``, ``Activation``, ``Sequential``,
  ``ResidualUnit``, ``Inception``; ``count_params``. Parameters are plain
  dicts: ``params = model.init(key, input_shape)`` (``(params, state)`` for
  models with batch norm), ``y = model.apply(params, x, train=..., key=...)``
  (``(y, state)`` with ``state=``). See :mod:`.layers` for the convention.
- Models (:mod:`.models`, also ``nn.models``): ``mlp`` (the book's MNIST
  DNN), ``lenet5`` (Table 13-1), ``cifar10_cnn`` (the TensorFlow CIFAR-10
  tutorial's model).
- Recurrent (:mod:`.rnn`): ``BasicRNNCell``, ``LSTMCell``, ``GRUCell``,
  ``LSTMStateTuple``, ``dynamic_rnn``, the ``RNN`` layer.
- Initializers (:mod:`.initializers`): ``nn.initializers.he_normal()``, ...
"""
from .functional import (  # noqa: F401
    add_n, one_hot, cast, relu, relu6, elu, selu, leaky_relu, sigmoid, tanh, softplus, softmax, log_softmax,
    logsumexp, get_activation, conv1d, conv2d, conv3d, atrous_conv2d, depthwise_conv2d,
    separable_conv2d, conv2d_transpose, max_pool, avg_pool, local_response_normalization,
    lrn, moments, batch_normalization, dropout, l2_loss,
    sparse_softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits, mean_squared_error, in_top_k)
from . import initializers  # noqa: F401
from .layers import (  # noqa: F401
    Layer, Dense, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, LocalResponseNorm,
    BatchNorm, Dropout, Flatten, Activation, count_params)
from .composite import Sequential, ResidualUnit, Inception  # noqa: F401
from . import models  # noqa: F401
from .models import mlp, lenet5, cifar10_cnn  # noqa: F401
from .rnn import (  # noqa: F401
    RNNCell, BasicRNNCell, LSTMCell, GRUCell, LSTMStateTuple, dynamic_rnn, RNN)
