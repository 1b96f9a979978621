"""Each user error raises its documented tracejit exception, whose message
names the user's own line (in this file) and the shapes involved, with
tracejit's internal frames filtered out of the traceback."""
import os
import pathlib
import traceback

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import (ArgumentTypeError, ConcretizationError, DTypeError,
                             NonDifferentiableError, ShapeError, TracejitError,
                             TracerBoolConversionError, UnexpectedTracerError)

THIS = pathlib.Path(__file__).resolve()
PKG = str(pathlib.Path(tracejit.__file__).resolve().parent)
SOURCE = THIS.read_text().splitlines()


def _line(marker: str) -> int:
    """The line of this file that ends with ``# <marker>``."""
    hits = [i + 1 for i, text in enumerate(SOURCE) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def _check(info, marker, *fragments):
    """The message names the marked line (file:line and its code) and the
    fragments; the traceback has no frame inside the tracejit package."""
    msg = str(info.value)
    line = _line(marker)
    assert f"{THIS}:{line}" in msg, msg
    assert SOURCE[line - 1].split("#")[0].strip() in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def _frames(info):
    return [f.filename for f in traceback.extract_tb(info.tb)]


def jit(f):
    return tracejit.jit(f, backend="reference")


def test_python_if_on_a_tracer():
    @jit
    def f(x):
        if x > 0:  # if-tracer
            return x
        return -x

    with pytest.raises(TracerBoolConversionError) as info:
        f(np.ones(3, np.float32))
    _check(info, "if-tracer", "bool[3]", "tracejit.numpy.where")


def test_traceback_is_filtered_to_user_frames(monkeypatch):
    @jit
    def f(x):
        return int(x)  # int-in-filter

    with pytest.raises(ConcretizationError) as info:
        f(np.ones((), np.float32))
    frames = _frames(info)
    assert frames and all(not os.path.abspath(p).startswith(PKG) for p in frames), frames
    assert traceback.extract_tb(info.tb)[-1].lineno == _line("int-in-filter")
    # the same through make_ir
    with pytest.raises(ConcretizationError) as info:
        tracejit.make_ir(f.fun)(np.ones((), np.float32))
    assert all(not os.path.abspath(p).startswith(PKG) for p in _frames(info))
    # TRACEJIT_TRACEBACK=full keeps tracejit's frames for debugging tracejit
    monkeypatch.setenv("TRACEJIT_TRACEBACK", "full")
    with pytest.raises(ConcretizationError) as info:
        jit(f.fun)(np.ones((), np.float32))
    assert any(os.path.abspath(p).startswith(PKG) for p in _frames(info))


def test_leaked_tracer_used_later():
    leaked = []

    @jit
    def keep(x):
        leaked.append(x)
        return x * 2

    keep(np.ones(3, np.float32))
    with pytest.raises(UnexpectedTracerError) as info:
        tnp.exp(leaked[0])  # leak-eager
    _check(info, "leak-eager", "f32[3]", "leaked")

    @jit
    def use(y):
        return y + leaked[0]  # leak-jit

    with pytest.raises(UnexpectedTracerError) as info:
        use(np.ones(3, np.float32))
    _check(info, "leak-jit", "f32[3]", "escaped")
    assert all(not os.path.abspath(p).startswith(PKG) for p in _frames(info))


def test_mismatched_shapes():
    @jit
    def f(x, y):
        return x + y  # add-shapes

    with pytest.raises(ShapeError) as info:
        f(np.ones((3, 4), np.float32), np.ones(5, np.float32))
    _check(info, "add-shapes", "(3, 4)", "(5,)")
    with pytest.raises(ShapeError) as info:
        tnp.add(np.ones((3, 4)), np.ones(5))  # add-eager
    _check(info, "add-eager", "(3, 4)", "(5,)")


@pytest.mark.parametrize("dtype", [np.uint64, np.complex64])
def test_unsupported_dtype(dtype):
    f = jit(lambda x: x * 2)
    with pytest.raises(DTypeError) as info:
        f(np.ones(3, dtype))  # bad-dtype
    _check(info, "bad-dtype", np.dtype(dtype).name, "float32")


def test_unsupported_argument_type():
    f = jit(lambda x: x * 2)
    with pytest.raises(ArgumentTypeError) as info:
        f("3.0")  # string-arg
    _check(info, "string-arg", "str", "static_argnums")


def test_int_of_a_tracer():
    @jit
    def f(x, n):
        return tnp.zeros(int(n)) + x  # int-tracer

    with pytest.raises(ConcretizationError) as info:
        f(np.ones(3, np.float32), 3)
    _check(info, "int-tracer", "int()", "i64[]~", "static")
    g = tracejit.jit(f.fun, static_argnums=1, backend="reference")
    assert g(np.ones(3, np.float32), 3).shape == (3,)


# --- eager (not jitted) differentiation: the same boundary as jit ---------------------
X34, X5 = np.ones((3, 4), np.float32), np.ones(5, np.float32)


def _user_frames_only(info):
    frames = _frames(info)
    assert frames and all(not os.path.abspath(p).startswith(PKG) for p in frames), frames


def bad_add(x, y):
    return tnp.sum(x + y)  # ad-add-shapes


def bad_and(x, y):
    return tnp.sum(tnp.bitwise_and(x, y))  # ad-and-dtype


EAGER_AD = {
    "grad": lambda f, x, y: tracejit.grad(f)(x, y),
    "value_and_grad": lambda f, x, y: tracejit.value_and_grad(f, argnums=(0, 1))(x, y),
    "vjp": lambda f, x, y: tracejit.vjp(f, x, y),
    "jvp": lambda f, x, y: tracejit.jvp(f, (x, y), (x, y)),
    "grad of grad": lambda f, x, y: tracejit.grad(lambda x: tnp.sum(tracejit.grad(f)(x, y)))(x),
}


@pytest.mark.parametrize("entry", EAGER_AD)
def test_eager_differentiation_errors_name_the_users_line(entry):
    with pytest.raises(ShapeError) as info:
        EAGER_AD[entry](bad_add, X34, X5)
    _check(info, "ad-add-shapes", "(3, 4)", "(5,)")
    _user_frames_only(info)
    with pytest.raises(DTypeError) as info:
        EAGER_AD[entry](bad_and, X34, X34)
    _check(info, "ad-and-dtype", "float32")
    _user_frames_only(info)


def test_eager_gradient_of_an_int_input():
    with pytest.raises(NonDifferentiableError) as info:
        tracejit.grad(lambda x: tnp.sum(x * 2.0))(np.arange(3))  # grad-int
    _check(info, "grad-int", "int64", "float")
    _user_frames_only(info)


def test_eager_grad_of_a_non_scalar_and_a_wrong_cotangent():
    with pytest.raises(ShapeError) as info:
        tracejit.grad(lambda x: x * 2.0)(X5)  # grad-vector
    _check(info, "grad-vector", "scalar", "f32[5]")
    _user_frames_only(info)
    _, vjp_fn = tracejit.vjp(lambda x: x * 2.0, X5)
    with pytest.raises(ShapeError) as info:
        vjp_fn(X34)  # vjp-ct-shape
    _check(info, "vjp-ct-shape", "(3, 4)", "(5,)")
    _user_frames_only(info)


def test_all_user_errors_are_tracejit_errors():
    for cls in (ArgumentTypeError, ConcretizationError, DTypeError, ShapeError,
                TracerBoolConversionError, UnexpectedTracerError):
        assert issubclass(cls, TracejitError)


def test_retrace_log_names_the_changed_leaf(monkeypatch, capsys):
    monkeypatch.setenv("TRACEJIT_LOG", "retrace")

    @jit
    def step(params, x):
        return params["w"] * x

    params = {"w": np.ones(3, np.float32)}
    step(params, np.ones(3, np.float32))
    step(params, np.ones(3, np.float32))
    assert "retrac" not in capsys.readouterr().err
    step(params, np.ones(3, np.float64))
    err = capsys.readouterr().err
    assert "[tracejit:retrace] step: retracing" in err
    assert "leaf 1: f32[3] -> f64[3]" in err, err
    step({"w": np.ones(4, np.float32)}, np.ones(4, np.float32))
    err = capsys.readouterr().err
    assert "leaf 0: f32[3] -> f32[4]" in err and "leaf 1: f64[3] -> f32[4]" in err, err
    assert step.trace_count == 3
