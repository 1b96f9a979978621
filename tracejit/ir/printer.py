"""The text form of the IR: one instruction a line, every value typed.

    func @name(%0: f32[2,3], %1: f32[]~) -> (f32[2,3]) {
      %2: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=()](%1)
      %3: f32[2,3] = mul(%0, %2)
      return (%3)
    }

Sub-functions of structured ops follow the instruction, indented, each
introduced by its attribute name. See docs/ir.md for the grammar.
"""
from __future__ import annotations


def format_attr(value) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(format_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return repr(value)
    return repr(value)


def format_function(fn, indent: str = "") -> str:
    from .core import Function
    names = {}

    def name(v):
        if v not in names:
            names[v] = f"%{len(names)}"
        return names[v]

    def ref(v):
        if v not in names:
            return f"%<undefined {v.type}>"
        return names[v]

    params = ", ".join(f"{name(p)}: {p.type}" for p in fn.params)
    outs = ", ".join(str(v.type) for v in fn.results)
    lines = [f"{indent}func @{fn.name}({params}) -> ({outs}) {{"]
    for ins in fn.body:
        plain = {k: v for k, v in ins.attrs.items() if not isinstance(v, Function)}
        subs = {k: v for k, v in ins.attrs.items() if isinstance(v, Function)}
        operands = ", ".join(ref(v) for v in ins.operands)
        attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in plain.items())
        results = ", ".join(f"{name(r)}: {r.type}" for r in ins.results)
        lhs = f"{results} = " if ins.results else ""
        head = f"{indent}  {lhs}{ins.prim}" + (f"[{attrs}]" if attrs else "") + f"({operands})"
        if subs:
            lines.append(head + " {")
            for k, sub in subs.items():
                body = format_function(sub, indent + "    ")
                lines.append(f"{indent}    {k} = " + body.lstrip())
            lines.append(f"{indent}  }}")
        else:
            lines.append(head)
    lines.append(f"{indent}  return ({', '.join(ref(v) for v in fn.results)})")
    lines.append(f"{indent}}}")
    return "\n".join(lines)
