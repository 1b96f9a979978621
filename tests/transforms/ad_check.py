"""Gradient checks shared by the autodiff tests.

``check_grads(f, args)`` compares, along a random direction ``v`` and for a
random output cotangent ``ct``, three numbers that must agree in float64:

- reverse mode: ``<vjp(ct), v>``
- forward mode: ``<ct, jvp(v)>``
- central finite differences: ``<ct, f(x + h v) - f(x - h v)> / 2h``

(error under ``rtol`` times the sum of absolute terms, so a derivative that
cancels to zero is still checked at the right scale, plus ``atol`` for the
O(h**2) truncation error where the derivative itself is zero).
"""
from __future__ import annotations

import numpy as np

import tracejit

FLOATS = ("float32", "float64")


def _is_float(x):
    return np.asarray(x).dtype.name in FLOATS


def _dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def _leaves(x):
    return tracejit.tree_leaves(x)


def check_grads(f, args, seed=0, rtol=1e-6, atol=1e-8, h=1e-5, modes=("rev", "fwd")):
    """Assert reverse mode, forward mode and finite differences agree for
    ``f(*args)``; integer args are held fixed. Returns the three numbers."""
    rng = np.random.RandomState(seed)
    args = [np.asarray(a) for a in args]
    out = f(*args)
    out_leaves, out_tree = tracejit.tree_flatten(out)
    ct = [rng.randn(*np.shape(o)) if _is_float(o) else np.zeros(np.shape(o), np.asarray(o).dtype)
          for o in out_leaves]
    v = [rng.randn(*np.shape(a)) if _is_float(a) else None for a in args]

    def shifted(s):
        xs = [a + s * h * d if d is not None else a for a, d in zip(args, v)]
        return [np.asarray(o, np.float64) for o in _leaves(f(*xs))]
    plus, minus = shifted(1.0), shifted(-1.0)
    fd_terms = [c * (p - m) / (2 * h) for c, p, m in zip(ct, plus, minus)]
    fd = float(sum(np.sum(t) for t in fd_terms))
    scale = float(sum(np.sum(np.abs(t)) for t in fd_terms)) + 1e-12
    results = {"fd": fd}
    if "rev" in modes:
        _, vjp_fn = tracejit.vjp(f, *args)
        g = vjp_fn(tracejit.tree_unflatten(out_tree, ct))
        results["rev"] = sum(_dot(gi, vi) for gi, vi in zip(g, v) if vi is not None)
    tangents = [vi if vi is not None else np.zeros(np.shape(a), np.asarray(a).dtype)
                for a, vi in zip(args, v)]
    if "fwd" in modes:
        _, t = tracejit.jvp(f, args, tangents)
        results["fwd"] = sum(_dot(c, ti) for c, ti in zip(ct, _leaves(t)))
    for mode in modes:
        err = abs(results[mode] - fd)
        assert err <= rtol * scale + atol, (
            f"{mode}-mode directional derivative {results[mode]!r} differs from finite "
            f"differences {fd!r} (error {err:.3g}, scale {scale:.3g})")
    if "rev" in modes and "fwd" in modes:
        assert abs(results["rev"] - results["fwd"]) <= 1e-9 * scale, results
    # the derivative programs are well-formed IR
    ct_tree = tracejit.tree_unflatten(out_tree, ct)
    tracejit.ir.verify(tracejit.make_ir(lambda *a: tracejit.vjp(f, *a)[1](ct_tree))(*args))
    tracejit.ir.verify(tracejit.make_ir(lambda *a: tracejit.jvp(f, a, tangents)[1])(*args))
    return results
