"""cond, while and scan: Python loops over plans compiled from their
sub-Functions (by this backend, recursively)."""
from __future__ import annotations

import numpy as np

from ...kernel.control import Cond

__all__ = ["Cond", "While", "Scan"]


class While:
    """The body plan may update its carries in place (they are donated): the
    loop owns them, being copies of the initial carries."""

    def __init__(self, cond_plan, body_plan, num_consts):
        self.cond_plan, self.body_plan, self.num_consts = cond_plan, body_plan, num_consts

    def __call__(self, *ops):
        consts = list(ops[:self.num_consts])
        carries = [np.array(c) for c in ops[self.num_consts:]]
        while bool(self.cond_plan(consts + carries)[0]):
            carries = self.body_plan(consts + carries)
        return carries


class Scan:
    """Runs the body once per step on slices of the xs, stacking the ys
    into arrays allocated once. The body plan may update its carries in place
    (they are donated): the loop owns them, being copies of the initial
    carries."""

    def __init__(self, body_plan, num_consts, num_carry, length, reverse, y_types):
        self.body_plan = body_plan
        self.num_consts, self.num_carry = num_consts, num_carry
        self.length, self.reverse = length, reverse
        self.y_types = y_types

    def __call__(self, *ops):
        k, c = self.num_consts, self.num_carry
        consts, xs = list(ops[:k]), ops[k + c:]
        carries = [np.array(x) for x in ops[k:k + c]]
        ys = [np.empty((self.length,) + t.shape, t.dtype) for t in self.y_types]
        steps = range(self.length - 1, -1, -1) if self.reverse else range(self.length)
        body = self.body_plan
        for i in steps:
            # x[i, ...]: a 0-d array, not a NumPy scalar, when x is 1-D
            outs = body(consts + carries + [x[i, ...] for x in xs])
            carries = outs[:c]
            for y, v in zip(ys, outs[c:]):
                y[i] = v
        return carries + ys
