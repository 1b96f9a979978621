"""fit, evaluate, make_train_step and EarlyStopping on a tiny model."""
import math

import numpy as np
import pytest

import tracejit
from tracejit import train
from tracejit.data import Pipeline

from loop_helpers import MomentumSGD, TinyMLP, digits


@pytest.fixture(scope="module")
def data():
    return digits()


def test_fit_learns_and_writes_tensorboard_logs(tmp_path, data):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    train_data, valid = data
    result = train.fit(TinyMLP(), MomentumSGD(0.05), train_data, epochs=3, batch_size=20,
                       validation_data=valid, logdir=tmp_path, log_every=5,
                       histogram_every=10, verbose=False)
    h = result.history
    assert [len(h[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")] == [3] * 4
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.5
    assert int(result.state.step) == 3 * (400 // 20)

    acc = ea.EventAccumulator(str(tmp_path), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/accuracy", "learning_rate", "valid/loss",
            "valid/accuracy"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(5, 61, 5))
    assert [e.step for e in acc.Scalars("valid/accuracy")] == [20, 40, 60]
    assert acc.Scalars("valid/accuracy")[-1].value == pytest.approx(h["val_accuracy"][-1])
    lr = [e.value for e in acc.Scalars("learning_rate")]
    assert lr[0] == pytest.approx(0.05 * 0.99 ** 4) and lr[1] < lr[0]
    assert {"params/dense1/kernel", "grads/dense1/kernel", "grads/logits/bias"} <= set(
        tags["histograms"])
    assert [e.step for e in acc.Histograms("grads/dense1/kernel")] == [10, 20, 30, 40, 50, 60]
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    # the training step's graph, written once: parameters named by their path
    nodes = {n.name: n for n in acc.Graph().node}
    assert nodes["state/params/dense1/kernel"].op == "Placeholder"
    assert {"x", "y"} <= set(nodes) and any(n.op == "dot_general" for n in nodes.values())


def test_evaluate_pads_the_last_batch(data):
    model = TinyMLP()
    _, (x, y) = data
    state = train.init_train_state(model, MomentumSGD(), (64,), seed=3)
    eval_step = train.make_eval_step(model)
    logits = model.apply(state.params, x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    xent = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]
    for batch_size in (len(y), 50, 7):   # 120 = 2*50 + 20 = 17*7 + 1
        r = train.evaluate(eval_step, state, (x, y), batch_size=batch_size)
        assert r["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
        assert r["loss"] == pytest.approx(xent.mean(), rel=1e-5)
    assert eval_step.trace_count == 3   # one compiled shape per batch size, padding included


def test_hand_written_loop_with_building_blocks(data):
    (x, y), valid = data
    model, opt = TinyMLP(), MomentumSGD(0.05)
    state = train.init_train_state(model, opt, (64,), seed=0)
    step = train.make_train_step(model, opt)
    eval_step = train.make_eval_step(model)
    before = train.evaluate(eval_step, state, valid)["loss"]
    pipe = Pipeline((x, y)).shuffle(0).batch(40, drop_remainder=True)
    for _ in range(3):
        for xb, yb in pipe:
            state, metrics = step(state, xb, yb, with_grads=False)
    assert set(metrics) == {"loss", "accuracy", "learning_rate"}
    assert int(state.step) == 30
    assert train.evaluate(eval_step, state, valid)["loss"] < before
    state, metrics, grads = step(state, xb, yb, with_grads=True)
    assert tracejit.tree_flatten(grads)[1] == tracejit.tree_flatten(state.params)[1]


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_gradient_returning_step_donates_and_matches_the_reference(data, optimizer):
    """with_grads=True donates the state too (the cpu backend once returned
    wrong gradients from a donating step) and computes what the reference
    interpreter does, state, metrics and gradients."""
    from tracejit import optim
    (x, y), _ = data
    model = TinyMLP(rate=0.0)
    opt = optim.adam(0.01) if optimizer == "adam" else MomentumSGD(0.05)
    step = train.make_train_step(model, opt)
    ref = train.make_train_step(model, opt, backend="reference", donate=False)
    state = train.init_train_state(model, opt, (64,), seed=1)
    ref_state = tracejit.tree_map(np.copy, state)
    for i in range(3):
        xb, yb = x[40 * i:40 * (i + 1)], y[40 * i:40 * (i + 1)]
        before = {id(leaf) for leaf in tracejit.tree_leaves(state)}
        state, metrics, grads = step(state, xb, yb, with_grads=True)
        ref_state, ref_metrics, ref_grads = ref(ref_state, xb, yb, with_grads=True)
        reused = [id(leaf) in before for leaf in tracejit.tree_leaves(state.params)]
        assert all(reused), reused   # the new parameters live in the donated buffers
        for got, want in [(grads, ref_grads), (state, ref_state), (metrics, ref_metrics)]:
            for g, w in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_given_params_are_not_overwritten_by_donation(data):
    train_data, _ = data
    model = TinyMLP()
    pretrained = model.init(tracejit.random.key(5), (64,))
    saved = tracejit.tree_map(np.copy, pretrained)
    result = train.fit(model, MomentumSGD(), train_data, epochs=1, batch_size=50,
                       init_params=pretrained, verbose=False)
    for a, b in zip(tracejit.tree_leaves(pretrained), tracejit.tree_leaves(saved)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(result.params["dense1"]["kernel"], saved["dense1"]["kernel"])


class _Run:
    def __init__(self, params, step):
        self.state = train.TrainState(params, None, None, np.int64(step), None)
        self.stop_training = False

    @property
    def step(self):
        return int(self.state.step)


def test_early_stopping_on_a_synthetic_curve():
    """Book Ch.11: keep the winner, stop after `patience` evaluations without one."""
    es = train.EarlyStopping(patience=3)
    curve = [1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.71, 0.69]
    stopped_at = None
    for i, v in enumerate(curve):
        run = _Run({"w": np.array([float(i)])}, i)
        es.on_epoch_end(run, {"val_loss": v})
        if run.stop_training:
            stopped_at = i
            break
    assert stopped_at == 6 and es.best == 0.7 and es.best_step == 3
    es.on_train_end(run, {})
    assert run.state.params["w"][0] == 3.0

    es = train.EarlyStopping(patience=2, monitor="val_accuracy")
    assert es.mode == "max"
    assert not es.update(0.5, {}, 0) and not es.update(0.4, {}, 1) and es.update(0.45, {}, 2)
    with pytest.raises(ValueError):
        train.EarlyStopping(patience=0)


def test_fit_with_early_stopping_restores_the_best_params(data):
    train_data, valid = data
    model = TinyMLP()
    # A learning rate high enough that validation loss goes up again.
    result = train.fit(model, MomentumSGD(0.6, decay=1.0), train_data, epochs=12,
                       batch_size=20, validation_data=valid, early_stopping=2, verbose=False)
    losses = result.history["val_loss"]
    assert result.stopped_early and len(losses) < 12
    best = min(losses)
    assert losses.index(best) == len(losses) - 3
    final = train.evaluate(train.make_eval_step(model), result.params, valid)
    assert final["loss"] == pytest.approx(best, rel=1e-6)


def test_fit_argument_errors(data):
    train_data, _ = data
    with pytest.raises(ValueError, match="validation_data"):
        train.fit(TinyMLP(), MomentumSGD(), train_data, epochs=1, early_stopping=2)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train.fit(TinyMLP(), MomentumSGD(), train_data, epochs=1, resume=True)
    assert math.isfinite(train.EarlyStopping().best) is False


def test_fit_carries_model_state_of_batch_norm(tmp_path, data):
    from tracejit import nn, optim
    train_data, valid = data
    model = nn.Sequential([nn.Dense(32), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(10)])
    result = train.fit(model, optim.momentum(0.05), train_data, epochs=2, batch_size=40,
                       validation_data=valid, checkpoint_dir=tmp_path, verbose=False)
    moving = result.state.model_state["batch_norm1"]
    assert np.any(moving["moving_mean"] != 0) and np.any(moving["moving_variance"] != 1)
    like = train.init_train_state(model, optim.momentum(0.05), (64,))
    restored, _, _ = train.restore_train_state(tmp_path, like)
    np.testing.assert_array_equal(restored.model_state["batch_norm1"]["moving_mean"],
                                  moving["moving_mean"])
    assert result.history["val_accuracy"][-1] > 0.5


@pytest.mark.parametrize("towers", [2, 4])
def test_towers_average_gradients_like_one_large_batch(data, towers):
    """Synchronous data parallelism: k towers on k shards, gradients averaged,
    one update. With a mean loss and no dropout or batch norm that is the
    one-tower step on the whole batch (float rounding aside)."""
    from tracejit import optim
    (x, y), _ = data
    model, opt = TinyMLP(rate=0.0), optim.adam(0.01)
    one = train.make_train_step(model, opt, donate=False)
    split = train.make_train_step(model, opt, donate=False, towers=towers)
    state = train.init_train_state(model, opt, (64,), seed=2)
    a, b = state, tracejit.tree_map(np.copy, state)
    for i in range(3):
        xb, yb = x[40 * i:40 * (i + 1)], y[40 * i:40 * (i + 1)]
        a, ma, ga = one(a, xb, yb, with_grads=True)
        b, mb, gb = split(b, xb, yb, with_grads=True)
        for g, w in zip(tracejit.tree_leaves((gb, b.params, mb)), tracejit.tree_leaves((ga, a.params, ma))):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="does not split"):
        split(b, x[:39], y[:39])
