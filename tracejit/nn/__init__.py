"""Neural networks with TensorFlow's names: functional ops, layers, models,
recurrent cells and initializers.

- Functional ops (:mod:`.functional`): activations (``relu``, ``elu``,
  ``selu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softplus``,
  ``softmax``, ...), convolutions (``conv1d/2d/3d``, ``atrous_conv2d``,
  ``depthwise_conv2d``, ``separable_conv2d``, ``conv2d_transpose``),
  ``max_pool`` (also over the channels), ``avg_pool``, ``lrn``, ``moments``,
  ``batch_normalization``, ``dropout``, ``prelu``, ``rrelu``,
  ``zero_fraction`` and losses; ``nn.losses`` has ``tf.losses``' weighted
  losses (``hinge_loss``, ``huber_loss``, ``log_loss``,
  ``absolute_difference``, ``mean_squared_error``).
- Layers (:mod:`.layers`, :mod:`.composite`): ``Dense``, ``Conv2D``,
  ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``, ``LocalResponseNorm``,
  ``BatchNorm``, ``Dropout``, ``Flatten``, ``Activation``, ``PReLU``,
  ``RReLU``, ``DepthMaxPool``, ``Sequential``, ``ResidualUnit``,
  ``Inception``; ``count_params`` (of params, or of a layer and an input
  shape). Parameters are plain
  dicts: ``params = model.init(key, input_shape)`` (``(params, state)`` for
  models with batch norm), ``y = model.apply(params, x, train=..., key=...)``
  (``(y, state)`` with ``state=``). See :mod:`.layers` for the convention.
- Models (:mod:`.models`, also ``nn.models``): ``mlp`` (the book's MNIST
  DNN), ``lenet5`` (Table 13-1), ``cifar10_cnn`` (the TensorFlow CIFAR-10
  tutorial's model), ``alexnet``, ``googlenet``, ``resnet34`` (Ch. 13).
- Recurrent (:mod:`.rnn`): ``BasicRNNCell``, ``LSTMCell``, ``GRUCell``,
  ``LSTMStateTuple``, ``dynamic_rnn``, the ``RNN`` layer.
- Variable scopes (:mod:`.variables`): ``transform(fn)`` makes a function
  that calls ``get_variable`` inside ``variable_scope(name, reuse=...)``
  (TensorFlow 1.x style) into pure ``init(key, *args)`` / ``apply(params,
  *args)``; ``AUTO_REUSE``.
- Initializers (:mod:`.initializers`): ``nn.initializers.he_normal()``, ...
"""
from .functional import (  # noqa: F401
    add_n, one_hot, cast, relu, relu6, elu, selu, leaky_relu, sigmoid, tanh, softplus, softmax, log_softmax,
    logsumexp, get_activation, conv1d, conv2d, conv3d, atrous_conv2d, depthwise_conv2d,
    separable_conv2d, conv2d_transpose, max_pool, avg_pool, local_response_normalization,
    lrn, moments, batch_normalization, dropout, l2_loss,
    sparse_softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits, mean_squared_error, in_top_k, prelu, rrelu, zero_fraction)
from . import initializers, losses  # noqa: F401
from .initializers import variance_scaling_initializer  # noqa: F401
from .layers import (  # noqa: F401
    Layer, Dense, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, LocalResponseNorm,
    BatchNorm, Dropout, Flatten, Activation, PReLU, RReLU, DepthMaxPool, count_params,
    param_types)
from .composite import Sequential, ResidualUnit, BottleneckUnit, Inception  # noqa: F401
from . import models  # noqa: F401
from .models import (  # noqa: F401
    mlp, lenet5, cifar10_cnn, alexnet, googlenet, resnet34, resnet152)
from .variables import (  # noqa: F401
    transform, Transformed, get_variable, variable_scope, VariableScope, get_variable_scope,
    AUTO_REUSE, VariableError)
from .rnn import (  # noqa: F401
    RNNCell, BasicRNNCell, LSTMCell, GRUCell, LSTMStateTuple, dynamic_rnn, RNN)
