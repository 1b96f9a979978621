"""The training state, and saving/restoring it for an exact resume.

:class:`TrainState` holds everything a training step changes: parameters,
optimizer state, the model's non-trainable state (e.g. batch-norm moving
statistics), the step counter and the base random key.  Together with the
input pipeline's position (saved in the checkpoint metadata) it is all a run
needs to continue bit for bit where it stopped.

Checkpoints store every section of the state as a flat ``{name: array}``
table keyed by :func:`tracejit.tree.tree_flatten_with_path` names
(``"params/dense1/kernel"``, ``"opt_state/m/dense1/kernel"``...), so they read
well in the manifest, and restoring rebuilds the exact pytree types
(namedtuples, dataclasses) from a freshly initialized template of the same
model: the template's names, shapes and dtypes must match the checkpoint's,
and every mismatch is reported as a :class:`CheckpointError`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ..tree import register_dataclass, tree_flatten, tree_flatten_with_path, tree_unflatten
from .checkpoint import (CheckpointError, check_selection, latest_checkpoint, load_checkpoint,
                         save_checkpoint, select_names)

__all__ = ["TrainState", "save_train_state", "restore_train_state", "Restored"]


@register_dataclass
@dataclasses.dataclass
class TrainState:
    """Parameters, optimizer state, model state, step counter and base key.

    The training step derives each step's random key as
    ``fold_in(key, step)``, so the key itself never changes and randomness
    depends only on the step number.
    """

    params: Any
    opt_state: Any
    model_state: Any
    step: Any
    key: Any

    def replace(self, **changes) -> "TrainState":
        return dataclasses.replace(self, **changes)


def _named(tree) -> dict:
    """``{path: leaf}`` with arrays as NumPy arrays and Python scalars kept."""
    out = {}
    for name, leaf in tree_flatten_with_path(tree):
        if isinstance(leaf, (bool, int, float, str)) or leaf is None:
            out[name] = leaf
        else:
            out[name] = np.asarray(leaf)
    return out


def _spec(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name}[{','.join(str(d) for d in value.shape)}]"
    return f"Python {type(value).__name__}"


def _rebuild(template, named: dict, where: str, path: str):
    """``template``'s pytree with the leaves from ``named``, after checking
    that names, dtypes and shapes match (every mismatch is reported)."""
    want = _named(template)
    problems = [f"{where}/{n}: missing from the checkpoint (expected {_spec(v)})"
                for n, v in want.items() if n not in named]
    problems += [f"{where}/{n}: in the checkpoint ({_spec(v)}) but not expected"
                 for n, v in named.items() if n not in want]
    problems += [f"{where}/{n}: checkpoint has {_spec(named[n])}, expected {_spec(v)}"
                 for n, v in want.items() if n in named and _spec(named[n]) != _spec(v)]
    if problems:
        raise CheckpointError(
            f"{path}: checkpoint does not match this model and optimizer "
            f"({len(problems)} mismatch{'es' if len(problems) != 1 else ''}):\n  "
            + "\n  ".join(problems))
    return tree_unflatten(tree_flatten(template)[1], [named[n] for n in want])


def _tree(state: TrainState, extra: dict | None) -> dict:
    tree = {"state": _named(state)}
    for key, value in (extra or {}).items():
        tree[key] = _named(value)
    return tree


def save_train_state(directory, state: TrainState, *, extra: dict | None = None,
                     metadata: Any = None, keep: int | None = 5) -> str:
    """Save ``state`` (and ``extra`` trees, e.g. callback states) as the
    checkpoint of step ``int(state.step)``; returns the manifest path."""
    return save_checkpoint(directory, int(np.asarray(state.step)), _tree(state, extra),
                           metadata=metadata, keep=keep)


class Restored(tuple):
    """``(state, extra, metadata)`` from :func:`restore_train_state`, plus
    ``restored`` (``{name in the state: name in the checkpoint}``, e.g.
    ``{"params/hidden1/kernel": "params/hidden1/kernel", ...}``) and ``kept``
    (the state's names that kept ``like``'s values)."""

    def __new__(cls, state, extra, metadata, restored, kept):
        self = super().__new__(cls, (state, extra, metadata))
        self.restored, self.kept = restored, kept
        return self

    state = property(lambda self: self[0])
    extra = property(lambda self: self[1])
    metadata = property(lambda self: self[2])


def _select(like, named: dict, path: str, include, exclude, rename):
    """``like`` with the checkpoint entries that include/exclude select,
    renamed; every one must fit a leaf of ``like``."""
    want = _named(like)
    mapping = select_names(named, include, exclude, rename)
    check_selection(path, mapping, named, want, prefix="state/")
    merged = {**want, **{new: named[old] for new, old in mapping.items()}}
    kept = [n for n in want if n not in mapping]
    return _rebuild(like, merged, "state", path), mapping, kept


def restore_train_state(path_or_directory, like: TrainState, *, extra_like: dict | None = None,
                        include: str | None = None, exclude: str | None = None,
                        rename: dict | None = None) -> Restored:
    """Load a checkpoint saved by :func:`save_train_state` into the structure of
    ``like`` (a freshly initialized state of the same model and optimizer).

    Returns ``(state, extra, metadata)`` (a :class:`Restored`, which also
    says which names were ``restored`` and which ``kept``), where ``extra``
    has the sections named in ``extra_like`` (others in the checkpoint are
    ignored).  Raises :class:`CheckpointError` when the checkpoint is
    missing, corrupt or belongs to a different model.

    Partial and renamed restores (transfer learning): with ``include``,
    ``exclude`` (regular expressions searched in the state's names,
    ``"params/hidden1/kernel"``, ``"opt_state/..."``, ``"step"``) or
    ``rename`` (``{pattern: replacement}``, ``re.sub`` in turn), only the
    selected checkpoint entries are restored, under their new names, and
    every other part of ``like`` (a new output layer, the optimizer state,
    the step) keeps its value::

        state = restore_train_state(ckpt, like, include=r"^params/hidden[123]/").state
        restore_train_state(ckpt, like, include=r"^params/",
                            rename={r"^params/dense(\\d)/": r"params/hidden\\1/"})
    """
    path = os.fspath(path_or_directory)
    _, tree, metadata = load_checkpoint(path)
    if os.path.isdir(path):
        path = latest_checkpoint(path)
    sections = ["state"] + list(extra_like or {})
    missing = [s for s in sections if not isinstance(tree, dict) or s not in tree]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (no section "
                              f"{', '.join(missing)}); was it saved by save_train_state?")
    if include is not None or exclude is not None or rename:
        state, restored, kept = _select(like, tree["state"], path, include, exclude, rename)
    else:
        state = _rebuild(like, tree["state"], "state", path)
        restored, kept = {name: name for name in tree["state"]}, []
    extra = {key: _rebuild(value, tree[key], key, path)
             for key, value in (extra_like or {}).items()}
    return Restored(state, extra, metadata, restored, kept)
