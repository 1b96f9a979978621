"""Transfer learning on the bundled digits (Hands-On ML, Ch. 11, exercises 8-9).

1. Pretrain a DNN -- four hidden layers of 100 ELU units (He init), Adam,
   early stopping -- on the digits 0 to 4, and save it as a checkpoint
   (or load one saved earlier with ``--pretrained CHECKPOINT``).
2. Reuse its hidden layers for a new task: the digits 5 to 9 with only
   ``--per-class`` (100) training images per digit.  The hidden layers are
   frozen and a new softmax output layer is trained, twice:

   a. on the whole network, restored from the checkpoint with
      ``restore_train_state(..., include=r"^params/hidden[1-4]/")`` (the
      book's "restore hidden[123] only, initialize the rest"), with the
      optimizer masked so that only ``outputs/*`` changes (``optim.freeze``);
   b. on cached frozen-layer outputs: the frozen layers run once over the
      training set, and each epoch only runs the small head.

   Both reach about the same accuracy; (b) takes less time per epoch, since
   it skips the frozen layers' forward and backward passes.

    python examples/transfer_learning.py
    python examples/transfer_learning.py --pretrained runs/transfer/pretrain

Everything here is tracejit's public API; the hand-written loop in
``train_head_on_cache`` shows the building blocks under ``tracejit.train.fit``.
"""
import argparse
import os
import sys
import time

import numpy as np

import tracejit
from tracejit import nn, optim, train
from tracejit.data import Pipeline, load_digits

HIDDEN = [f"hidden{i}" for i in range(1, 5)]


def hidden_layers():
    return [nn.Dense(100, "elu", kernel_initializer="he_normal", name=name) for name in HIDDEN]


def full_model():
    """The four hidden layers and a 5-way softmax output."""
    return nn.Sequential(hidden_layers() + [nn.Dense(5, name="outputs")])


def split_tasks(seed):
    """Digits 0-4 (task A) and 5-9 relabelled 0-4 (task B), train and test."""
    (x, y), (xt, yt) = load_digits(test_fraction=0.2, seed=seed)
    a = ((x[y < 5], y[y < 5]), (xt[yt < 5], yt[yt < 5]))
    b = ((x[y >= 5], y[y >= 5] - 5), (xt[yt >= 5], yt[yt >= 5] - 5))
    return a, b


def few_per_class(x, y, per_class):
    """The first ``per_class`` examples of each class; the rest is for validation."""
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), keep)
    return (x[keep], y[keep]), (x[rest], y[rest])


def pretrain(args, task):
    """Train on task A and save the checkpoint; or load ``--pretrained``.
    Returns the parameters and the checkpoint's path."""
    (x, y), test = task
    model, opt = full_model(), optim.adam(1e-3)
    if args.pretrained:
        like = train.init_train_state(model, opt, (64,), seed=args.seed)
        state, _, _ = train.restore_train_state(args.pretrained, like)
        checkpoint = args.pretrained
        print(f"loaded the pretrained network from {args.pretrained}")
    else:
        n_valid = len(x) // 10
        result = train.fit(model, opt, (x[n_valid:], y[n_valid:]), epochs=args.epochs,
                           batch_size=32, validation_data=(x[:n_valid], y[:n_valid]),
                           early_stopping=5, seed=args.seed, backend=args.backend,
                           checkpoint_dir=os.path.join(args.workdir, "pretrain"),
                           metadata={"model": "transfer_learning/digits0-4"}, verbose=False)
        state, checkpoint = result.state, result.checkpoint
        print(f"pretrained on digits 0-4 for {len(result.history['loss'])} epochs; "
              f"saved {result.checkpoint}")
    accuracy = train.evaluate(train.make_eval_step(model, backend=args.backend), state,
                              test)["accuracy"]
    print(f"  test accuracy on digits 0-4: {accuracy:.4f}")
    return state.params, checkpoint


def train_frozen(args, pretrained, checkpoint, train_data, valid, test):
    """(a) The whole network: the hidden layers restored from the checkpoint
    (a partial restore: a new output layer, a fresh optimizer state and step)
    and frozen by the optimizer."""
    model = full_model()
    opt = optim.freeze(optim.adam(1e-2), r"^hidden[1-4]/")
    like = train.init_train_state(model, opt, (64,), seed=args.seed + 1)
    restored = train.restore_train_state(checkpoint, like, include=r"^params/hidden[1-4]/")
    assert sorted(restored.restored) == [f"params/{n}/{v}" for n in HIDDEN
                                         for v in ("bias", "kernel")]
    params = restored.state.params
    ends = [time.perf_counter()]
    timer = train.LambdaCallback(on_epoch_end=lambda run, logs: ends.append(time.perf_counter()))
    result = train.fit(model, opt, train_data, epochs=args.head_epochs, batch_size=25,
                       validation_data=valid, early_stopping=5, init_params=params,
                       seed=args.seed, backend=args.backend, callbacks=[timer], verbose=False)
    for name in HIDDEN:   # the reused layers did not move
        assert np.array_equal(result.params[name]["kernel"], pretrained[name]["kernel"])
    accuracy = train.evaluate(train.make_eval_step(model, backend=args.backend),
                              result.params, test)["accuracy"]
    return accuracy, np.diff(ends)


def train_head_on_cache(args, pretrained, checkpoint, train_data, valid, test):
    """(b) Cache the frozen layers' outputs once, then train only the head on
    them, with a hand-written loop of tracejit.train's building blocks."""
    frozen = nn.Sequential(hidden_layers())
    frozen_params = {name: pretrained[name] for name in HIDDEN}
    features = tracejit.jit(lambda p, x: frozen.apply(p, x), backend=args.backend)
    cache = {name: (features(frozen_params, x), y)
             for name, (x, y) in (("train", train_data), ("valid", valid), ("test", test))}

    head, opt = nn.Sequential([nn.Dense(5, name="outputs")]), optim.adam(1e-2)
    state = train.init_train_state(head, opt, (100,), seed=args.seed + 1)
    step = train.make_train_step(head, opt, backend=args.backend)
    eval_step = train.make_eval_step(head, backend=args.backend)
    pipeline = Pipeline(cache["train"]).shuffle(args.seed).batch(25, drop_remainder=True)
    stopper = train.EarlyStopping(patience=5)
    ends = [time.perf_counter()]
    for _ in range(args.head_epochs):
        for x, y in pipeline:
            state, _ = step(state, x, y, with_grads=False)
        val_loss = train.evaluate(eval_step, state, cache["valid"])["loss"]
        ends.append(time.perf_counter())
        if stopper.update(val_loss, state.params, int(state.step)):
            break
    accuracy = train.evaluate(eval_step, stopper.best_params, cache["test"])["accuracy"]
    return accuracy, np.diff(ends)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="transfer_learning.py", description=__doc__.split("\n")[0])
    parser.add_argument("--pretrained", metavar="CHECKPOINT",
                        help="reuse this checkpoint of step 1 instead of pretraining")
    parser.add_argument("--workdir", default=os.path.join("runs", "transfer"),
                        help="where the pretrained checkpoint goes (default runs/transfer)")
    parser.add_argument("--epochs", type=int, default=40, help="pretraining epochs (max)")
    parser.add_argument("--head-epochs", type=int, default=60,
                        help="epochs (max) for the new output layer")
    parser.add_argument("--per-class", type=int, default=100,
                        help="training images per digit for the new task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("cpu", "cuda", "reference"))
    args = parser.parse_args(argv)

    task_a, ((x, y), test_b) = split_tasks(args.seed)
    pretrained, checkpoint = pretrain(args, task_a)
    train_data, valid = few_per_class(x, y, args.per_class)
    print(f"new task: digits 5-9 with {len(train_data[1])} training images "
          f"({args.per_class} per digit), {len(valid[1])} validation, {len(test_b[1])} test")
    for label, run in (("frozen hidden layers", train_frozen),
                       ("cached frozen outputs", train_head_on_cache)):
        accuracy, epoch_times = run(args, pretrained, checkpoint, train_data, valid, test_b)
        # The first epoch also compiles; the median of the others is the steady cost.
        steady = np.median(epoch_times[1:]) if len(epoch_times) > 1 else epoch_times[0]
        print(f"  {label:22s} test accuracy {accuracy:.4f} after {len(epoch_times)} epochs, "
              f"{1e3 * steady:.1f} ms per epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
