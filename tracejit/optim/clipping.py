"""Gradient clipping and the max-norm constraint (Hands-On ML, "Gradient
Clipping" and "Max-Norm Regularization").

- ``clip_by_value(grads, clip_value_min, clip_value_max)``: every element
  into the range (the book clips to [-1, 1]).
- ``global_norm(tree)``: the L2 norm of all leaves together.
- ``clip_by_global_norm(grads, clip_norm)``: scale every gradient by
  ``clip_norm / max(global_norm, clip_norm)`` (their direction is kept).
  Unlike TensorFlow's it returns only the clipped tree; ask
  :func:`global_norm` for the norm.
- ``clip_by_norm(t, clip_norm, axes=None)``: TensorFlow's op on one array.
- ``max_norm(params, threshold, axes=None, pattern=r"kernel$")``: the
  max-norm constraint, applied to the parameters after each update.

These are pure functions of trees, usable inside a compiled step or in
:func:`tracejit.optim.chain` (before the optimizer for gradients, after it
for constraints).
"""
from __future__ import annotations

from .. import numpy as tnp
from ..tree import tree_flatten_with_path, tree_leaves, tree_map, tree_structure, tree_unflatten
from .names import matcher

__all__ = ["clip_by_value", "global_norm", "clip_by_global_norm", "clip_by_norm", "max_norm"]


def clip_by_value(grads, clip_value_min, clip_value_max):
    return tree_map(lambda g: tnp.clip(g, clip_value_min, clip_value_max), grads)


def global_norm(tree):
    """``sqrt(sum of the squares of every element of every leaf)``."""
    return tnp.sqrt(sum(tnp.sum(tnp.square(x)) for x in tree_leaves(tree)))


def clip_by_global_norm(grads, clip_norm):
    scale = clip_norm / tnp.maximum(global_norm(grads), clip_norm)
    return tree_map(lambda g: tnp.astype(g * scale, tnp.result_type_of(g)), grads)


def clip_by_norm(t, clip_norm, axes=None):
    """``t * clip_norm / max(norm, clip_norm)``, the L2 norm taken over ``axes``
    (all of them by default), so each slice along ``axes`` ends with a norm of
    at most ``clip_norm``."""
    norm = tnp.sqrt(tnp.sum(tnp.square(t), axis=axes, keepdims=True))
    return tnp.astype(t * (clip_norm / tnp.maximum(norm, clip_norm)), tnp.result_type_of(t))


def max_norm(params, threshold, axes=None, pattern=r"kernel$"):
    """Clip the weights of each neuron's incoming connections to an L2 norm of
    at most ``threshold`` (``w <- w * threshold / ||w||`` where larger).

    Applies to the parameters whose names match ``pattern`` (a regular
    expression, list of them or predicate; see :func:`tracejit.optim.select`;
    by default the kernels, not the biases). ``axes`` are the axes the norm
    is taken over; by default every axis but the last, i.e. per output
    unit: axis 0 of a dense kernel ``[in, out]``, the window and input
    channels of a convolution kernel, as the book's text describes (and
    Keras's ``MaxNorm``). The book's code, ``clip_by_norm(weights,
    threshold, axes=1)``, normalizes the rows of ``[in, out]`` instead (each
    input's outgoing weights); ``axes=1`` reproduces it.
    """
    match = matcher(pattern)
    named = tree_flatten_with_path(params)

    def constrain(name, w):
        if not match(name):
            return w
        ax = tuple(range(tnp.ndim(w) - 1)) if axes is None else axes
        return clip_by_norm(w, threshold, ax)
    return tree_unflatten(tree_structure(params), [constrain(n, w) for n, w in named])
