"""Checks of command-line option values (``tracejit train``/``eval`` and the
example scripts): each is an argparse ``type=`` that refuses nonsense with a
one-line message, so ``--limit 0``, ``--hidden1 0``, ``--learning-rate nan``
or ``--checkpoint-every 0`` never start a run; and :func:`writable_directory`
for output directories, checked before anything is written."""
from __future__ import annotations

import argparse
import math
import os

__all__ = ["OptionError", "fraction", "nonnegative_int", "positive_float", "positive_int",
           "writable_directory"]


class OptionError(ValueError):
    """An option value that cannot be used (reported as one line, exit 2)."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1): a dropout rate, a moving-average decay."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def writable_directory(path: str, option: str) -> str:
    """Create ``path`` if needed and check that files can be created in it;
    OptionError naming ``option`` otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise OptionError(f"{option} {path}: exists and is not a directory") from None
    except NotADirectoryError:
        raise OptionError(f"{option} {path}: a part of the path is a file, "
                          f"not a directory") from None
    except OSError as e:
        raise OptionError(f"{option} {path}: cannot create the directory "
                          f"({e.strerror or e})") from None
    probe = os.path.join(path, f".tracejit-write-test-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise OptionError(f"{option} {path}: cannot write there ({e.strerror or e})") from None
    return path
