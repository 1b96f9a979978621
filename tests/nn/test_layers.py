"""Layers and models: parameter counts and shapes of the book's networks,
naming, the params/state convention, train vs eval behaviour, and training
under jit + grad."""
import math

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, optim, random
from tracejit.tree import tree_flatten_with_path, tree_map

KEY = random.key(0)
rng = np.random.default_rng(0)


def names(tree):
    return [n for n, _ in tree_flatten_with_path(tree)]


def shapes(tree):
    return {n: np.shape(x) for n, x in tree_flatten_with_path(tree)}


def cifar10_model():
    """The CIFAR-10 tutorial's inference(), with its variable names."""
    lrn = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    return nn.Sequential([
        nn.Conv2D(64, 5, 1, "SAME", activation="relu", name="conv1"),
        nn.MaxPool2D(3, 2, "SAME", name="pool1"),
        nn.LocalResponseNorm(**lrn, name="norm1"),
        nn.Conv2D(64, 5, 1, "SAME", activation="relu", name="conv2"),
        nn.LocalResponseNorm(**lrn, name="norm2"),
        nn.MaxPool2D(3, 2, "SAME", name="pool2"),
        nn.Flatten(),
        nn.Dense(384, "relu", name="local3"),
        nn.Dense(192, "relu", name="local4"),
        nn.Dense(10, name="softmax_linear")])


def test_cifar10_tutorial_model_has_1068298_parameters():
    model = cifar10_model()
    params = model.init(KEY, (24, 24, 3))
    assert nn.count_params(params) == 1_068_298
    assert shapes(params) == {
        "conv1/bias": (64,), "conv1/kernel": (5, 5, 3, 64),
        "conv2/bias": (64,), "conv2/kernel": (5, 5, 64, 64),
        "local3/bias": (384,), "local3/kernel": (2304, 384),
        "local4/bias": (192,), "local4/kernel": (384, 192),
        "softmax_linear/bias": (10,), "softmax_linear/kernel": (192, 10)}
    assert model.output_shape((24, 24, 3)) == (10,)
    x = rng.standard_normal((2, 24, 24, 3)).astype(np.float32)
    logits = model.apply(params, x)
    assert logits.shape == (2, 10) and logits.dtype == np.float32


def test_automatic_names_count_per_kind():
    model = nn.Sequential([nn.Conv2D(4, 3), nn.MaxPool2D(), nn.Conv2D(4, 3), nn.Flatten(),
                           nn.Dense(8), nn.Dense(3, name="logits")])
    params = model.init(KEY, (12, 12, 1))
    assert names(params) == ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel",
                             "dense1/bias", "dense1/kernel", "logits/bias", "logits/kernel"]
    assert [n for n, _ in model.children] == ["conv1", "max_pool1", "conv2", "flatten1",
                                              "dense1", "logits"]
    assert isinstance(model["max_pool1"], nn.MaxPool2D)
    with pytest.raises(ValueError, match="named 'dense2'"):
        nn.Sequential([nn.Dense(2, name="dense2"), nn.Dense(2)])
    with pytest.raises(ValueError, match="'/'"):
        nn.Dense(2, name="a/b")


def test_lenet5_shapes():
    """Table 13-1 (with full C3 and plain average pooling)."""
    layers = [nn.Conv2D(6, 5, activation="tanh"), nn.AvgPool2D(2),
              nn.Conv2D(16, 5, activation="tanh"), nn.AvgPool2D(2),
              nn.Conv2D(120, 5, activation="tanh"), nn.Flatten(),
              nn.Dense(84, "tanh"), nn.Dense(10)]
    expected = [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (1, 1, 120), (120,),
                (84,), (10,)]
    for i, shape in enumerate(expected):
        assert nn.Sequential(layers[:i + 1]).output_shape((32, 32, 1)) == shape
    model = nn.Sequential(layers)
    params = model.init(KEY, (32, 32, 1))
    # C1 156, C3 2,416, C5 48,120, F6 10,164, out 850
    assert nn.count_params(params) == 156 + 2416 + 48120 + 10164 + 850
    assert model.apply(params, np.zeros((3, 32, 32, 1), np.float32)).shape == (3, 10)


def test_input_shape_is_one_example():
    with pytest.raises(tracejit.ShapeError, match="batch dimension"):
        nn.Conv2D(4, 3).init(KEY, (8, 24, 24, 3))
    with pytest.raises(tracejit.ShapeError, match="does not fit"):
        nn.Conv2D(4, 5).init(KEY, (3, 3, 1))
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2D(4, 3, padding="FULL")


def test_dense_and_conv_compute_what_they_say():
    dense = nn.Dense(3, "relu", kernel_initializer="he_normal", bias_initializer="ones")
    p = dense.init(KEY, (4,))
    np.testing.assert_array_equal(p["bias"], np.ones(3))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(dense.apply(p, x), np.maximum(x @ p["kernel"] + 1, 0), rtol=1e-6)
    seq = rng.standard_normal((2, 7, 4)).astype(np.float32)     # applies to the last axis
    assert dense.apply(p, seq).shape == (2, 7, 3)
    assert set(nn.Dense(3, use_bias=False).init(KEY, (4,))) == {"kernel"}

    conv = nn.Conv2D(2, (3, 2), strides=2, padding="same", dilation_rate=1, activation=np.abs)
    p = conv.init(KEY, (7, 6, 3))
    img = rng.standard_normal((1, 7, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(conv.apply(p, img),
                               np.abs(nn.conv2d(img, p["kernel"], 2, "SAME") + p["bias"]), rtol=1e-6)
    assert conv.output_shape((7, 6, 3)) == (4, 3, 2)
    atrous = nn.Conv2D(2, 3, dilation_rate=2)
    assert atrous.output_shape((9, 9, 1)) == (5, 5, 2)
    assert atrous.apply(atrous.init(KEY, (9, 9, 1)), np.ones((1, 9, 9, 1), np.float32)).shape == (1, 5, 5, 2)


def test_pooling_norm_flatten_layers():
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(nn.MaxPool2D(2).apply({}, x), nn.max_pool(x, 2, 2, "VALID"))
    np.testing.assert_allclose(nn.AvgPool2D(3, 2, "SAME").apply({}, x),
                               nn.avg_pool(x, 3, 2, "SAME"))
    np.testing.assert_allclose(nn.GlobalAvgPool2D().apply({}, x), x.mean((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(nn.LocalResponseNorm(2, 1.0, 0.5, 0.75).apply({}, x),
                               nn.lrn(x, 2, 1.0, 0.5, 0.75))
    assert nn.Flatten().apply({}, x).shape == (2, 108)
    np.testing.assert_array_equal(nn.Activation("relu6").apply({}, x * 10), np.clip(x * 10, 0, 6))
    assert nn.MaxPool2D(3, 2, "SAME").output_shape((24, 24, 64)) == (12, 12, 64)


def test_batch_norm_train_and_eval():
    bn = nn.BatchNorm(momentum=0.9, epsilon=1e-3)
    assert bn.has_state
    params, state = bn.init(KEY, (4,))
    assert shapes(params) == {"beta": (4,), "gamma": (4,)}
    assert shapes(state) == {"moving_mean": (4,), "moving_variance": (4,)}
    x = (rng.standard_normal((64, 4)) * [1, 2, 3, 4] + [0, 1, -1, 5]).astype(np.float32)

    y, new_state = bn.apply(params, x, state=state, train=True)
    np.testing.assert_allclose(np.mean(y, 0), 0, atol=1e-5)
    np.testing.assert_allclose(np.var(y, 0), x.var(0) / (x.var(0) + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(new_state["moving_mean"], 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new_state["moving_variance"], 0.9 + 0.1 * x.var(0), rtol=1e-5)

    params = {"gamma": np.full(4, 2.0, np.float32), "beta": np.full(4, 0.5, np.float32)}
    y, same = bn.apply(params, x, state=new_state, train=False)
    mm, mv = new_state["moving_mean"], new_state["moving_variance"]
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + 1e-3) * 2 + 0.5, rtol=1e-5, atol=1e-6)
    assert same is new_state
    with pytest.raises(ValueError, match="state="):
        bn.apply(params, x)


def test_batch_norm_moving_averages_converge_in_a_model():
    model = nn.Sequential([nn.Dense(3), nn.BatchNorm(momentum=0.5)])
    params, state = model.init(KEY, (2,))
    assert list(state) == ["batch_norm1"]
    x = rng.standard_normal((256, 2)).astype(np.float32)
    h = np.asarray(x @ params["dense1"]["kernel"])
    step = tracejit.jit(lambda p, s, x: model.apply(p, x, state=s, train=True),
                        backend="reference")
    for _ in range(30):
        _, state = step(params, state, x)
    np.testing.assert_allclose(state["batch_norm1"]["moving_mean"], h.mean(0), atol=1e-5)
    np.testing.assert_allclose(state["batch_norm1"]["moving_variance"], h.var(0), rtol=1e-4)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.5)
    x = np.ones((100, 100), np.float32)
    assert drop.apply({}, x) is x
    y = np.asarray(drop.apply({}, x, train=True, key=random.key(3)))
    assert 0.45 < np.mean(y == 0) < 0.55 and set(np.unique(y)) == {0.0, 2.0}
    with pytest.raises(ValueError, match="key"):
        drop.apply({}, x, train=True)
    model = nn.Sequential([nn.Dropout(0.5), nn.Dense(4), nn.Dropout(0.5)])
    p = model.init(KEY, (10,))
    a = model.apply(p, x[:, :10], train=True, key=random.key(1))
    b = model.apply(p, x[:, :10], train=True, key=random.key(2))
    assert not np.allclose(a, b)       # each layer and each key draws its own mask
    np.testing.assert_allclose(model.apply(p, x[:, :10]), x[:, :10] @ p["dense1"]["kernel"], rtol=1e-5)


def test_residual_unit_identity_and_projection():
    x = rng.standard_normal((2, 8, 8, 16)).astype(np.float32)
    same = nn.ResidualUnit(16)
    params, state = same.init(KEY, (8, 8, 16))
    assert set(params) == {"main"} and not same.projects((8, 8, 16))
    assert shapes(params["main"]) == {
        "batch_norm1/beta": (16,), "batch_norm1/gamma": (16,), "conv1/kernel": (3, 3, 16, 16),
        "batch_norm2/beta": (16,), "batch_norm2/gamma": (16,), "conv2/kernel": (3, 3, 16, 16)}
    y, new_state = same.apply(params, x, state=state, train=True)
    assert y.shape == x.shape and np.all(np.asarray(y) >= 0)
    # with the last batch norm's scale at zero the main path vanishes: y = relu(x)
    params["main"]["batch_norm2"]["gamma"] = np.zeros(16, np.float32)
    y, _ = same.apply(params, x, state=state, train=False)
    np.testing.assert_allclose(y, np.maximum(x, 0), atol=1e-6)

    down = nn.ResidualUnit(32, strides=2)
    params, state = down.init(KEY, (8, 8, 16))
    assert shapes(params["shortcut"]) == {"conv1/kernel": (1, 1, 16, 32),
                                          "batch_norm1/beta": (32,), "batch_norm1/gamma": (32,)}
    assert set(state) == {"main", "shortcut"}
    y, new_state = down.apply(params, x, state=state, train=True)
    assert y.shape == (2, 4, 4, 32) and down.output_shape((8, 8, 16)) == (4, 4, 32)
    assert tree_map(np.shape, new_state) == tree_map(np.shape, state)
    # a new depth at stride 1 also projects
    assert nn.ResidualUnit(32).projects((8, 8, 16))


def test_inception_module_channels():
    # GoogLeNet's inception (3a): 64 + 128 + 32 + 32 = 256 maps
    module = nn.Inception(64, 96, 128, 16, 32, 32)
    assert module.output_shape((28, 28, 192)) == (28, 28, 256)
    small = nn.Inception(4, 3, 5, 2, 3, 6)
    params = small.init(KEY, (7, 7, 8))
    assert sorted(params) == ["branch_1x1", "branch_3x3", "branch_5x5", "branch_pool"]
    assert shapes(params["branch_5x5"])["conv2/kernel"] == (5, 5, 2, 3)
    assert shapes(params["branch_pool"])["conv1/kernel"] == (1, 1, 8, 6)
    x = rng.standard_normal((2, 7, 7, 8)).astype(np.float32)
    y = np.asarray(small.apply(params, x))
    assert y.shape == (2, 7, 7, 4 + 5 + 3 + 6)
    b = params["branch_1x1"]["conv1"]
    np.testing.assert_allclose(y[..., :4], np.maximum(np.asarray(nn.conv2d(x, b["kernel"])) + b["bias"], 0),
                               rtol=1e-5, atol=1e-6)
    assert nn.count_params(params) == sum(k * k * i * o + o for k, i, o in [
        (1, 8, 4), (1, 8, 3), (3, 3, 5), (1, 8, 2), (5, 2, 3), (1, 8, 6)])


def test_stateless_and_stateful_conventions():
    stateless = nn.Sequential([nn.Dense(2)])
    params = stateless.init(KEY, (3,))
    assert isinstance(params, dict) and not stateless.has_state
    x = np.ones((1, 3), np.float32)
    y, s = stateless.apply(params, x, state={})        # generic code may pass state
    assert s == {} and np.array_equal(y, stateless.apply(params, x))
    stateful = nn.Sequential([nn.Dense(2), nn.Sequential([nn.BatchNorm()])])
    assert stateful.has_state
    params, state = stateful.init(KEY, (3,))
    assert names(state) == ["sequential1/batch_norm1/moving_mean",
                            "sequential1/batch_norm1/moving_variance"]


def test_jitted_conv_net_training_step_lowers_the_loss():
    """Default backend: forward, grad and optimizer update compiled into one step."""
    model = nn.Sequential([nn.Conv2D(8, 3, padding="SAME", activation="relu"), nn.BatchNorm(),
                           nn.MaxPool2D(2), nn.Dropout(0.1), nn.Flatten(), nn.Dense(4)])
    params, state = model.init(KEY, (8, 8, 1))
    opt = optim.adam(0.01)
    opt_state = opt.init(params)
    x = rng.standard_normal((32, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean((1, 2, 3)) > 0).astype(np.int32) + 2 * (x[:, :, :4].mean((1, 2, 3)) > 0)

    def loss_fn(params, state, x, y, key):
        logits, state = model.apply(params, x, state=state, train=True, key=key)
        return tnp.mean(nn.sparse_softmax_cross_entropy_with_logits(y, logits)), state

    @tracejit.jit
    def train_step(params, state, opt_state, x, y, key):
        (loss, state), grads = tracejit.value_and_grad(loss_fn, has_aux=True)(
            params, state, x, y, key)
        params, opt_state = opt.update(grads, opt_state, params)
        return params, state, opt_state, loss

    losses = []
    for i in range(40):
        params, state, opt_state, loss = train_step(params, state, opt_state, x, y,
                                                    random.fold_in(KEY, i))
        losses.append(float(loss))
    assert train_step.trace_count == 1
    assert math.isfinite(losses[-1]) and losses[-1] < 0.5 * losses[0]
    assert int(opt_state["step"]) == 40
    logits, _ = model.apply(params, x, state=state, train=False)
    assert np.mean(np.argmax(np.asarray(logits), 1) == y) > 0.8


def test_gradients_flow_to_every_parameter():
    model = nn.Sequential([nn.ResidualUnit(4, strides=2), nn.Inception(2, 2, 2, 2, 2, 2),
                           nn.GlobalAvgPool2D(), nn.Dense(3)])
    params, state = model.init(KEY, (6, 6, 3))
    x = rng.standard_normal((4, 6, 6, 3)).astype(np.float32)

    def loss(params):
        y, _ = model.apply(params, x, state=state, train=True)
        return tnp.sum(tnp.square(y))
    grads = tracejit.jit(tracejit.grad(loss), backend="reference")(params)
    assert names(grads) == names(params)
    for name, g in tree_flatten_with_path(grads):
        assert np.all(np.isfinite(g)) and np.any(g != 0), name


def test_models_and_optimizers_plug_into_train_fit():
    """The params/state convention is the one tracejit.train expects."""
    from tracejit import train
    from tracejit.data import load_digits
    (x, y), (xt, yt) = load_digits()
    model = nn.Sequential([nn.Dense(32, "elu", kernel_initializer="he_normal"), nn.BatchNorm(),
                           nn.Dropout(0.2), nn.Dense(10)])
    opt = optim.momentum(optim.exponential_decay(0.05, 100, 0.5), 0.9)
    result = train.fit(model, opt, (x[:400], y[:400]), epochs=2, batch_size=40,
                       validation_data=(xt[:200], yt[:200]), backend="reference", verbose=False)
    h = result.history
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.6
    assert names(result.state.model_state) == ["batch_norm1/moving_mean",
                                               "batch_norm1/moving_variance"]
    assert int(result.state.opt_state["step"]) == 20


def test_cifar10_initial_loss_matches_the_tutorial_log():
    """D7: with the reference code's initializers, ln 10 plus weight decay
    0.004 * l2_loss of local3/local4 (sigma 0.04, truncated) gives 4.68."""
    tn = nn.initializers.truncated_normal
    lrn = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    model = nn.Sequential([
        nn.Conv2D(64, 5, 1, "SAME", activation="relu", kernel_initializer=tn(stddev=5e-2)),
        nn.MaxPool2D(3, 2, "SAME"), nn.LocalResponseNorm(**lrn),
        nn.Conv2D(64, 5, 1, "SAME", activation="relu", kernel_initializer=tn(stddev=5e-2),
                  bias_initializer=nn.initializers.constant(0.1)),
        nn.LocalResponseNorm(**lrn), nn.MaxPool2D(3, 2, "SAME"), nn.Flatten(),
        nn.Dense(384, "relu", kernel_initializer=tn(stddev=0.04),
                 bias_initializer=nn.initializers.constant(0.1), name="local3"),
        nn.Dense(192, "relu", kernel_initializer=tn(stddev=0.04),
                 bias_initializer=nn.initializers.constant(0.1), name="local4"),
        nn.Dense(10, kernel_initializer=tn(stddev=1 / 192.0), name="softmax_linear")])
    params = model.init(KEY, (24, 24, 3))
    x = rng.standard_normal((64, 24, 24, 3)).astype(np.float32)   # standardized images
    y = rng.integers(0, 10, 64).astype(np.int32)
    cross_entropy = float(tnp.mean(nn.sparse_softmax_cross_entropy_with_logits(
        y, model.apply(params, x))))
    decay = float(optim.l2_penalty(params, 0.004, r"^local[34]/kernel$"))
    assert cross_entropy == pytest.approx(math.log(10), abs=0.03)   # random labels
    assert decay == pytest.approx(2.373, abs=0.01)
    assert cross_entropy + decay == pytest.approx(4.68, abs=0.03)
