"""Optimizers against the update equations worked by hand, on least squares
under jit + grad; clipping, penalties, max-norm, moving averages, freezing
and chaining."""
import functools
import math

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import optim
from tracejit.tree import tree_flatten_with_path

rng = np.random.default_rng(0)


def run(opt, steps=3, theta=1.0):
    """Minimize f(theta) = theta**2 (gradient 2 theta) from theta = 1, in float64."""
    params = {"w": np.array(theta)}
    state = opt.init(params)
    path = []
    for _ in range(steps):
        params, state = opt.update({"w": 2 * params["w"]}, state, params)
        path.append(float(params["w"]))
    return path, state


# The expected values, worked out from the book's equations with g = 2 theta:
#   sgd(0.1):           theta <- theta - 0.1 g: 1 -> 0.8 -> 0.64 -> 0.512
#   momentum(0.1, 0.9): m = 0.2, theta = 0.8; m = 0.18 + 0.16 = 0.34, theta = 0.46;
#                       m = 0.306 + 0.092 = 0.398, theta = 0.062
#   nesterov:           theta <- theta - 0.9 m_new - 0.1 g: m = 0.2, theta = 1 - 0.18 - 0.2
#                       = 0.62; g = 1.24, m = 0.304, theta = 0.62 - 0.2736 - 0.124 = 0.2224;
#                       g = 0.4448, m = 0.31808, theta = 0.2224 - 0.286272 - 0.04448
#   adagrad(0.1):       s = 0.1 + 4 = 4.1, theta = 1 - 0.2 / sqrt(4.1) = 0.90122704; ...
#   rmsprop(0.01):      s = 0.1 * 4 = 0.4, theta = 1 - 0.02 / sqrt(0.4) = 0.96837722; ...
#   rmsprop momentum .5: the second step adds 0.5 * 0.0316228 to the RMSProp step
#   adam(0.1):          m_hat = 2, v_hat = 4: theta = 1 - 0.1 * 2 / (2 + 1e-8) = 0.9; ...
HAND = [
    (optim.sgd(0.1), [0.8, 0.64, 0.512]),
    (optim.momentum(0.1, 0.9), [0.8, 0.46, 0.062]),
    (optim.momentum(0.1, 0.9, use_nesterov=True), [0.62, 0.2224, -0.108352]),
    (optim.adagrad(0.1), [0.9012270403, 0.8347372762, 0.7822991937]),
    (optim.rmsprop(0.01), [0.9683772234, 0.9457880247, 0.9270530978]),
    (optim.rmsprop(0.01, momentum=0.5), [0.9683772234, 0.9299766364, 0.8922464832]),
    (optim.adam(0.1), [0.9000000005, 0.8004122287, 0.7015862729]),
]


@pytest.mark.parametrize("opt, expected", HAND, ids=lambda v: repr(v) if not isinstance(v, list) else "")
def test_first_three_updates_by_hand(opt, expected):
    path, state = run(opt)
    np.testing.assert_allclose(path, expected, rtol=1e-9, atol=1e-12)
    assert int(state["step"]) == 3


def test_state_layout_and_defaults():
    params = {"dense1": {"kernel": np.ones((2, 3), np.float32), "bias": np.zeros(3, np.float32)}}
    state = optim.adam().init(params)
    assert [n for n, _ in tree_flatten_with_path(state)] == [
        "m/dense1/bias", "m/dense1/kernel", "step", "v/dense1/bias", "v/dense1/kernel"]
    assert state["step"].dtype == np.int32
    adagrad = optim.adagrad(0.1).init(params)["accumulator"]["dense1"]["kernel"]
    np.testing.assert_array_equal(adagrad, np.full((2, 3), 0.1, np.float32))
    assert set(optim.rmsprop(0.1).init(params)) == {"step", "rms"}
    assert set(optim.rmsprop(0.1, momentum=0.9).init(params)) == {"step", "rms", "momentum"}
    adam = optim.adam()
    assert (adam.learning_rate, adam.hyperparameters) == (
        0.001, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8})
    assert repr(optim.momentum(0.1)) == "momentum(learning_rate=0.1, momentum=0.9, use_nesterov=False)"


def test_nesterov_is_the_book_algorithm_seen_at_its_look_ahead_point():
    """Equation 11-5 measures the gradient ahead of theta along the momentum;
    the optimizer holds that look-ahead point, theta - beta * m."""
    a = np.array([1.0, 10.0])                 # f = sum(a * theta**2) / 2, gradient a * theta
    theta, m, beta, lr = np.array([1.0, -2.0]), np.zeros(2), 0.9, 0.05
    opt = optim.momentum(lr, beta, use_nesterov=True)
    params = {"w": theta - beta * m}
    state = opt.init(params)
    for _ in range(20):
        m = beta * m + lr * a * (theta - beta * m)
        theta = theta - m
        params, state = opt.update({"w": a * params["w"]}, state, params)
        np.testing.assert_allclose(params["w"], theta - beta * m, rtol=1e-10, atol=1e-12)


def test_momentum_terminal_velocity():
    """D24: with a constant gradient the step tends to lr * g / (1 - beta) = 10 lr g."""
    opt = optim.momentum(0.01, 0.9)
    params, state = {"w": np.array(0.0)}, None
    state = opt.init(params)
    for _ in range(300):
        before = float(params["w"])
        params, state = opt.update({"w": np.array(1.0)}, state, params)
    assert before - float(params["w"]) == pytest.approx(0.1, rel=1e-9)


def test_adam_first_step_is_about_lr_times_sign():
    """D25: m_hat = g and v_hat = g**2, so the first step is -lr g / (|g| + eps)."""
    g = np.array([1e-3, -2.0, 50.0, 0.0])
    params = {"w": np.zeros(4)}
    new, _ = optim.adam().update({"w": g}, optim.adam().init(params), params)
    np.testing.assert_allclose(new["w"], -0.001 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def least_squares():
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) + 0.7
    params = {"kernel": np.zeros(4, np.float32), "bias": np.zeros((), np.float32)}

    def loss(params, x, y):
        return tnp.mean(tnp.square(x @ params["kernel"] + params["bias"] - y))
    return params, loss, x, y


@pytest.mark.parametrize("opt", [
    optim.sgd(0.1), optim.momentum(0.02, 0.9), optim.momentum(0.02, 0.9, use_nesterov=True),
    optim.adagrad(0.5), optim.rmsprop(0.02), optim.rmsprop(0.005, momentum=0.9),
    optim.adam(0.1), optim.sgd(optim.exponential_decay(0.2, 100, 0.5))], ids=repr)
def test_each_optimizer_solves_least_squares(opt):
    params, loss, x, y = least_squares()

    @functools.partial(tracejit.jit, backend="reference")
    def step(params, state, x, y):
        value, grads = tracejit.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value

    state = opt.init(params)
    first = float(loss(params, x, y))
    for _ in range(150):
        params, state, _ = step(params, state, x, y)
    assert float(loss(params, x, y)) < 1e-2 * first
    assert params["kernel"].dtype == np.float32 and step.trace_count == 1


def test_compiled_step_on_the_default_backend_matches_eager():
    params, loss, x, y = least_squares()
    opt = optim.adam(0.05)
    step = tracejit.jit(lambda p, s: opt.update(tracejit.grad(loss)(p, x, y), s, p))
    eager_p, eager_s = params, opt.init(params)
    p, s = params, opt.init(params)
    for _ in range(5):
        p, s = step(p, s)
        eager_p, eager_s = opt.update(tracejit.grad(loss)(eager_p, x, y), eager_s, eager_p)
    for (name, a), (_, b) in zip(tree_flatten_with_path(p), tree_flatten_with_path(eager_p)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


def test_schedule_is_evaluated_on_the_state_step():
    # piecewise: 0.1 for steps 0 and 1, then 0.01; sgd on f = theta**2 from 1
    opt = optim.sgd(optim.piecewise_constant([1], [0.1, 0.01]))
    path, _ = run(opt, steps=4)
    # 1 -> 0.8 -> 0.64 -> 0.64 * 0.98 = 0.6272 -> 0.614656
    np.testing.assert_allclose(path, [0.8, 0.64, 0.6272, 0.614656], rtol=1e-6)


def test_learning_rate_passed_in_does_not_recompile():
    params, loss, x, y = least_squares()
    opt = optim.momentum(0.1, 0.9)

    @functools.partial(tracejit.jit, backend="reference")
    def step(params, state, lr):
        return opt.update(tracejit.grad(loss)(params, x, y), state, params, learning_rate=lr)
    state = opt.init(params)
    g = np.asarray(tracejit.grad(loss)(params, x, y)["kernel"])
    for lr in (0.1, 0.05, 0.01):
        new, _ = step(params, state, np.float32(lr))
        np.testing.assert_allclose(new["kernel"], -lr * g, rtol=1e-6)
        assert new["kernel"].dtype == np.float32
    assert step.trace_count == 1
    new, _ = opt.update({"kernel": g, "bias": np.float32(0)}, state, params,
                        learning_rate=np.float64(0.5))
    assert new["kernel"].dtype == np.float32        # parameters keep their dtype


def test_mismatched_gradients_are_reported():
    opt = optim.sgd(0.1)
    params = {"a": np.ones(2), "b": np.ones(2)}
    with pytest.raises(ValueError, match="structure"):
        opt.update({"a": np.ones(2)}, opt.init(params), params)


# --- clipping, constraints, penalties ------------------------------------------------
def test_clip_by_value_and_global_norm():
    grads = {"a": np.array([3.0, -4.0]), "b": np.array([[12.0]])}     # global norm 13
    clipped = optim.clip_by_value(grads, -1.0, 1.0)
    np.testing.assert_array_equal(clipped["a"], [1, -1])
    assert float(optim.global_norm(grads)) == pytest.approx(13)
    half = optim.clip_by_global_norm(grads, 6.5)
    np.testing.assert_allclose(half["a"], [1.5, -2.0])
    np.testing.assert_allclose(half["b"], [[6.0]])
    same = optim.clip_by_global_norm(grads, 20.0)
    np.testing.assert_allclose(same["a"], grads["a"])
    f32 = optim.clip_by_global_norm({"w": np.ones(4, np.float32) * 3}, 1.0)
    assert f32["w"].dtype == np.float32 and float(optim.global_norm(f32)) == pytest.approx(1.0)


def test_clip_by_norm_over_axes():
    t = np.array([[3.0, 4.0], [0.3, 0.4]])
    np.testing.assert_allclose(optim.clip_by_norm(t, 1.0, axes=1), [[0.6, 0.8], [0.3, 0.4]])
    np.testing.assert_allclose(optim.clip_by_norm(t, 1.0), t / np.linalg.norm(t))


def test_max_norm_clips_each_units_incoming_weights():
    params = {"hidden1": {"kernel": rng.standard_normal((50, 8)) * 2, "bias": np.full(8, 9.0)},
              "conv1": {"kernel": rng.standard_normal((3, 3, 4, 6))}}
    params["hidden1"]["kernel"][:, 0] *= 0.01       # one column already small: untouched
    out = optim.max_norm(params, 1.0)
    columns = np.linalg.norm(out["hidden1"]["kernel"], axis=0)
    np.testing.assert_allclose(columns[1:], 1.0)
    np.testing.assert_allclose(out["hidden1"]["kernel"][:, 0], params["hidden1"]["kernel"][:, 0])
    np.testing.assert_array_equal(out["hidden1"]["bias"], 9.0)       # biases are not kernels
    per_filter = np.sqrt(np.sum(out["conv1"]["kernel"] ** 2, axis=(0, 1, 2)))
    np.testing.assert_allclose(per_filter, np.minimum(
        np.sqrt(np.sum(params["conv1"]["kernel"] ** 2, axis=(0, 1, 2))), 1.0))
    # the book's code: clip_by_norm(weights, threshold, axes=1), each row
    rows = optim.max_norm(params, 1.0, axes=1, pattern="hidden1/kernel")
    assert np.all(np.linalg.norm(rows["hidden1"]["kernel"], axis=1) <= 1 + 1e-12)
    np.testing.assert_array_equal(rows["conv1"]["kernel"], params["conv1"]["kernel"])


def test_penalties():
    params = {"dense1": {"kernel": np.array([[1.0, -2.0]]), "bias": np.array([5.0])},
              "dense2": {"kernel": np.array([3.0])}}
    assert float(optim.l1_penalty(params, 0.1)) == pytest.approx(0.1 * 6)
    assert float(optim.l2_penalty(params, 0.1)) == pytest.approx(0.1 * 14 / 2)
    assert float(optim.l2_penalty(params, 1.0, pattern=None)) == pytest.approx(39 / 2)
    assert float(optim.l1_penalty(params, 1.0, pattern=r"^dense2/")) == pytest.approx(3)
    grads = tracejit.grad(lambda p: optim.l2_penalty(p, 0.004))(params)
    np.testing.assert_allclose(grads["dense1"]["kernel"], 0.004 * params["dense1"]["kernel"])
    np.testing.assert_array_equal(grads["dense1"]["bias"], 0)
    with pytest.raises(ValueError, match="no parameter"):
        optim.l1_penalty(params, 1.0, pattern="conv")


def test_select_by_name():
    params = {"hidden1": {"kernel": 1, "bias": 2}, "hidden3": {"kernel": 3}, "outputs": {"kernel": 4}}
    assert optim.select(params, r"^(hidden[34]|outputs)/") == {"hidden3/kernel": 3,
                                                               "outputs/kernel": 4}
    assert list(optim.select(params, ["bias", "^outputs"])) == ["hidden1/bias", "outputs/kernel"]
    assert list(optim.select(params, lambda n: n.endswith("1/kernel"))) == ["hidden1/kernel"]


# --- moving averages ------------------------------------------------------------------
def test_exponential_moving_average():
    ema = optim.ExponentialMovingAverage(0.9)
    params = {"w": np.array([1.0, 2.0])}
    state = ema.init(params)
    params["w"][:] = 0          # the shadow is a copy
    state = ema.update(state, params)
    np.testing.assert_allclose(ema.average(state)["w"], [0.9, 1.8])      # 0.9 * shadow
    # num_updates form: decay min(0.9, (1 + 0) / (10 + 0)) = 0.1 at step 0
    state = ema.update(ema.init({"w": np.array([1.0])}), {"w": np.array([0.0])}, step=0)
    np.testing.assert_allclose(state["average"]["w"], [0.1])
    # at step 1000: min(0.9, 1001/1010) = 0.9
    state = ema.update(ema.init({"w": np.array([1.0])}), {"w": np.array([0.0])}, step=1000)
    np.testing.assert_allclose(state["average"]["w"], [0.9])


def test_ema_converges_to_the_parameters_under_jit():
    ema = optim.ExponentialMovingAverage(0.99)
    update = tracejit.jit(ema.update, backend="reference")
    state = ema.init({"w": np.zeros(3, np.float32)})
    target = {"w": np.array([1.0, -1.0, 2.0], np.float32)}
    for step in range(600):
        state = update(state, target, np.int32(step))
    np.testing.assert_allclose(ema.average(state)["w"], target["w"], rtol=1e-2)
    assert state["average"]["w"].dtype == np.float32


# --- freezing and chaining ------------------------------------------------------------
def model_params():
    return {"dense1": {"kernel": np.ones((3, 2), np.float32), "bias": np.zeros(2, np.float32)},
            "dense2": {"kernel": np.ones((2, 1), np.float32), "bias": np.zeros(1, np.float32)}}


def mlp_loss(params, x):
    h = tnp.tanh(x @ params["dense1"]["kernel"] + params["dense1"]["bias"])
    return tnp.sum(tnp.square(h @ params["dense2"]["kernel"] + params["dense2"]["bias"] - 1.0))


@pytest.mark.parametrize("make", [
    lambda opt: optim.freeze(opt, r"^dense1/"),
    lambda opt: optim.masked(opt, lambda name: not name.startswith("dense1")),
    lambda opt: optim.masked(opt, "^dense2/")])
def test_frozen_parameters_get_no_update_and_no_state(make):
    opt = make(optim.adam(0.1))
    params = model_params()
    state = opt.init(params)
    assert [n for n, _ in tree_flatten_with_path(state)] == [
        "m/dense2/bias", "m/dense2/kernel", "step", "v/dense2/bias", "v/dense2/kernel"]
    step = tracejit.jit(lambda p, s, x: opt.update(tracejit.grad(mlp_loss)(p, x), s, p),
                        backend="reference")
    x = rng.standard_normal((5, 3)).astype(np.float32)
    for _ in range(3):
        params, state = step(params, state, x)
    np.testing.assert_array_equal(params["dense1"]["kernel"], 1.0)
    np.testing.assert_array_equal(params["dense1"]["bias"], 0.0)
    assert not np.allclose(params["dense2"]["kernel"], 1.0)
    assert opt.learning_rate == 0.1


def test_masked_errors():
    with pytest.raises(ValueError, match="no parameter is trainable"):
        optim.masked(optim.sgd(0.1), "^conv").init(model_params())


def test_chain_clips_gradients_and_constrains_parameters():
    opt = optim.chain(functools.partial(optim.clip_by_value, clip_value_min=-0.5, clip_value_max=0.5),
                      optim.sgd(1.0),
                      functools.partial(optim.max_norm, threshold=0.8))
    params = {"dense": {"kernel": np.array([[0.0], [0.0]]), "bias": np.array([0.0])}}
    new, state = opt.update({"dense": {"kernel": np.array([[-3.0], [-4.0]]),
                                       "bias": np.array([-2.0])}}, opt.init(params), params)
    # clipped gradients -0.5, -0.5 -> kernel column [0.5, 0.5] (norm 0.707 <= 0.8), bias 0.5
    np.testing.assert_allclose(new["dense"]["kernel"], [[0.5], [0.5]])
    np.testing.assert_allclose(new["dense"]["bias"], [0.5])
    new, state = opt.update({"dense": {"kernel": np.array([[-3.0], [0.0]]),
                                       "bias": np.array([0.0])}}, state, new)
    np.testing.assert_allclose(np.linalg.norm(new["dense"]["kernel"]), 0.8)
    assert int(state["step"]) == 2 and opt.learning_rate == 1.0
    with pytest.raises(ValueError, match="exactly one optimizer"):
        optim.chain(optim.sgd(0.1), optim.adam())


def test_freeze_of_a_chain_with_global_norm_clipping_trains():
    params, loss, x, y = least_squares()
    opt = optim.freeze(optim.chain(functools.partial(optim.clip_by_global_norm, clip_norm=1.0),
                                   optim.momentum(0.05, 0.9)), "bias")
    state = opt.init(params)
    step = tracejit.jit(lambda p, s: opt.update(tracejit.grad(loss)(p, x, y), s, p),
                        backend="reference")
    first = float(loss(params, x, y))
    for _ in range(100):
        params, state = step(params, state)
    assert float(params["bias"]) == 0.0 and float(loss(params, x, y)) < 0.1 * first
    assert math.isfinite(float(loss(params, x, y)))
