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
