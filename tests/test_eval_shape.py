"""eval_shape: result shapes and dtypes by tracing alone."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import ShapeDtypeStruct


def test_eval_shape_of_a_model_with_structs_and_arrays():
    def f(params, x, scale=1.0):
        h = tnp.tanh(x @ params["w"]) * scale
        return {"h": h, "n": tnp.argmax(h, axis=1), "s": tnp.sum(h)}
    params = {"w": np.ones((784, 10), np.float32)}
    out = tracejit.eval_shape(f, params, ShapeDtypeStruct((256, 784), "float32"), scale=2.0)
    assert out["h"] == ShapeDtypeStruct((256, 10), np.float32)
    assert out["n"].shape == (256,) and out["n"].dtype.kind == "i"
    assert out["s"].shape == () and out["s"].ndim == 0 and out["h"].size == 2560
    assert "float32" in repr(out["h"])


def test_eval_shape_runs_nothing_and_composes():
    calls = []

    def f(x):
        calls.append(1)
        return tracejit.vmap(tracejit.grad(lambda v: tnp.sum(v ** 2)))(x)
    out = tracejit.eval_shape(f, ShapeDtypeStruct((1000, 1000, 3), "float64"))
    assert out.shape == (1000, 1000, 3) and out.dtype == np.float64 and calls == [1]
    # weak Python scalars and ints
    assert tracejit.eval_shape(lambda a, b: a * b, 2, 3.0).dtype == np.float64


def test_eval_shape_reports_shape_errors_at_the_users_line():
    with pytest.raises(tracejit.ShapeError):
        tracejit.eval_shape(lambda a, b: a @ b, ShapeDtypeStruct((2, 3), "float32"),
                            ShapeDtypeStruct((2, 3), "float32"))
