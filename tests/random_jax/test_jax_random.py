"""tracejit.random against values recorded from JAX (record.py, JAX 0.10,
the default threefry2x32 scheme with jax_threefry_partitionable): keys,
split, fold_in, bits, uniform, randint, permutation and bernoulli are
bit-identical; normal and truncated_normal (which go through log and sqrt)
agree to float rounding. Eager and jitted (cpu backend) runs both."""
import json
import os

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
import tracejit.random as jr

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.json")) as f:
    RECORDED = json.load(f)["cases"]


def _draw(call, k):
    name, _, arg = call.partition(":")
    return {
        "key": lambda: k,
        "split": lambda: jr.split(k, int(arg or 2)),
        "fold_in": lambda: jr.fold_in(k, int(arg)),
        "nested": lambda: jr.split(jr.fold_in(jr.split(k)[1], 3), 4),
        "bits": lambda: jr.bits(k, (3, 5)),
        "uniform": lambda: jr.uniform(k, (10,), np.float32),
        "uniform_range": lambda: jr.uniform(k, (2, 3), np.float32, -2.0, 5.0),
        "uniform64": lambda: jr.uniform(k, (6,), np.float64),
        "normal": lambda: jr.normal(k, (20,), np.float32),
        "normal64": lambda: jr.normal(k, (6,), np.float64),
        "truncated_normal": lambda: jr.truncated_normal(k, -1.5, 2.5, (20,), np.float32),
        "randint": lambda: jr.randint(k, (20,), 0, 10, np.int32),
        "randint_wide": lambda: jr.randint(k, (8,), -100, 100000, np.int32),
        "permutation": lambda: jr.permutation(k, 10),
        "permutation_axis": lambda: jr.permutation(
            k, tnp.arange(12, dtype="int32").reshape(3, 4), axis=1),
        "permutation_independent": lambda: jr.permutation(
            k, tnp.arange(12, dtype="int32").reshape(3, 4), axis=1, independent=True),
        "permutation_2000": lambda: jr.permutation(k, 2000),
        "bernoulli": lambda: jr.bernoulli(k, 0.3, (20,)),
    }[name]()


#: draws through log/sqrt/erfinv: JAX's values to within a few float32 ulps
ROUNDED = {"normal": 2e-6, "truncated_normal": 2e-6, "normal64": 1e-13}


@pytest.mark.parametrize("case", RECORDED, ids=[f"{c['call']}-{c['seed']}" for c in RECORDED])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_matches_recorded_jax(case, jit):
    v = case["value"]
    want = np.array(v["values"], dtype=v["dtype"]).reshape(v["shape"])
    if case["call"] == "key64":   # a traced 64-bit seed under jit
        seed = np.int64(case["seed"] + 2 ** 40)
        got = tracejit.jit(jr.key)(seed) if jit else jr.key(seed)
    elif jit:
        got = tracejit.jit(lambda k: _draw(case["call"], k), backend="cpu")(jr.key(case["seed"]))
    else:
        got = _draw(case["call"], jr.key(case["seed"]))
    got = np.asarray(got)
    assert got.shape == want.shape
    if case["call"].startswith("permutation"):   # JAX's x64-free index dtype is int32 too
        np.testing.assert_array_equal(got, want)
        return
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    rtol = ROUNDED.get(case["call"])
    if rtol is None:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
