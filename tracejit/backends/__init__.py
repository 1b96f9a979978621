"""Backends compile an IR Function into a callable on a flat list of arrays.

Each backend module exposes ``compile(fn, donate=()) -> callable(list) -> list``.
"""
from __future__ import annotations

import importlib
import os

BACKENDS = ("reference", "cpu", "cuda")


def get_backend(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f".{name}", __name__)


def available(name: str) -> bool:
    try:
        check = getattr(get_backend(name), "available", None)
    except ImportError:
        return False
    return bool(check and check())


def default_backend() -> str:
    env = os.environ.get("TRACEJIT_BACKEND")
    if env:
        return env
    for name in ("cuda", "cpu"):
        if available(name):
            return name
    return "reference"
