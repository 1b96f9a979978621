"""nn.transform / get_variable / variable_scope: Hands-On ML Ch. 9's
"Sharing Variables", TensorFlow's create-or-reuse rules and errors."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, random

KEY = random.key(0)
X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def relu(x):
    threshold = nn.get_variable("threshold", shape=(),
                                initializer=nn.initializers.constant_initializer(0.0))
    w = nn.get_variable("weights", shape=(3, 1))
    b = nn.get_variable("bias", shape=(1,), initializer="zeros")
    return tnp.maximum(x @ w + b, threshold)


def five_relus(x):
    outputs = []
    for i in range(5):
        with nn.variable_scope("relu", reuse=(i >= 1)):
            outputs.append(relu(x))
    return nn.add_n(outputs)


def test_the_books_five_relus_share_one_set_of_variables():
    net = nn.transform(five_relus)
    params = net.init(KEY, X)
    assert sorted(params) == ["relu/bias", "relu/threshold", "relu/weights"]
    assert np.shape(params["relu/threshold"]) == () and float(params["relu/threshold"]) == 0.0
    assert np.shape(params["relu/weights"]) == (3, 1)
    y = net.apply(params, X)
    w, b = params["relu/weights"], params["relu/bias"]
    np.testing.assert_allclose(y, 5 * np.maximum(X @ w + b, 0.0), rtol=1e-5)
    # the same under jit and grad
    np.testing.assert_allclose(tracejit.jit(net.apply)(params, X), y, rtol=1e-5)
    grads = tracejit.grad(lambda p: tnp.sum(net.apply(p, X)))(params)
    assert sorted(grads) == sorted(params)
    active = (X @ w + b > 0).astype(np.float32)
    np.testing.assert_allclose(grads["relu/weights"], 5 * X.T @ active, rtol=1e-5)
    # init is deterministic per key, and jit-able
    again = tracejit.jit(net.init)(KEY, X)
    for name in params:
        np.testing.assert_allclose(again[name], params[name], rtol=1e-6)


def test_reuse_true_the_scope_method_and_inheritance():
    def fn(x):
        with nn.variable_scope("relu"):
            nn.get_variable("threshold", shape=(), initializer=nn.initializers.constant(0.5))
        with nn.variable_scope("relu", reuse=True):
            a = nn.get_variable("threshold")
        with nn.variable_scope("relu") as scope:
            assert scope.name == "relu" and scope.reuse is False
            scope.reuse_variables()
            b = nn.get_variable("threshold")
            with nn.variable_scope("inner", reuse=False) as inner:   # inherits True
                assert inner.name == "relu/inner" and inner.reuse is True
        with nn.variable_scope(scope):      # re-entered by the captured object
            assert nn.get_variable_scope().name == "relu"
        return a + b + x
    params = nn.transform(fn).init(KEY, X)
    assert list(params) == ["relu/threshold"]
    np.testing.assert_allclose(nn.transform(fn).apply(params, X), X + 1.0)


def test_auto_reuse_and_default_names():
    def dense(x, units):
        w = nn.get_variable("w", shape=(x.shape[-1], units))
        return x @ w

    def fn(x):
        for _ in range(3):
            with nn.variable_scope("shared", reuse=nn.AUTO_REUSE):
                y = dense(x, 2)
        with nn.variable_scope(None, default_name="layer"):
            y = dense(y, 2)
        with nn.variable_scope(None, default_name="layer"):
            y = dense(y, 1)
        return y
    params = nn.transform(fn).init(KEY, X)
    assert sorted(params) == ["layer/w", "layer_1/w", "shared/w"]
    y = nn.transform(fn).apply(params, X)
    np.testing.assert_allclose(y, X @ params["shared/w"] @ params["layer/w"] @ params["layer_1/w"],
                               rtol=1e-5)


def test_tensorflow_errors():
    def twice(x):
        with nn.variable_scope("layer1"):
            nn.get_variable("weights", shape=(2,))
        with nn.variable_scope("layer1"):
            nn.get_variable("weights", shape=(2,))
        return x
    with pytest.raises(ValueError, match="Variable layer1/weights already exists"):
        nn.transform(twice).init(KEY, X)

    def missing(x):
        with nn.variable_scope("layer1", reuse=True):
            return nn.get_variable("weights", shape=(2,))
    with pytest.raises(ValueError, match="Variable layer1/weights does not exist") as info:
        nn.transform(missing).init(KEY, X)
    assert "test_variables.py" in str(info.value)      # names the user's line

    def other_shape(x):
        with nn.variable_scope("a"):
            nn.get_variable("v", shape=(2,))
        with nn.variable_scope("a", reuse=True):
            return nn.get_variable("v", shape=(3,))
    with pytest.raises(ValueError, match="Trying to share variable a/v"):
        nn.transform(other_shape).init(KEY, X)

    def no_shape(x):
        return nn.get_variable("v")
    with pytest.raises(ValueError, match="fully defined"):
        nn.transform(no_shape).init(KEY, X)
    with pytest.raises(ValueError, match="nn.transform"):
        nn.get_variable("outside", shape=())
    net = nn.transform(five_relus)
    params = net.init(KEY, X)
    with pytest.raises(ValueError, match="relu/weights is not in params"):
        net.apply({k: v for k, v in params.items() if k != "relu/weights"}, X)
    with pytest.raises(ValueError, match="did not use"):
        net.apply({**params, "extra": np.zeros(1)}, X)
    with pytest.raises(ValueError, match="reuse"):
        nn.variable_scope("x", reuse="yes")


def test_initial_value_instead_of_an_initializer():
    def fn(x):
        with nn.variable_scope("theta"):
            return x @ nn.get_variable("v", initializer=np.ones((3, 2), np.float32))
    params = nn.transform(fn).init(KEY, X)
    np.testing.assert_array_equal(params["theta/v"], np.ones((3, 2)))
