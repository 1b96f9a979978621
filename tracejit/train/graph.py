"""A function's IR as a TensorBoard graph (a ``GraphDef``), Hands-On ML Ch. 9's
"Visualizing the Graph".

:func:`trace_graph` traces and simplifies ``f`` on example arguments (as
``jit`` would compile it); :func:`graph_def` turns the Function into the
``GraphDef`` protocol buffer TensorBoard's graph tab reads: one node per
parameter (``Placeholder``, named by the argument's name and pytree path,
``x``, ``params/hidden1/kernel``) and per instruction (its primitive as the
op), named by the value's scoped name, so scopes (``tracejit.name_scope``,
layers, ``gradients/``) show as collapsible boxes, and every node's output
shapes on its edges (``_output_shapes``). ``SummaryWriter.add_graph`` writes
it to the event file.
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import random
from ..api import make_ir
from ..ir.core import Function
from ..ir.dot import graph_names
from ..ir.printer import format_attr
from ..stages import simplify as optimize
from ..tree import tree_flatten_with_path
from .steps import step_functions

__all__ = ["trace_graph", "graph_def", "argument_names", "training_graph"]

_DTYPES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF",
           "bfloat16": "DT_BFLOAT16", "int8": "DT_INT8", "int16": "DT_INT16",
           "int32": "DT_INT32", "int64": "DT_INT64", "uint8": "DT_UINT8",
           "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
           "bool": "DT_BOOL", "complex64": "DT_COMPLEX64"}


def argument_names(f, args, kwargs) -> list[str]:
    """The names of the leaves of ``(args, kwargs)`` in the order ``make_ir``
    flattens them: the parameter's name, then the pytree path
    (``params/hidden1/kernel``)."""
    try:
        params = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        params = []
    names = []
    for path, _ in tree_flatten_with_path((tuple(args), dict(kwargs))):
        head, index, *rest = path.split("/")
        if head == "0":
            i = int(index)
            index = params[i] if i < len(params) else f"arg{i}"
        names.append("/".join([index, *rest]))
    return names


def trace_graph(f, *args, **kwargs) -> tuple[Function, list[str]]:
    """``f``'s simplified Function for these example arguments, and the
    names of its parameters (captured arrays are ``captured``, ``captured_1``...)."""
    fn = optimize(make_ir(f)(*args, **kwargs))
    names = argument_names(f, args, kwargs)
    names += ["captured"] * (len(fn.params) - len(names))
    return fn, names


def _protos():
    """tensorboardX's copies of TensorFlow's protocol buffers (imported when
    first needed, as ``SummaryWriter`` imports tensorboardX: tracejit itself
    does not need them)."""
    from tensorboardX.proto import (attr_value_pb2, graph_pb2, node_def_pb2,
                                    tensor_shape_pb2, types_pb2, versions_pb2)
    return attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, types_pb2, versions_pb2


def _dtype(types_pb2, dtype) -> int:
    name = _DTYPES.get(np.dtype(dtype).name, "DT_INVALID")
    return types_pb2.DataType.Value(name if name in types_pb2.DataType.keys() else "DT_INVALID")


def _shape(tensor_shape_pb2, shape):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape])


def _attr_text(value) -> bytes:
    if isinstance(value, Function):
        return f"func @{value.name}: {value.num_instructions()} instructions".encode()
    if isinstance(value, tuple) and any(isinstance(v, Function) for v in value):
        return b"(" + b", ".join(_attr_text(v) for v in value) + b")"
    return format_attr(value).encode()


def graph_def(fn: Function, param_names=None):
    """The ``GraphDef`` of ``fn`` (module docstring). ``param_names`` names the
    parameters (default: their own names, else ``arg0``, ``arg1``...)."""
    attr_value_pb2, graph_pb2, node_def_pb2, shape_pb2, types_pb2, versions_pb2 = _protos()
    names = graph_names(fn, param_names)
    output: dict = {p: names[p] for p in fn.params}   # Var -> "node" or "node:k"
    nodes = []
    for p in fn.params:
        attr = {"dtype": attr_value_pb2.AttrValue(type=_dtype(types_pb2, p.dtype)),
                "shape": attr_value_pb2.AttrValue(shape=_shape(shape_pb2, p.shape)),
                "_output_shapes": attr_value_pb2.AttrValue(
                    list=attr_value_pb2.AttrValue.ListValue(shape=[_shape(shape_pb2, p.shape)]))}
        nodes.append(node_def_pb2.NodeDef(name=names[p], op="Placeholder", attr=attr))
    for ins in fn.body:
        if not ins.results:
            continue
        node = names[ins.results[0]]
        attr = {"T": attr_value_pb2.AttrValue(type=_dtype(types_pb2, ins.results[0].dtype)),
                "_output_shapes": attr_value_pb2.AttrValue(
                    list=attr_value_pb2.AttrValue.ListValue(
                        shape=[_shape(shape_pb2, r.shape) for r in ins.results]))}
        for key, value in ins.attrs.items():
            attr[key] = attr_value_pb2.AttrValue(s=_attr_text(value))
        nodes.append(node_def_pb2.NodeDef(name=node, op=ins.prim,
                                          input=[output[x] for x in ins.operands], attr=attr))
        for k, r in enumerate(ins.results):
            output.setdefault(r, node if k == 0 else f"{node}:{k}")
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))


def training_graph(model, optimizer, state, x, y, *, loss=None, regularizer=None):
    """The ``GraphDef`` of one training step of ``model`` (what
    :func:`~tracejit.train.make_train_step` compiles: forward pass, loss,
    gradients, optimizer update) on a batch like ``(x, y)``; ``fit`` writes
    it to its ``logdir`` once."""
    gradients, update = step_functions(model, optimizer, loss, regularizer, 1)

    def train_step(state, x, y):
        grads, model_state, metrics = gradients(state, x, y,
                                                random.fold_in(state.key, state.step))
        return update(state, grads, model_state)[0], metrics
    return graph_def(*trace_graph(train_step, state, x, y))
