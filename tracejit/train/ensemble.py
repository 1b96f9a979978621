"""``tracejit train NAME --ensemble K``: K members trained in parallel, and
the accuracy of their averaged prediction beside each member's.

Member ``i`` is the recipe's model trained with seed ``seed + i`` (its own
initialization, shuffling, dropout and augmentation; the data split stays
that of ``seed``).  The members run one per process: under ``mpiexec``
member ``i`` trains on rank ``i % size``; otherwise in a pool of
``parallel`` processes.  The ensemble predicts the mean of the members'
softmax probabilities (the book's ensembles of Ch. 12's exercises).
"""
from __future__ import annotations

import multiprocessing
import os

import numpy as np

from ..api import jit
from ..distributed import allgather_object, init as init_world
from ..nn import softmax
from . import recipes
from .loop import fit

__all__ = ["train_member", "train_ensemble", "predict_proba"]


def predict_proba(model, params, model_state, x, *, batch_size: int = 500, backend=None):
    """Softmax probabilities of ``model`` on ``x`` (batches of ``batch_size``)."""

    def probabilities(params, model_state, x):
        if model_state is None:
            logits = model.apply(params, x, train=False)
        else:
            logits, _ = model.apply(params, x, state=model_state, train=False)
        return softmax(logits)

    run = jit(probabilities, backend=backend)
    return np.concatenate([np.asarray(run(params, model_state, x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def train_member(name: str, config: dict, index: int, backend=None) -> dict:
    """Train member ``index`` (seed ``config["seed"] + index``) quietly;
    ``{"index", "seed", "accuracy", "probabilities"}`` on the test set."""
    setup = recipes.build(name, config)
    seed = int(config["seed"]) + index
    result = fit(setup.model, setup.optimizer, setup.train, epochs=setup.config["epochs"],
                 batch_size=setup.config["batch_size"], validation_data=setup.validation,
                 seed=seed, augment=setup.augment, regularizer=setup.regularizer,
                 early_stopping=setup.early_stopping, backend=backend, verbose=False)
    probs = predict_proba(setup.model, setup.eval_params(result.state),
                          result.state.model_state, setup.test[0], backend=backend)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == setup.test[1]))
    return {"index": index, "seed": seed, "accuracy": accuracy, "probabilities": probs,
            "steps": int(result.state.step)}


def _member(job):
    return train_member(*job)


def train_ensemble(name: str, config: dict, members: int, *, parallel: int | None = None,
                   backend=None) -> dict | None:
    """Train ``members`` members in parallel; on rank 0 (or without MPI)
    returns ``{"members": [...], "accuracy": ensemble accuracy, "labels"}``,
    on the other ranks None."""
    if members < 1:
        raise ValueError(f"--ensemble needs at least 1 member, got {members}")
    setup = recipes.build(name, config)
    config, labels = setup.config, setup.test[1]    # config: defaults filled in
    world = init_world()
    jobs = [(name, config, i, backend) for i in range(members)]
    if world.size > 1:
        mine = [_member(job) for job in jobs[world.rank::world.size]]
        gathered = [m for part in allgather_object(mine) for m in part]
        if world.rank != 0:
            return None
    else:
        processes = min(members, parallel or os.cpu_count() or 1)
        if processes > 1:
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                gathered = pool.map(_member, jobs)
        else:
            gathered = [_member(job) for job in jobs]
    gathered.sort(key=lambda m: m["index"])
    mean = np.mean([m["probabilities"] for m in gathered], axis=0)
    return {"members": gathered, "labels": labels,
            "accuracy": float(np.mean(np.argmax(mean, axis=-1) == labels))}
