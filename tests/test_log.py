"""Log topics: one list (tracejit.log.TOPICS), each documented in the README,
and every topic the package logs under is in it."""
import ast
import re
from pathlib import Path

import pytest

from tracejit import log

ROOT = Path(__file__).resolve().parent.parent


def logged_topics():
    """(file:line, topic) of every ``log(...)``, ``timed(...)`` and
    ``enabled(...)`` call whose first argument is a string literal."""
    found = []
    for path in sorted((ROOT / "tracejit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in ("log", "timed", "enabled"):
                    found.append((f"{path.name}:{node.lineno}", node.args[0].value))
    return found


def test_every_logged_topic_is_listed():
    found = logged_topics()
    assert {t for _, t in found} == set(log.TOPICS), (
        "topics logged but not in log.TOPICS, or listed but never logged: "
        f"{sorted({t for _, t in found} ^ set(log.TOPICS))}")


def test_readme_documents_every_topic():
    row = next(line for line in (ROOT / "README.md").read_text().splitlines()
               if line.startswith("| `TRACEJIT_LOG`"))
    assert set(re.findall(r"`([a-z]+)`", row)) - {"all"} == set(log.TOPICS)


def test_unknown_topic_is_an_error():
    with pytest.raises(ValueError, match="unknown log topic 'ir'"):
        log.log("ir", "x")
