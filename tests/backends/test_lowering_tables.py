"""Every primitive has a lowering on every backend, built from the registry.

For each primitive in ``PRIMITIVES`` and each dtype it takes (its shape
rule accepts operands of that dtype and its reference impl computes on
them), each backend either lowers it or it is in the pinned lists below:

- fusible primitives (elementwise ones and reductions) must generate a
  kernel with the backend's writer and snippet table (no compilation:
  generating the source is what fails when a table has no entry, which
  would otherwise run the whole kernel in the interpreter at run time);
- the others must have a lowering other than the NumPy fallback
  (``backend.lowering(prim)``).

The lists are pinned both ways: a new gap fails the test, and so does an
entry that has gained a lowering (shrink the list then).
"""
import inspect

import numpy as np
import pytest

import tracejit
import tracejit.ir.types
from tracejit.backends import cpu, cuda
from tracejit.backends.cpu import codegen as cpu_codegen
from tracejit.backends.cuda import codegen as cuda_codegen
from tracejit.core import PRIMITIVES
from tracejit.errors import TracejitError
from tracejit.ir.core import Function, Instr, Var
from tracejit.ir.types import TensorType
from tracejit.kernel.writer import LoweringError
from tracejit.primitives import linalg_lapack

#: Every dtype (the small integers, float16 and bfloat16 included).
DTYPES = tracejit.ir.types.DTYPES

#: (primitive, operand dtype) with no kernel lowering on a backend: the
#: kernel containing them runs in the reference interpreter (logged).
#: Empty: every elementwise primitive and reduction lowers on every dtype.
KERNEL_FALLBACKS = {"cpu": set(), "cuda": set()}

#: Non-fusible primitives the plan runs with their NumPy implementation:
#: argsort (a sort: NumPy's is the tuned one), the matrix decompositions and
#: solves (LAPACK through NumPy and SciPy) and the differentiation markers,
#: which autodiff removes before a backend sees a Function (stop_gradient
#: has a CUDA library lowering all the same, a copy), and call, which
#: simplify inlines (its NumPy implementation evaluates the sub-Function).
# dimension_size reads a shape; a plan over symbolic sizes takes it as an argument
PLAN_FALLBACKS = {"cpu": {"argsort", "call", "custom_jvp_call", "custom_vjp_call", "stop_gradient",
                          "dimension_size", *linalg_lapack.NAMES},
                  "cuda": {"argsort", "call", "custom_jvp_call", "custom_vjp_call", "dimension_size",
                           *linalg_lapack.NAMES}}

WRITERS = {"cpu": lambda body, kind: cpu_codegen.generate(body, kind),
           "cuda": lambda body, kind: cuda_codegen.generate(body, kind, 8)}
BACKENDS = {"cpu": cpu, "cuda": cuda}

SHAPE = (3, 4)


def _attrs(prim, dtype):
    if prim == "convert":
        return [{"dtype": t, "weak": False} for t in DTYPES]
    if prim in ("argmax", "argmin"):
        return [{"axis": 1, "index_dtype": "int32"}]
    if PRIMITIVES[prim].reduction:
        return [{"axes": (1,)}, {"axes": (0,)}]
    return [{}]


def _operand_types(prim, dtype):
    params = inspect.signature(PRIMITIVES[prim].shape_rule).parameters.values()
    n = sum(p.kind == p.POSITIONAL_OR_KEYWORD for p in params)
    types = [TensorType(SHAPE, dtype)] * n
    if prim == "select":
        types[0] = TensorType(SHAPE, "bool")
    return types


def _sample(t):
    return (np.arange(int(np.prod(t.shape))) % 2 + 1).astype(t.dtype).reshape(t.shape)


def cases():
    """(prim, kind, operand types, attrs, result types) of every fusible
    primitive on every dtype it takes."""
    out = []
    for prim in sorted(PRIMITIVES):
        p = PRIMITIVES[prim]
        if not (p.elementwise or p.reduction) or prim == "constant":
            continue
        for dtype in DTYPES:
            types = _operand_types(prim, dtype)
            for attrs in _attrs(prim, dtype):
                try:
                    results = p.out_types(types, attrs)
                    with np.errstate(all="ignore"):
                        p.impl(*[_sample(t) for t in types], **attrs)
                except (TracejitError, TypeError):
                    continue   # not a dtype this primitive takes
                kind = "reduction" if p.reduction else "loop"
                out.append((prim, kind, types, attrs, results))
    return out


CASES = cases()


def _body(prim, types, attrs, results):
    params = [Var(t) for t in types]
    outs = [Var(t) for t in results]
    return Function(params, [Instr(prim, params, attrs, outs)], outs, "k")


def test_the_cases_cover_every_fusible_primitive():
    covered = {c[0] for c in CASES}
    fusible = {n for n, p in PRIMITIVES.items() if p.elementwise or p.reduction} - {"constant"}
    assert covered == fusible
    # the dtype filter keeps what the primitive takes: floats only for exp,
    # every dtype for add, no float for the bitwise and
    dtypes = {(c[0], c[2][0].dtype) for c in CASES}
    assert ("exp", "float32") in dtypes and ("exp", "int32") not in dtypes
    assert all(("add", t) in dtypes for t in DTYPES)
    assert ("and", "float32") not in dtypes and ("and", "int64") in dtypes


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_every_fusible_primitive_and_dtype_generates_a_kernel(backend):
    missing = set()
    for prim, kind, types, attrs, results in CASES:
        try:
            source = WRITERS[backend](_body(prim, types, attrs, results), kind).source
        except LoweringError:
            missing.add((prim, types[-1].dtype))
            continue
        compile(source, f"<{backend} {prim}>", "exec")   # valid Python
    assert missing == KERNEL_FALLBACKS[backend]


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_every_other_primitive_has_a_plan_lowering(backend):
    lowering = BACKENDS[backend].lowering
    fallback = {p for p in PRIMITIVES
                if not PRIMITIVES[p].fusible and lowering(p).startswith("NumPy")}
    assert fallback == PLAN_FALLBACKS[backend]


def test_a_missing_snippet_is_caught(monkeypatch):
    """The check can fail: a table without ``sin`` leaves (sin, float) unlowered."""
    table = cpu_codegen.KernelWriter.snippets
    monkeypatch.setattr(type(table), "MATH", {k: v for k, v in table.MATH.items() if k != "sin"})
    prim, kind, types, attrs, results = next(c for c in CASES if c[0] == "sin")
    with pytest.raises(LoweringError, match="no lowering for sin"):
        WRITERS["cpu"](_body(prim, types, attrs, results), kind)


@pytest.mark.parametrize("prim", ["div", "rem", "pow"])
def test_bool_arithmetic_kernels_match_the_reference(prim):
    """The bool div/rem/pow snippets (NumPy computes them in int8 and casts
    back) agree with the reference impl on every pair of operands."""
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    f = tracejit.jit(lambda x, y: PRIMITIVES[prim].bind(x, y)[0], backend="cpu")
    np.testing.assert_array_equal(np.asarray(f(a, b)), PRIMITIVES[prim].impl(a, b)[0])
