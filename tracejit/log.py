"""The debug ladder: ``TRACEJIT_LOG=compile,retrace,fusion,source`` (or
``all``) prints what each stage did to stderr. :data:`TOPICS` is the one
list of topics (the README's table documents each); logging under any other
name is a programming error."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

#: compile: each stage's time (tracejit/stages.py names them), kernel cache hits;
#: retrace: why a call traced again; cache: the kernel cache's hits, misses and
#: repairs; fusion: the fused IR; source: the generated kernels and plans;
#: fallback: instructions a backend runs with their NumPy implementation.
TOPICS = ("compile", "retrace", "cache", "fusion", "source", "fallback")


def enabled(topic: str) -> bool:
    if topic not in TOPICS:
        raise ValueError(f"unknown log topic {topic!r}; the topics are {', '.join(TOPICS)}")
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
