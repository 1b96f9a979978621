"""Losses as ``tf.losses`` computes them: per-element losses, weighted, then
reduced to a scalar (``nn.losses.huber_loss(labels, predictions)``).

Every loss takes ``weights`` (a scalar, or an array that broadcasts to the
per-element losses: per example, per element...) and ``reduction``:

- ``Reduction.SUM_BY_NONZERO_WEIGHTS`` (the default, as in TensorFlow 1.x):
  the sum of the weighted losses divided by the number of elements whose
  weight is not zero (0 when there is none);
- ``Reduction.MEAN``: the weighted sum divided by the sum of the weights;
- ``Reduction.SUM_OVER_BATCH_SIZE``: divided by the number of elements;
- ``Reduction.SUM``: the weighted sum; ``Reduction.NONE``: the weighted
  per-element losses, unreduced.

The losses (``labels`` first, as in TensorFlow):

- :func:`absolute_difference` -- ``|predictions - labels|``;
- :func:`mean_squared_error` -- ``(predictions - labels) ** 2``;
- :func:`huber_loss` -- quadratic within ``delta``, linear beyond:
  ``0.5 * e**2`` if ``|e| <= delta`` else ``delta * (|e| - 0.5 * delta)``;
- :func:`log_loss` -- binary cross-entropy of probabilities:
  ``-y log(p + eps) - (1 - y) log(1 - p + eps)``;
- :func:`hinge_loss` -- ``max(0, 1 - (2y - 1) * logits)`` for labels in
  {0, 1} (the max-margin cost: the right side must win by a margin of 1).
"""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..ir.dims import Dim
from ..naming import add_name_keyword

__all__ = ["Reduction", "compute_weighted_loss", "absolute_difference", "mean_squared_error",
           "huber_loss", "log_loss", "hinge_loss"]


class Reduction:
    """The ways to reduce weighted losses to a scalar (``tf.losses.Reduction``)."""

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)


def _safe_divide(total, count):
    """``total / count``, 0 where ``count`` is 0 (TensorFlow's ``div_no_nan``)."""
    dtype = tnp.result_type_of(total)
    count = tnp.astype(count, dtype)
    return tnp.where(count > 0, total / tnp.where(count > 0, count, 1), tnp.zeros((), dtype))


def compute_weighted_loss(losses, weights=1.0, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``losses * weights`` reduced as ``reduction`` says (module docstring)."""
    if reduction not in Reduction.all():
        raise ValueError(f"unknown reduction {reduction!r}; use one of nn.losses.Reduction's "
                         f"{list(Reduction.all())}")
    losses = tnp.asarray(losses)
    dtype = tnp.result_type_of(losses)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        losses, dtype = tnp.astype(losses, np.float32), np.float32
    weights = tnp.asarray(weights, dtype)
    try:
        tnp.broadcast_shapes(tnp.shape(weights), tnp.shape(losses))
        if len(tnp.shape(weights)) > len(tnp.shape(losses)):
            raise ValueError
    except ValueError:   # tracejit's ShapeError is a ValueError too
        raise ValueError(f"weights of shape {tnp.shape(weights)} do not broadcast to the losses' "
                         f"shape {tnp.shape(losses)}") from None
    weighted = losses * weights
    if reduction == Reduction.NONE:
        return weighted
    total = tnp.sum(weighted)
    if reduction == Reduction.SUM:
        return total
    if reduction == Reduction.MEAN:
        return _safe_divide(total, tnp.sum(tnp.broadcast_to(weights, tnp.shape(losses))))
    if reduction == Reduction.SUM_OVER_BATCH_SIZE:
        if any(isinstance(d, Dim) for d in tnp.shape(losses)):   # a symbolic batch: count it
            return _safe_divide(total, tnp.sum(tnp.ones_like(losses)))
        return _safe_divide(total, tnp.asarray(max(int(np.prod(tnp.shape(losses))), 0), dtype))
    present = tnp.sum(tnp.astype(tnp.broadcast_to(weights, tnp.shape(losses)) != 0, dtype))
    return _safe_divide(total, present)


def _check_shapes(labels, predictions, what):
    labels, predictions = tnp.asarray(labels), tnp.asarray(predictions)
    if tnp.shape(labels) != tnp.shape(predictions):
        raise ValueError(f"{what}: labels of shape {tnp.shape(labels)} and predictions of "
                         f"shape {tnp.shape(predictions)} must have the same shape")
    dtype = tnp.result_type_of(predictions)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        dtype = np.float32
    return tnp.astype(labels, dtype), tnp.astype(predictions, dtype)


def absolute_difference(labels, predictions, weights=1.0,
                        reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``|predictions - labels|``, weighted and reduced."""
    labels, predictions = _check_shapes(labels, predictions, "absolute_difference")
    return compute_weighted_loss(tnp.abs(predictions - labels), weights, reduction)


def mean_squared_error(labels, predictions, weights=1.0,
                       reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``(predictions - labels) ** 2``, weighted and reduced."""
    labels, predictions = _check_shapes(labels, predictions, "mean_squared_error")
    return compute_weighted_loss(tnp.square(predictions - labels), weights, reduction)


def huber_loss(labels, predictions, weights=1.0, delta=1.0,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Squared error within ``delta`` of the label, absolute error beyond
    (less sensitive to outliers than the squared error), weighted and reduced."""
    if delta <= 0:
        raise ValueError(f"huber_loss delta must be positive, got {delta}")
    labels, predictions = _check_shapes(labels, predictions, "huber_loss")
    error = tnp.abs(predictions - labels)
    quadratic = tnp.minimum(error, delta)
    linear = error - quadratic
    return compute_weighted_loss(0.5 * tnp.square(quadratic) + delta * linear, weights, reduction)


def log_loss(labels, predictions, weights=1.0, epsilon=1e-7,
             reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Binary cross-entropy of predicted probabilities ``predictions`` in
    [0, 1] against labels in [0, 1]; ``epsilon`` keeps the logs finite."""
    labels, predictions = _check_shapes(labels, predictions, "log_loss")
    losses = (-labels * tnp.log(predictions + epsilon)
              - (1 - labels) * tnp.log(1 - predictions + epsilon))
    return compute_weighted_loss(losses, weights, reduction)


def hinge_loss(labels, logits, weights=1.0, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``max(0, 1 - (2 * labels - 1) * logits)``: labels in {0, 1} become
    -1 / +1, and a logit on the right side by a margin of at least 1 costs
    nothing."""
    labels, logits = _check_shapes(labels, logits, "hinge_loss")
    signs = 2 * labels - 1
    return compute_weighted_loss(tnp.maximum(1 - signs * logits, 0), weights, reduction)


# ``name=`` on every loss (tracejit.naming): ``huber_loss(y, p, name="loss")``.
add_name_keyword(globals(), __all__)
