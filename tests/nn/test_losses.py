"""nn.losses: tf.losses' weighted losses and reductions, against NumPy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
from tracejit import nn
from tracejit.nn.losses import Reduction
from tracejit.testing import check_grads

rng = np.random.default_rng(0)


def np_huber(y, p, delta):
    e = np.abs(p - y)
    return np.where(e <= delta, 0.5 * e ** 2, delta * (e - 0.5 * delta))


CASES = {
    "absolute_difference": lambda y, p: np.abs(p - y),
    "mean_squared_error": lambda y, p: (p - y) ** 2,
    "huber_loss": lambda y, p: np_huber(y, p, 1.0),
    "log_loss": lambda y, p: -y * np.log(p + 1e-7) - (1 - y) * np.log(1 - p + 1e-7),
    "hinge_loss": lambda y, p: np.maximum(0, 1 - (2 * y - 1) * p),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_losses_match_numpy_with_every_reduction(name):
    y = (rng.random((4, 3)) > 0.5).astype(np.float32)
    p = rng.random((4, 3)).astype(np.float32) * (1 if name == "log_loss" else 3)
    w = np.array([[1.0], [0.0], [2.0], [0.5]], np.float32)   # per example
    loss = getattr(nn.losses, name)
    per = CASES[name](y.astype(np.float64), p.astype(np.float64))
    weighted = per * w
    expected = {
        Reduction.NONE: weighted,
        Reduction.SUM: weighted.sum(),
        Reduction.MEAN: weighted.sum() / np.broadcast_to(w, per.shape).sum(),
        Reduction.SUM_OVER_BATCH_SIZE: weighted.sum() / per.size,
        Reduction.SUM_BY_NONZERO_WEIGHTS: weighted.sum() / 9,
    }
    for reduction, value in expected.items():
        np.testing.assert_allclose(loss(y, p, w, reduction=reduction), value, rtol=1e-5,
                                   atol=1e-6, err_msg=reduction)
    # default: weights 1, SUM_BY_NONZERO_WEIGHTS = mean
    np.testing.assert_allclose(loss(y, p), per.mean(), rtol=1e-5)
    np.testing.assert_allclose(tracejit.jit(loss)(y, p), per.mean(), rtol=1e-5)


def test_huber_delta_and_gradients():
    y = np.zeros(5, np.float32)
    p = np.array([-3.0, -0.5, 0.2, 1.5, 4.0], np.float32)
    np.testing.assert_allclose(nn.losses.huber_loss(y, p, delta=2.0, reduction=Reduction.NONE),
                               np_huber(y, p, 2.0), rtol=1e-6)
    check_grads(lambda p: nn.losses.huber_loss(y, p, delta=2.0), (p,), order=1)
    check_grads(lambda p: nn.losses.log_loss(np.array([0.0, 1.0, 1.0], np.float32), p),
                (np.array([0.2, 0.7, 0.4], np.float32),), order=1)
    with pytest.raises(ValueError):
        nn.losses.huber_loss(y, p, delta=0)


def test_hinge_margin():
    # right side by a margin of 1 or more costs nothing
    labels = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    logits = np.array([2.0, -1.5, 0.5, 0.25], np.float32)
    np.testing.assert_allclose(nn.losses.hinge_loss(labels, logits, reduction=Reduction.NONE),
                               [0.0, 0.0, 0.5, 1.25])


def test_zero_weights_and_errors():
    y, p = np.ones(3, np.float32), np.zeros(3, np.float32)
    assert float(nn.losses.absolute_difference(y, p, weights=0.0)) == 0.0
    assert float(nn.losses.mean_squared_error(y, p, weights=0.0, reduction=Reduction.MEAN)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        nn.losses.absolute_difference(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="broadcast"):
        nn.losses.absolute_difference(y, p, weights=np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        nn.losses.absolute_difference(y, p, reduction="avg")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 5), st.integers(1, 4), st.floats(0.1, 3.0))
def test_huber_shapes_and_size_zero(n, m, delta):
    y = rng.standard_normal((n, m)).astype(np.float32)
    p = rng.standard_normal((n, m)).astype(np.float32)
    out = float(nn.losses.huber_loss(y, p, delta=delta))
    expected = np_huber(y, p, delta).mean() if n else 0.0
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
