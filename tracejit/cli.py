"""The ``tracejit`` command (``python -m tracejit`` is the same).

Each subcommand is one ``add_*_command(subparsers)`` function that
registers its parser and sets ``run`` to a function ``args -> exit code``;
:data:`COMMANDS` lists them, so a new subcommand (``tracejit train``,
``tracejit eval``) is one function and one entry there.

``tracejit ir`` prints a function's IR at one stage of the pipeline
(tracejit/stages.py names the stages and their order); its stages are the
table :data:`STAGES`, so a new transform plugs in as one row.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import stages
from .api import make_ir
from .backends.cpu.codegen import generate
from .errors import ShapeError
from .memory import function_memory
from .specs import ShapeDtypeStruct
from .transforms.specialize import is_symbolic
from .transforms.autodiff import value_and_grad
from .ir.types import SHORT, parse_type
from .data.datasets import DatasetError
from .train.checkpoint import CheckpointError
from .train.cli import add_eval_command, add_train_command
from .train.options import OptionError, nonnegative_int
from .train.tune import add_tune_command

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class UsageError(Exception):
    """A mistake on the command line (not in the user's program)."""


# --- stages of `tracejit ir` --------------------------------------------------
@dataclass(frozen=True)
class Stage:
    after: str        # the pipeline stage (tracejit.stages.ORDER) whose result it shows
    help: str
    build: Callable   # (fun, args) -> Function (or anything that prints)


def _traced(fun, args):
    return make_ir(fun)(*args)


def _simplified(fun, args):
    return stages.simplify(_traced(fun, args))


def _grad(fun, args):
    if not args:
        raise UsageError("--stage grad differentiates with respect to the first "
                         "argument: give at least one --arg")
    return _traced(value_and_grad(fun), args)


def _grad_simplified(fun, args):
    return stages.simplify(_grad(fun, args))


def _fused(fun, args):
    fn = _simplified(fun, args)
    if is_symbolic(fn):
        raise UsageError("a Function with symbolic dimensions (None in --arg) is fused per call, "
                         "once its sizes are known; give concrete sizes for --stage fused "
                         "and cpu-source")
    return stages.fuse(fn)


#: name -> Stage, in pipeline order (the order --help lists them in).
STAGES = {
    "traced": Stage(stages.TRACE, "the IR as traced (tracejit.make_ir)", _traced),
    "simplified": Stage(stages.SIMPLIFY, "after simplification (what a backend compiles)",
                        _simplified),
    "grad": Stage(stages.TRACE, "value_and_grad of the function with respect to its first "
                  "argument, as traced", _grad),
    "grad-simplified": Stage(stages.SIMPLIFY, "the grad stage after simplification",
                             _grad_simplified),
    "fused": Stage(stages.FUSE, "after fusion into kernels (tracejit.transforms.fusion.fuse)",
                   _fused),
    "cpu-source": Stage(stages.CODEGEN, "the Numba source the cpu backend generates for each "
                        "kernel", lambda fun, args: _cpu_source(_fused(fun, args))),
}


def _cpu_source(fused):
    return "\n".join(f"# --- {ins.attrs['body'].name} ({ins.attrs['kind']})\n"
                     + generate(ins.attrs["body"], ins.attrs["kind"]).source
                     for ins in fused.body if ins.prim == "fusion")


# --- arguments ------------------------------------------------------------------
_SCALARS = {"float": 0.0, "int": 0, "bool": False}
_TYPE_HELP = ("a type such as f32[256,784], i32[256] or f32[] (dtypes: "
              + ", ".join(SHORT.values()) + "), or float, int or bool for a Python scalar")


def parse_arg(text: str):
    """``--arg`` value: ``TYPE`` or ``NAME=TYPE`` -> (name or None, zero value)."""
    name, sep, spec = text.rpartition("=")
    name = name.strip() if sep else None
    spec = spec.strip()
    if sep and not name:
        raise argparse.ArgumentTypeError(f"{text!r}: missing the name before '='")
    if spec in _SCALARS:
        return name, _SCALARS[spec]
    if spec.endswith("~"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: weak types come from Python scalars; write float, int or bool")
    try:
        t = parse_type(spec)
    except ShapeError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e.detail}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {_TYPE_HELP}") from None
    if t.symbolic:   # f32[None,784]: traced with a symbolic batch dimension
        return name, ShapeDtypeStruct(t.shape, t.dtype)
    return name, np.zeros(t.shape, t.dtype)


def parse_static(text: str):
    """``--static NAME=VALUE``: a Python literal, else the text as a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE, e.g. training=False")
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value


def _nest(named: dict, name: str, value):
    """Put ``value`` at the dotted path ``name`` (``params.W1``) of ``named``."""
    *outer, last = name.split(".")
    node = named
    for i, key in enumerate(outer):
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise UsageError(f"--arg {name}: {'.'.join(outer[:i + 1])} is already an array")
    if last in node:
        raise UsageError(f"--arg {name} is given twice")
    node[last] = value


def bind_arguments(fun, positional, named, statics):
    """A function of the dynamic arguments only, and their values, in the
    order of ``fun``'s parameters; statics are baked in."""
    try:
        sig = inspect.signature(fun)
        bound = sig.bind(*positional, **named, **statics)
    except TypeError as e:
        raise UsageError(f"the arguments do not fit {getattr(fun, '__name__', 'the function')}"
                         f"{_signature_text(fun)}: {e}") from None
    dynamic = [n for n in bound.arguments if n not in statics]

    def call(*values):
        arguments = dict(bound.arguments)
        arguments.update(zip(dynamic, values))
        ba = inspect.BoundArguments(sig, arguments)
        return fun(*ba.args, **ba.kwargs)

    call.__name__ = getattr(fun, "__name__", "f")
    call.arg_names = dynamic
    return call, [bound.arguments[n] for n in dynamic]


def _signature_text(fun) -> str:
    try:
        return str(inspect.signature(fun))
    except (TypeError, ValueError):
        return "(...)"


# --- loading the user's function -------------------------------------------------
def load_function(target: str):
    """``path/to/file.py:NAME`` or ``package.module:NAME`` (NAME may be dotted)."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise UsageError(f"{target!r}: expected FILE.py:FUNCTION or MODULE:FUNCTION")
    if where.endswith(".py") or os.path.sep in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise UsageError(f"{where}: no such file")
        # a private module name: a file called random.py must not replace the
        # standard library's module
        name = "_tracejit_target_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))   # so the file's own imports work
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            if e.name != where.split(".")[0] and e.name != where:
                raise
            raise UsageError(f"{where}: no module of that name (give a FILE.py path, "
                             f"or run from the directory that holds it)") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n, v in vars(module).items()
                           if callable(v) and not n.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
            raise UsageError(f"{where} has no {attr!r}; its functions are: "
                             f"{', '.join(names) or '(none)'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{target}: {attr} is a {type(obj).__name__}, not a function")
    return obj


def _user_frames(tb):
    """Traceback entries in the user's code: not tracejit's, not importlib's."""
    return [f for f in traceback.extract_tb(tb)
            if not os.path.abspath(f.filename).startswith(_PKG_DIR + os.sep)
            and not f.filename.startswith("<frozen")]


def report_user_error(exc: BaseException) -> None:
    """Print an exception raised while importing or tracing the user's code
    as Python would, but showing only the user's own frames."""
    if os.environ.get("TRACEJIT_TRACEBACK") == "full":
        traceback.print_exception(exc)
        return
    frames = _user_frames(exc.__traceback__)
    if frames:
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("".join(traceback.format_list(frames)))
    sys.stderr.write("".join(traceback.format_exception_only(exc)))


# --- `tracejit ir` ----------------------------------------------------------------
IR_EPILOG = """\
arguments:
  Each --arg is one argument, as TYPE (positional, in order) or NAME=TYPE
  (by parameter name). The function is traced with zero-filled arrays of
  these types. A dotted NAME builds a dict: --arg params.W1=f32[784,300]
  --arg params.b1=f32[300] passes params={{'W1': ..., 'b1': ...}}.
  TYPE is f32[256,784], i32[256], f32[] (a 0-d array), ... (dtypes bool,
  i32, i64, u32, f32, f64), or float / int / bool for a Python scalar
  (weakly typed, printed f64[]~ / i64[]~ / bool[]~). A None dimension,
  f32[None,784], is symbolic: the IR shows it as b (the batch size), as
  jit(f, input_specs=[ShapeDtypeStruct((None, 784), np.float32)]) traces it.
  Each --static NAME=VALUE is a Python literal (True, 3, 'same', (2, 2))
  passed as that argument and fixed at trace time, as jit's static_argnames.

stages:
{stages}

example:
  tracejit ir examples/mlp.py:loss \\
      --arg params.W1=f32[784,300] --arg params.b1=f32[300] \\
      --arg params.W2=f32[300,100] --arg params.b2=f32[100] \\
      --arg params.W3=f32[100,10] --arg params.b3=f32[10] \\
      --arg x=f32[256,784] --arg y=i32[256] --stage simplified --stats

The output is the IR's text form (docs/ir.md); it parses back with
tracejit.ir.parse. Errors in your code show your own lines only; set
TRACEJIT_TRACEBACK=full to see tracejit's frames too.
"""


def add_ir_command(subparsers):
    stages = "\n".join(f"  {name:<16} {stage.help}" for name, stage in STAGES.items())
    p = subparsers.add_parser(
        "ir", help="print the IR of a function at a stage of the pipeline",
        description="Trace FUNCTION with arrays of the given types and print its IR.",
        epilog=IR_EPILOG.format(stages=stages),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="FILE.py:FUNCTION",
                   help="the function: a file path or a module name, a colon, its name")
    p.add_argument("--arg", dest="args", metavar="[NAME=]TYPE", type=parse_arg,
                   action="append", default=[], help="one argument's type (repeat, in order)")
    p.add_argument("--static", dest="statics", metavar="NAME=VALUE", type=parse_static,
                   action="append", default=[], help="a static (Python) argument")
    p.add_argument("--stage", choices=list(STAGES), default="traced",
                   help="which IR to print (default: traced)")
    p.add_argument("--stats", action="store_true",
                   help="append instruction counts per primitive and the compiled plan's "
                        "peak memory (tracejit.memory_estimate), as # comments")
    p.add_argument("--dot", action="store_true",
                   help="print the IR as a Graphviz DOT graph instead (one cluster per "
                        "name scope; render with: dot -Tsvg)")
    p.add_argument("--dot-depth", type=nonnegative_int, metavar="N", default=None,
                   help="with --dot, draw each scope deeper than N levels as one node")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not check the IR with tracejit.ir.verify")
    p.set_defaults(run=run_ir)


def stats_lines(fn) -> list[str]:
    """``# N instructions`` and one ``# count prim`` line per primitive,
    counting sub-Functions' instructions too."""
    counts = Counter()

    def walk(f):
        for ins in f.body:
            counts[ins.prim] += 1
            for sub in ins.subfunctions().values():
                walk(sub)
    walk(fn)
    lines = [f"# {sum(counts.values())} instructions"]
    lines += [f"# {n:6d} {prim}" for prim, n in counts.most_common()]
    return lines


def memory_lines(fn, fused: bool) -> list[str]:
    """The peak memory of the plan compiled from ``fn`` (fused first unless
    it already is), as ``# memory: ...`` lines."""
    if is_symbolic(fn):
        return ["# memory: depends on the symbolic dimensions (give concrete sizes to see it)"]
    return function_memory(fn if fused else stages.fuse(stages.simplify(fn))).lines()


def _parameter_names(arg_names, values) -> list[str]:
    """``x``, ``params/W1``...: each argument's name and pytree path, in the
    order the traced Function takes them."""
    from .tree import tree_flatten_with_path
    return [f"{name}/{path}" if path else name
            for name, value in zip(arg_names, values)
            for path, _ in tree_flatten_with_path(value)]


def run_ir(args) -> int:
    from .ir import Function, verify
    from .ir.dot import to_dot
    fun = load_function(args.target)
    positional, named = [], {}
    for name, value in args.args:
        if name is None:
            if named:
                raise UsageError("positional --arg TYPE must come before NAME=TYPE ones")
            positional.append(value)
        else:
            _nest(named, name, value)
    statics = dict(args.statics)
    call, values = bind_arguments(fun, positional, named, statics)
    result = STAGES[args.stage].build(call, values)
    if args.dot and not isinstance(result, Function):
        raise UsageError(f"--dot draws an IR Function; --stage {args.stage} is not one")
    if args.dot_depth is not None and (not args.dot or args.dot_depth < 0):
        raise UsageError("--dot-depth N needs --dot and N >= 0")
    if args.dot:
        print(to_dot(result, args.dot_depth, _parameter_names(call.arg_names, values)))
    else:
        print(result)
    if isinstance(result, Function):
        if args.stats:
            print("\n".join(stats_lines(result)))
            print("\n".join(memory_lines(result, fused=args.stage == "fused")))
        if args.verify:
            verify(result)
    return 0


#: Subcommands: each adds its parser to the subparsers and sets ``run``.
COMMANDS = [add_ir_command, add_train_command, add_eval_command, add_tune_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracejit", description="tracejit: trace, differentiate, fuse and compile "
                                     "array programs. See 'tracejit COMMAND --help'.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (UsageError, OptionError) as e:
        parser.exit(2, f"tracejit {args.command}: error: {e}\n")
    except (DatasetError, CheckpointError) as e:   # a bad file: one line, no traceback
        sys.stderr.write(f"tracejit {args.command}: error: {e}\n")
        return 1
    except Exception as e:   # raised in the user's code, or a TracejitError
        report_user_error(e)
        return 1
