"""Weight penalties added to the loss (Hands-On ML, "l1 and l2 Regularization";
TensorFlow's ``l1_regularizer`` and ``l2_regularizer``)::

    loss = base_loss + optim.l2_penalty(params, 0.004)

- ``l1_penalty(params, scale, pattern=r"kernel$")``: ``scale * sum |w|``.
- ``l2_penalty(params, scale, pattern=r"kernel$")``: ``scale * sum w**2 / 2``
  (``scale * l2_loss(w)``, TensorFlow's form: the half makes the
  gradient ``scale * w``; Keras's ``l2`` has no half).

Both sum over the parameters whose names match ``pattern`` (a regular
expression, list of them or predicate, see :func:`tracejit.optim.select`):
by default the kernels, since biases are usually left unpenalized.
"""
from __future__ import annotations

from .. import numpy as tnp
from .names import select

__all__ = ["l1_penalty", "l2_penalty"]


def _penalty(params, scale, pattern, per_leaf):
    leaves = list(select(params, pattern).values())
    if not leaves:
        raise ValueError(f"no parameter name matches {pattern!r}")
    return scale * sum(per_leaf(w) for w in leaves)


def l1_penalty(params, scale, pattern=r"kernel$"):
    return _penalty(params, scale, pattern, lambda w: tnp.sum(tnp.abs(w)))


def l2_penalty(params, scale, pattern=r"kernel$"):
    return _penalty(params, scale, pattern, lambda w: tnp.sum(tnp.square(w)) / 2)
