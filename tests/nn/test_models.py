"""tracejit.nn.models: the book's models (parameter counts, shapes, names)
and Sequential.split for cached frozen layers."""
import numpy as np
import pytest

import tracejit
from tracejit import nn, random
from tracejit.tree import tree_flatten_with_path

KEY = random.key(0)
rng = np.random.default_rng(0)


def shapes(tree):
    return {n: np.shape(x) for n, x in tree_flatten_with_path(tree)}


def test_exports():
    assert nn.models.mlp is nn.mlp
    assert nn.models.lenet5 is nn.lenet5
    assert nn.models.cifar10_cnn is nn.cifar10_cnn


def test_mlp_is_the_books_mnist_dnn():
    model = nn.mlp()
    params = model.init(KEY, (784,))
    assert nn.count_params(params) == 266_610
    assert shapes(params) == {
        "hidden1/kernel": (784, 300), "hidden1/bias": (300,),
        "hidden2/kernel": (300, 100), "hidden2/bias": (100,),
        "outputs/kernel": (100, 10), "outputs/bias": (10,)}
    x = rng.random((3, 784), dtype=np.float32)
    logits = np.asarray(model.apply(params, x))
    assert logits.shape == (3, 10)
    # by hand: relu, relu, linear
    h = np.maximum(x @ params["hidden1"]["kernel"] + params["hidden1"]["bias"], 0)
    h = np.maximum(h @ params["hidden2"]["kernel"] + params["hidden2"]["bias"], 0)
    np.testing.assert_allclose(logits, h @ params["outputs"]["kernel"] + params["outputs"]["bias"],
                               rtol=1e-4, atol=1e-5)


def test_mlp_options():
    model = nn.mlp((32, 16, 8), n_classes=3, activation="elu", dropout_rate=0.5)
    params = model.init(KEY, (5,))
    assert sorted(params) == ["hidden1", "hidden2", "hidden3", "outputs"]
    assert nn.count_params(params) == (5 * 32 + 32) + (32 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3)
    x = rng.random((4, 5), dtype=np.float32)
    assert np.shape(model.apply(params, x, train=True, key=KEY)) == (4, 3)
    with pytest.raises(ValueError):
        nn.mlp((0,))


def test_lenet5_matches_the_books_table():
    model = nn.lenet5()
    params = model.init(KEY, (32, 32, 1))
    # C1 156, C3 2,416, C5 48,120, F6 10,164, output 850
    assert nn.count_params(params) == 61_706
    assert shapes(params) == {
        "c1/kernel": (5, 5, 1, 6), "c1/bias": (6,),
        "c3/kernel": (5, 5, 6, 16), "c3/bias": (16,),
        "c5/kernel": (5, 5, 16, 120), "c5/bias": (120,),
        "f6/kernel": (120, 84), "f6/bias": (84,),
        "outputs/kernel": (84, 10), "outputs/bias": (10,)}
    sizes = model._shapes((32, 32, 1))
    assert sizes == [(32, 32, 1), (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16),
                     (1, 1, 120), (120,), (84,), (10,)]
    logits = np.asarray(model.apply(params, rng.random((2, 32, 32, 1), dtype=np.float32)))
    assert logits.shape == (2, 10) and np.all(np.isfinite(logits))


def test_lenet5_uses_tanh_and_average_pools():
    model = nn.lenet5()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "AvgPool2D", "Conv2D", "AvgPool2D", "Conv2D", "Flatten",
                     "Dense", "Dense"]
    assert model["c1"].activation is nn.tanh or model["c1"].activation.__name__ == "tanh"
    assert model["outputs"].activation is None


def test_cifar10_cnn_and_the_recipe_share_it():
    from tracejit.train import recipes
    params = nn.cifar10_cnn().init(KEY, (24, 24, 3))
    assert nn.count_params(params) == 1_068_298
    assert sorted(params) == ["conv1", "conv2", "local3", "local4", "softmax_linear"]
    assert recipes.cifar10_cnn_model is nn.models.cifar10_cnn
    small = nn.cifar10_cnn(width=0.125)
    assert small["local3"].units == 48
    setup = recipes.build("cnn", {"width": 0.125, "synthetic_examples": 20})
    assert nn.count_params(setup.model.init(KEY, (24, 24, 3))) == nn.count_params(
        small.init(KEY, (24, 24, 3)))


# --- Sequential.split -------------------------------------------------------------
@pytest.mark.parametrize("i", [0, 1, 2, 3, -1, "hidden2", "outputs"])
def test_split_mlp_composes_to_the_whole(i):
    model = nn.mlp((16, 12), n_classes=4)
    params = model.init(KEY, (8,))
    x = rng.random((5, 8), dtype=np.float32)
    lower, upper = model.split(i)
    lower_params, upper_params = model.split_params(params, i)
    assert len(lower.layers) + len(upper.layers) == 3
    assert {**lower_params, **upper_params} == params
    assert not set(lower_params) & set(upper_params)
    out = upper.apply(upper_params, lower.apply(lower_params, x))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(model.apply(params, x)))


def test_split_keeps_layer_names_and_shapes():
    model = nn.mlp((16, 12, 10), n_classes=4)
    params = model.init(KEY, (8,))
    lower, upper = model.split(2)
    assert [n for n, _ in lower.children] == ["hidden1", "hidden2"]
    assert [n for n, _ in upper.children] == ["hidden3", "outputs"]
    assert upper["hidden3"] is model["hidden3"]
    assert lower.output_shape((8,)) == (12,)
    # a fresh upper part has the same structure as the whole model's upper params
    fresh = upper.init(KEY, lower.output_shape((8,)))
    assert shapes(fresh) == shapes(model.split_params(params, 2)[1])
    # the parts are Sequentials of their own: auto-named layers keep their
    # names too (a second Dense is still "dense2" in the upper part)
    auto = nn.Sequential([nn.Dense(3), nn.Flatten(), nn.Dense(2)])
    lo, up = auto.split(1)
    assert [n for n, _ in up.children] == ["flatten1", "dense2"]
    p = auto.init(KEY, (4,))
    assert sorted(auto.split_params(p, 1)[1]) == ["dense2"]


def test_split_lenet5_with_pools_and_jit():
    model = nn.lenet5()
    params = model.init(KEY, (32, 32, 1))
    x = rng.random((3, 32, 32, 1), dtype=np.float32)
    lower, upper = model.split("f6")   # frozen convolutions, trainable dense head
    lower_params, upper_params = model.split_params(params, "f6")
    assert sorted(lower_params) == ["c1", "c3", "c5"]
    assert sorted(upper_params) == ["f6", "outputs"]
    cached = tracejit.jit(lower.apply)(lower_params, x)
    assert np.shape(cached) == (3, 120)
    np.testing.assert_allclose(np.asarray(tracejit.jit(upper.apply)(upper_params, cached)),
                               np.asarray(model.apply(params, x)), rtol=1e-5, atol=1e-6)


def test_split_with_state():
    model = nn.Sequential([nn.Dense(6), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(3)])
    params, state = model.init(KEY, (4,))
    x = rng.random((5, 4), dtype=np.float32)
    lower, upper = model.split(2)
    assert lower.has_state and not upper.has_state
    lp, up = model.split_params(params, 2)
    ls, us = model.split_params(state, 2)
    assert sorted(ls) == ["batch_norm1"] and us == {}
    for train in (False, True):
        h, new_ls = lower.apply(lp, x, state=ls, train=train)
        y = upper.apply(up, h)
        y_whole, new_state = model.apply(params, x, state=state, train=train)
        np.testing.assert_allclose(np.asarray(y), np.asarray(y_whole), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(new_ls["batch_norm1"]["moving_mean"]),
                                   np.asarray(new_state["batch_norm1"]["moving_mean"]))


def test_split_errors():
    model = nn.mlp((4,), n_classes=2)
    params = model.init(KEY, (3,))
    with pytest.raises(IndexError):
        model.split(3)
    with pytest.raises(IndexError):
        model.split(-3)
    with pytest.raises(KeyError):
        model.split("hidden9")
    with pytest.raises(TypeError):
        model.split(1.0)
    with pytest.raises(KeyError):
        model.split_params({**params, "other": {}}, 1)
