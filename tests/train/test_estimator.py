"""train.DNNClassifier: the canned estimator on the bundled digits."""
import numpy as np
import pytest

from tracejit import nn, optim, random, train
from tracejit.train import estimator
from tracejit.data import load_digits
from tracejit.tree import tree_flatten_with_path


@pytest.fixture(scope="module")
def digits():
    return load_digits(test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    (x, y), _ = digits
    clf = train.DNNClassifier(hidden_units=[100, 50], n_classes=10)
    return clf.fit(x, y, epochs=8)


def test_defaults():
    clf = train.DNNClassifier([300, 100], 10)
    assert clf.optimizer.name == "adam" and clf.optimizer.learning_rate == 1e-3
    assert clf.batch_size == 50 and clf.seed == 0 and clf.global_step == 0
    params = clf.model.init(random.key(0), (784,))
    assert nn.count_params(params) == 266_610   # the book's MNIST DNN
    assert train.DNNClassifier is estimator.DNNClassifier


def test_learns_the_digits(digits, trained):
    _, (xt, yt) = digits
    (x, _), _ = digits
    result = trained.evaluate(xt, yt)
    assert set(result) == {"accuracy", "loss", "global_step"}
    assert result["accuracy"] > 0.9
    assert result["global_step"] == 8 * (len(x) // 50)
    assert len(trained.history["loss"]) == 8
    assert trained.history["loss"][-1] < trained.history["loss"][0]


def test_predict_and_proba_agree_with_evaluate(digits, trained):
    _, (xt, yt) = digits
    proba = trained.predict_proba(xt, batch_size=100)   # 359 rows: a padded last batch
    assert proba.shape == (len(xt), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = trained.predict(xt)
    np.testing.assert_array_equal(predicted, proba.argmax(axis=1))
    assert trained.evaluate(xt, yt)["accuracy"] == pytest.approx(np.mean(predicted == yt))
    loss = -np.mean(np.log(proba[np.arange(len(yt)), yt]))
    assert trained.evaluate(xt, yt)["loss"] == pytest.approx(loss, rel=1e-3)
    np.testing.assert_array_equal(trained.predict(xt[:3]), predicted[:3])


def test_fit_again_continues(digits):
    (x, y), (xt, yt) = digits
    x, y = x[:400], y[:400]
    clf = train.DNNClassifier([32], 10, batch_size=40, seed=3,
                              optimizer=optim.momentum(0.05, momentum=0.9))
    clf.fit(x, y, epochs=1)
    first = {n: np.array(v) for n, v in tree_flatten_with_path(clf.state)}
    seen = {}

    def on_train_begin(run):
        seen.update({n: np.array(v) for n, v in tree_flatten_with_path(run.state)})

    clf.fit(x, y, epochs=2, validation_data=(xt, yt),
            callbacks=[train.LambdaCallback(on_train_begin=on_train_begin)])
    # the second call starts from the whole state of the first: params,
    # optimizer state (momentum), step
    assert seen.keys() == first.keys()
    for name in first:
        np.testing.assert_array_equal(seen[name], first[name], err_msg=name)
    assert clf.global_step == 3 * 10
    assert len(clf.history["loss"]) == 3 and len(clf.history["val_accuracy"]) == 2
    assert clf.evaluate(xt, yt)["global_step"] == 30


def test_errors(digits):
    (x, y), _ = digits
    clf = train.DNNClassifier([8], 10)
    with pytest.raises(RuntimeError, match="fit"):
        clf.predict(x[:2])
    with pytest.raises(ValueError, match="0..9"):
        clf.fit(x[:20], y[:20] + 10)
    with pytest.raises(ValueError):
        train.DNNClassifier([8], 1)
    clf.fit(x[:20], y[:20], epochs=1)    # fewer examples than batch_size
    assert clf.global_step == 1
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((2, 5), np.float32))


def test_fit_steps_as_in_the_book(digits):
    (x, y), _ = digits
    x, y = x[:400], y[:400]
    clf = train.DNNClassifier([16], 10, seed=1)
    clf.fit(x=x, y=y, batch_size=40, steps=25)     # 10 steps per epoch: 2.5 epochs
    assert clf.global_step == 25 and clf.batch_size == 40
    assert len(clf.history["loss"]) == 2           # the completed epochs
    clf.fit(x, y, steps=3)                          # continues
    assert clf.global_step == 28
    clf.fit(x, y, steps=7)
    assert clf.global_step == 35
    with pytest.raises(ValueError, match="not both"):
        clf.fit(x, y, epochs=1, steps=5)
    with pytest.raises(ValueError, match="steps"):
        clf.fit(x, y, steps=0)


def test_fit_result_repr_is_short(digits):
    (x, y), _ = digits
    result = train.fit(nn.mlp((8,)), optim.sgd(0.1), (x[:200], y[:200]), epochs=2,
                       batch_size=50, verbose=False)
    text = repr(result)
    assert text.startswith("FitResult(step=8, epochs=2, loss=") and "accuracy=" in text
    assert "stopped_early=False" in text and len(text) < 200 and "array" not in text
