"""Train the MNIST DNN of Hands-On ML (Ch. 10-11) -- the same as ``tracejit train mlp``.

Two hidden layers of 300 and 100 units (ReLU, or ELU with ``--activation
elu``; He initialization), a 10-way softmax output, Adam (or momentum with
``--optimizer momentum``) on mini-batches, early stopping on a validation
set carved from the training set (the best parameters are restored), then
the test accuracy.  By default it trains on scikit-learn's bundled 8x8
digits (reaching about 97.5% test accuracy in a few seconds); ``--data DIR``
reads the real MNIST IDX files from DIR instead.

    python examples/train_mnist_dnn.py                 # bundled digits
    python examples/train_mnist_dnn.py --data ~/mnist  # MNIST
    python examples/train_mnist_dnn.py --resume        # continue runs/mlp/checkpoints
    tensorboard --logdir runs/mlp                      # loss, accuracy, learning rate

The model, data and optimizer are defined in ``tracejit/train/recipes.py``
(``mnist_dnn``); training is one call of ``tracejit.train.fit``.  A
hand-written loop with the same building blocks is in
``examples/transfer_learning.py``.
"""
import sys

from tracejit.train.cli import main_for


def main(argv=None):
    return main_for("mlp", argv, prog="train_mnist_dnn.py")


if __name__ == "__main__":
    sys.exit(main())
