"""The debug ladder: ``TRACEJIT_LOG=compile,retrace,ir,fusion,source`` (or
``all``) prints what each stage did to stderr."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

TOPICS = ("compile", "retrace", "cache", "ir", "fusion", "source")


def enabled(topic: str) -> bool:
    value = os.environ.get("TRACEJIT_LOG", "")
    topics = {t.strip() for t in value.split(",") if t.strip()}
    return topic in topics or "all" in topics


def log(topic: str, message: str):
    if enabled(topic):
        print(f"[tracejit:{topic}] {message}", file=sys.stderr, flush=True)


@contextmanager
def timed(topic: str, what: str):
    """Log how long the block took (only when the topic is enabled)."""
    start = time.perf_counter()
    yield
    if enabled(topic):
        log(topic, f"{what}: {1e3 * (time.perf_counter() - start):.1f} ms")
