"""A Function as a Graphviz DOT graph (``tracejit ir ... --dot``).

One node per parameter (an ellipse), per instruction (a box labelled with
its name and primitive; control flow and fused kernels are one box each)
and one for the results; an edge per operand, labelled with its type.
Values named in a scope (``tracejit.name_scope``) are drawn inside one
cluster per scope, nested as the scopes are.  With ``depth=N`` the scopes
deeper than N levels collapse: all the nodes of such a scope become one
node named after it (``depth=0`` draws each top-level scope as one node),
which is how TensorBoard first shows a graph.

Render it with ``dot -Tsvg graph.dot -o graph.svg``.
"""
from __future__ import annotations

from .core import Function
from .names import value_names

__all__ = ["to_dot", "graph_names"]


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_names(fn: Function, param_names=None) -> dict:
    """Display names of a graph: own names, else ``param_names[k]`` (default
    ``arg<k>``) for parameters and the primitive for instructions, all made
    unique (``add``, ``add_1``)."""
    given = list(param_names or [])

    def unnamed(v, i, ins):
        if ins is None:
            k = fn.params.index(v)
            return given[k] if k < len(given) else f"arg{k}"
        if v is not ins.results[0]:   # a graph node is named by its first output
            return f"<{ins.prim} output {ins.results.index(v)}>"
        return ins.prim
    return value_names(fn, unnamed)


class _Node:
    __slots__ = ("id", "label", "shape", "scope")

    def __init__(self, id, label, shape, scope):
        self.id, self.label, self.shape, self.scope = id, label, shape, scope


def _scope_parts(name: str) -> list[str]:
    return name.split("/")[:-1]


def to_dot(fn: Function, depth: int | None = None, param_names=None) -> str:
    """The DOT text of ``fn`` (module docstring); ``depth=None`` keeps every
    scope expanded; ``param_names`` names the parameters (``x``,
    ``params/W1``: a path puts a parameter in a scope too)."""
    if depth is not None and int(depth) < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    names = graph_names(fn, param_names)
    nodes: dict[str, _Node] = {}
    node_of: dict = {}            # Var -> node id

    def place(name, label, shape):
        """The node for a value called ``name``: its own, or its collapsed scope's."""
        parts = _scope_parts(name)
        if depth is not None and len(parts) > depth:
            scope = "/".join(parts[:depth + 1])
            node_id = "scope:" + scope
            if node_id not in nodes:
                nodes[node_id] = _Node(node_id, scope.rsplit("/", 1)[-1] + "\n(scope)",
                                       "box3d", "/".join(parts[:depth]))
            return node_id
        nodes[name] = _Node(name, label, shape, "/".join(parts))
        return name

    for p in fn.params:
        node_of[p] = place(names[p], f"{names[p].rsplit('/', 1)[-1]}\n{p.type}", "ellipse")
    for ins in fn.body:
        if not ins.results:
            continue
        first = names[ins.results[0]]
        kind = ins.attrs.get("kind")
        own = first.rsplit("/", 1)[-1]
        op = ins.prim + (f"[{kind}]" if kind else "")
        label = op if own == ins.prim or own.startswith(ins.prim + "_") else f"{own}\n{op}"
        node_id = place(first, label, "box")
        for r in ins.results:
            node_of[r] = node_id
    out_id = "return"
    nodes[out_id] = _Node(out_id, "return\n" + ", ".join(str(v.type) for v in fn.results),
                          "doubleoctagon", "")

    edges: dict = {}
    for ins in fn.body:
        if not ins.results:
            continue
        dst = node_of[ins.results[0]]
        for x in ins.operands:
            src = node_of.get(x)
            if src is not None and src != dst:
                edges.setdefault((src, dst), str(x.type))
    for v in fn.results:
        src = node_of.get(v)
        if src is not None:
            edges.setdefault((src, out_id), str(v.type))

    # clusters: scope -> nodes directly in it; nested by scope path
    members: dict[str, list] = {}
    for node in nodes.values():
        members.setdefault(node.scope, []).append(node)
    scopes = set()
    for scope in members:
        parts = scope.split("/") if scope else []
        scopes.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))

    lines = [f"digraph {_quote(fn.name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']

    def emit(scope: str, indent: str):
        for node in members.get(scope, []):
            lines.append(f"{indent}{_quote(node.id)} [label={_quote(node.label)}, "
                         f"shape={node.shape}];")
        children = sorted(s for s in scopes if s.rpartition("/")[0] == scope and s != scope)
        for child in children:
            lines.append(f"{indent}subgraph {_quote('cluster_' + child)} {{")
            lines.append(f"{indent}  label={_quote(child.rsplit('/', 1)[-1])}; style=rounded;")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit("", "  ")
    for (src, dst), label in edges.items():
        lines.append(f"  {_quote(src)} -> {_quote(dst)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines)
