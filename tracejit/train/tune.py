"""``tracejit tune MODEL --trials N --parallel P``: hyperparameter search
with Optuna (``pip install tracejit[tune]``), one trial per process.

Optuna samples each trial's configuration (TPE) and prunes trials whose
validation accuracy after an epoch falls below the median of earlier
trials at that epoch.  The study lives in an Optuna journal file next to
the results file (``RESULTS.optuna-journal``), which every process appends
to under a file lock, so the processes share one study; and each finished
trial is appended as one JSON line to the results file.  Run the same
command again after an interruption and the search resumes: trials that
were running are marked failed and the search continues until ``N`` trials
have completed or been pruned.

Under ``mpiexec -n P`` each rank runs trials (``--parallel`` is the number
of ranks); otherwise ``--parallel`` processes of a pool do.  The processes
must share a filesystem (one machine, or a shared directory).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import time

import numpy as np

from ..distributed import barrier, init as init_world
from . import recipes
from .callbacks import Callback
from .loop import fit
from .options import nonnegative_int, positive_int

__all__ = ["SPACES", "run_search", "add_tune_command"]


def _mlp_space(trial) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
            "hidden1": trial.suggest_int("hidden1", 32, 512, log=True),
            "hidden2": trial.suggest_int("hidden2", 16, 256, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "momentum"])}


def _rnn_space(trial) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
            "units": trial.suggest_int("units", 16, 128, log=True)}


#: model name -> function(trial) -> config overrides.
SPACES = {"mlp": _mlp_space, "rnn": _rnn_space}


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SystemExit("tracejit tune needs Optuna: pip install 'tracejit[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@contextlib.contextmanager
def _locked(path):
    with open(path + ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Pruning(Callback):
    """Reports each epoch's validation accuracy; stops a trial Optuna prunes."""

    def __init__(self, trial):
        self.trial, self.last = trial, None

    def on_epoch_end(self, run, logs):
        self.last = logs["val_accuracy"]
        self.trial.report(logs["val_accuracy"], logs["epoch"])
        if self.trial.should_prune():
            raise _optuna().TrialPruned()


def _study(optuna, results, name, seed, worker):
    """The shared study; its sampler's seed depends on the worker and on the
    trials already there, so workers and resumed searches draw new points."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    storage = JournalStorage(JournalFileBackend(results + ".optuna-journal"))
    study = optuna.create_study(
        study_name=f"tracejit-{name}", storage=storage, direction="maximize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    entropy = [seed, worker, len(study.get_trials(deepcopy=False))]
    study.sampler = optuna.samplers.TPESampler(
        seed=int(np.random.SeedSequence(entropy).generate_state(1)[0]))
    return study


def _finished(optuna, study):
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=done)


def _search_worker(job) -> int:
    """One process: run trials until ``trials`` are finished or running."""
    name, base, trials, results, seed, worker, backend = job
    optuna = _optuna()
    study = _study(optuna, results, name, seed, worker)
    states = optuna.trial.TrialState
    ran = 0
    while True:
        with _locked(results):
            taken = study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED,
                                                                states.RUNNING))
            if len(taken) >= trials:
                return ran
            trial = study.ask()
        config = dict(base, **SPACES[name](trial))
        started = time.perf_counter()
        setup = recipes.build(name, config)
        pruning = _Pruning(trial)
        try:
            result = fit(setup.model, setup.optimizer, setup.train,
                         epochs=setup.config["epochs"], batch_size=setup.config["batch_size"],
                         validation_data=setup.validation, seed=setup.config["seed"],
                         augment=setup.augment, regularizer=setup.regularizer,
                         early_stopping=setup.early_stopping, callbacks=[pruning],
                         backend=backend, verbose=False)
            value, state = max(result.history["val_accuracy"]), states.COMPLETE
        except optuna.TrialPruned:
            value, state = pruning.last, states.PRUNED
        with _locked(results):
            if state == states.COMPLETE:
                study.tell(trial, value)
            else:
                study.tell(trial, state=states.PRUNED)
            with open(results, "a") as out:
                out.write(json.dumps({"trial": trial.number, "state": state.name,
                                      "val_accuracy": value, "params": trial.params,
                                      "seconds": round(time.perf_counter() - started, 2),
                                      "worker": worker}) + "\n")
        ran += 1


def _fail_stale(optuna, study):
    """Trials left running by an interrupted search are failed (they restart)."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return len(running)


def run_search(name: str, base: dict, *, trials: int, parallel: int, results: str,
               seed: int = 0, backend=None, verbose: bool = True):
    """Run (or resume) the search; on rank 0 (or without MPI) returns the
    study, on the other ranks None."""
    if name not in SPACES:
        raise SystemExit(f"tracejit tune: no search space for {name!r} "
                         f"(choose {', '.join(SPACES)})")
    if trials < 1 or parallel < 1:
        raise SystemExit("tracejit tune: --trials and --parallel must be at least 1")
    optuna = _optuna()
    world = init_world()
    results = os.path.abspath(results)
    os.makedirs(os.path.dirname(results), exist_ok=True)
    if world.rank == 0:
        study = _study(optuna, results, name, seed, 0)
        stale = _fail_stale(optuna, study)
        done = len(_finished(optuna, study))
        if verbose:
            workers = world.size if world.size > 1 else parallel
            print(f"search for {name}: {trials} trials, {workers} at a time; results "
                  f"appended to {results}"
                  + (f"; resuming after {done} finished trials" if done else "")
                  + (f" ({stale} interrupted trials failed)" if stale else ""), flush=True)
    barrier()
    if world.size > 1:
        _search_worker((name, base, trials, results, seed, world.rank, backend))
        barrier()
        if world.rank != 0:
            return None
    elif parallel == 1:
        _search_worker((name, base, trials, results, seed, 0, backend))
    else:
        jobs = [(name, base, trials, results, seed, i, backend) for i in range(parallel)]
        with multiprocessing.get_context("spawn").Pool(parallel) as pool:
            pool.map(_search_worker, jobs)
    return _study(optuna, results, name, seed, 0)


def _table(optuna, study) -> str:
    rows = []
    names = sorted({k for t in study.trials for k in t.params})
    header = ["trial", "state", "val_acc"] + names
    for t in study.trials:
        value = t.value if t.value is not None else (
            list(t.intermediate_values.values())[-1] if t.intermediate_values else None)
        rows.append([str(t.number), t.state.name.lower(),
                     "" if value is None else f"{value:.4f}"]
                    + [_fmt(t.params.get(k)) for k in names])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths))
                     for r in [header] + rows)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _tune_command(args) -> int:
    base = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
            "limit": args.limit, "data": args.data}
    results = args.results or os.path.join("runs", f"tune-{args.model}.jsonl")
    study = run_search(args.model, base, trials=args.trials, parallel=args.parallel,
                       results=results, seed=args.seed or 0, backend=args.backend)
    if study is None:
        return 0
    optuna = _optuna()
    print(_table(optuna, study))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        print("no trial completed")
        return 1
    best = study.best_trial
    flags = " ".join(f"--{k.replace('_', '-')} {_fmt(v)}" for k, v in best.params.items())
    print(f"best: trial {best.number}, validation accuracy {best.value:.4f}: {flags}")
    print(f"  tracejit train {args.model} {flags}")
    return 0


def add_tune_command(subparsers):
    p = subparsers.add_parser(
        "tune", help="hyperparameter search (Optuna), one trial per process",
        description="Search learning rate, widths, dropout and optimizer with Optuna; "
                    "each trial trains on its own process (one per rank under mpiexec, "
                    "else a pool of --parallel); finished trials are appended to the "
                    "results file, and running the command again resumes the search.")
    p.add_argument("model", choices=sorted(SPACES))
    p.add_argument("--trials", type=positive_int, default=20, help="trials in all (default 20)")
    p.add_argument("--parallel", type=positive_int, default=2,
                   help="trials at a time without mpiexec (default 2)")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs per trial (default 10)")
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use only the first N training and N test examples")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--backend", choices=("cpu", "cuda", "reference"))
    p.add_argument("--results", metavar="FILE",
                   help="JSON lines, one per finished trial (default runs/tune-MODEL.jsonl)")
    p.set_defaults(run=_tune_command)
