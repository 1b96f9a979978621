"""``tracejit train MODEL`` and ``tracejit eval CHECKPOINT``.

    tracejit train mlp                         # the book's DNN on the bundled digits
    tracejit train cnn --epochs 2 --width 0.5  # the CIFAR-10 tutorial CNN (synthetic data)
    tracejit train rnn --logdir runs/lstm
    tracejit train mlp --resume                # continue from runs/mlp/checkpoints
    tracejit eval runs/mlp                     # test accuracy of the latest checkpoint

The example scripts (``examples/train_mnist_dnn.py``, ...) are the same
commands: their ``main(argv)`` is :func:`main_for` with their model.  The
models and data are defined in :mod:`tracejit.train.recipes`; every
checkpoint records the model's name and config, which is how ``tracejit
eval`` rebuilds it.
"""
from __future__ import annotations

import argparse
import os

from ..nn import count_params
from . import recipes
from ..data.datasets import DatasetError
from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from ..distributed import init as init_world
from .loop import fit
from .options import (
    OptionError,
    fraction,
    nonnegative_int,
    positive_float,
    positive_int,
    writable_directory,
)
from .ensemble import train_ensemble
from .parameter_server import fit_async
from .state import restore_train_state
from .steps import evaluate, init_train_state, make_eval_step

__all__ = ["add_train_command", "add_eval_command", "train_parser", "main_for",
           "run_train", "run_eval"]

_BACKENDS = ("cpu", "cuda", "reference")

#: Options specific to each model: (flags, argparse keyword arguments).
_MODEL_OPTIONS = {
    "mlp": [
        (("--activation",), dict(choices=("elu", "relu"), help="hidden activation")),
        (("--optimizer",), dict(choices=("adam", "momentum"), help="Adam, or momentum 0.9")),
        (("--learning-rate",), dict(type=positive_float)),
        (("--hidden1",), dict(type=positive_int, help="units of the first hidden layer")),
        (("--hidden2",), dict(type=positive_int, help="units of the second hidden layer")),
        (("--dropout",), dict(type=fraction, help="dropout rate after each hidden layer")),
        (("--patience",), dict(type=positive_int, help="early stopping: epochs without a lower "
                                              "validation loss")),
    ],
    "cnn": [
        (("--width",), dict(type=positive_float, help="scales every layer; 1.0 is the tutorial's "
                                             "1,068,298-parameter model")),
        (("--learning-rate",), dict(type=positive_float, help="initial learning rate (plain SGD)")),
        (("--decay-epochs",), dict(type=positive_float, help="epochs per 10x learning-rate decay "
                                                    "(staircase)")),
        (("--ema-decay",), dict(type=fraction, help="decay of the parameters' moving averages "
                                                 "used for evaluation (0: none)")),
        (("--synthetic-examples",), dict(type=positive_int, help="training images when no --data")),
    ],
    "rnn": [
        (("--units",), dict(type=positive_int, help="LSTM units")),
        (("--learning-rate",), dict(type=positive_float)),
        (("--patience",), dict(type=positive_int, help="early stopping: epochs without a lower "
                                              "validation loss")),
    ],
}

_HELP = {
    "mlp": "the MNIST DNN (300-100, ReLU or ELU, He init, Adam, early stopping); bundled digits "
           "by default, MNIST IDX files with --data",
    "cnn": "the CIFAR-10 tutorial CNN with its input distortions, learning-rate decay, "
           "weight decay and moving averages; synthetic images by default, CIFAR-10 "
           "binary files with --data",
    "rnn": "an LSTM classifying digits read row by row; bundled digits by default, "
           "MNIST IDX files with --data",
}


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _add_model_arguments(parser, name):
    defaults = recipes.DEFAULTS[name]
    common = parser.add_argument_group("training")
    common.add_argument("--data", metavar="DIR",
                        help="dataset directory (default: the bundled/synthetic data)")
    common.add_argument("--epochs", type=positive_int, help=f"default {defaults['epochs']}")
    common.add_argument("--batch-size", type=positive_int, help=f"default {defaults['batch_size']}")
    common.add_argument("--seed", type=nonnegative_int, help="seed of initialization, shuffling and "
                                                 "augmentation (default 0)")
    common.add_argument("--limit", type=positive_int, metavar="N",
                        help="use only the first N training and N test examples")
    common.add_argument("--backend", choices=_BACKENDS,
                        help="where the training step runs (default: $TRACEJIT_BACKEND, "
                             "else cuda if available, else cpu)")
    out = parser.add_argument_group("output")
    out.add_argument("--logdir", metavar="DIR",
                     help=f"TensorBoard logs and curves.png (default runs/{name})")
    out.add_argument("--checkpoint-dir", metavar="DIR",
                     help="checkpoints (default LOGDIR/checkpoints)")
    out.add_argument("--checkpoint-every", type=positive_int, metavar="STEPS",
                     help="save every STEPS steps (default: every epoch) and at the end")
    out.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                     help="continue from the latest checkpoint (or the one given)")
    out.add_argument("--override", action="store_true",
                     help="with --resume: continue even if the checkpoint was saved with "
                          "other settings (seed, learning rate, ...)")
    out.add_argument("--quiet", action="store_true", help="no progress output")
    parallel = parser.add_argument_group("parallel training")
    parallel.add_argument("--distributed", action="store_true",
                          help="data-parallel across the processes of mpiexec "
                               "(mpiexec -n 4 tracejit train %s --distributed); "
                               "--batch-size is the global batch" % name)
    parallel.add_argument("--parameter-server", action="store_true",
                          help="asynchronous: under mpiexec -n P, rank 0 holds the "
                               "parameters and applies the gradients of the P-1 workers "
                               "as they arrive; --batch-size is each worker's batch; no "
                               "checkpoints")
    parallel.add_argument("--ensemble", type=positive_int, metavar="K",
                          help="train K members (seeds SEED..SEED+K-1) in parallel, one per "
                               "process (per rank under mpiexec), and report the accuracy of "
                               "their averaged prediction beside each member's")
    parallel.add_argument("--max-staleness", type=nonnegative_int, metavar="S",
                          help="with --parameter-server: drop gradients computed more than "
                               "S updates ago (default: the number of workers)")
    model = parser.add_argument_group(f"{name} model")
    for flags, kwargs in _MODEL_OPTIONS[name]:
        dest = flags[0].lstrip("-").replace("-", "_")
        default = defaults.get(dest)
        kwargs = dict(kwargs)
        kwargs["help"] = (kwargs.get("help", "") + f" (default {default})").strip()
        model.add_argument(*flags, **kwargs)


def train_parser(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``tracejit train NAME`` (and of its example script)."""
    parser = argparse.ArgumentParser(prog=prog or f"tracejit train {name}",
                                     description=_sentence(_HELP[name]))
    _add_model_arguments(parser, name)
    return parser


def _config(name, args) -> dict:
    keys = ["data", "epochs", "batch_size", "seed", "limit"]
    keys += [flags[0].lstrip("-").replace("-", "_") for flags, _ in _MODEL_OPTIONS[name]]
    return {k: getattr(args, k) for k in keys}


def run_train(name: str, args) -> dict:
    """Train model ``name`` with parsed ``args``; print progress and the final
    test accuracy; return ``{"result": FitResult, "test": metrics}``."""
    setup = recipes.build(name, _config(name, args))
    config = setup.config
    if sum(map(bool, (args.distributed, args.parameter_server, args.ensemble))) > 1:
        raise SystemExit("choose one of --distributed, --parameter-server and --ensemble")
    if args.ensemble:
        return _train_ensemble(name, args)
    world = init_world() if args.distributed or args.parameter_server else None
    rank0 = world is None or world.rank == 0
    verbose = not args.quiet and rank0
    logdir = args.logdir or os.path.join("runs", name)
    checkpoint_dir = args.checkpoint_dir or os.path.join(logdir, "checkpoints")
    if rank0:
        writable_directory(logdir, "--logdir")
        writable_directory(checkpoint_dir, "--checkpoint-dir")
    if verbose:
        print(setup.description)
        print(f"{len(setup.train[0])} training, "
              f"{len(setup.validation[0]) if setup.validation else 0} validation, "
              f"{len(setup.test[0])} test examples; logs in {logdir}, checkpoints in "
              f"{checkpoint_dir}", flush=True)
        if args.parameter_server:
            print(f"parameter server on rank 0, {max(world.size - 1, 1)} worker"
                  f"{'s' if world.size > 2 else ''}", flush=True)
        elif world is not None:
            print(f"data-parallel on {world.size} process{'es' if world.size > 1 else ''}"
                  f" ({world.size} x {config['batch_size'] // world.size} examples per "
                  f"step)", flush=True)
    if args.parameter_server:
        return _train_async(setup, args, world, verbose)
    result = fit(setup.model, setup.optimizer, setup.train, epochs=config["epochs"],
                 batch_size=config["batch_size"], validation_data=setup.validation,
                 seed=config["seed"], augment=setup.augment, regularizer=setup.regularizer,
                 early_stopping=setup.early_stopping, checkpoint_dir=checkpoint_dir,
                 checkpoint_every=args.checkpoint_every, resume=args.resume,
                 override=getattr(args, "override", False),
                 metadata={"model": name, "config": config}, logdir=logdir,
                 backend=args.backend, verbose=verbose, distributed=args.distributed)
    if not rank0:
        return {"result": result, "test": None}
    test = _test(setup, result.state, args.backend)
    print(f"{count_params(result.params):,} parameters, {int(result.state.step)} steps; "
          f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) on "
          f"{len(setup.test[0])} examples; checkpoint {result.checkpoint}")
    return {"result": result, "test": test}


def _train_ensemble(name, args) -> dict:
    found = train_ensemble(name, _config(name, args), args.ensemble, backend=args.backend)
    if found is None:          # not rank 0
        return {"result": None, "test": None}
    members = found["members"]
    if not args.quiet:
        for m in members:
            print(f"member {m['index']} (seed {m['seed']}, {m['steps']} steps): test accuracy "
                  f"{m['accuracy']:.4f}")
    print(f"ensemble of {len(members)}: test accuracy {found['accuracy']:.4f} (members "
          f"{min(m['accuracy'] for m in members):.4f} to "
          f"{max(m['accuracy'] for m in members):.4f}, mean "
          f"{sum(m['accuracy'] for m in members) / len(members):.4f}) on "
          f"{len(found['labels'])} examples")
    return {"result": found, "test": {"accuracy": found["accuracy"]}}


def _train_async(setup, args, world, verbose) -> dict:
    if setup.augment is not None:
        raise SystemExit("--parameter-server does not support models with input "
                         "augmentation (cnn); use --distributed")
    config = setup.config
    result = fit_async(setup.model, setup.optimizer, setup.train, epochs=config["epochs"],
                       batch_size=config["batch_size"], seed=config["seed"],
                       validation_data=setup.validation, max_staleness=args.max_staleness,
                       regularizer=setup.regularizer, backend=args.backend, verbose=verbose)
    if world.rank != 0:
        return {"result": result, "test": None}
    test = _test(setup, result.state, args.backend)
    print(f"{count_params(result.params):,} parameters, {result.applied} updates "
          f"({result.dropped} stale gradients dropped); test accuracy {test['accuracy']:.4f} "
          f"(loss {test['loss']:.4f}) on {len(setup.test[0])} examples")
    return {"result": result, "test": test}


def _test(setup, state, backend, use_averages=True):
    eval_step = make_eval_step(setup.model, backend=backend)
    return evaluate(eval_step, setup.eval_params(state, use_averages), setup.test,
                    model_state=state.model_state)


def _resolve_checkpoint(path: str) -> str:
    """A manifest path from a manifest, a checkpoint directory, or a log
    directory holding ``checkpoints/``."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file or directory")
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None and os.path.isdir(os.path.join(path, "checkpoints")):
            found = latest_checkpoint(os.path.join(path, "checkpoints"))
        if found is None:
            raise CheckpointError(f"no checkpoint in {path} (nor in {path}/checkpoints)")
        return found
    return path


def run_eval(args) -> dict:
    """Evaluate the checkpoint ``args.checkpoint`` on its model's test set."""
    path = _resolve_checkpoint(args.checkpoint)
    _, _, metadata = load_checkpoint(path)
    if not isinstance(metadata, dict) or metadata.get("model") not in recipes.RECIPES:
        raise CheckpointError(f"{path}: the checkpoint's metadata does not name a model of "
                              f"'tracejit train' ({', '.join(recipes.RECIPES)}); load it "
                              f"with tracejit.train.restore_train_state instead")
    name, config = metadata["model"], dict(metadata.get("config", {}))
    if args.data:
        config["data"] = args.data
    setup = recipes.build(name, config)
    like = init_train_state(setup.model, setup.optimizer, setup.test[0].shape[1:],
                            seed=setup.config["seed"])
    state, _, _ = restore_train_state(path, like)
    test = _test(setup, state, args.backend, use_averages=not args.no_ema)
    print(f"{path}: {name} after {int(state.step)} steps: test accuracy "
          f"{test['accuracy']:.4f} (loss {test['loss']:.4f}) on {len(setup.test[0])} examples")
    return test


def main_for(name: str, argv=None, prog: str | None = None) -> int:
    """``main`` of an example script: ``tracejit train NAME`` with ``argv``.
    A bad option, data file or checkpoint is one line on stderr and exit
    status 2 (options) or 1."""
    parser = train_parser(name, prog)
    args = parser.parse_args(argv)
    try:
        run_train(name, args)
    except OptionError as e:
        parser.error(str(e))
    except (DatasetError, CheckpointError) as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    return 0


def _train_command(args) -> int:
    run_train(args.model, args)
    return 0


def _eval_command(args) -> int:
    run_eval(args)
    return 0


def add_train_command(subparsers):
    p = subparsers.add_parser("train", help="train one of the example models",
                              description="Train an example model; prints progress and "
                                          "the final test accuracy.")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    for name in recipes.RECIPES:
        sub = models.add_parser(name, help=_HELP[name], description=_sentence(_HELP[name]))
        _add_model_arguments(sub, name)
        sub.set_defaults(run=_train_command)


def add_eval_command(subparsers):
    p = subparsers.add_parser("eval", help="evaluate a checkpoint of 'tracejit train'",
                              description="Evaluate a checkpoint saved by 'tracejit train' "
                                          "on its model's test set.")
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_DIR",
                   help="a checkpoint manifest (ckpt-N.json), a checkpoint directory "
                        "(its latest), or a log directory holding checkpoints/")
    p.add_argument("--data", metavar="DIR", help="dataset directory, if it moved since "
                                                 "training")
    p.add_argument("--backend", choices=_BACKENDS)
    p.add_argument("--no-ema", action="store_true",
                   help="evaluate the trained parameters, not their moving averages")
    p.set_defaults(run=_eval_command)
