"""Hands-On ML Ch. 11 and 13: AlexNet, GoogLeNet, ResNet-34 (parameter counts
against the chapter's), PReLU / RReLU, depth pooling, zero_fraction and TF
1.x's variance_scaling_initializer."""
import math

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, random
from tracejit.errors import ShapeError
from tracejit.testing import check_grads
from tracejit.tree import tree_flatten_with_path

KEY = random.key(0)
rng = np.random.default_rng(0)


def conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def test_alexnet_matches_table_13_2_and_the_60_million():
    model = nn.models.alexnet()
    # the table's layers, by hand (D21: C1 SAME on 224 gives 56; S7 gives 6x6x256)
    convs = conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) \
        + conv(3, 384, 256)
    assert convs == 3_747_200
    dense = (6 * 6 * 256 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert nn.count_params(model, (224, 224, 3)) == convs + dense == 62_378_344
    shapes = model._shapes((224, 224, 3))
    assert shapes[1] == (56, 56, 96) and (27, 27, 96) in shapes and (13, 13, 384) in shapes
    assert model.output_shape((224, 224, 3)) == (1000,)
    assert [n for n, _ in model.children][:3] == ["c1", "lrn1", "s2"]
    lrn = model["lrn1"]
    assert (lrn.depth_radius, lrn.alpha, lrn.beta, lrn.bias) == (1, 0.00002, 0.75, 1.0)
    assert model["dropout8"].rate == 0.5 and model["dropout9"].rate == 0.5


def test_googlenet_has_ten_times_fewer_parameters_than_alexnet():
    model = nn.models.googlenet()
    inceptions = [layer for _, layer in model.children if isinstance(layer, nn.Inception)]
    assert len(inceptions) == 9
    count = nn.count_params(model, (224, 224, 3))
    # by hand: stem, the nine modules (six convolutions each), the dense layer
    stem = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    modules, depth = 0, 192
    for c1, c3r, c3, c5r, c5, pp in nn.models.GOOGLENET_INCEPTIONS.values():
        modules += (conv(1, depth, c1) + conv(1, depth, c3r) + conv(3, c3r, c3)
                    + conv(1, depth, c5r) + conv(5, c5r, c5) + conv(1, depth, pp))
        depth = c1 + c3 + c5 + pp
    assert depth == 1024
    assert count == stem + modules + 1024 * 1000 + 1000 == 6_998_552
    assert 5e6 < count < 7e6          # "roughly 6 million"
    assert nn.count_params(nn.models.alexnet(), (224, 224, 3)) / count > 8.9  # "10 times fewer"
    shapes = model._shapes((224, 224, 3))
    assert shapes[2] == (56, 56, 64)      # the first two layers divide H and W by 4
    assert shapes[7] == (28, 28, 192)     # then a max pool by 2
    assert (7, 7, 1024) in shapes and model.output_shape((224, 224, 3)) == (1000,)


def test_resnet34_has_34_layers():
    model = nn.models.resnet34()
    units = [layer for _, layer in model.children if isinstance(layer, nn.ResidualUnit)]
    assert [u.filters for u in units] == [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3
    assert [u.strides for u in units] == [1, 1, 1, 2, 1, 1, 1, 2] + [1] * 5 + [2, 1, 1]
    params_types = nn.param_types(model, (224, 224, 3))
    weight_layers = sum(1 for t in params_types if len(t.shape) in (2, 4) and
                        (len(t.shape) == 2 or t.shape[0] > 1))   # 1x1 projections excluded
    assert weight_layers == 34
    assert nn.count_params(model, (224, 224, 3)) == 21_797_672   # FEATURES D22
    assert model.output_shape((224, 224, 3)) == (1000,)


def test_small_googlenet_and_resnet_run_and_differentiate():
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    g = nn.models.googlenet(n_classes=5)
    params = g.init(KEY, (32, 32, 3))
    assert np.shape(g.apply(params, x)) == (2, 5)
    r = nn.models.resnet34(n_classes=4)
    params, state = r.init(KEY, (32, 32, 3))
    y, new_state = r.apply(params, x, state=state, train=True)
    assert np.shape(y) == (2, 4) and np.all(np.isfinite(y))


def test_prelu_layer_learns_its_slope():
    layer = nn.PReLU()
    params = layer.init(KEY, (3, 4))
    np.testing.assert_array_equal(params["alpha"], np.full(4, 0.25, np.float32))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    alpha = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    y = np.asarray(layer.apply({"alpha": alpha}, x))
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * x), rtol=1e-6)
    check_grads(lambda a, x: nn.prelu(x, a), (alpha, x), order=1)
    g = tracejit.grad(lambda p: tnp.sum(layer.apply(p, x)))({"alpha": alpha})
    np.testing.assert_allclose(g["alpha"], np.sum(np.where(x > 0, 0, x), axis=(0, 1)), rtol=1e-5)


def test_rrelu_random_while_training_average_at_test():
    x = -np.ones((1000,), np.float32)
    layer = nn.RReLU()
    test = np.asarray(layer.apply({}, x))
    np.testing.assert_allclose(test, -(1 / 8 + 1 / 3) / 2 * np.ones(1000), rtol=1e-6)
    train = np.asarray(layer.apply({}, x, train=True, key=KEY))
    slopes = -train
    assert slopes.min() >= 1 / 8 and slopes.max() < 1 / 3 and len(np.unique(slopes)) > 900
    assert abs(slopes.mean() - (1 / 8 + 1 / 3) / 2) < 0.01
    pos = np.abs(rng.standard_normal(10)).astype(np.float32) + 0.1
    np.testing.assert_array_equal(layer.apply({}, pos, train=True, key=KEY), pos)
    with pytest.raises(ValueError, match="key"):
        layer.apply({}, x, train=True)
    with pytest.raises(ValueError):
        nn.RReLU(0.5, 0.1)


def test_depth_max_pool_over_channels():
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    y = np.asarray(nn.max_pool(x, ksize=[1, 1, 1, 3], strides=[1, 1, 1, 3], padding="VALID"))
    np.testing.assert_array_equal(y, x.reshape(2, 4, 5, 2, 3).max(-1))
    layer = nn.DepthMaxPool(2)
    assert layer.output_shape((4, 5, 6)) == (4, 5, 3)
    np.testing.assert_array_equal(layer.apply({}, x), x.reshape(2, 4, 5, 3, 2).max(-1))
    jitted = tracejit.jit(lambda x: nn.max_pool(x, [1, 1, 1, 3], [1, 1, 1, 3], "VALID"))
    np.testing.assert_array_equal(jitted(x), y)
    g = tracejit.grad(lambda x: tnp.sum(nn.max_pool(x, [1, 1, 1, 3], [1, 1, 1, 3], "VALID")))(x)
    expected = (x == np.repeat(y, 3, axis=-1)).astype(np.float32)
    np.testing.assert_array_equal(g, expected)
    with pytest.raises(ShapeError, match="divide"):
        nn.max_pool(x, [1, 1, 1, 4], [1, 1, 1, 4], "VALID")
    with pytest.raises(ShapeError, match="space|height"):
        nn.max_pool(x, [1, 2, 2, 3], [1, 2, 2, 3], "VALID")
    with pytest.raises(ShapeError, match="stride"):
        nn.max_pool(x, [1, 1, 1, 3], [1, 1, 1, 1], "VALID")
    with pytest.raises(ShapeError):
        layer.output_shape((4, 5, 7))


def test_zero_fraction():
    x = np.array([[0.0, 1.0, 0.0, -2.0], [0.0, 0.0, 3.0, 0.0]], np.float32)
    assert float(nn.zero_fraction(x)) == 5 / 8
    assert float(tracejit.jit(nn.zero_fraction)(nn.relu(x))) == 6 / 8
    assert np.asarray(nn.zero_fraction(x)).dtype == np.float32
    assert float(nn.zero_fraction(np.arange(5))) == np.float32(1 / 5)


@pytest.mark.parametrize("mode,fan", [("FAN_IN", 3 * 3 * 16), ("FAN_AVG", 3 * 3 * 24),
                                      ("FAN_OUT", 3 * 3 * 32)])
def test_tf1_variance_scaling_initializer(mode, fan):
    init = nn.variance_scaling_initializer(mode=mode) if mode != "FAN_IN" \
        else nn.variance_scaling_initializer()
    w = np.asarray(init(KEY, (3, 3, 16, 32)))
    # TF 1.x: truncated normal (at 2 sigma) with stddev sqrt(1.3 * factor / fan)
    stddev = math.sqrt(1.3 * 2.0 / fan)
    assert np.abs(w).max() <= 2 * stddev + 1e-6
    expected_std = stddev * 0.87962566103423978
    assert abs(w.std() / expected_std - 1) < 0.05
    u = np.asarray(nn.initializers.variance_scaling_initializer(factor=1.0, mode=mode,
                                                              uniform=True)(KEY, (3, 3, 16, 32)))
    limit = math.sqrt(3.0 / fan)
    assert np.abs(u).max() <= limit and np.abs(u).max() > 0.95 * limit
    assert nn.initializers.get("variance_scaling_initializer") is not None
    with pytest.raises(ValueError):
        nn.variance_scaling_initializer(mode="FAN_MAX")
    dense = nn.Dense(10, kernel_initializer=nn.variance_scaling_initializer())
    assert np.shape(dense.init(KEY, (5,))["kernel"]) == (5, 10)


def test_count_params_of_a_layer_needs_a_shape():
    with pytest.raises(ValueError, match="input shape"):
        nn.count_params(nn.Dense(3))
    assert nn.count_params(nn.Dense(3), (4,)) == 15
    model = nn.lenet5()
    assert nn.count_params(model, (32, 32, 1)) == nn.count_params(model.init(KEY, (32, 32, 1)))
    assert [tuple(t.shape) for t in nn.param_types(nn.Dense(3), (4,))] == \
        [np.shape(v) for _, v in tree_flatten_with_path(nn.Dense(3).init(KEY, (4,)))]


def test_resnet152_bottleneck_units():
    model = nn.models.resnet152()
    units = [layer for _, layer in model.children if isinstance(layer, nn.BottleneckUnit)]
    assert [u.filters * 4 for u in units] == [256] * 3 + [512] * 8 + [1024] * 36 + [2048] * 3
    shapes = model._shapes((224, 224, 3))
    projecting = sum(u.projects(s) for u, s in zip(model.layers, shapes)
                     if isinstance(u, nn.BottleneckUnit))
    assert projecting == 4
    kernels = sum(1 for t in nn.param_types(model, (224, 224, 3)) if len(t.shape) in (2, 4))
    assert kernels - projecting == 152
    assert nn.count_params(model, (224, 224, 3)) == 60_192_808   # FEATURES D22
    unit = nn.BottleneckUnit(4, strides=2)
    params, state = unit.init(KEY, (6, 6, 8))
    x = rng.standard_normal((2, 6, 6, 8)).astype(np.float32)
    y, _ = unit.apply(params, x, state=state, train=True)
    assert np.shape(y) == (2, 3, 3, 16) and np.all(np.asarray(y) >= 0)
    assert sorted(params["main"]) == ["batch_norm1", "batch_norm2", "batch_norm3",
                                      "conv1", "conv2", "conv3"]
