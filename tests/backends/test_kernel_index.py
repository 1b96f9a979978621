"""The index algebra of tracejit/kernel/index.py: components, ``reads`` and
value ranges, checked directly (test_fusion.py checks what fusion makes of
them, the parity tests what the kernels compute)."""
import numpy as np

import tracejit
from tracejit.ir.core import Function, Instr, Var
from tracejit.ir.types import TensorType
from tracejit.kernel.index import (Add, Affine, Clamp, Const, DivMod, FloorDiv, Linear, Loop,
                                   Rev, Space, ValueAt, reads)
from tracejit.kernel.ranges import Facts


class Names:
    """The part of a kernel writer that components render through."""

    def loopvar(self, d):
        return f"i{d}"

    def dim(self, n):
        return str(n)


def render(c):
    return c.render(Names())


def test_components_of_different_kinds_are_never_equal():
    # memo keys hold components: Loop(0) and Const(0) must stay apart
    assert Loop(0) != Const(0) and hash(Loop(0)) == hash(Loop(0))
    assert Affine(Loop(1), 2, 3) == Affine(Loop(1), 2, 3) != Affine(Loop(1), 2, 4)
    assert len({Loop(0), Const(0), Loop(0)}) == 2


def test_rendering():
    i0, i1 = Loop(0), Loop(1)
    assert render(i0) == ("i0", frozenset({"i0"}))
    assert render(Const(4)) == ("4", frozenset())
    assert render(Affine(i0, 2, -3))[0] == "(i0 * 2 - 3)"
    assert render(Rev(i1, 5))[0] == "(5 - 1 - i1)"
    assert render(Clamp(FloorDiv(i0, 2), 7))[0] == "min(max((i0 // 2), 0), 7 - 1)"
    assert render(DivMod(i0, 1, 3))[0] == "(i0 % 3)"
    assert render(DivMod(i0, 4, 3))[0] == "((i0 // 4) % 3)"
    code, deps = render(Linear((i0, Const(0), i1), (2, 1, 6)))
    assert code == "(i0 * 6 + i1)" and deps == {"i0", "i1"}
    assert render(Add(i0, i1)) == ("(i0 + i1)", frozenset({"i0", "i1"}))


def _ins(prim, operands, attrs, out):
    return Instr(prim, operands, attrs, [Var(out)])


def test_reads_of_index_ops():
    x = Var(TensorType((4, 6), "float32"))
    comps = (Loop(0), Loop(1))
    sl = _ins("slice", [x], {"start": (1, 0), "limit": (4, 6), "strides": (1, 2)},
              TensorType((3, 3), "float32"))
    assert reads(sl, comps) == [(x, (Affine(Loop(0), 1, 1), Affine(Loop(1), 2, 0)))]
    rv = _ins("rev", [x], {"dimensions": (1,)}, x.type)
    assert reads(rv, comps) == [(x, (Loop(0), Rev(Loop(1), 6)))]
    flat = _ins("reshape", [x], {"new_shape": (24,)}, TensorType((24,), "float32"))
    assert reads(flat, (Loop(0),)) == [(x, (FloorDiv(Loop(0), 6), DivMod(Loop(0), 1, 6)))]
    back = _ins("reshape", [flat.results[0]], {"new_shape": (4, 6)}, x.type)
    (_, lin), = reads(back, comps)
    assert lin == (Linear(comps, (4, 6)),)
    # reading the flat value back at that linear index undoes the reshape
    assert reads(flat, lin) == [(x, comps)]


def test_a_gather_of_an_iota_reads_the_current_row():
    """``x[arange(n), labels]`` flattened: ``x.reshape(-1)[arange(n) * m + labels]``
    reads row i at column labels[i]: Facts splits the linear index (the
    ``add`` before NumPy's negative-index wrap, which simplification
    removes as the range shows it never applies)."""
    def pick(x, labels):
        return x.reshape(-1)[tracejit.numpy.arange(4) * 5 + tracejit.numpy.clip(labels, 0, 4)]
    fn = tracejit.make_ir(pick)(np.zeros((4, 5), np.float32), np.zeros(4, np.int32))
    facts = Facts(fn)
    gather = next(ins for ins in fn.body if ins.prim == "gather")
    (_, (c,)), _ = reads(gather, (Loop(0),), facts)
    assert isinstance(c, ValueAt)
    linear = next(ins.results[0] for ins in fn.body if ins.prim == "add")
    assert facts.range(linear) == (0, 19)
    split = facts.split_linear(linear, (Loop(0),), (4, 5))
    assert split is not None and split[0] == Loop(0) and isinstance(split[1], ValueAt)


def test_space_identity_and_full():
    sp = Space((4, 1, 6), axes=(2,))
    assert sp.kept == (0, 1) and sp.kept_shape == (4, 1)
    assert sp.identity((4, 1, 6)) == (Loop(0), Loop(1), Loop(2))
    assert sp.identity((4, 6)) == (Loop(0), Loop(2))       # the squeezed full space
    assert sp.identity((4,)) == (Loop(0),)                 # the kept space, squeezed
    assert sp.identity((5,)) is None
    assert sp.is_full((4, 1, 6)) and sp.is_full((4, 6)) and not sp.is_full((4,))
    fn = Function([], [], [])
    assert Facts(fn).range(Var(TensorType((), "int32"))) == (-2**31, 2**31 - 1)
