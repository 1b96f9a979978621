"""Gradient checking against finite differences, in the spirit of
``jax.test_util.check_grads``::

    import tracejit.testing

    tracejit.testing.check_grads(f, (params, x), order=2)
    g = tracejit.testing.numerical_grad(loss, params, x)

Finite differences are central differences computed in float64 (arguments
are promoted to float64 before ``f`` runs, and the actual perturbation
``float(x + eps) - float(x - eps)`` is the denominator), with a step chosen
by each leaf's dtype.  Only floating-point leaves are differentiated; other
leaves (integers, booleans) are held constant.
"""
from __future__ import annotations

import numpy as np

from .transforms.autodiff import jvp, vjp
from .tree import tree_flatten, tree_flatten_with_path, tree_unflatten

__all__ = ["numerical_grad", "check_grads"]

# central-difference steps: about cbrt(machine epsilon) of the leaf's dtype
_EPS = {2: 1e-2, 4: 1e-3, 8: 1e-6}
# default tolerances by dtype size (as jax.test_util's gradient tolerances)
_TOL = {2: 1e-1, 4: 2e-3, 8: 1e-5}


def _is_float(x) -> bool:
    dt = np.asarray(x).dtype
    return dt.kind == "f" or dt.name == "bfloat16"


def _size(x) -> int:
    return np.asarray(x).dtype.itemsize


def _eps_for(x, eps):
    return _EPS.get(_size(x), 1e-3) if eps is None else float(eps)


def _tol_for(xs, tol):
    if tol is not None:
        return float(tol)
    return max(_TOL.get(_size(x), 2e-3) for x in xs) if xs else 1e-5


def _f64(x):
    return np.asarray(x, dtype=np.float64)


class _Flat:
    """``f(*args)`` as a function of its floating-point leaves only."""

    def __init__(self, f, args, argnums=None, names=None):
        self.f, self.args = f, tuple(args)
        nums = range(len(self.args)) if argnums is None else argnums
        leaves, self.tree = tree_flatten(self.args)
        self.leaves = list(leaves)
        # leaf names: "argument 0 'dense1/kernel'" ("argument 0" for a bare array)
        all_names = []
        for i, a in enumerate(self.args):
            for path, _ in tree_flatten_with_path(a):
                all_names.append(f"argument {i}" + (f" {path!r}" if path else ""))
        starts = np.cumsum([0] + [len(tree_flatten(a)[0]) for a in self.args])
        self.index = [k for i in nums for k in range(starts[i], starts[i + 1])
                      if _is_float(self.leaves[k])]
        self.names = [all_names[k] for k in self.index] if names is None else list(names)
        self.primals = [np.asarray(self.leaves[k]) for k in self.index]

    def __call__(self, *xs):
        leaves = list(self.leaves)
        for k, x in zip(self.index, xs):
            leaves[k] = x
        return self.f(*tree_unflatten(self.tree, leaves))


def _out_leaves(out):
    leaves, tree = tree_flatten(out)
    return [np.asarray(v) for v in leaves], tree


def _dot(a_leaves, b_leaves) -> float:
    return float(sum(np.sum(_f64(a) * _f64(b)) for a, b in zip(a_leaves, b_leaves)))


def _numerical_grads(scalar, primals, eps):
    """Central differences of ``scalar(*xs) -> float`` at ``primals``, every
    element of every leaf, float64."""
    xs = [_f64(p) for p in primals]
    grads = []
    for k, (p, x) in enumerate(zip(primals, xs)):
        h = _eps_for(p, eps)
        g = np.zeros(x.shape, np.float64)
        for idx in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[idx] += h
            minus[idx] -= h
            step = plus[idx] - minus[idx]
            hi = scalar(*xs[:k], plus, *xs[k + 1:])
            lo = scalar(*xs[:k], minus, *xs[k + 1:])
            g[idx] = (hi - lo) / step
        grads.append(g)
    return grads


def numerical_grad(f, *args, argnums=0, eps=None):
    """The gradient of scalar-valued ``f`` with respect to ``args[argnums]``
    (an int or a tuple of ints; each argument any pytree) by central
    differences over every element, in float64.  ``eps`` (the step) defaults
    by each leaf's dtype (1e-3 for float32, 1e-6 for float64).  Returns a
    pytree like the argument (a tuple of them for a tuple ``argnums``), of
    float64 arrays; non-float leaves get zeros."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {argnums} out of range for {len(args)} arguments")
    nums = tuple(i % len(args) for i in nums)
    flat = _Flat(f, args, nums)

    def scalar(*xs):
        out = np.asarray(flat(*xs))
        if out.size != 1:
            raise TypeError(f"numerical_grad needs a scalar-valued function, got an output "
                            f"of shape {out.shape}")
        return float(out.reshape(()))
    grads = dict(zip(flat.index, _numerical_grads(scalar, flat.primals, eps)))
    results = []
    start = 0
    for i, a in enumerate(args):
        leaves, tree = tree_flatten(a)
        if i in nums:
            results.append(tree_unflatten(tree, [
                grads.get(start + j, np.zeros(np.shape(v), np.float64))
                for j, v in enumerate(leaves)]))
        start += len(leaves)
    out = {i: r for i, r in zip(nums, results)}
    return out[nums[0]] if single else tuple(out[i] for i in nums)


def _compare(what, name, analytic, numeric, atol, rtol):
    a, n = _f64(analytic), _f64(numeric)
    if a.shape != n.shape:
        raise AssertionError(f"{what}: {name}: the derivative has shape {a.shape}, "
                             f"expected {n.shape}")
    if a.size == 0:
        return
    err = np.abs(a - n)
    bad = err - (atol + rtol * np.abs(n))
    if np.all(np.isfinite(err)) and np.all(bad <= 0):
        return
    bad = np.where(np.isfinite(bad), bad, np.inf)
    idx = np.unravel_index(int(np.argmax(bad)), a.shape)
    where = f" at index {tuple(int(i) for i in idx)}" if a.shape else ""
    raise AssertionError(
        f"{what}: {name}: derivative mismatch{where}: got {float(a[idx]):.8g}, finite "
        f"differences give {float(n[idx]):.8g} (|difference| {float(err[idx]):.3g}, atol "
        f"{atol:g}, rtol {rtol:g}; "
        f"{int(np.sum(bad > 0))} of {a.size} elements out of tolerance)")


def _random_like(rng, x):
    x = np.asarray(x)
    return rng.standard_normal(x.shape).astype(x.dtype)


def _check_rev(flat, eps, atol, rtol, rng, label):
    """vjp of ``flat`` (a random cotangent; 1 for a scalar output) against
    finite differences of ``<ct, f(x)>``; returns the cotangent used."""
    out, vjp_fn = vjp(flat, *flat.primals)
    outs, out_tree = _out_leaves(out)
    if len(outs) == 1 and outs[0].size == 1:
        cts = [np.ones_like(outs[0])]
    else:
        cts = [_random_like(rng, o) if _is_float(o) else np.zeros_like(o) for o in outs]
    got = vjp_fn(tree_unflatten(out_tree, cts))

    def scalar(*xs):
        return _dot(_out_leaves(flat(*xs))[0], cts)
    want = _numerical_grads(scalar, flat.primals, eps)
    for name, p, g, w in zip(flat.names, flat.primals, got, want):
        _compare(f"{label} reverse mode (vjp)", name, g, w,
                 _tol_for([p], atol), _tol_for([p], rtol))
    return tree_unflatten(out_tree, cts)


def _check_fwd(flat, eps, atol, rtol, rng, label):
    """jvp of ``flat`` along a random tangent of each argument leaf in turn
    against central differences along it; returns the tangents used."""
    tangents = [_random_like(rng, p) for p in flat.primals]
    xs = [_f64(p) for p in flat.primals]
    outs = _out_leaves(flat(*flat.primals))[0]
    for k, (name, p, t) in enumerate(zip(flat.names, flat.primals, tangents)):
        ts = [t if j == k else np.zeros_like(q) for j, q in enumerate(flat.primals)]
        _, tout = jvp(flat, tuple(flat.primals), tuple(ts))
        got, _ = _out_leaves(tout)
        h = _eps_for(p, eps)
        hi = _out_leaves(flat(*xs[:k], xs[k] + h * _f64(t), *xs[k + 1:]))[0]
        lo = _out_leaves(flat(*xs[:k], xs[k] - h * _f64(t), *xs[k + 1:]))[0]
        for j, (g, a, b, o) in enumerate(zip(got, hi, lo, outs)):
            if not _is_float(o):
                continue
            want = (_f64(a) - _f64(b)) / (2 * h)
            what = f"{label} forward mode (jvp)" + (f", output leaf {j}" if len(outs) > 1 else "")
            _compare(what, name, g, want, _tol_for([p, o], atol), _tol_for([p, o], rtol))
    return tangents


def check_grads(f, args, order=1, modes=("rev", "fwd"), atol=None, rtol=None, eps=None):
    """Check ``f``'s derivatives at ``args`` (a tuple of pytrees) against
    central finite differences, raising ``AssertionError`` (naming the
    argument leaf, the index and the values of the worst mismatch) when they
    differ.

    ``modes``: ``"rev"`` checks ``vjp`` with a random cotangent (the plain
    gradient for a scalar output) element by element; ``"fwd"`` checks ``jvp``
    along a random tangent of each argument leaf.  ``order=2`` also checks the
    derivatives of those derivative functions (grad of grad, jvp of jvp), and
    so on.  ``atol``/``rtol`` default by dtype (2e-3 for float32, 1e-5 for
    float64); ``eps``, the finite-difference step, by dtype too.  Random
    directions come from a fixed seed, so a check is repeatable.
    """
    if isinstance(modes, str):
        modes = (modes,)
    unknown = set(modes) - {"rev", "fwd"}
    if unknown:
        raise ValueError(f"check_grads: unknown modes {sorted(unknown)} (use 'rev', 'fwd')")
    if int(order) < 1:
        raise ValueError(f"check_grads: order must be >= 1, got {order}")
    if not isinstance(args, (tuple, list)):
        raise TypeError("check_grads: args must be a tuple of arguments")
    rng = np.random.default_rng(0)
    _check_grads(f, tuple(args), int(order), tuple(modes), atol, rtol, eps, rng, 1, None)


def _check_grads(f, args, order, modes, atol, rtol, eps, rng, level, names):
    flat = _Flat(f, args, names=names)
    if not flat.primals:
        raise ValueError("check_grads: no floating-point arguments to differentiate")
    label = "order 1" if level == 1 else f"order {level}"
    primals = tuple(flat.primals)
    if "fwd" in modes:
        tangents = _check_fwd(flat, eps, atol, rtol, rng, label)
        if order > 1:
            def f_jvp(*xs, _t=tuple(tangents)):
                return jvp(flat, xs, _t)[1]
            _check_grads(f_jvp, primals, order - 1, modes, atol, rtol, eps, rng, level + 1,
                         flat.names)
    if "rev" in modes:
        ct = _check_rev(flat, eps, atol, rtol, rng, label)
        if order > 1:
            def f_vjp(*xs):
                return tuple(vjp(flat, *xs)[1](ct))
            _check_grads(f_vjp, primals, order - 1, modes, atol, rtol, eps, rng, level + 1,
                         flat.names)
