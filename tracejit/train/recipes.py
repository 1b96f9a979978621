"""The models of ``tracejit train`` and of the example scripts, with their data.

Each recipe turns a config (a plain dict: the command-line options) into a
:class:`Setup` -- model, optimizer, data, augmentation, regularizer -- so
``tracejit train mlp``, ``python examples/train_mnist_dnn.py`` and
``tracejit eval`` (which rebuilds the model from a checkpoint's metadata)
share one definition.

- ``mlp``: the MNIST DNN of Hands-On ML Ch. 10-11 -- 300 and 100 hidden
  units (ReLU or ELU, He initialization), Adam or momentum, early stopping --
  on scikit-learn's bundled 8x8 digits, or on MNIST with ``data``.
- ``cnn``: the TensorFlow CIFAR-10 tutorial's model (conv 5x5x64, max pool
  3/2, LRN, conv 5x5x64, LRN, max pool, dense 384, 192, 10) with its input
  distortions, exponential learning-rate decay, weight decay on the dense
  layers and moving averages of the parameters for evaluation; on CIFAR-10
  with ``data``, else on :func:`tracejit.data.synthetic_images`.  ``width``
  scales every layer (1.0 is the tutorial's 1,068,298 parameters).
- ``rnn``: an LSTM reading each 8x8 digit row by row (8 steps of 8
  features), or MNIST's 28 rows of 28 pixels with ``data``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .. import nn, optim
from ..nn.models import cifar10_cnn as cifar10_cnn_model
from ..data import load_cifar10, load_digits, load_mnist, synthetic_images
from ..data.augment import cifar10_distort, cifar10_eval_preprocess
from .averaging import WithMovingAverages

__all__ = ["Setup", "RECIPES", "DEFAULTS", "build", "split_validation"]


@dataclasses.dataclass
class Setup:
    """Everything ``fit`` needs for one recipe, plus how to evaluate it."""

    model: Any
    optimizer: Any
    train: tuple
    validation: tuple | None
    test: tuple
    description: str
    augment: Callable | None = None
    regularizer: Callable | None = None
    early_stopping: int | None = None
    config: dict = dataclasses.field(default_factory=dict)

    def eval_params(self, state, use_averages: bool = True):
        """The parameters to evaluate: the moving averages when the optimizer
        keeps them (and ``use_averages``), else the trained ones."""
        if use_averages and hasattr(self.optimizer, "averages"):
            return self.optimizer.averages(state.opt_state)
        return state.params


def split_validation(x, y, fraction: float):
    """The last ``fraction`` of ``(x, y)`` as validation data (the loaders
    already shuffle): ``((x_train, y_train), (x_valid, y_valid))``."""
    n_valid = int(round(len(x) * fraction))
    return (x[:-n_valid], y[:-n_valid]), (x[-n_valid:], y[-n_valid:])


def _limit(data, n):
    x, y = data
    return (x[:n], y[:n]) if n else (x, y)


# --- mlp ----------------------------------------------------------------------------
def mnist_dnn(config: dict) -> Setup:
    activation = config["activation"]
    if config.get("data"):
        (x, y), test = load_mnist(config["data"], flatten=True)
        source = f"MNIST from {config['data']}"
    else:
        (x, y), test = load_digits(test_fraction=0.2, seed=config["seed"], flatten=True)
        source = "the bundled 8x8 digits"
    train, valid = split_validation(*_limit((x, y), config.get("limit")), 0.1)
    dropout = config.get("dropout") or 0.0
    layers = [
        nn.Dense(config["hidden1"], activation, kernel_initializer="he_normal", name="hidden1"),
        nn.Dense(config["hidden2"], activation, kernel_initializer="he_normal", name="hidden2"),
    ]
    if dropout:   # after each hidden layer (no parameters: checkpoints keep their names)
        layers = [layers[0], nn.Dropout(dropout), layers[1], nn.Dropout(dropout)]
    model = nn.Sequential(layers + [nn.Dense(10, name="outputs")])
    if config["optimizer"] == "adam":
        optimizer = optim.adam(config["learning_rate"])
    else:
        optimizer = optim.momentum(config["learning_rate"], momentum=0.9)
    return Setup(model, optimizer, train, valid, _limit(test, config.get("limit")),
                 description=f"DNN {config['hidden1']}-{config['hidden2']} ({activation}, "
                             f"He init, {config['optimizer']}) on {source}",
                 early_stopping=config["patience"])


# --- cnn ----------------------------------------------------------------------------
def _weight_decay(params):
    """The tutorial's weight decay: 0.004 * l2_loss of the local3 and local4 kernels."""
    return optim.l2_penalty(params, 0.004, r"^local[34]/kernel$")


def cifar10_cnn(config: dict) -> Setup:
    size = 24
    if config.get("data"):
        (x, y), test = load_cifar10(config["data"])
        source = f"CIFAR-10 from {config['data']}"
    else:
        n = config["synthetic_examples"]
        x, y = synthetic_images(n, size=32, seed=config["seed"])
        test = synthetic_images(max(n // 5, 10), size=32, seed=config["seed"] + 1)
        source = f"{n} synthetic 32x32 images"
    train = _limit((x, y), config.get("limit"))
    x_test, y_test = _limit(test, config.get("limit"))
    test = (cifar10_eval_preprocess(x_test, size), y_test)
    # The tutorial's decay_steps = int(examples / batch * epochs per decay).
    steps_per_epoch = len(train[0]) / config["batch_size"]
    schedule = optim.exponential_decay(config["learning_rate"],
                                       max(1, int(steps_per_epoch * config["decay_epochs"])),
                                       0.1, staircase=True)
    optimizer = optim.sgd(schedule)
    if config["ema_decay"]:
        optimizer = WithMovingAverages(optimizer, config["ema_decay"])
    width = config["width"]
    return Setup(cifar10_cnn_model(width), optimizer, train, None, test,
                 description=f"CIFAR-10 tutorial CNN (width {width:g}) on {source}",
                 augment=lambda images, seed: cifar10_distort(images, seed, size),
                 regularizer=_weight_decay)


# --- rnn ----------------------------------------------------------------------------
def lstm_digits(config: dict) -> Setup:
    if config.get("data"):
        (x, y), test = load_mnist(config["data"], flatten=False)
        source = f"MNIST from {config['data']}"
    else:
        (x, y), test = load_digits(test_fraction=0.2, seed=config["seed"], flatten=False)
        source = "the bundled 8x8 digits"
    # (n, rows, cols, 1) images -> sequences of `rows` steps of `cols` pixels
    x, x_test = x[..., 0], test[0][..., 0]
    train, valid = split_validation(*_limit((x, y), config.get("limit")), 0.1)
    model = nn.Sequential([nn.RNN(nn.LSTMCell(config["units"]), name="lstm"),
                           nn.Dense(10, name="outputs")])
    steps, features = x.shape[1:]
    return Setup(model, optim.adam(config["learning_rate"]), train, valid,
                 _limit((x_test, test[1]), config.get("limit")),
                 description=f"LSTM({config['units']}) over the image rows ({steps} steps x "
                             f"{features} features) of {source}, Adam",
                 early_stopping=config["patience"])


#: name -> recipe(config) -> Setup
RECIPES = {"mlp": mnist_dnn, "cnn": cifar10_cnn, "rnn": lstm_digits}

#: Options shared by every recipe.
COMMON = {"data": None, "seed": 0, "limit": None}

#: name -> default config (``epochs`` and ``batch_size`` included).
DEFAULTS = {
    "mlp": dict(epochs=30, batch_size=32, activation="relu", optimizer="adam",
                learning_rate=0.002, hidden1=300, hidden2=100, patience=5,
                dropout=0.0),
    "cnn": dict(epochs=8, batch_size=32, width=1.0, learning_rate=0.1, decay_epochs=350.0,
                ema_decay=0.9999, synthetic_examples=1000),
    "rnn": dict(epochs=20, batch_size=32, units=64, learning_rate=0.01, patience=5),
}


def build(name: str, config: dict) -> Setup:
    """The :class:`Setup` of recipe ``name`` for ``config`` (missing keys take
    their defaults)."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(RECIPES)}")
    full = {**COMMON, **DEFAULTS[name], **{k: v for k, v in config.items() if v is not None}}
    setup = RECIPES[name](full)
    setup.config = full
    return setup
