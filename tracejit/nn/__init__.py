"""Neural-network ops, layers and initializers with TensorFlow's names."""
from .functional import (  # noqa: F401
    relu, relu6, elu, selu, leaky_relu, sigmoid, tanh, softplus, softmax, log_softmax,
    logsumexp, get_activation, conv1d, conv2d, conv3d, atrous_conv2d, depthwise_conv2d,
    separable_conv2d, conv2d_transpose, max_pool, avg_pool, local_response_normalization,
    lrn, moments, batch_normalization, dropout, l2_loss,
    sparse_softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits, mean_squared_error, in_top_k)
