"""Optimizers built from optimizers: ``chain`` (gradient transforms before,
constraints after), ``masked`` and ``freeze`` (train a subset of the
parameters, chosen by name).

Each is again an optimizer: ``init(params)``, ``update(grads, state, params,
*, learning_rate=None)`` and ``learning_rate`` (the inner optimizer's).
"""
from __future__ import annotations

from ..tree import tree_flatten_with_path, tree_structure, tree_unflatten
from .names import matcher, select

__all__ = ["chain", "masked", "freeze"]


def _is_optimizer(x):
    return hasattr(x, "init") and hasattr(x, "update")


class chain:
    """One optimizer with plain functions around it::

        opt = optim.chain(
            functools.partial(optim.clip_by_global_norm, clip_norm=5.0),   # grads -> grads
            optim.momentum(0.01, 0.9),
            functools.partial(optim.max_norm, threshold=1.0))            # params -> params

    Functions before the optimizer transform the gradients, in order;
    functions after it transform the updated parameters (constraints).
    The state is the optimizer's.
    """

    def __init__(self, *parts):
        positions = [i for i, p in enumerate(parts) if _is_optimizer(p)]
        if len(positions) != 1:
            raise ValueError(f"chain needs exactly one optimizer among its parts, got "
                             f"{len(positions)}")
        (i,) = positions
        if not all(callable(p) for j, p in enumerate(parts) if j != i):
            raise TypeError("chain: the parts around the optimizer must be functions of a tree")
        self.before, self.optimizer, self.after = parts[:i], parts[i], parts[i + 1:]

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    def init(self, params):
        return self.optimizer.init(params)

    def update(self, grads, state, params, *, learning_rate=None):
        for transform in self.before:
            grads = transform(grads)
        params, state = self.optimizer.update(grads, state, params, learning_rate=learning_rate)
        for constraint in self.after:
            params = constraint(params)
        return params, state


class masked:
    """Update only the parameters whose names satisfy ``trainable`` (a regular
    expression searched in ``"dense1/kernel"``-style names, a list of them,
    or a predicate, see :func:`tracejit.optim.select`); the others keep
    their values and get no optimizer state. The book's "train only
    hidden[34]|outputs" is ``masked(opt, r"^(hidden[34]|outputs)/")``.

    The inner optimizer sees the trainable parameters as a flat dict keyed
    by their names, so its state names them the same way
    (``"m/dense2/kernel"``).
    """

    def __init__(self, optimizer, trainable):
        self.optimizer = optimizer
        self.trainable = matcher(trainable)

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    def init(self, params):
        subset = select(params, self.trainable)
        if not subset:
            raise ValueError("masked: no parameter is trainable; the names are "
                             f"{[n for n, _ in tree_flatten_with_path(params)]}")
        return self.optimizer.init(subset)

    def update(self, grads, state, params, *, learning_rate=None):
        new, state = self.optimizer.update(select(grads, self.trainable), state,
                                           select(params, self.trainable),
                                           learning_rate=learning_rate)
        leaves = [new.get(name, leaf) for name, leaf in tree_flatten_with_path(params)]
        return tree_unflatten(tree_structure(params), leaves), state


def freeze(optimizer, frozen):
    """``optimizer`` on every parameter except those whose names match
    ``frozen`` (e.g. ``r"^dense1/"``, the reused lower layers)."""
    is_frozen = matcher(frozen)
    return masked(optimizer, lambda name: not is_frozen(name))
