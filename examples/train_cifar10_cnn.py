"""Train the TensorFlow CIFAR-10 tutorial's CNN -- the same as ``tracejit train cnn``.

The model of the tutorial's ``inference()``: conv 5x5x64 (ReLU), max pool
3x3/2, local response normalization, conv 5x5x64 (ReLU), LRN, max pool,
dense 384 and 192 (ReLU), and a 10-way linear output -- 1,068,298
parameters at the default ``--width 1``.  Its input pipeline distorts every
training batch (random 24x24 crop, left-right flip, brightness, contrast,
per-image standardization; evaluation uses the central crop); training is
plain gradient descent with an exponentially (staircase) decaying learning
rate, weight decay 0.004 on the two dense hidden layers, and exponential
moving averages of the parameters, which are what gets evaluated
(``tracejit eval runs/cnn --no-ema`` evaluates the raw parameters).

Without ``--data`` it trains on 1,000 synthetic 32x32 images
(``tracejit.data.synthetic_images``: oriented stripe patterns, one class
per orientation and frequency), which the model learns within the default
8 epochs (about 30 s on 2 CPU cores); ``--data DIR`` reads the CIFAR-10
binary batches instead.  ``--width 0.25`` makes every layer 4x narrower
(about 10x faster per step).

    python examples/train_cifar10_cnn.py
    python examples/train_cifar10_cnn.py --data ~/cifar-10-batches-bin --epochs 50
    tracejit eval runs/cnn

The model and training setup are in ``tracejit/train/recipes.py``
(``cifar10_cnn``), the distortions in ``tracejit/data/augment.py``.
"""
import sys

from tracejit.train.cli import main_for


def main(argv=None):
    return main_for("cnn", argv, prog="train_cifar10_cnn.py")


if __name__ == "__main__":
    sys.exit(main())
