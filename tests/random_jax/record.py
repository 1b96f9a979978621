"""Records jax.random values into values.json for test_jax_random.py (the test
suite itself never imports JAX). Run with JAX installed:

    python tests/random_jax/record.py
"""
import json
import os

import jax
import numpy as np

import jax.numpy as jnp
import jax.random as jr

def x64():
    """float64 for the "...64" cases only (the others use JAX's defaults)."""
    return jax.enable_x64(True) if hasattr(jax, "enable_x64") else \
        __import__("jax.experimental", fromlist=["enable_x64"]).enable_x64()


SEEDS = [0, 42, 2 ** 31 + 5, 123456789]


def data(k):
    return np.asarray(jr.key_data(k)).tolist()


def arr(x):
    x = np.asarray(x)
    return {"dtype": x.dtype.name, "shape": list(x.shape), "values": x.ravel().tolist()}


def cases():
    out = {"jax_version": jax.__version__, "cases": []}

    def add(seed, call, value):
        out["cases"].append({"seed": seed, "call": call, "value": value})
    for s in SEEDS:
        k = jr.key(s)
        add(s, "key", arr(jr.key_data(k)))
        for n in (1, 2, 5):
            add(s, f"split:{n}", arr(jr.key_data(jr.split(k, n))))
        for d in (0, 7, 2 ** 31 + 3):
            add(s, f"fold_in:{d}", arr(jr.key_data(jr.fold_in(k, d))))
        nested = jr.split(jr.fold_in(jr.split(k)[1], 3), 4)
        add(s, "nested", arr(jr.key_data(nested)))
        add(s, "bits", arr(jr.bits(k, (3, 5))))
        add(s, "uniform", arr(jr.uniform(k, (10,), jnp.float32)))
        add(s, "uniform_range", arr(jr.uniform(k, (2, 3), jnp.float32, -2.0, 5.0)))
        with x64():
            add(s, "key64", arr(jr.key_data(jr.key(s + 2 ** 40))))   # 64-bit seeds need x64
            add(s, "uniform64", arr(jr.uniform(k, (6,), jnp.float64)))
            add(s, "normal", arr(jr.normal(k, (20,), jnp.float32)))
        add(s, "truncated_normal", arr(jr.truncated_normal(k, -1.5, 2.5, (20,), jnp.float32)))
        add(s, "randint", arr(jr.randint(k, (20,), 0, 10, jnp.int32)))
        add(s, "randint_wide", arr(jr.randint(k, (8,), -100, 100000, jnp.int32)))
        add(s, "permutation", arr(jr.permutation(k, 10)))
        add(s, "permutation_axis", arr(jr.permutation(
            k, jnp.arange(12, dtype=jnp.int32).reshape(3, 4), axis=1)))
        add(s, "permutation_independent", arr(jr.permutation(
            k, jnp.arange(12, dtype=jnp.int32).reshape(3, 4), axis=1, independent=True)))
        add(s, "permutation_2000", arr(jr.permutation(k, 2000)))
        add(s, "bernoulli", arr(jr.bernoulli(k, 0.3, (20,))))
    return out


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.json")
    with open(path, "w") as f:
        json.dump(cases(), f)
    print("wrote", path)
