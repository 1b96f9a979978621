"""Initializers: empirical standard deviations and ranges over many draws
against the formulas of Table 11-1 (numbers worked out in FEATURES.md D27
for a 784 -> 300 layer)."""
import math

import numpy as np
import pytest

import tracejit
from tracejit import random
from tracejit.nn import initializers as init

KEY = random.key(42)
DENSE = (784, 300)      # 235,200 draws: a sample std is within 0.5% with huge odds


def stats(w):
    w = np.asarray(w, np.float64)
    return w.std(), np.abs(w).max(), w.mean()


def test_constant_initializers():
    np.testing.assert_array_equal(init.zeros(KEY, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones(KEY, (4,)), np.ones(4))
    w = init.constant(0.1)(KEY, (3, 2))
    assert w.dtype == np.float32 and np.all(w == np.float32(0.1))
    assert init.zeros(KEY, (2,), np.float64).dtype == np.float64


def test_fans_as_tensorflow():
    assert init.compute_fans((784, 300)) == (784, 300)
    assert init.compute_fans((5, 5, 3, 64)) == (75, 1600)
    assert init.compute_fans((3, 3, 3, 16, 8)) == (27 * 16, 27 * 8)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.compute_fans(()) == (1, 1)


@pytest.mark.parametrize("name, std, limit", [
    # Table 11-1 / D27: Xavier uniform r = sqrt(6 / (784 + 300)) = 0.074398
    ("glorot_uniform", 0.074398 / math.sqrt(3), 0.074398),
    ("xavier_uniform", 0.074398 / math.sqrt(3), 0.074398),
    # Xavier normal sigma = sqrt(2 / 1084) = 0.042954 (truncated at 2 sigma, corrected)
    ("glorot_normal", 0.042954, 2 * 0.042954 / 0.8796),
    ("xavier_normal", 0.042954, 2 * 0.042954 / 0.8796),
    # He: sigma = sqrt(2 / 784) = 0.050508, r = sqrt(6 / 784) = 0.087482
    ("he_normal", 0.050508, 2 * 0.050508 / 0.8796),
    ("he_uniform", 0.087482 / math.sqrt(3), 0.087482),
    # LeCun: sigma = sqrt(1 / 784) = 1 / 28
    ("lecun_normal", 1 / 28, 2 / 28 / 0.8796),
    ("lecun_uniform", math.sqrt(3 / 784) / math.sqrt(3), math.sqrt(3 / 784)),
])
def test_named_initializers_match_table_11_1(name, std, limit):
    w = init.get(name)(KEY, DENSE)
    assert w.shape == DENSE and w.dtype == np.float32
    s, m, mean = stats(w)
    assert s == pytest.approx(std, rel=0.01)
    assert m <= limit * (1 + 1e-6)
    assert m >= 0.97 * limit          # the tails are reached
    assert abs(mean) < 0.01 * std


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
def test_variance_scaling_on_a_conv_kernel(mode, distribution):
    shape, scale = (5, 5, 16, 32), 2.0
    fan = {"fan_in": 400, "fan_out": 800, "fan_avg": 600}[mode]
    sigma = math.sqrt(scale / fan)
    w = init.variance_scaling(scale, mode, distribution)(KEY, shape)
    s, m, _ = stats(w)
    assert s == pytest.approx(sigma, rel=0.02)            # 12,800 draws
    if distribution == "uniform":
        assert m <= math.sqrt(3 * scale / fan)
    elif distribution == "truncated_normal":
        assert m <= 2 * sigma / 0.87962566103423978 * (1 + 1e-6)
    else:
        assert m > 3 * sigma                                # not truncated


def test_variance_scaling_tanh_and_relu_variants_of_table_11_1():
    # Table 11-1: tanh uses 4x the logistic uniform range, i.e. scale 16 in variance
    r = math.sqrt(6 / 1084)
    w = init.variance_scaling(16.0, "fan_avg", "uniform")(KEY, DENSE)
    assert stats(w)[1] == pytest.approx(4 * r, rel=0.01)
    w = init.variance_scaling(2.0, "fan_avg", "normal")(KEY, DENSE)   # ReLU: sqrt(2) x sigma
    assert stats(w)[0] == pytest.approx(math.sqrt(2) * 0.042954, rel=0.01)


def test_distribution_initializers():
    w = init.truncated_normal(stddev=0.04)(KEY, DENSE)
    s, m, _ = stats(w)
    assert s == pytest.approx(0.8796 * 0.04, rel=0.01)       # D27: truncation shrinks sigma
    assert m <= 0.08 * (1 + 1e-6)
    w = init.random_normal(1.0, 0.5)(KEY, DENSE)
    assert stats(w)[0] == pytest.approx(0.5, rel=0.01)
    assert float(np.mean(w)) == pytest.approx(1.0, abs=0.005)
    w = np.asarray(init.random_uniform(-3.0, 2.0)(KEY, DENSE))
    assert w.min() >= -3 and w.max() < 2 and w.min() < -2.99 and w.max() > 1.99
    assert init.random_uniform()(KEY, (10,), np.float64).dtype == np.float64


def test_reproducible_from_the_key_and_traceable():
    he = init.he_normal()
    np.testing.assert_array_equal(he(KEY, (30, 20)), he(KEY, (30, 20)))
    assert not np.array_equal(he(KEY, (30, 20)), he(random.key(1), (30, 20)))
    jitted = tracejit.jit(lambda k: he(k, (30, 20)), backend="reference")
    np.testing.assert_allclose(jitted(KEY), he(KEY, (30, 20)), rtol=1e-6)


def test_get_and_argument_errors():
    assert init.get("zeros") is init.zeros
    assert init.get(init.ones) is init.ones
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get("glorot")
    with pytest.raises(ValueError, match="mode"):
        init.variance_scaling(mode="fan_max")
    with pytest.raises(ValueError, match="distribution"):
        init.variance_scaling(distribution="cauchy")
