"""cond, while and scan as host loops over sub-plans, the part the backends
share: which sub-Functions become plans and how each backend's loop objects
(its control.py: ``Cond``, ``While``, ``Scan``) are made from them."""
from __future__ import annotations


class Cond:
    """Runs one of two plans. ``truth`` reads the predicate (a subclass
    reads it back from the device)."""

    def __init__(self, true_plan, false_plan):
        self.true_plan, self.false_plan = true_plan, false_plan

    @staticmethod
    def truth(pred) -> bool:
        return bool(pred)

    def __call__(self, pred, *ops):
        return (self.true_plan if self.truth(pred) else self.false_plan)(list(ops))


def loop_over_plans(ins, sub, control):
    """The loop object of a cond/while/scan instruction: ``sub(f, donate)``
    builds the plan of sub-Function ``f`` (``donate``: the parameters it may
    update in place, a loop's carries); ``control`` is the backend's module
    of loop classes."""
    a = ins.attrs
    if ins.prim == "cond":
        return control.Cond(sub(a["true_fun"]), sub(a["false_fun"]))
    if ins.prim == "while":
        k = a["num_consts"]
        carries = range(k, len(a["body"].params))
        return control.While(sub(a["cond_fun"]), sub(a["body"], carries), k)
    k, nc = a["num_consts"], a["num_carry"]
    return control.Scan(sub(a["body"], range(k, k + nc)), k, nc, a["length"], a["reverse"],
                        list(a["body"].out_types[nc:]))
