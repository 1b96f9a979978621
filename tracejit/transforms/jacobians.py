"""Jacobians and Hessians, built as JAX builds them: ``vmap`` of ``jvp``
over the input basis (``jacfwd``, one forward pass per input element,
batched into one program) or of ``vjp`` over the output basis (``jacrev``,
one backward pass per output element, sharing one forward pass).

For ``f: R^n -> R^m``, ``jacfwd`` costs about n forward passes and
``jacrev`` m backward passes: use ``jacrev`` for wide inputs and narrow
outputs (gradients of losses), ``jacfwd`` for the converse. ``hessian`` is
``jacfwd(jacrev(f))``. The Jacobian of an output leaf of shape ``o`` with
respect to an input leaf of shape ``i`` has shape ``o + i``; the result is
nested as JAX nests it: the output's pytree, each leaf holding the input's
pytree (a tuple over ``argnums`` when that is a tuple).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import numpy as tnp
from ..core import eval_function, leaf_types, trace_flat
from ..errors import NonDifferentiableError, ShapeError, api_boundary
from ..primitives.ad_util import aval, is_float, is_float_type, p
from ..tree import tree_flatten, tree_flatten_with_path, tree_unflatten
from .autodiff import jvp, vjp
from .batching import vmap
from .partial_eval import split


def _argnums(argnums, args):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {argnums} out of range for {len(args)} positional "
                             f"argument(s)")
    return single, tuple(i % len(args) for i in nums)


def _check_float(args, idx, who):
    for i in idx:
        for path, leaf in tree_flatten_with_path(args[i]):
            if not is_float(leaf):
                where = f"argument {i}" + (f" at {path!r}" if path else "")
                raise NonDifferentiableError(
                    f"{who}: {where} has dtype {aval(leaf).dtype}; Jacobians are only "
                    f"defined for float inputs")


def _partial(fun, args, kwargs, idx):
    def f(*diff):
        full = list(args)
        for i, a in zip(idx, diff):
            full[i] = a
        return fun(*full, **kwargs)
    return f


def _basis(leaves):
    """The standard basis of the space of ``leaves``, as one batch per leaf:
    leaf ``k`` of shape ``s`` gets ``[n, *s]`` (n = the total size)."""
    sizes = [aval(x).size for x in leaves]
    n = sum(sizes)
    out, start = [], 0
    for x, m in zip(leaves, sizes):
        t = aval(x)
        e = np.zeros((n, m), t.dtype)
        e[start + np.arange(m), np.arange(m)] = 1
        out.append(e.reshape((n,) + t.shape))
        start += m
    return out


def _split_rows(batched, leaves):
    """``batched`` ``[n, *o]`` with n running over the leaves' elements ->
    per leaf ``[*o, *leaf.shape]`` (the batch moved last and unflattened)."""
    t = aval(batched)
    out, start = [], 0
    for x in leaves:
        s = aval(x).shape
        m = aval(x).size
        piece = p("slice", batched, start=(start,) + (0,) * (t.ndim - 1),
                  limit=(start + m,) + t.shape[1:], strides=(1,) * t.ndim)
        piece = p("transpose", piece, permutation=tuple(range(1, t.ndim)) + (0,))
        out.append(p("reshape", piece, new_shape=t.shape[1:] + s))
        start += m
    return out


def _nest(out_tree, per_out, in_tree, single):
    """Output pytree of input pytrees (a tuple of them for tuple argnums)."""
    inner = [tree_unflatten(in_tree, pieces) for pieces in per_out]
    if single:
        inner = [x[0] for x in inner]
    return tree_unflatten(out_tree, inner)


def jacfwd(fun, argnums=0, has_aux=False):
    """The Jacobian of ``fun`` by forward mode: ``vmap(jvp)`` over the basis
    of the inputs selected by ``argnums``."""
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            single, idx = _argnums(argnums, args)
            _check_float(args, idx, "jacfwd")
            f = _partial(fun, args, kwargs, idx)
            primals = tuple(args[i] for i in idx)
            in_leaves, in_tree = tree_flatten(primals)

            def push(*basis_leaves):
                return jvp(f, primals, tree_unflatten(in_tree, basis_leaves), has_aux=has_aux)
            res = vmap(push, out_axes=(None, 0) + ((None,) if has_aux else ()))(
                *_basis(in_leaves))
            out_leaves, out_tree = tree_flatten(res[0])
            tans = tree_flatten(res[1])[0]
            jac = _nest(out_tree, [_split_rows(t, in_leaves) for t in tans], in_tree, single)
            return (jac, res[2]) if has_aux else jac
    return wrapped


def jacrev(fun, argnums=0, has_aux=False):
    """The Jacobian of ``fun`` by reverse mode: one forward pass, then
    ``vmap(vjp_fn)`` over the basis of the outputs."""
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            single, idx = _argnums(argnums, args)
            _check_float(args, idx, "jacrev")
            f = _partial(fun, args, kwargs, idx)
            primals = tuple(args[i] for i in idx)
            res = vjp(f, *primals, has_aux=has_aux)
            out, vjp_fn = res[0], res[1]
            out_leaves, out_tree = tree_flatten(out)
            in_leaves, in_tree = tree_flatten(primals)
            basis = _basis(out_leaves)
            cts = vmap(lambda *b: tree_flatten(vjp_fn(tree_unflatten(out_tree, b)))[0])(*basis)
            # cts[k]: [n_out, *in_k.shape] -> per output leaf [*o, *in_k.shape]
            per_in = [_split_rows(c, out_leaves) for c in cts]   # [in][out] -> [*in, *o]
            per_out = []
            for j, o in enumerate(out_leaves):
                row = []
                for k, x in enumerate(in_leaves):
                    piece = per_in[k][j]   # shape in_k + o
                    ni, no = aval(x).ndim, aval(o).ndim
                    perm = tuple(range(ni, ni + no)) + tuple(range(ni))
                    row.append(p("transpose", piece, permutation=perm) if ni and no else piece)
                per_out.append(row)
            jac = _nest(out_tree, per_out, in_tree, single)
            return (jac, res[2]) if has_aux else jac
    return wrapped


def hessian(fun, argnums=0, has_aux=False):
    """The Hessian of a scalar function: ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)


def linearize(fun, *primals):
    """``(out, f_jvp)``: ``fun(*primals)`` and its linear map
    ``f_jvp(*tangents) = jvp(fun, primals, tangents)[1]``.

    As in JAX, the linearization is partially evaluated
    (transforms/partial_eval.py): the forward pass runs once, here, and
    ``f_jvp`` keeps the values its tangent arithmetic reads (the cosine of
    ``sin``'s input, say), so each call (or its ``jit``) runs only that
    arithmetic. Tangents are given like ``primals`` (entries for integer
    primals are ignored)."""
    with api_boundary():
        leaves, in_tree = tree_flatten(primals)
        types = leaf_types(leaves)
        n = len(leaves)
        trees = []

        def both(*xs):
            ps, ts = tree_unflatten(in_tree, xs[:n]), tree_unflatten(in_tree, xs[n:])
            out, tout = jvp(fun, ps, ts)
            out_leaves, out_tree = tree_flatten(out)
            trees.append(out_tree)
            return out_leaves + tree_flatten(tout)[0], None
        fn, captured, _ = trace_flat(both, types + types, "linearize")
        n_out = trees[0].num_leaves
        k = len(captured)
        known, linear = split(fn, [False] * n + [True] * n + [False] * k,
                              [True] * n_out + [False] * n_out)
        vals = eval_function(known, list(leaves) + list(captured))
        out, residuals = tree_unflatten(trees[0], vals[:n_out]), vals[n_out:]

    def f_jvp(*tangents):
        with api_boundary():
            t_leaves, t_tree = tree_flatten(tuple(tangents))
            if t_tree != in_tree:
                raise ShapeError(f"linearize: tangents' structure {t_tree} differs from the "
                                 f"primals' {in_tree}")
            ts = [_tangent(t, ty, i) for i, (t, ty) in enumerate(zip(t_leaves, types))]
            return tree_unflatten(trees[0], eval_function(linear, list(residuals) + ts))
    return out, f_jvp


def _tangent(t, want, i):
    """Tangent ``i`` as a value of its primal's type (zeros for an integer
    primal, which has no tangent)."""
    if not is_float_type(want):
        return np.zeros(want.shape, want.dtype)
    got = aval(t)
    if got.shape != want.shape:
        raise ShapeError(f"linearize: tangent {i} has shape {got.shape}, but its primal has "
                         f"shape {want.shape}")
    return t if got.dtype == want.dtype else tnp.astype(t, want.dtype)
