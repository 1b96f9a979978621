"""Classify the bundled digits with an LSTM reading each image row by row --
the same as ``tracejit train rnn``.

Each 8x8 digit is a sequence of 8 time steps of 8 pixels.  An
``nn.LSTMCell`` (64 units by default) runs over the rows with
``nn.dynamic_rnn`` -- one ``tracejit.scan``, differentiated in reverse --
and a dense layer classifies its last output.  Adam and early stopping as
in ``train_mnist_dnn.py``; about 97% test accuracy in ten seconds or so.

    python examples/train_lstm_digits.py --units 128

The model is ``lstm_digits`` in ``tracejit/train/recipes.py``.
"""
import sys

from tracejit.train.cli import main_for


def main(argv=None):
    return main_for("rnn", argv, prog="train_lstm_digits.py")


if __name__ == "__main__":
    sys.exit(main())
