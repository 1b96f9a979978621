"""Learning-rate schedules give their documented values, traced or not, and
performance scheduling reduces the rate on plateaus without recompiling."""
import functools
import math

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import optim


def values(schedule, steps):
    return [float(schedule(np.int32(s))) for s in steps]


def test_piecewise_constant():
    # the book: eta0 = 0.1, then 0.001 after 50 epochs (of 100 steps here)
    lr = optim.piecewise_constant([5000], [0.1, 0.001])
    np.testing.assert_allclose(values(lr, [0, 5000, 5001, 10**6]), [0.1, 0.1, 0.001, 0.001],
                               rtol=1e-7)
    lr = optim.piecewise_constant([100, 200], [1.0, 0.5, 0.1])
    np.testing.assert_allclose(values(lr, [0, 100, 101, 200, 201]), [1, 1, 0.5, 0.5, 0.1],
                               rtol=1e-7)
    assert lr(np.int32(150)).dtype == np.float32
    with pytest.raises(ValueError, match="one more value"):
        optim.piecewise_constant([1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="increase"):
        optim.piecewise_constant([2, 1], [1.0, 2.0, 3.0])


def test_exponential_decay():
    # the book: eta(t) = eta0 * 10**(-t / r) with eta0 = 0.1, r = 10,000
    lr = optim.exponential_decay(0.1, 10_000, 0.1)
    np.testing.assert_allclose(values(lr, [0, 5000, 10_000, 20_000]),
                               [0.1, 0.1 * 10 ** -0.5, 0.01, 0.001], rtol=1e-6)
    # the CIFAR-10 tutorial: 0.1 decayed by 10 every 136,718 steps, staircase
    lr = optim.exponential_decay(0.1, 136_718, 0.1, staircase=True)
    np.testing.assert_allclose(values(lr, [0, 136_717, 136_718, 300_000]),
                               [0.1, 0.1, 0.01, 0.001], rtol=1e-6)
    with pytest.raises(ValueError, match="decay_steps"):
        optim.exponential_decay(0.1, 0, 0.5)(np.int32(1))


def test_inverse_time_decay_is_power_scheduling():
    # the book: eta(t) = eta0 * (1 + t / r)**-c
    lr = optim.inverse_time_decay(0.1, 100, 1.0)
    np.testing.assert_allclose(values(lr, [0, 100, 300]), [0.1, 0.05, 0.025], rtol=1e-6)
    lr = optim.inverse_time_decay(0.1, 100, 1.0, power=2)
    np.testing.assert_allclose(values(lr, [100, 300]), [0.025, 0.1 / 16], rtol=1e-6)
    # TensorFlow's inverse_time_decay: lr / (1 + decay_rate * t / decay_steps)
    lr = optim.inverse_time_decay(0.1, 100, 0.5, staircase=True)
    np.testing.assert_allclose(values(lr, [99, 100, 250]), [0.1, 0.1 / 1.5, 0.05], rtol=1e-6)


def test_schedules_trace_inside_jit():
    for schedule in (optim.piecewise_constant([3], [0.5, 0.25]),
                     optim.exponential_decay(1.0, 2, 0.5, staircase=True),
                     optim.inverse_time_decay(1.0, 2, 1.0)):
        jitted = tracejit.jit(schedule, backend="reference")
        for step in range(6):
            assert float(jitted(np.int32(step))) == pytest.approx(float(schedule(step)), rel=1e-6)
        assert jitted.trace_count == 1


def test_reduce_lr_on_plateau():
    plateau = optim.ReduceLROnPlateau(0.1, factor=0.5, patience=2, min_lr=0.02)
    rates = [plateau.update(v) for v in [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85]]
    #  best:                              1.0  0.9  wait1 wait2:/2 w1  0.8  w1    w2:/2 w1   w2:min
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02])
    assert plateau.learning_rate == 0.02


def test_reduce_lr_on_plateau_options():
    acc = optim.ReduceLROnPlateau(1.0, factor=0.1, patience=1, mode="max", cooldown=1)
    assert [acc.update(v) for v in [0.5, 0.6, 0.6, 0.6, 0.6, 0.7]] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])      # the evaluation after a cut is a cooldown
    tiny = optim.ReduceLROnPlateau(1.0, factor=0.5, patience=1, min_delta=0.1)
    assert [tiny.update(v) for v in [1.0, 0.95]] == [1.0, 0.5]   # 0.05 is no improvement
    restored = optim.ReduceLROnPlateau(1.0, factor=0.5, patience=1)
    restored.load_state_dict(tiny.state_dict())
    assert restored.learning_rate == 0.5 and restored.update(1.0) == 0.25   # best was 1.0
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(0.1, factor=2.0)


def test_performance_scheduling_feeds_a_compiled_step_without_recompiling():
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    y = 3 * x

    def loss(w):
        return tnp.mean(tnp.square(w * x - y))
    opt = optim.sgd(1.0)          # overridden by the plateau's rate

    @functools.partial(tracejit.jit, backend="reference")
    def step(w, state, lr):
        return opt.update(tracejit.grad(loss)(w), state, w, learning_rate=lr)

    plateau = optim.ReduceLROnPlateau(4.0, factor=0.5, patience=1)   # 4.0 diverges at first
    w, state = np.float32(0.0), opt.init(np.float32(0.0))
    for _ in range(30):
        w, state = step(w, state, np.float32(plateau.learning_rate))
        plateau.update(float(loss(w)))
    assert step.trace_count == 1
    assert plateau.learning_rate < 4.0 and math.isfinite(float(w))
    assert float(w) == pytest.approx(3.0, rel=1e-3)
