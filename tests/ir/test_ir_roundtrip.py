"""The text form round-trips: ``str(parse(str(f))) == str(f)`` for random
traced programs, for every kind of attribute value and for sub-Functions
nested at any depth; the parsed Function verifies and computes the same."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import IRParseError
from tracejit.ir import Function, Instr, TensorType, Var, parse, verify
from tracejit.core import eval_function

DTYPES = ["float32", "float64", "int32", "int64", "bool"]


# --- random programs ----------------------------------------------------------
def _pick(data, pool, pred=lambda x: True):
    candidates = [x for x in pool if pred(x)]
    return data.draw(st.sampled_from(candidates)) if candidates else None


def _float(x):
    return x if x.dtype.kind == "f" else x.astype("float32")


def _num(x):
    return x.astype("int32") if x.dtype == np.bool_ else x


def _binary(data, pool):
    x = _pick(data, pool)
    y = _pick(data, pool, lambda y: y.shape == x.shape[-y.ndim:] if y.ndim else True)
    op = data.draw(st.sampled_from([tnp.add, tnp.subtract, tnp.multiply, tnp.maximum,
                                    tnp.minimum, tnp.less, tnp.equal]))
    return op(_num(x), _num(y))


def _scalar(data, pool):
    x = _num(_pick(data, pool))
    c = data.draw(st.sampled_from([0.5, 2, -0.0, 1e-30, float("inf"), -float("inf"),
                                   float("nan"), 3, True]))
    op = data.draw(st.sampled_from([tnp.add, tnp.multiply, tnp.maximum, tnp.where]))
    if op is tnp.where:
        return tnp.where(x > 0, x, c)
    return op(x, c) if data.draw(st.booleans()) else op(c, x)


def _unary(data, pool):
    x = _float(_pick(data, pool))
    op = data.draw(st.sampled_from([tnp.exp, tnp.tanh, tnp.sqrt, tnp.log1p, tnp.abs,
                                    tnp.negative, tnp.floor, tracejit.lax.logistic,
                                    tracejit.lax.rsqrt, tnp.sign, tnp.isfinite]))
    return op(x)


def _reduce(data, pool):
    x = _pick(data, pool, lambda x: x.ndim > 0 and x.size > 0)
    if x is None:
        return None
    x = _num(x)
    axis = data.draw(st.integers(0, x.ndim - 1))
    op = data.draw(st.sampled_from([tnp.sum, tnp.max, tnp.mean, tnp.argmax, tnp.min]))
    if op is tnp.argmax:
        return tnp.argmax(x, axis=axis)
    return op(x, axis=axis, keepdims=data.draw(st.booleans()))


def _reshape(data, pool):
    x = _pick(data, pool)
    how = data.draw(st.sampled_from(["ravel", "transpose", "expand", "flip", "slice",
                                     "concat", "pad"]))
    if how == "ravel":
        return tnp.reshape(x, (-1,))
    if how == "transpose":
        return tnp.transpose(x)
    if how == "expand":
        return tnp.expand_dims(x, data.draw(st.integers(0, x.ndim)))
    if x.ndim == 0:
        return tnp.stack([x, x])
    axis = data.draw(st.integers(0, x.ndim - 1))
    if how == "flip":
        return tnp.flip(x, axis)
    if how == "slice":
        return tnp.moveaxis(tnp.moveaxis(x, axis, 0)[1::2], 0, axis)
    if how == "concat":
        return tnp.concatenate([x, x], axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (1, 2)
    return tnp.pad(x, widths, constant_values=data.draw(st.sampled_from([0, 1])))


def _matmul(data, pool):
    x = _pick(data, pool, lambda x: x.ndim == 2)
    return None if x is None else _float(x) @ _float(x).T


def _index(data, pool):
    x = _pick(data, pool, lambda x: x.ndim >= 1 and x.shape[0] > 0)
    if x is None:
        return None
    n = x.shape[0]
    return x[tnp.arange(2 * n) % n][::-1]


def _cast(data, pool):
    return _pick(data, pool).astype(data.draw(st.sampled_from(DTYPES)))


OPS = [_binary, _scalar, _unary, _reduce, _reshape, _matmul, _index, _cast]

shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def _random_input(rng, t: TensorType):
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    if t.dtype.startswith("int"):
        return rng.integers(-5, 6, t.shape).astype(t.dtype)
    return rng.normal(size=t.shape).astype(t.dtype)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_programs_round_trip(data):
    base = data.draw(shapes)
    in_types = [TensorType(base[data.draw(st.integers(0, len(base))):],
                           data.draw(st.sampled_from(DTYPES)))
                for _ in range(data.draw(st.integers(1, 3)))]
    n_ops = data.draw(st.integers(1, 8))

    def program(*xs):
        pool = list(xs)
        for _ in range(n_ops):
            out = data.draw(st.sampled_from(OPS))(data, pool)
            if out is not None:
                pool.append(out)
        return pool[len(xs):] or pool

    args = [np.zeros(t.shape, t.dtype) for t in in_types]
    fn = tracejit.make_ir(program)(*args)
    text = str(fn)
    parsed = parse(text)
    assert str(parsed) == text
    verify(fn)
    verify(parsed)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    inputs = [_random_input(rng, t) for t in fn.in_types]
    for want, got in zip(eval_function(fn, inputs), eval_function(parsed, inputs)):
        want, got = np.asarray(want), np.asarray(got)
        assert want.dtype == got.dtype and want.shape == got.shape
        np.testing.assert_array_equal(want, got)


# --- attribute values -----------------------------------------------------------
scalars = st.one_of(
    st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1e300, 1e-5, 0.1]), st.booleans(), st.none(),
    st.text(max_size=8))
attr_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(tuple),
                           max_leaves=10)


def _same_value(a, b):
    if isinstance(a, tuple):
        return type(b) is tuple and len(a) == len(b) and all(map(_same_value, a, b))
    if isinstance(a, float):
        return type(b) is float and (math.isnan(a) and math.isnan(b) or
                                     (a == b and math.copysign(1, a) == math.copysign(1, b)))
    return type(a) is type(b) and a == b


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True),
                       attr_values, max_size=4))
def test_attribute_values_round_trip(attrs):
    x, r = Var(TensorType((2,), "float32")), Var(TensorType((2,), "float32"))
    fn = Function([x], [Instr("some_op", [x], attrs, [r])], [r], "attrs")
    parsed = parse(str(fn))
    assert str(parsed) == str(fn)
    got = parsed.body[0].attrs
    assert list(got) == list(attrs)
    assert all(_same_value(attrs[k], got[k]) for k in attrs)


# --- sub-functions ------------------------------------------------------------
def _nest(depth: int, name: str = "f") -> Function:
    """A Function whose instruction holds sub-Functions ``depth`` levels
    deep, directly and inside tuples."""
    t = TensorType((3,), "float32", weak=depth % 2 == 1)
    x = Var(t)
    if depth == 0:
        y = Var(t)
        return Function([x], [Instr("neg", [x], {}, [y])], [y], name)
    y, z = Var(t), Var(TensorType((), "int32"))
    attrs = {"length": depth, "body": _nest(depth - 1, "body"),
             "branches": (_nest(depth - 1, "no"), 7, (_nest(depth - 1, "yes"),)),
             "single": (_nest(0, "only"),), "scale": -0.0}
    return Function([x], [Instr("structured", [x], attrs, [y, z]),
                          Instr("neg", [y], {}, [Var(t)])], [y, z], name)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_nested_sub_functions_round_trip(depth):
    fn = _nest(depth)
    text = str(fn)
    assert str(parse(text)) == text
    parsed = parse(text)
    sub = parsed.body[0].attrs["branches"][2][0]
    assert isinstance(sub, Function) and sub.name == "yes"
    assert parsed.body[0].attrs["branches"][1] == 7


def test_nested_text_form():
    text = str(_nest(1))
    assert text == """\
func @f(%0: f32[3]~) -> (f32[3]~, i32[]) {
  %1: f32[3]~, %2: i32[] = structured[length=1, scale=-0.0](%0) {
    body = func @body(%0: f32[3]) -> (f32[3]) {
      %1: f32[3] = neg(%0)
      return (%1)
    }
    branches = (
      func @no(%0: f32[3]) -> (f32[3]) {
        %1: f32[3] = neg(%0)
        return (%1)
      },
      7,
      (
        func @yes(%0: f32[3]) -> (f32[3]) {
          %1: f32[3] = neg(%0)
          return (%1)
        },
      )
    )
    single = (
      func @only(%0: f32[3]) -> (f32[3]) {
        %1: f32[3] = neg(%0)
        return (%1)
      },
    )
  }
  %3: f32[3]~ = neg(%1)
  return (%1, %2)
}"""


@pytest.mark.parametrize("name", ["<lambda>", "train_step", "odd name(1)", "", "a'b\"c"])
def test_function_names_round_trip(name):
    x = Var(TensorType((), "bool"))
    fn = Function([x], [], [x, x], name)
    parsed = parse(str(fn))
    assert parsed.name == name and str(parsed) == str(fn)
    assert parsed.results[0] is parsed.results[1] is parsed.params[0]


def test_constants_print_short_and_keep_their_attrs():
    fn = tracejit.make_ir(lambda x, s: (x * 0.5, s + 2.0))(np.ones(2, np.float32), 1.0)
    text = str(fn)
    assert "f32[] = constant[value=0.5]()" in text and "f64[]~ = constant[value=2.0]()" in text
    consts = [i for i in parse(text).body if i.prim == "constant"]
    assert [i.attrs for i in consts] == [
        {"value": 0.5, "dtype": "float32", "weak": False},
        {"value": 2.0, "dtype": "float64", "weak": True}]
    assert [list(i.attrs) for i in consts] == [["value", "dtype", "weak"]] * 2
    # a constant whose attrs disagree with its type prints them in full
    r = Var(TensorType((), "int32"))
    odd = Function([], [Instr("constant", [], {"value": 1, "dtype": "int64", "weak": False},
                              [r])], [r])
    assert "constant[value=1, dtype='int64', weak=False]()" in str(odd)
    assert str(parse(str(odd))) == str(odd)


# --- parse errors -----------------------------------------------------------------
GOOD = """func @f(%0: f32[3]) -> (f32[3]) {
  %1: f32[3] = exp(%0)
  return (%1)
}"""


@pytest.mark.parametrize("text, line, expected", [
    (GOOD.replace("%1: f32[3] = exp", "%1 f32[3] = exp"), 2, "expected ':' and a type after %1"),
    (GOOD.replace("exp(%0)", "exp(%7)"), 2, "%7 is used before it is defined"),
    (GOOD.replace("f32[3] = exp", "q32[3] = exp"), 2, "unknown dtype 'q32'"),
    (GOOD.replace("return (%1)", "return (%1"), 3, "expected ',' or ')' after a returned value"),
    (GOOD.replace("-> (f32[3])", "-> (f32[4])"), 3, "return types (f32[3]) differ"),
    (GOOD.replace("%1: f32[3] = exp(%0)", "%0: f32[3] = exp(%0)").replace("(%1)", "(%0)"),
     2, "%0 is defined twice (first on line 1)"),
    (GOOD.replace("exp(%0)", "exp[axes=(1)](%0)"), 2, "one-element tuple needs a trailing comma"),
    (GOOD.replace("exp(%0)", "exp[a=1, a=2](%0)"), 2, "attribute a is given twice"),
    (GOOD.replace("exp(%0)", "exp[a=[1]](%0)"), 2, "expected an attribute value"),
    (GOOD.replace("exp(%0)", "exp(%<undefined f32[3]>)"), 2, "never defined"),
    (GOOD + "\nfunc", 5, "expected end of input"),
    (GOOD[:-1], 3, "expected '}' to close the function body, found end of input"),
    ("", 1, "expected 'func'"),
])
def test_parse_errors_name_line_and_expectation(text, line, expected):
    with pytest.raises(IRParseError) as info:
        parse(text)
    msg = str(info.value)
    assert msg.startswith(f"line {line}, column ") and expected in msg, msg


def test_parse_error_points_at_the_column():
    with pytest.raises(IRParseError) as info:
        parse(GOOD.replace("exp(%0)", "exp(%0 %0)"))
    first, src, caret = str(info.value).split("\n")
    assert first.startswith("line 2, column 23: expected ',' or ')' after an operand")
    assert src.strip() == "%1: f32[3] = exp(%0 %0)"
    assert src[caret.index("^"):].startswith("%0)")


def test_comments_and_blank_lines_are_ignored():
    text = "# a comment\n\n" + GOOD.replace("exp(%0)", "exp(%0)   # e^x")
    assert str(parse(text)) == GOOD
