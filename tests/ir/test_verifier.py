"""The verifier accepts traced programs and rejects hand-broken ones,
saying which instruction (and line of the printed form) is wrong."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import IRVerifyError, ShapeError
from tracejit.ir import Function, Instr, TensorType, Var, parse, verify
from tracejit.core import PRIMITIVES, Primitive

F32 = TensorType((3,), "float32")


def _add_program():
    """func @f(%0: f32[3], %1: f32[3]) -> (f32[3]) { %2 = add(%0, %1); %3 = exp(%2) }"""
    x, y, s, e = Var(F32), Var(F32), Var(F32), Var(F32)
    body = [Instr("add", [x, y], {}, [s]), Instr("exp", [s], {}, [e])]
    return Function([x, y], body, [e], "f"), (x, y, s, e)


def _fails(fn, *fragments):
    with pytest.raises(IRVerifyError) as info:
        verify(fn)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in:\n{msg}"
    return msg


def test_accepts_traced_programs():
    def f(x, w, y):
        h = tnp.maximum(x @ w, 0.0)
        logp = h - tnp.log(tnp.sum(tnp.exp(h), axis=1, keepdims=True))
        return -tnp.mean(logp[tnp.arange(4), y]), tnp.argmax(h, axis=1)
    fn = tracejit.make_ir(f)(np.ones((4, 5), np.float32), np.ones((5, 3), np.float32),
                             np.zeros(4, np.int32))
    assert verify(fn) is None
    assert verify(_add_program()[0]) is None


def test_wrong_result_type():
    fn, (x, y, s, e) = _add_program()
    fn.body[0].results[0] = Var(TensorType((4,), "float32"))
    fn.body[1].operands[0] = fn.body[0].results[0]
    _fails(fn, "@f, line 2: %2: f32[4] = add(%0, %1)",
           "result 0 has type f32[4] but add's shape rule gives f32[3]",
           "@f, line 3: %3: f32[3] = exp(%2)", "exp's shape rule gives f32[4]")


def test_wrong_result_dtype_and_weakness():
    fn, (x, y, s, e) = _add_program()
    fn.body[1].results[0].type = TensorType((3,), "float64")
    _fails(fn, "line 3", "exp", "f64[3]", "gives f32[3]")
    fn.body[1].results[0].type = TensorType((3,), "float32", weak=True)
    _fails(fn, "f32[3]~", "gives f32[3]")


def test_use_before_def():
    fn, (x, y, s, e) = _add_program()
    fn.body.reverse()
    _fails(fn, "line 2", "exp(%3)", "operand 0 (f32[3]) is used before its definition")


def test_operand_from_outside():
    fn, (x, y, s, e) = _add_program()
    fn.body[1].operands[0] = Var(F32)
    _fails(fn, "exp(%<undefined f32[3]>)", "is not defined in this function")


def test_values_that_are_not_vars():
    fn, (x, y, s, e) = _add_program()
    fn.body[0].operands[1] = np.ones(3, np.float32)
    fn.body[1].results[0] = "e"
    fn.results[0] = "e"
    _fails(fn, "operand 1 is a ndarray, not a Var", "result 0 is a str, not a Var",
           "returned value 0 (e) is not defined")


def test_undefined_result():
    fn, (x, y, s, e) = _add_program()
    fn.results.append(Var(F32))
    _fails(fn, "return", "returned value 1 (f32[3]) is not defined")


def test_unknown_primitive():
    fn, _ = _add_program()
    fn.body[1].prim = "expp"
    _fails(fn, "line 3", "unknown primitive 'expp'")


def test_duplicate_definition():
    fn, (x, y, s, e) = _add_program()
    fn.body[1].results[0] = s
    _fails(fn, "line 3", "result 0 is already defined (result 0)")
    fn2, (x, y, s, e) = _add_program()
    fn2.params[1] = x
    fn2.body[0].operands[1] = x
    _fails(fn2, "parameter 1 is already defined (parameter 0)")


def test_wrong_operand_count():
    fn, (x, y, s, e) = _add_program()
    fn.body[0].operands.pop()
    _fails(fn, "line 2", "add does not take 1 operand(s)")


def test_bad_attributes():
    x, r = Var(TensorType((2, 3), "float32")), Var(TensorType((6,), "float32"))
    fn = Function([x], [Instr("reshape", [x], {"new_shape": [6]}, [r])], [r])
    _fails(fn, "attribute new_shape is a list ([6]); use a tuple")
    fn.body[0].attrs = {"shape": (6,)}
    _fails(fn, "reshape does not take 1 operand(s) and attributes (shape)")
    fn.body[0].attrs = {"new_shape": (7,)}
    _fails(fn, "the shape rule rejects the operands", "cannot reshape f32[2,3] to (7,)")


def test_constant_value_must_fit_dtype():
    fn = parse("func @c() -> (i32[]) {\n  %0: i32[] = constant[value=1.5]()\n  return (%0)\n}")
    _fails(fn, "constant value 1.5 (float) does not fit dtype int32")


def test_reports_every_problem():
    fn, (x, y, s, e) = _add_program()
    fn.body[0].prim = "nope"
    fn.results.append(Var(F32))
    assert "2 problems" in _fails(fn, "unknown primitive 'nope'", "returned value 1")


@pytest.fixture
def call_primitive():
    """A structured test primitive ``call[body=Function](*xs)`` (removed
    again afterwards, so the documentation test does not see it)."""
    from tracejit.core import eval_function

    def rule(*xs, body):
        if [t for t in xs] != body.in_types:
            raise ShapeError(f"call: operands {xs} do not match the body's "
                             f"parameters {body.in_types}", location=None)
        return body.out_types

    prim = Primitive("test_call", "control", rule,
                     lambda *xs, body: [np.asarray(v) for v in eval_function(body, xs)])
    yield prim
    del PRIMITIVES["test_call"]


def _call_program(body):
    a = Var(F32)
    outs = [Var(t) for t in body.out_types]
    return Function([a], [Instr("test_call", [a], {"body": body}, outs)], outs, "outer")


def test_sub_functions_are_verified(call_primitive):
    body = parse("func @body(%0: f32[3]) -> (f32[3]) {\n  %1: f32[3] = exp(%0)\n"
                 "  return (%1)\n}")
    fn = _call_program(body)
    verify(fn)
    assert str(parse(str(fn))) == str(fn)
    body.body[0].prim = "bogus"
    _fails(fn, "@outer > test_call body @body, line 4: %1: f32[3] = bogus(%0)", "unknown primitive 'bogus'")


def test_sub_functions_are_closed(call_primitive):
    body = parse("func @body(%0: f32[3]) -> (f32[3]) {\n  %1: f32[3] = exp(%0)\n"
                 "  return (%1)\n}")
    fn = _call_program(body)
    body.body[0].operands[0] = fn.params[0]   # refers to the outer function's value
    _fails(fn, "@outer > test_call body @body", "not defined in this function",
           "sub-functions are closed")


def test_structured_op_types_checked_by_its_rule(call_primitive):
    body = parse("func @body(%0: f64[3]) -> (f64[3]) {\n  %1: f64[3] = exp(%0)\n"
                 "  return (%1)\n}")
    _fails(_call_program(body), "the shape rule rejects the operands", "do not match")
