"""cond, while and scan: host loops over plans compiled from their
sub-Functions (by this backend, recursively). The predicate of a cond or a
while is read back to the host each time it is tested; the loop owns its
carries (device copies of the initial ones), which the body plan may
update in place (they are donated)."""
from __future__ import annotations

import numpy as np

from ...kernel import control
from . import allocator


def _copy(a):
    b = allocator.empty(a.shape, a.dtype)
    b.copy_to_device(a)
    return b


def _owned(carries, others):
    """The carries, copied where the body returned one of ``others`` (a
    constant or a row of an xs) as it is: the next step may update its
    carries in place."""
    ids = {id(o) for o in others}
    return [_copy(c) if id(c) in ids else c for c in carries]


def _truth(pred) -> bool:
    return bool(pred.copy_to_host().reshape(-1)[0])


class Cond(control.Cond):
    truth = staticmethod(_truth)


class While:
    def __init__(self, cond_plan, body_plan, num_consts):
        self.cond_plan, self.body_plan, self.num_consts = cond_plan, body_plan, num_consts

    def __call__(self, *ops):
        consts = list(ops[:self.num_consts])
        carries = [_copy(c) for c in ops[self.num_consts:]]
        while _truth(self.cond_plan(consts + carries)[0]):
            carries = _owned(self.body_plan(consts + carries), consts)
        return carries


class Scan:
    """Runs the body once per step on views of the xs' rows, copying each
    step's ys into arrays allocated once per call."""

    def __init__(self, body_plan, num_consts, num_carry, length, reverse, y_types):
        self.body_plan = body_plan
        self.num_consts, self.num_carry = num_consts, num_carry
        self.length, self.reverse = length, reverse
        self.y_types = y_types

    def __call__(self, *ops):
        k, c = self.num_consts, self.num_carry
        consts, xs = list(ops[:k]), ops[k + c:]
        carries = [_copy(x) for x in ops[k:k + c]]
        ys = [allocator.empty((self.length,) + t.shape, np.dtype(t.dtype))
              for t in self.y_types]
        steps = range(self.length - 1, -1, -1) if self.reverse else range(self.length)
        body = self.body_plan
        for i in steps:
            rows = [x[i] if len(x.shape) > 1 else x[i:i + 1] for x in xs]
            outs = body(consts + carries + rows)
            carries = _owned(outs[:c], consts + rows)
            for y, v in zip(ys, outs[c:]):
                (y[i] if len(y.shape) > 1 else y[i:i + 1]).copy_to_device(v)
        return carries + ys
