"""Reverse- and forward-mode automatic differentiation, as IR -> IR transforms.

How it works
------------
``vjp(f, *primals)`` traces ``f`` into a closed Function ``F`` and then
*interprets* ``F`` (with the interpreters of
tracejit/primitives/ad_interpreter.py, which sit below the primitives whose
sub-Functions they differentiate): the forward pass binds every instruction
again (so it records into whatever trace is active, or runs eagerly on NumPy
arrays), and the backward pass walks the recorded instructions in reverse, calling each
primitive's ``vjp`` rule. Rules are written with primitive binds too, so the
backward pass is ordinary IR that is simplified, fused and compiled with the
forward pass, works eagerly, inside ``jit``, and composes: ``grad(grad(f))``
traces the inner grad's forward and backward passes into the outer trace
and differentiates them in turn. ``jvp`` interprets ``F`` once, calling each
primitive's ``jvp`` rule next to it.

Only *active* values (float values that depend on a differentiated input)
get cotangents: instructions on inactive values are bound unchanged and
skipped by the backward pass. Integer and boolean values are never active.
Cotangents are accumulated with ``add``; ``None`` is a symbolic zero.

Primitives with sub-Functions (``scan``, ``cond``, ``custom_vjp_call``) have
a ``vjp_fwd`` hook that replaces their forward binding and saves residuals
(a scan stacks its carries); see tracejit/primitives/control.py. Structured
primitives (kind ``'control'``) compute their primal outputs together with
the tangents: their ``jvp`` rules are called with ``outs=None`` and return
``(outs, tangents)``.

Zero-cotangent policy (NaN-free gradients of guarded expressions)
-----------------------------------------------------------------
``where(x > 0, sqrt(x), 0.)`` is differentiable at ``x = 0``, but the
untaken branch's derivative is ``0.5 / sqrt(0) = inf``, and the chain rule
gives it ``0 * inf = NaN``. tracejit treats a zero cotangent as a *strong*
zero: every elementwise rule that multiplies the incoming cotangent (or
tangent) ``g`` by a local derivative computes ``where(g == 0, 0, g * d)``
(``primitives/ad_util.guard``), so an exactly-zero cotangent stays exactly
zero through any chain of elementwise operations (sqrt, log, pow, div, mul,
exp, sin, ...), even where the derivative is inf or NaN (including NaN
*values* computed by the untaken branch). ``select`` gives the untaken
branch an exact zero, hence gradients through ``where`` never pick up NaN or
inf from the branch not taken. Contractions (dot_general, conv_general) are
not guarded: a NaN operand of a matrix product still propagates. Where a
derivative is genuinely infinite on the taken path, the gradient is inf or
NaN, as in IEEE arithmetic. Derivative conventions at kinks: ``abs'(0) = 0``;
``max``/``min`` split the cotangent equally between tied operands; reductions
``reduce_max``/``reduce_min`` share it equally among tied elements;
``pow``'s derivative is 0 where the exponent is 0 (w.r.t. the base) and
where the base is 0 (w.r.t. the exponent). See docs/autodiff.md.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import numpy as tnp
from ..core import leaf_type, leaf_types, trace_flat
from ..errors import DTypeError, NonDifferentiableError, ShapeError, api_boundary
from ..primitives import ad_util as ad
from ..primitives.ad_interpreter import backward, differentiating, forward, jvp_eval
from ..primitives.ad_util import is_float_type
from ..tree import tree_flatten, tree_flatten_with_path, tree_unflatten


# --- the user API -------------------------------------------------------------------
def _trace_user(fun, leaves, in_tree, has_aux, name):
    """Trace ``fun(*unflatten(leaves))`` while differentiating; returns
    (Function, captured values, out tree, aux tree). The Function returns
    the output leaves followed by the aux leaves."""
    def flat(*tracers):
        out = fun(*tree_unflatten(in_tree, tracers))
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"{name} with has_aux=True: the function must return a "
                                f"pair (output, aux), got {type(out).__name__}")
            out, aux = out
        else:
            aux = None
        out_leaves, out_tree = tree_flatten(out)
        aux_leaves, aux_tree = tree_flatten(aux)
        return out_leaves + aux_leaves, (out_tree, aux_tree)
    with differentiating():
        fn, captured, (out_tree, aux_tree) = trace_flat(flat, leaf_types(leaves),
                                                        getattr(fun, "__name__", "f"))
    return fn, captured, out_tree, aux_tree


def _zeros(x):
    t = ad.aval(x)
    return ad.full_like(x, 0) if t.shape else np.zeros((), t.dtype)


def _as_ct(c, var, what):
    """A user-given cotangent/tangent for a value of type ``var.type``."""
    if not is_float_type(var.type):
        return None
    t = ad.aval(c)
    if t.shape != var.type.shape:
        raise ShapeError(f"{what} has shape {t.shape}, but the value it goes with has "
                         f"shape {var.type.shape}")
    if t.dtype != var.type.dtype:
        c = tnp.astype(c, var.type.dtype)
    return c


def vjp(fun, *primals, has_aux=False):
    """``(out, vjp_fn)`` (and ``aux`` when ``has_aux``): ``vjp_fn(ct)``
    returns the cotangents of ``primals`` (a tuple, same pytree structure) for
    an output cotangent ``ct`` shaped like ``out``. Integer and boolean
    primals get zero cotangents."""
    with api_boundary():
        leaves, in_tree = tree_flatten(primals)
        fn, captured, out_tree, aux_tree = _trace_user(fun, leaves, in_tree, has_aux, "vjp")
        active = [True] * len(leaves) + [False] * len(captured)
        outs, tape = forward(fn, list(leaves) + list(captured), active)
        n_out = out_tree.num_leaves

        def vjp_fn(ct):
            with api_boundary():
                ct_leaves, ct_tree = tree_flatten(ct)
                if ct_tree != out_tree:
                    raise ShapeError(f"vjp_fn: the cotangent's structure {ct_tree} differs "
                                     f"from the output's {out_tree}")
                cts = [_as_ct(c, v, f"cotangent {i}")
                       for i, (c, v) in enumerate(zip(ct_leaves, fn.results))]
                in_cts = backward(tape, cts + [None] * (len(fn.results) - n_out))
                return tree_unflatten(in_tree, [_zeros(x) if c is None else c
                                                for x, c in zip(leaves, in_cts)])
        out = tree_unflatten(out_tree, outs[:n_out])
        if has_aux:
            return out, vjp_fn, tree_unflatten(aux_tree, outs[n_out:])
        return out, vjp_fn


def jvp(fun, primals, tangents, has_aux=False):
    """``(out, tangent_out)``: ``fun(*primals)`` and its directional derivative
    along ``tangents`` (a sequence shaped like ``primals``)."""
    with api_boundary():
        primals, tangents = tuple(primals), tuple(tangents)
        leaves, in_tree = tree_flatten(primals)
        t_leaves, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise ShapeError(f"jvp: tangents' structure {t_tree} differs from the "
                             f"primals' {in_tree}")
        fn, captured, out_tree, aux_tree = _trace_user(fun, leaves, in_tree, has_aux, "jvp")
        ts = [_as_ct(t, p, f"tangent {i}") for i, (t, p) in enumerate(zip(t_leaves, fn.params))]
        outs, touts = jvp_eval(fn, list(leaves) + list(captured), ts + [None] * len(captured))
        n_out = out_tree.num_leaves
        out = tree_unflatten(out_tree, outs[:n_out])
        tout = tree_unflatten(out_tree, [_zeros(o) if t is None else t
                                         for o, t in zip(outs[:n_out], touts)])
        if has_aux:
            return out, tout, tree_unflatten(aux_tree, outs[n_out:])
        return out, tout


def _check_float_args(args, argnums, who):
    for i in argnums:
        for path, leaf in tree_flatten_with_path(args[i]):
            t = leaf_type(leaf, f"{i}")
            if not is_float_type(t):
                where = f"argument {i}" + (f" at {path!r}" if path else "")
                raise NonDifferentiableError(
                    f"{who}: {where} has dtype {t.dtype}; gradients are only defined for "
                    f"float inputs (leave it out of argnums, or pass it as a float array)")


def value_and_grad(fun, argnums=0, has_aux=False):
    """``f`` -> ``(value, grad)`` (``((value, aux), grad)`` with has_aux).
    ``argnums`` (int or tuple) selects the arguments to differentiate; each
    gradient has its argument's pytree structure. ``fun`` must return a
    float scalar."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            return _value_and_grad(fun, single, nums, has_aux, args, kwargs)
    return wrapped


def _value_and_grad(fun, single, nums, has_aux, args, kwargs):
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {nums[0] if single else nums} out of range for "
                             f"{len(args)} positional argument(s)")
    idx = tuple(i % len(args) for i in nums)
    _check_float_args(args, idx, getattr(fun, "__name__", "grad"))

    def partial(*diff):
        full = list(args)
        for i, a in zip(idx, diff):
            full[i] = a
        return fun(*full, **kwargs)
    res = vjp(partial, *[args[i] for i in idx], has_aux=has_aux)
    out, vjp_fn = res[0], res[1]
    t = ad.aval(out) if not isinstance(out, (list, tuple, dict)) else None
    if t is None or t.shape != ():
        raise ShapeError(f"grad needs a function returning a scalar, got "
                         f"{t if t is not None else type(out).__name__}; use vjp for "
                         f"non-scalar outputs")
    if not is_float_type(t):
        raise DTypeError(f"grad needs a function returning a float scalar, got {t}")
    grads = vjp_fn(np.ones((), t.dtype))
    grads = grads[0] if single else grads
    return ((out, res[2]) if has_aux else out), grads


def grad(fun, argnums=0, has_aux=False):
    """The gradient of a float-scalar function (see :func:`value_and_grad`);
    with ``has_aux`` returns ``(grad, aux)``."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            value, g = vg(*args, **kwargs)
            return (g, value[1]) if has_aux else g
    return wrapped
