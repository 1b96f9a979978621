"""docs/ir.md stays true: every ```tracejit block parses, verifies,
evaluates and prints back identically, the Python example prints the first
block, and every registered primitive has a row in its tables."""
import contextlib
import io
import pathlib
import re

import numpy as np
import pytest

import tracejit  # noqa: F401  (registers every primitive)
from tracejit.ir import parse, verify
from tracejit.core import PRIMITIVES
from tracejit.core import eval_function
from tracejit.ir.dims import Dim
from tracejit.transforms.specialize import is_symbolic, specialize

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "ir.md"
TEXT = DOC.read_text()


def _blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```$", TEXT, flags=re.M | re.S)


IR_BLOCKS = _blocks("tracejit")


def _inputs(fn, rng):
    out = []
    for t in fn.in_types:
        if t.dtype == "bool":
            out.append(rng.random(t.shape) < 0.5)
        elif t.dtype in ("int32", "int64", "uint32"):
            out.append(rng.integers(0, 3, t.shape).astype(t.dtype))
        else:
            out.append(rng.normal(size=t.shape).astype(t.dtype))
    return out


def test_doc_has_examples():
    assert len(IR_BLOCKS) >= 6


@pytest.mark.parametrize("block", IR_BLOCKS, ids=lambda b: b.split("(")[0][5:])
def test_ir_block_parses_verifies_and_round_trips(block):
    fn = parse(block)
    verify(fn)
    assert str(fn) == block.rstrip("\n"), "docs/ir.md blocks must be in printed (canonical) form"
    if is_symbolic(fn):   # run it with every symbolic dimension 3
        names = {n for t in fn.in_types for d in t.shape if isinstance(d, Dim) for n in d.names}
        fn = specialize(fn, dict.fromkeys(names, 3))
    outs = eval_function(fn, _inputs(fn, np.random.default_rng(0)))
    assert [np.shape(o) for o in outs] == [t.shape for t in fn.out_types]


def test_python_example_prints_the_first_block():
    code = _blocks("python")[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    assert out.getvalue().rstrip("\n") == IR_BLOCKS[0].rstrip("\n")


def test_every_primitive_is_documented():
    documented = set(re.findall(r"^\|\s*`([A-Za-z_][A-Za-z0-9_.]*)`\s*\|", TEXT, flags=re.M))
    missing = sorted(set(PRIMITIVES) - documented)
    stale = sorted(documented - set(PRIMITIVES))
    assert not missing, (
        f"primitives registered but not documented in {DOC}: {', '.join(missing)}.\n"
        f"Add a row '| `name` | operands -> result | attributes | meaning |' to the "
        f"table of its family (and a ```tracejit example if its use is not obvious).")
    assert not stale, (f"{DOC} documents primitives that are not registered: "
                       f"{', '.join(stale)}; remove or rename their rows.")
