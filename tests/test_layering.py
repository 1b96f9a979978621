"""The package's layering, read from its source with ``ast``.

tracejit is built in layers; a module imports only modules of its own layer
or of layers below it (docs/architecture.md draws them). This test fails on

- an import cycle among tracejit's modules (function-local imports count:
  a function-local import is how a cycle hides);
- a module importing one of a higher layer;
- more than ``MAX_LOCAL_IMPORTS`` function-local imports of tracejit modules
  outside the command-line modules (which import lazily on purpose so that
  ``tracejit --help`` stays fast), and any function-local import of a
  third-party module that is not a lazy (optional or slow) dependency;
- importing a ``_private`` name from another tracejit module;
- ``nn``, ``optim``, ``data`` and ``train`` importing from the package
  ``__init__`` (``from .. import jit``) instead of the module that defines
  the name.

Package ``__init__`` modules only re-export; the implicit import of a
module's parent packages is not an edge (as in import-linter).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tracejit"

#: Bottom to top (docs/architecture.md explains each). A module's layer is
#: that of the longest prefix listed.
LAYERS = [
    ["errors", "log", "tree", "device"],
    ["ir", "naming", "specs"],
    ["core", "arguments"],
    ["primitives"],
    ["slicing", "numpy", "scipy", "lax", "random", "control"],
    ["kernel"],
    ["transforms"],
    ["backends"],
    ["pipeline", "stages"],
    ["tiered", "symbolic"],
    ["api", "memory", "abstract", "polymorphic"],
    ["testing"],
    ["nn", "optim"],
    ["data", "distributed"],
    ["train"],
    ["__init__"],
    ["cli", "__main__", "train.cli"],
]

#: Modules that may import lazily (``tracejit --help`` imports nothing heavy).
CLI_MODULES = {"tracejit.cli", "tracejit.train.cli", "tracejit.__main__"}
MAX_LOCAL_IMPORTS = 5
#: Third-party modules imported on first use: optional extras, or slow to import.
LAZY_DEPENDENCIES = {"numba", "llvmlite", "cupy", "scipy", "sklearn", "matplotlib",
                     "tqdm", "tensorboardX", "safetensors", "mpi4py", "optuna", "ml_dtypes"}
#: Packages whose modules must not import from the ``tracejit`` package itself.
USERS_OF_THE_MODULES = ("nn", "optim", "data", "train")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


class Import:
    """One imported name: ``module`` is the tracejit module it resolves to
    (None for a third-party one), ``top`` the third-party top-level name."""

    def __init__(self, source, line, module, name, local, top=None, from_package=False):
        self.source, self.line, self.module, self.name = source, line, module, name
        self.local, self.top, self.from_package = local, top, from_package

    def __repr__(self):
        where = "function-local " if self.local else ""
        what = self.module or self.top
        return f"{self.source}:{self.line}: {where}import {what}" + (
            f" ({self.name})" if self.name else "")


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "tracejit":
                        found.append(Import(name, child.lineno, alias.name, None, local))
                    else:
                        found.append(Import(name, child.lineno, None, None, local,
                                            top=alias.name.split(".")[0]))
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(name, is_package, child.level, child.module)
                if target.split(".")[0] != "tracejit":
                    if target != "__future__":
                        found.append(Import(name, child.lineno, None, None, local,
                                            top=target.split(".")[0]))
                    continue
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:      # ``from pkg import module``
                        found.append(Import(name, child.lineno, sub, None, local))
                    else:
                        found.append(Import(name, child.lineno, target, alias.name, local,
                                            from_package=target == "tracejit"))
            visit(child, inner)

    visit(tree, False)
    return found


def import_table(root: Path = ROOT) -> list[Import]:
    modules = all_modules(root)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def layer_of(module: str) -> int:
    rel = module.split(".", 1)[1] if "." in module else "__init__"
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for n in names:
            if (rel == n or rel.startswith(n + ".")) and len(n) > best_len:
                best, best_len = i, len(n)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def cycles(table) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in table:
        if imp.module is not None and imp.module != imp.source:
            graph.setdefault(imp.source, set()).add(imp.module)
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def layer_violations(table) -> list[Import]:
    return [imp for imp in table if imp.module is not None
            and layer_of(imp.module) > layer_of(imp.source)]


def local_imports(table) -> list[Import]:
    """Function-local import statements of tracejit modules (one entry per
    statement) outside the CLI modules."""
    seen, out = set(), []
    for imp in table:
        if imp.local and imp.module is not None and imp.source not in CLI_MODULES \
                and (imp.source, imp.line) not in seen:
            seen.add((imp.source, imp.line))
            out.append(imp)
    return out


def eager_dependencies_imported_lazily(table) -> list[Import]:
    return [imp for imp in table if imp.local and imp.module is None
            and imp.source not in CLI_MODULES and imp.top not in LAZY_DEPENDENCIES]


def private_imports(table) -> list[Import]:
    return [imp for imp in table if imp.module is not None and imp.name is not None
            and imp.name.startswith("_") and not imp.name.startswith("__")
            and imp.module != imp.source]


def package_imports(table) -> list[Import]:
    return [imp for imp in table if imp.from_package
            and imp.source.split(".")[1:2] and imp.source.split(".")[1] in USERS_OF_THE_MODULES]


TABLE = import_table()


def _report(items) -> str:
    return "\n".join(map(repr, items))


def test_no_import_cycles():
    found = cycles(TABLE)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_lower_layers_never_import_higher_ones():
    bad = layer_violations(TABLE)
    assert not bad, "imports of a higher layer:\n" + _report(bad)


def test_few_function_local_imports():
    found = local_imports(TABLE)
    assert len(found) <= MAX_LOCAL_IMPORTS, (
        f"{len(found)} function-local imports of tracejit modules "
        f"(at most {MAX_LOCAL_IMPORTS}):\n" + _report(found))
    eager = eager_dependencies_imported_lazily(TABLE)
    assert not eager, ("function-local imports of modules that are cheap and always "
                       "installed (import them at the top):\n" + _report(eager))


def test_no_private_names_across_modules():
    bad = private_imports(TABLE)
    assert not bad, "private names imported from another module:\n" + _report(bad)


def test_user_packages_import_modules_not_the_package():
    bad = package_imports(TABLE)
    assert not bad, "imports from the tracejit package __init__:\n" + _report(bad)


def test_every_module_has_a_layer():
    for name in all_modules():
        layer_of(name)


# --- the checks themselves can fail -------------------------------------------

def _write(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / "tracejit" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return import_table(tmp_path / "tracejit")


def test_checks_catch_what_they_are_for(tmp_path):
    table = _write(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "ir/__init__.py": "",
        "ir/core.py": "from ..core import Primitive\n",
        "core.py": ("from .ir.core import Var\nfrom .errors import _hidden\n"
                    "def f():\n    from . import api\n    import linecache\n    import scipy\n"),
        "api.py": "",
        "nn/__init__.py": "",
        "nn/layers.py": "from .. import jit\nfrom .. import errors\n",
    })
    assert cycles(table) == [["tracejit.core", "tracejit.ir.core"]]
    assert [(i.source, i.module) for i in layer_violations(table)] == [
        ("tracejit.core", "tracejit.api"), ("tracejit.ir.core", "tracejit.core"),
        ("tracejit.nn.layers", "tracejit")]
    assert [i.module for i in local_imports(table)] == ["tracejit.api"]
    assert [i.top for i in eager_dependencies_imported_lazily(table)] == ["linecache"]
    assert [i.name for i in private_imports(table)] == ["_hidden"]
    assert [i.name for i in package_imports(table)] == ["jit"]


if __name__ == "__main__":   # numbers for the report
    print("cycles:", cycles(TABLE))
    print("layer violations:", len(layer_violations(TABLE)))
    print("function-local tracejit imports:", len(local_imports(TABLE)))
    print("function-local eager third-party imports:", len(eager_dependencies_imported_lazily(TABLE)))
    print("private imports:", len(private_imports(TABLE)))
    print("package imports:", len(package_imports(TABLE)))
    pytest.main([__file__, "-q"])
