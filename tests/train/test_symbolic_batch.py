"""The training step traces once for every batch size: the last, smaller
batch of an epoch runs the same trace (tracejit/polymorphic.py)."""
import numpy as np
import pytest

import tracejit
from tracejit import nn, optim, stages, train
from tracejit.data import Pipeline, augment
from tracejit.polymorphic import BatchPolymorphicStep

from loop_helpers import MomentumSGD, TinyMLP, digits


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture
def traces(monkeypatch):
    """The names of the functions traced (jit traces through stages.trace)."""
    names = []
    trace = stages.trace

    def counting(fun, in_types, in_tree, name="f"):
        names.append(name)
        return trace(fun, in_types, in_tree, name)
    monkeypatch.setattr(stages, "trace", counting)
    return names


def test_fit_runs_the_smaller_last_batch_without_a_retrace(data, traces):
    (x, y), _ = data
    x, y = x[:130], y[:130]   # batches of 40, 40, 40 and 10
    result = train.fit(TinyMLP(), MomentumSGD(0.05), (x, y), epochs=2, batch_size=40,
                       drop_remainder=False, verbose=False)
    assert traces == ["train_step"]
    assert int(result.state.step) == 2 * 4
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()


def test_symbolic_step_equals_the_step_traced_per_batch_size(data):
    (x, y), _ = data
    model, opt = TinyMLP(), MomentumSGD(0.05)
    step = train.make_train_step(model, opt, donate=False)
    per_shape = tracejit.jit(step.step, static_argnames=("with_grads",))   # plain jit
    assert isinstance(step, BatchPolymorphicStep)
    state = other = train.init_train_state(model, opt, (64,), seed=0)
    for xb, yb in Pipeline((x[:70], y[:70])).batch(32):   # 32, 32, 6
        state, metrics = step(state, xb, yb)
        other, expected = per_shape(other, xb, yb)
        for k in metrics:
            np.testing.assert_allclose(metrics[k], expected[k], rtol=1e-5)
    for a, b in zip(tracejit.tree_leaves(state.params), tracejit.tree_leaves(other.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert step.trace_count == 1 and step.symbolic and per_shape.trace_count == 2


def test_a_model_that_needs_a_concrete_batch_size_falls_back_to_per_shape_traces(data):
    (x, y), _ = data

    class NeedsBatchSize(TinyMLP):
        def apply(self, params, x, train=False, key=None):
            return super().apply(params, x, train, key) * (1.0 + 0.0 * int(x.shape[0]))

    step = train.make_train_step(NeedsBatchSize(), MomentumSGD(0.05))
    state = train.init_train_state(NeedsBatchSize(), MomentumSGD(0.05), (64,), seed=0)
    for xb, yb in Pipeline((x[:50], y[:50])).batch(32):   # 32, 18
        state, metrics = step(state, xb, yb)
    assert not step.symbolic and np.isfinite(metrics["loss"])
    assert step.trace_count == 3   # the symbolic try, then one per batch shape


def test_an_lstm_step_traces_once_for_every_batch_size(data, traces):
    (x, y), _ = data
    x = x.reshape(-1, 8, 8)[:45]   # rows of the 8x8 digits as 8 steps
    model = nn.Sequential([nn.RNN(nn.LSTMCell(8)), nn.Dense(10)])
    result = train.fit(model, optim.adam(0.01), (x, y[:45]), epochs=1, batch_size=20,
                       drop_remainder=False, verbose=False)
    assert traces == ["train_step"] and int(result.state.step) == 3


def test_cifar10_distort_runs_a_smaller_batch_without_a_retrace(traces):
    images = np.random.default_rng(0).uniform(0, 255, size=(6, 32, 32, 3)).astype(np.float32)
    key = tracejit.random.key(3)
    full, last = augment.cifar10_distort(images, key), augment.cifar10_distort(images[:4], key)
    assert full.shape == (6, 24, 24, 3) and last.shape == (4, 24, 24, 3)
    assert traces == ["_distort_batch"]
    concrete = tracejit.jit(augment._distort_batch, static_argnums=(2,))
    np.testing.assert_allclose(last, concrete(images[:4], key, (24, 24), 63.0, 0.2, 1.8),
                               rtol=1e-5, atol=1e-5)
