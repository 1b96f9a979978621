"""Inputs that used to give silently wrong results or raw tracebacks:
non-native byte order (converted), Python integers (NumPy 2's overflow
rules), negative dimensions (refused where created), mismatched pytrees
(named), and hypothesis fuzz of jit's argument checks and the IR parser."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cuda
from tracejit.errors import (
    ArgumentTypeError,
    DTypeError,
    IRParseError,
    IRVerifyError,
    ScalarOverflowError,
    ShapeError,
    TreeStructureError,
)
from tracejit.ir.parser import parse
from tracejit.ir.verifier import verify

SOAK = os.environ.get("TRACEJIT_SOAK") == "1"
BACKENDS = ["cpu", "reference"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [">f4", ">i4", ">f8", ">i8", ">u4", "<f4"])
def test_non_native_byte_order_is_converted(backend, dtype):
    x = np.arange(4, dtype=dtype)
    f = tracejit.jit(lambda x, y: x * 2 + y, backend=backend)
    np.testing.assert_array_equal(f(x, np.float32(1)), x * 2 + np.float32(1))
    np.testing.assert_array_equal(f(x, x), x * 2 + x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_native_captured_constant_is_converted(backend):
    c = np.arange(3, dtype=">f8")
    out = tracejit.jit(lambda x: x + c, backend=backend)(np.zeros(3))
    np.testing.assert_array_equal(out, [0, 1, 2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_int_beyond_int64_meeting_a_float_array(backend):
    f = tracejit.jit(lambda x, s: x + s, backend=backend)
    for dtype in (np.float32, np.float64):
        x = np.zeros(2, dtype)
        got = f(x, 2**70)
        assert got.dtype == (x + 2**70).dtype
        np.testing.assert_array_equal(got, x + 2**70)   # 1.18e21, not 1.4e14
    np.testing.assert_array_equal(f(np.zeros(2, np.float32), 2**71), np.zeros(2, np.float32) + 2**71)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("dtype", "value"), [(np.int32, 2**40), (np.int32, 2**70),
                                              (np.int32, -2**31 - 1), (np.uint32, -1),
                                              (np.uint32, 2**32), (np.int64, 2**63),
                                              (np.int64, -2**70)])
def test_python_int_overflow_raises_like_numpy(backend, dtype, value):
    x = np.zeros(2, dtype)
    with pytest.raises(OverflowError):
        x + value                                    # NumPy 2
    f = tracejit.jit(lambda x, s: x + s, backend=backend)
    with pytest.raises(ScalarOverflowError, match=f"Python integer {value} out of bounds"):
        f(x, value)
    with pytest.raises(ScalarOverflowError, match="out of bounds"):
        tracejit.jit(lambda x: x + value, backend=backend)(x)   # closed over


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_int_in_range_after_an_overflow(backend):
    f = tracejit.jit(lambda x, s: x + s, backend=backend)
    x = np.zeros(2, np.int32)
    with pytest.raises(ScalarOverflowError):
        f(x, 2**40)
    np.testing.assert_array_equal(f(x, 2**31 - 1), x + (2**31 - 1))
    np.testing.assert_array_equal(f(x, -2**31), x + (-2**31))
    assert f.trace_count == 1       # the value is checked per call, not retraced


def test_closed_over_big_int_meeting_float32():
    out = tracejit.jit(lambda x: x + 2**70)(np.zeros(2, np.float32))
    np.testing.assert_array_equal(out, np.zeros(2, np.float32) + 2**70)


def test_overflow_error_names_the_users_line():
    f = tracejit.jit(lambda x, s: x + s)
    with pytest.raises(ScalarOverflowError) as e:
        f(np.zeros(2, np.int32), 2**40)
    assert "test_input_faults.py" in str(e.value)


@pytest.mark.parametrize("make", [lambda: tnp.zeros((-1, 3)), lambda: tnp.ones((2, -2)),
                                  lambda: tnp.full((-4,), 1.0), lambda: tnp.empty(-1),
                                  lambda: tnp.broadcast_to(1.0, (3, -1))])
def test_negative_dimensions_are_refused_where_created(make):
    with pytest.raises(ShapeError, match="negative dimensions") as e:
        make()
    assert "test_input_faults.py" in str(e.value)
    with pytest.raises(ShapeError, match="negative dimensions"):
        tracejit.jit(lambda x: make() + x)(np.float32(1))


def test_tree_map_mismatch_names_both_structures_and_the_line():
    with pytest.raises(TreeStructureError) as e:
        tracejit.tree_map(lambda a, b: a + b, {"w": 1, "b": {"c": 2}}, [1, 2])
    msg = str(e.value)
    assert "dict('b': dict('c': *), 'w': *)" in msg and "list(*, *)" in msg
    assert "test_input_faults.py" in msg
    with pytest.raises(TreeStructureError, match="3 leaves"):
        tracejit.tree_map(lambda a, b: a, (1, 2), (1, 2, 3))
    assert tracejit.tree_map(lambda a, b: a + b, (1, 2), [10, 20]) == (11, 22)


# --- fuzz: jit's argument checks ---------------------------------------------

_DTYPES = ["float32", "float64", "int32", "int64", "uint32", "bool", ">f4", ">i8",
           "float16", "int8", "complex64"]
_UNSUPPORTED = ("float16", "int8", "complex64")
_NOT_ARRAYS = ("text", b"bytes", 1j)

leaf = st.one_of(
    st.sampled_from([0, 1, -1, 7, 2**31, -2**31 - 1, 2**32, 2**40, 2**63, 2**70, -2**70]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.tuples(st.sampled_from(_DTYPES), st.lists(st.integers(0, 3), max_size=3)).map(
        lambda d: (np.arange(int(np.prod(d[1]))) % 3).astype(d[0]).reshape(d[1])),
    st.sampled_from([None, *_NOT_ARRAYS]),
)


def _none(a, b):
    return a is None or b is None


def _big(x):
    return isinstance(x, int) and not isinstance(x, bool) and not -2**63 <= x < 2**63


@settings(max_examples=500 if SOAK else 80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(a=leaf, b=leaf)
def test_fuzz_jit_arguments(a, b):
    """Any pair of arguments to ``(x + y, x * y)``: NumPy's answer, or a tracejit
    error whose cause is there (an unsupported dtype or type, an integer
    NumPy refuses too or beyond int64): never a raw NumPy/Numba exception,
    never a different value."""
    try:
        with np.errstate(all="ignore"):
            want, numpy_error = (a + b, a * b), None
    except (TypeError, OverflowError, ValueError) as e:
        want, numpy_error = None, e
    f = tracejit.jit(lambda x, y: (x + y, x * y), backend="reference")
    try:
        with np.errstate(all="ignore"):
            got = f(a, b)
    except (DTypeError, ArgumentTypeError):
        dtypes = [np.asarray(v).dtype.name for v in (a, b) if isinstance(v, np.ndarray)]
        assert any(d in _UNSUPPORTED for d in dtypes) or \
            any(v in _NOT_ARRAYS for v in (a, b) if not isinstance(v, np.ndarray)) or \
            _none(a, b), (a, b)
        return
    except ScalarOverflowError:
        assert isinstance(numpy_error, OverflowError) or _big(a) or _big(b), (a, b)
        return
    except ShapeError:
        assert isinstance(numpy_error, ValueError), (a, b)   # shapes that do not broadcast
        return
    except TypeError:    # Python's own, in the function: None * 2
        assert _none(a, b), (a, b)
        return
    assert numpy_error is None, (a, b, numpy_error)
    for g, w in zip(got, want):
        if not isinstance(w, np.ndarray):
            continue   # Python scalars only: weak int64/float64 arithmetic, not Python's
        assert np.asarray(g).dtype == w.dtype.newbyteorder("=")
        np.testing.assert_array_equal(g, w)


# --- fuzz: the IR parser -----------------------------------------------------

SEED_IR = """func @f(%0: f32[2,3], %1: i64[]~) -> (f32[2,3], f32[3]) {
  %2: f32[] = convert[dtype='float32', weak=False](%1)
  %3: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=()](%2)
  %4: f32[2,3] = add(%0, %3)
  %5: f32[3] = reduce_sum[axes=(0,)](%4)
  return (%4, %5)
}
"""

_ALPHABET = list("%@:=()[]{},~'-_ .0123456789abcdefghijklmnopqrstuvwxyzif\n") + [
    "f32", "i64", "bool", "func", "return", "add", "convert", "reduce_sum", "-1", "999999999"]


@settings(max_examples=1500 if SOAK else 150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(SEED_IR)), st.integers(0, 3),
                                st.sampled_from(_ALPHABET)), min_size=1, max_size=4))
def test_fuzz_ir_parser(edits):
    """Mutated IR text parses and verifies, or fails with IRParseError /
    IRVerifyError: nothing else escapes."""
    text = SEED_IR
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    try:
        fn = parse(text)
        verify(fn)
    except (IRParseError, IRVerifyError):
        pass


def test_non_native_array_put_on_the_device_is_converted():
    if not cuda.available():
        pytest.skip("numba-cuda finds no GPU and the simulator is off")
    x = np.arange(4, dtype=">f4")
    dev = tracejit.device_put(x, "cuda")
    out = tracejit.jit(lambda a, b: a * 2 + b, backend="cuda")(dev, x)
    np.testing.assert_array_equal(np.asarray(out), x * 2 + x)
