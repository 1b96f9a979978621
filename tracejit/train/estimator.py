"""``DNNClassifier``: TensorFlow's canned estimator (``tf.estimator.DNNClassifier``,
Hands-On ML Ch. 10) on top of :func:`tracejit.train.fit`.

    clf = train.DNNClassifier(hidden_units=[300, 100], n_classes=10)
    clf.fit(x_train, y_train, epochs=40)
    clf.fit(x=x_train, y=y_train, batch_size=50, steps=40000)   # the book's call
    clf.evaluate(x_test, y_test)   # {"accuracy": ..., "loss": ..., "global_step": ...}
    clf.predict(x_new)             # class ids
    clf.predict_proba(x_new)       # softmax probabilities

The network is :func:`tracejit.nn.models.mlp` (hidden layers ``hidden1``,
``hidden2``, ..., He initialization, logits ``outputs``); training minimizes
the mean sparse softmax cross-entropy with Adam (learning rate 0.001) unless
given another ``optimizer``.  Calling :meth:`~DNNClassifier.fit` again
continues training where the previous call stopped (parameters, optimizer
state and ``global_step``), as an estimator continues from its model
directory.
"""
from __future__ import annotations

import numpy as np

from .. import optim
from ..api import jit
from ..nn import softmax
from ..nn.models import mlp
from ..tree import tree_map
from .callbacks import Callback
from .loop import fit as _fit
from .steps import evaluate as _evaluate
from .steps import make_eval_step, pad_batch

__all__ = ["DNNClassifier"]


def _copy(tree):
    # The training step donates (overwrites) the buffers of the state it gets.
    return tree_map(lambda a: np.array(a, copy=True), tree)


class _ContinueFrom(Callback):
    """Starts ``fit`` from an earlier run's :class:`TrainState` (a copy)."""

    def __init__(self, state):
        self.state = state

    def on_train_begin(self, run):
        run.state = _copy(self.state)


class _StopAfter(Callback):
    """Ends training once the global step reaches ``last_step``."""

    def __init__(self, last_step):
        self.last_step = last_step

    def on_train_begin(self, run):
        run.stop_training = run.step >= self.last_step

    def on_step_end(self, run, logs):
        if run.step >= self.last_step:
            run.stop_training = True


class DNNClassifier:
    """A fully connected classifier trained with :func:`tracejit.train.fit`.

    ``hidden_units``: the sizes of the hidden layers; ``n_classes``: labels
    are ints in ``0..n_classes-1``; ``activation``: of the hidden layers;
    ``optimizer``: a :mod:`tracejit.optim` optimizer (default
    ``optim.adam(1e-3)``); ``batch_size``: of training (the remainder of
    each epoch is dropped); ``seed``: initialization, shuffling and dropout;
    ``dropout``: a dropout rate after each hidden layer (None: none).

    After :meth:`fit`: ``params`` (the trained parameters), ``state`` (the
    whole :class:`TrainState`), ``history`` (per-epoch metrics of all
    :meth:`fit` calls together), ``global_step``.
    """

    def __init__(self, hidden_units, n_classes, activation="relu", optimizer=None,
                 batch_size: int = 50, seed: int = 0, *, dropout: float | None = None,
                 backend=None):
        self.hidden_units = [int(u) for u in hidden_units]
        self.n_classes = int(n_classes)
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.activation = activation
        self.optimizer = optim.adam(1e-3) if optimizer is None else optimizer
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.backend = backend
        self.model = mlp(self.hidden_units, self.n_classes, activation,
                         dropout_rate=dropout or 0.0)
        self.state = None
        self.history: dict[str, list[float]] = {}
        self._fits = 0
        self._eval_step = None
        self._predict_fn = None

    # --- training ---------------------------------------------------------------
    def _check_labels(self, y, n):
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"labels must be a vector of {n} class ids, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise ValueError("labels must be integer class ids")
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must be in 0..{self.n_classes - 1}, got "
                             f"{y.min()}..{y.max()}")
        return y.astype(np.int32)

    def _inputs(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 2:
            raise ValueError(f"inputs must be [examples, features], got shape {x.shape}")
        if self.state is not None:
            expected = tuple(np.shape(self.state.params["hidden1" if self.hidden_units
                                                        else "outputs"]["kernel"]))[:1]
            if x.shape[-1:] != expected:
                raise ValueError(f"inputs have {x.shape[-1]} features; the classifier was "
                                 f"trained on {expected[0]}")
        return x

    def fit(self, x, y, epochs: int | None = None, validation_data=None, *,
            steps: int | None = None, batch_size: int | None = None, verbose: bool = False,
            **fit_kwargs):
        """Train on ``(x, y)``, continuing from the previous :meth:`fit` (if any),
        for ``epochs`` more epochs (default 1) or ``steps`` more training steps
        (TensorFlow's ``fit(x, y, batch_size=50, steps=40000)``: as many epochs
        as the steps need, the last one cut short).  ``batch_size`` replaces
        the constructor's for this and later calls;
        ``validation_data=(x_val, y_val)`` adds ``val_loss`` and
        ``val_accuracy`` to ``history`` (for each completed epoch).  Other
        keyword arguments go to :func:`tracejit.train.fit` (``early_stopping``,
        ``logdir``, ``callbacks``...).  Returns ``self``."""
        if steps is not None and epochs is not None:
            raise ValueError("fit takes epochs or steps, not both")
        if steps is not None and int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if batch_size is not None:
            if int(batch_size) < 1:
                raise ValueError(f"batch_size must be positive, got {batch_size}")
            self.batch_size = int(batch_size)
        x = self._inputs(x)
        y = self._check_labels(y, len(x))
        if len(x) == 0:
            raise ValueError("fit: no training examples")
        if validation_data is not None:
            xv, yv = validation_data
            xv = self._inputs(xv)
            validation_data = (xv, self._check_labels(yv, len(xv)))
        callbacks = list(fit_kwargs.pop("callbacks", ()))
        if self.state is not None:
            callbacks.insert(0, _ContinueFrom(self.state))
        batch_size = min(self.batch_size, len(x))
        if steps is not None:
            per_epoch = len(x) // batch_size
            epochs = -(-int(steps) // per_epoch)
            callbacks.append(_StopAfter(self.global_step + int(steps)))
        result = _fit(self.model, self.optimizer, (x, y), epochs=1 if epochs is None else epochs,
                      batch_size=batch_size,
                      validation_data=validation_data,
                      seed=self.seed + self._fits,   # a new shuffle order on each call
                      callbacks=callbacks, backend=self.backend, verbose=verbose,
                      **fit_kwargs)
        self.state = result.state
        self._fits += 1
        for k, v in result.history.items():
            self.history.setdefault(k, []).extend(v)
        return self

    # --- inference --------------------------------------------------------------
    def _require_fitted(self):
        if self.state is None:
            raise RuntimeError("this DNNClassifier is not trained yet: call fit(x, y) first")

    @property
    def params(self):
        self._require_fitted()
        return self.state.params

    @property
    def global_step(self) -> int:
        return 0 if self.state is None else int(np.asarray(self.state.step))

    def predict_proba(self, x, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, ``[examples, n_classes]``."""
        self._require_fitted()
        x = self._inputs(x)
        if self._predict_fn is None:
            model = self.model
            self._predict_fn = jit(lambda params, xb: softmax(model.apply(params, xb)),
                                   backend=self.backend)
        n = len(x)
        if n == 0:
            return np.zeros((0, self.n_classes), np.float32)
        batch_size = min(int(batch_size), n)
        out = []
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size]
            # every batch padded to one shape: one compiled function
            probs = np.asarray(self._predict_fn(self.state.params, pad_batch(xb, batch_size)))
            out.append(probs[:len(xb)])
        return np.concatenate(out)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Predicted class ids, ``[examples]`` (int64)."""
        return np.argmax(self.predict_proba(x, batch_size), axis=-1)

    def evaluate(self, x, y, batch_size: int = 256) -> dict:
        """``{"accuracy", "loss", "global_step"}`` on ``(x, y)``: mean accuracy
        and mean cross-entropy, and the number of training steps so far."""
        self._require_fitted()
        x = self._inputs(x)
        y = self._check_labels(y, len(x))
        if self._eval_step is None:
            self._eval_step = make_eval_step(self.model, backend=self.backend)
        result = _evaluate(self._eval_step, self.state, (x, y), batch_size=batch_size)
        return {"accuracy": result["accuracy"], "loss": result["loss"],
                "global_step": self.global_step}

    def __repr__(self):
        return (f"DNNClassifier(hidden_units={self.hidden_units}, n_classes={self.n_classes}, "
                f"activation={self.activation!r}, batch_size={self.batch_size}, "
                f"seed={self.seed})")
