"""Gradient control: ``stop_gradient`` and ``custom_vjp``.

Both only act while a function is being traced for differentiation (under
vjp, grad, value_and_grad, jvp): there they record marker primitives that
the autodiff interpreters consume, so compiled programs never contain them.
Anywhere else ``stop_gradient`` is the identity and a custom_vjp function is
just its primal function.
"""
from __future__ import annotations

import functools

from .. import numpy as tnp
from ..core import Tracer, leaf_types, trace_flat, trace_pytree
from ..errors import ShapeError
from ..primitives import control as ctl
from ..primitives.ad_interpreter import is_differentiating
from ..primitives.ad_util import aval, is_float
from ..tree import tree_flatten, tree_map, tree_unflatten


def stop_gradient(x):
    """``x`` (any pytree), treated as a constant by differentiation."""
    if not is_differentiating():
        return x
    return tree_map(lambda v: ctl.stop_gradient(v) if isinstance(v, Tracer) and is_float(v)
                    else v, x)


class custom_vjp:
    """A function with a hand-written reverse-mode derivative, as in JAX::

        @tracejit.custom_vjp
        def f(x): ...
        def f_fwd(x): return f(x), residuals
        def f_bwd(residuals, ct): return (ct_x,)     # one entry per argument
        f.defvjp(f_fwd, f_bwd)

    ``bwd`` returns a tuple with one cotangent per positional argument,
    each shaped like that argument (None for zero). Forward mode and
    higher-order derivatives differentiate through ``f_fwd``/``f_bwd``'s
    own operations (``bwd`` runs as ordinary traced code). Values the
    functions close over get no gradient through them: pass them as
    arguments (reverse mode raises if a closed-over value needs one).
    """

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = self.bwd = None
        self._tracing = False

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {self.__name__}: call defvjp(fwd, bwd) "
                            f"before using it")
        if not is_differentiating() or self._tracing:
            return self.fun(*args)   # fwd may call the function itself: its primal
        self._tracing = True
        try:
            return self._bind(args)
        finally:
            self._tracing = False

    def _bind(self, args):
        name = getattr(self.fun, "__name__", "f")
        leaves, in_tree = tree_flatten(args)
        in_types = leaf_types(leaves)
        fun_fn, fun_cap, out_tree = trace_pytree(self.fun, in_types, in_tree, name)

        def fwd_flat(*xs):
            res = self.fwd(*tree_unflatten(in_tree, xs))
            if not (isinstance(res, tuple) and len(res) == 2):
                raise ShapeError(f"{name}: fwd must return a pair (output, residuals)")
            o_leaves, o_tree = tree_flatten(res[0])
            if o_tree != out_tree:
                raise ShapeError(f"{name}: fwd returns the output {o_tree}, but the function "
                                 f"returns {out_tree}")
            r_leaves, r_tree = tree_flatten(res[1])
            return o_leaves + r_leaves, r_tree
        fwd_fn, fwd_cap, res_tree = trace_flat(fwd_flat, in_types, name + "_fwd")
        n_out = len(fun_fn.results)
        for a, b in zip(fun_fn.out_types, fwd_fn.out_types):
            if (a.shape, a.dtype) != (b.shape, b.dtype):
                raise ShapeError(f"{name}: fwd's output {b} differs from the function's {a}")
        res_types = fwd_fn.out_types[n_out:]
        n_res = len(res_types)

        def bwd_flat(*xs):
            cts = self.bwd(tree_unflatten(res_tree, xs[:n_res]),
                           tree_unflatten(out_tree, xs[n_res:]))
            return _arg_cotangents(name, cts, args, in_tree, leaves), None
        bwd_fn, bwd_cap, _ = trace_flat(bwd_flat, res_types + fun_fn.out_types, name + "_bwd")
        (fun_fn, fwd_fn, bwd_fn), consts = ctl.close_over([
            (fun_fn, fun_cap, len(leaves)), (fwd_fn, fwd_cap, len(leaves)),
            (bwd_fn, bwd_cap, n_res + n_out)])
        outs = ctl.custom_vjp_call.bind(*consts, *leaves, fun=fun_fn, fwd=fwd_fn, bwd=bwd_fn,
                                         num_consts=len(consts))
        return tree_unflatten(out_tree, outs)


def _arg_cotangents(name, cts, args, in_tree, leaves):
    """bwd's result as one cotangent leaf per argument leaf (zeros for None)."""
    if not (isinstance(cts, (tuple, list)) and len(cts) == len(args)):
        raise ShapeError(f"{name}: bwd must return a tuple with one cotangent per "
                         f"argument ({len(args)}), got {type(cts).__name__}")
    out, start = [], 0
    for i, (ct, sub) in enumerate(zip(cts, in_tree.children)):
        arg_leaves = leaves[start:start + sub.num_leaves]
        start += sub.num_leaves
        if ct is None:
            out += [tnp.zeros_like(x) for x in arg_leaves]
            continue
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != sub:
            raise ShapeError(f"{name}: bwd's cotangent {i} has structure {ct_tree}, the "
                             f"argument has {sub}")
        for c, x in zip(ct_leaves, arg_leaves):
            if aval(c).shape != aval(x).shape:
                raise ShapeError(f"{name}: bwd's cotangent {i} has shape {aval(c).shape}, "
                                 f"the argument has {aval(x).shape}")
            out.append(tnp.astype(c, aval(x).dtype))
    return out


class custom_jvp:
    """A function with a hand-written forward-mode derivative, as in JAX::

        @tracejit.custom_jvp
        def f(x): ...

        @f.defjvp
        def f_jvp(primals, tangents):      # tuples, one entry per argument
            x, = primals
            t, = tangents
            return f(x), t * fprime(x)     # (output, output tangent)

    The tangent output must be linear in ``tangents``. Forward mode
    (``jvp``, ``jacfwd``) calls the rule; reverse mode (``grad``, ``vjp``,
    ``jacrev``) *transposes* it: because the rule is linear in the tangents,
    its reverse-mode derivative with respect to them is its transpose, so
    one rule serves both modes (JAX does the same with its linear
    transpose rules). Higher-order derivatives differentiate the rule's own
    operations. Tangents of integer arguments are integer zeros. Values the
    functions close over get no derivative through them: pass them as
    arguments (differentiation raises if a closed-over value needs one).
    """

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.jvp = None
        self._tracing = False

    def defjvp(self, jvp):
        self.jvp = jvp
        return jvp

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"custom_jvp function {self.__name__}: call defjvp(jvp) "
                            f"before using it")
        if not is_differentiating() or self._tracing:
            return self.fun(*args)   # the rule may call the function itself: its primal
        self._tracing = True
        try:
            return self._bind(args)
        finally:
            self._tracing = False

    def _bind(self, args):
        name = getattr(self.fun, "__name__", "f")
        leaves, in_tree = tree_flatten(args)
        in_types = leaf_types(leaves)
        n = len(leaves)
        fun_fn, fun_cap, out_tree = trace_pytree(self.fun, in_types, in_tree, name)

        def jvp_flat(*xs):
            res = self.jvp(tree_unflatten(in_tree, xs[:n]), tree_unflatten(in_tree, xs[n:]))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise ShapeError(f"{name}: the jvp rule must return a pair (output, "
                                 f"output tangent)")
            o_leaves, o_tree = tree_flatten(res[0])
            t_leaves, t_tree = tree_flatten(res[1])
            if o_tree != out_tree or t_tree != out_tree:
                raise ShapeError(f"{name}: the jvp rule returns {o_tree} and {t_tree}, but "
                                 f"the function returns {out_tree}")
            for o, t in zip(fun_fn.out_types, t_leaves):
                if aval(t).shape != o.shape:
                    raise ShapeError(f"{name}: the jvp rule's tangent has shape "
                                     f"{aval(t).shape}, the output has {o.shape}")
            tangents = [tnp.astype(t, o.dtype) for t, o in zip(t_leaves, fun_fn.out_types)]
            return o_leaves + tangents, None
        jvp_fn, jvp_cap, _ = trace_flat(jvp_flat, in_types + in_types, name + "_jvp")
        (fun_fn, jvp_fn), consts = ctl.close_over([(fun_fn, fun_cap, n), (jvp_fn, jvp_cap, 2 * n)])
        outs = ctl.custom_jvp_call.bind(*consts, *leaves, fun=fun_fn, jvp=jvp_fn,
                                         num_consts=len(consts))
        return tree_unflatten(out_tree, outs)
