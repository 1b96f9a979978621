"""tracejit.random: Threefry known answers, the counter mapping, golden
streams, statistics of the samplers, and eager == jit."""
import numba
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.random as jr
from tracejit.primitives.random import threefry2x32, random_bits
from tracejit.random import _ndtri

N = 100_000
# A mean of N draws with standard deviation s is within 5 s / sqrt(N) of
# the truth except with probability 6e-7.
FIVE_SIGMA = 5 / np.sqrt(N)

# Random123's kat_vectors for threefry2x32_20: key, counter, result.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6b200159, 0x99ba4efe)),
    ((0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff), (0x1cb996fc, 0xbb002be7)),
    ((0x13198a2e, 0x03707344), (0x243f6a88, 0x85a308d3), (0xc4923a9c, 0x483df7a0)),
]


def _u32(*vs):
    return [np.array(v, dtype=np.uint32) for v in vs]


@pytest.mark.parametrize("key,ctr,want", KNOWN_ANSWERS)
def test_threefry_known_answers(key, ctr, want):
    with np.errstate(over="ignore"):
        y0, y1 = threefry2x32(*_u32(*key, *ctr))
    assert (int(y0), int(y1)) == want


@pytest.mark.parametrize("key,ctr,want", KNOWN_ANSWERS)
def test_threefry_njit_known_answers(key, ctr, want):
    y = numba.njit(threefry2x32)(*[np.uint32(v) for v in (*key, *ctr)])
    assert tuple(int(v) for v in y) == want


def test_threefry_njit_matches_numpy_bitwise():
    rng = np.random.default_rng(0)
    k0, k1, x0, x1 = rng.integers(0, 2 ** 32, size=(4, 1000), dtype=np.uint32)

    @numba.njit
    def kernel(k0, k1, x0, x1, out0, out1):
        for i in range(x0.shape[0]):
            out0[i], out1[i] = _njit_threefry(k0[i], k1[i], x0[i], x1[i])

    _njit_threefry = numba.njit(threefry2x32)
    out0, out1 = np.empty_like(x0), np.empty_like(x0)
    kernel(k0, k1, x0, x1, out0, out1)
    y0, y1 = threefry2x32(k0, k1, x0, x1)
    assert y0.dtype == np.uint32 and y1.dtype == np.uint32
    np.testing.assert_array_equal(out0, y0)
    np.testing.assert_array_equal(out1, y1)


def test_random_bits_counter_mapping():
    """bits[i] = y0 ^ y1 of threefry(key, (i >> 32, i & 0xffffffff)), i the
    row-major flat index: independent of the shape around it."""
    key = np.array([0x01234567, 0x89abcdef], dtype=np.uint32)
    bits = random_bits.impl(key, shape=(3, 5))[0]
    i = np.arange(15, dtype=np.uint32)
    y0, y1 = threefry2x32(key[0], key[1], np.zeros_like(i), i)
    np.testing.assert_array_equal(bits.ravel(), y0 ^ y1)
    np.testing.assert_array_equal(jr.bits(key, 40)[:15], bits.ravel())


# Golden streams: a fixed key gives these values forever (changing them
# changes every seeded experiment). They are JAX's (tests/random_jax checks
# many more against values recorded from JAX).
GOLDEN = {
    0: dict(
        bits=[4070199207, 4202968722, 1427181096, 2012915765],
        split=[[1797259609, 2579123966], [928981903, 3453687069]],
        fold_in7=[2716826189, 292468403],
        uniform32=[0.9476670026779175, 0.9785798788070679, 0.33229148387908936, 0.46866846084594727],
        uniform64=[0.41845711171638644, 0.21629545460551136, 0.9653214611189975],
        normal32=[1.622642159461975, 2.0252647399902344, -0.4335944354534149, -0.07861734926700592],
        normal64=[-0.20584213947964342, -0.7847657764467411, 1.8160866726679834],
        randint=[59, 25, 57, 53, 36, 7],
        permutation=[0, 1, 5, 6, 4, 3, 2, 7]),
    42: dict(
        bits=[2098992034, 2919706841, 2646866425, 2409546199],
        split=[[1832780943, 270669613], [64467757, 2916123636]],
        fold_in7=[2547012911, 1371500959],
        uniform32=[0.48870956897735596, 0.6797971725463867, 0.6162714958190918, 0.5610160827636719],
        uniform64=[0.4267275666499091, 0.015010069515314584, 0.5741444178995352],
        normal32=[-0.02830461598932743, 0.4671318531036377, 0.2957029640674591, 0.15354591608047485],
        normal64=[-0.18471174528191164, -2.1698245603977546, 0.1869355517938257],
        randint=[94, 49, 76, -1, 84, 19],
        permutation=[7, 4, 2, 5, 3, 6, 0, 1]),
}


@pytest.mark.parametrize("seed", [0, 42])
def test_golden_streams(seed):
    g, k = GOLDEN[seed], jr.key(seed)
    assert jr.bits(k, 4).tolist() == g["bits"]
    assert jr.split(k).tolist() == g["split"]
    assert jr.fold_in(k, 7).tolist() == g["fold_in7"]
    assert jr.uniform(k, 4).tolist() == g["uniform32"]
    assert jr.uniform(k, 3, dtype=np.float64).tolist() == g["uniform64"]
    # normal goes through log/sqrt: pinned to the last few ulps only
    np.testing.assert_allclose(jr.normal(k, 4), g["normal32"], rtol=1e-6)
    np.testing.assert_allclose(jr.normal(k, 3, dtype=np.float64), g["normal64"], rtol=1e-14)
    assert jr.randint(k, (6,), -5, 100).tolist() == g["randint"]
    assert jr.permutation(k, 8).tolist() == g["permutation"]


def test_key_from_seed():
    assert jr.key(0).tolist() == [0, 0] and jr.key(42).tolist() == [0, 42]
    assert jr.key(2 ** 40 + 5).tolist() == [256, 5]
    assert jr.key(-1).tolist() == [2 ** 32 - 1, 2 ** 32 - 1]
    assert jr.PRNGKey is jr.key
    f = tracejit.jit(jr.key, backend="reference")
    for seed in [np.int32(-1), np.int32(7), np.int64(2 ** 40 + 5), np.int64(-2 ** 35)]:
        assert f(seed).tolist() == jr.key(int(seed)).tolist()


def test_uniform_is_the_mantissa_trick():
    k = jr.key(3)
    b = jr.bits(k, 1000)
    want = ((b >> 9) | 0x3F800000).view(np.float32) - np.float32(1)
    u = jr.uniform(k, 1000)
    assert u.dtype == np.float32
    np.testing.assert_array_equal(u, want)
    i = np.arange(1000, dtype=np.uint32)
    y0, y1 = threefry2x32(k[0], k[1], np.zeros_like(i), i)   # JAX's 64 bits: y0 << 32 | y1
    m = (y0.astype(np.uint64) << np.uint64(20)) | (y1.astype(np.uint64) >> np.uint64(12))
    want64 = (m | np.uint64(0x3FF0000000000000)).view(np.float64) - 1.0
    np.testing.assert_array_equal(jr.uniform(k, 1000, dtype=np.float64), want64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(dtype):
    u = jr.uniform(jr.key(1), (N,), dtype)
    assert u.dtype == dtype and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < FIVE_SIGMA * np.sqrt(1 / 12)
    assert abs(u.var() - 1 / 12) < FIVE_SIGMA * np.sqrt(1 / 180)
    v = jr.uniform(jr.key(1), (N,), dtype, minval=-3.0, maxval=-1.0)
    assert v.min() >= -3 and v.max() < -1
    assert abs(v.mean() + 2) < FIVE_SIGMA * np.sqrt(4 / 12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(dtype):
    z = jr.normal(jr.key(2), (N,), dtype)
    assert z.dtype == dtype and np.isfinite(z).all()
    assert abs(z.mean()) < FIVE_SIGMA
    assert abs(z.var() - 1) < FIVE_SIGMA * np.sqrt(2)
    assert abs((z ** 3).mean()) < FIVE_SIGMA * np.sqrt(15)   # skewness 0
    assert abs((z ** 4).mean() - 3) < FIVE_SIGMA * np.sqrt(96)   # kurtosis 3


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-14), (np.float32, 2e-6)])
def test_inverse_normal_cdf_accuracy(dtype, rtol):
    p = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 10001),
                        np.geomspace(1e-300 if dtype == np.float64 else 1e-7, 1e-2, 500)])
    p = p.astype(dtype)
    got = _ndtri(p)
    want = scipy.special.ndtri(p.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def test_split_keys_give_independent_streams():
    k1, k2 = jr.split(jr.key(5))
    k3 = jr.fold_in(jr.key(5), 7)   # fold_in(k, i) is split(k, n)[i], as in JAX
    streams = [jr.uniform(k, (N,), np.float64) for k in (k1, k2, k3)]
    streams.append(jr.uniform(jr.split(k1, 3)[2], (N,), np.float64))
    c = np.corrcoef(np.stack(streams))
    off_diagonal = c[~np.eye(len(streams), dtype=bool)]
    assert np.abs(off_diagonal).max() < FIVE_SIGMA
    # neighbouring elements of one stream are uncorrelated too
    u = streams[0]
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < FIVE_SIGMA


def test_split_and_fold_in_give_distinct_keys():
    keys = jr.split(jr.key(0), 1000)
    assert keys.shape == (1000, 2) and keys.dtype == np.uint32
    assert len({tuple(k) for k in keys.tolist()}) == 1000
    folded = {tuple(jr.fold_in(jr.key(a), b).tolist()) for a in range(20) for b in range(20)}
    assert len(folded) == 400   # in particular fold_in(key(a), b) != fold_in(key(b), a)
    # JAX's partitionable scheme: key i of a split is the fold-in of i
    np.testing.assert_array_equal(jr.split(jr.key(3), 5)[4], jr.fold_in(jr.key(3), 4))


def test_bernoulli_rate():
    for p in (0.3, 0.95):
        x = jr.bernoulli(jr.key(6), p, (N,))
        assert x.dtype == np.bool_
        assert abs(x.mean() - p) < FIVE_SIGMA * np.sqrt(p * (1 - p))
    probs = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    x = jr.bernoulli(jr.key(7), probs, (N // 10, 3))
    assert not x[:, 0].any() and x[:, 2].all()


def test_truncated_normal_bounds_and_moments():
    z = jr.truncated_normal(jr.key(8), shape=(N,))
    assert z.dtype == np.float32 and z.min() >= -2 and z.max() <= 2
    # variance of N(0, 1) truncated to [-2, 2]
    phi2 = np.exp(-2.0) / np.sqrt(2 * np.pi)
    var = 1 - 4 * phi2 / scipy.special.erf(np.sqrt(2.0))
    assert abs(z.mean()) < FIVE_SIGMA
    assert abs(z.var() - var) < FIVE_SIGMA * np.sqrt(2)
    y = jr.truncated_normal(jr.key(9), 0.5, 1.0, (N,), np.float64)
    assert y.dtype == np.float64 and y.min() >= 0.5 and y.max() <= 1.0
    assert abs(np.median(y) - scipy.special.ndtri(
        (scipy.special.ndtr(0.5) + scipy.special.ndtr(1.0)) / 2)) < 0.01


def test_randint_range_and_uniformity():
    x = jr.randint(jr.key(10), (N,), -3, 7)
    assert x.dtype == np.int32 and x.min() == -3 and x.max() == 6
    counts = np.bincount(x + 3, minlength=10)
    assert np.abs(counts - N / 10).max() < 5 * np.sqrt(N * 0.1 * 0.9)
    y = jr.randint(jr.key(11), (1000,), 0, 2 ** 31 - 1, dtype=np.int64)
    assert y.dtype == np.int64 and y.min() >= 0 and y.max() < 2 ** 31 - 1
    assert y.max() > 2 ** 30   # the whole range is reached
    assert (jr.randint(jr.key(12), (10,), 5, 5) == 5).all()   # empty range -> minval


def test_permutation_is_a_permutation():
    for n in (1, 2, 10, 5000):
        p = jr.permutation(jr.key(n), n)
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    x = np.arange(12.0).reshape(4, 3)
    px = jr.permutation(jr.key(1), x)
    assert sorted(map(tuple, px.tolist())) == sorted(map(tuple, x.tolist()))
    py = jr.permutation(jr.key(1), x, axis=1)
    np.testing.assert_array_equal(np.sort(py, axis=1), x)
    perms = {tuple(jr.permutation(jr.key(s), 6).tolist()) for s in range(50)}
    assert len(perms) > 40


def test_permutation_positions_are_uniform():
    n, trials = 5, 1000
    first_of = tracejit.jit(lambda k: jr.permutation(k, n)[0], backend="reference")
    first = np.array([first_of(k) for k in jr.split(jr.key(13), trials)])
    counts = np.bincount(first, minlength=n)
    assert np.abs(counts - trials / n).max() < 5 * np.sqrt(trials * 0.2 * 0.8)


def _samplers(k):
    return dict(bits=jr.bits(k, (2, 3)), split=jr.split(k, 3), fold=jr.fold_in(k, 9),
                u32=jr.uniform(k, (7,)), u64=jr.uniform(k, (7,), np.float64, -1.0, 2.0),
                n32=jr.normal(k, (7,)), n64=jr.normal(k, (3, 2), np.float64),
                t=jr.truncated_normal(k, -1.0, 2.0, (7,)), b=jr.bernoulli(k, 0.4, (7,)),
                ri=jr.randint(k, (7,), -4, 9), perm=jr.permutation(k, 9),
                perm_x=jr.permutation(k, np.arange(8.0)))


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2 ** 63 - 1))
def test_eager_equals_jit_with_traced_key(seed):
    k = jr.key(seed)
    eager = _samplers(k)
    jitted = tracejit.jit(_samplers, backend="reference")(k)
    for name in eager:
        assert jitted[name].dtype == eager[name].dtype, name
        np.testing.assert_array_equal(jitted[name], eager[name], err_msg=name)


def test_traced_fold_in_data_and_bounds():
    k = jr.key(4)

    def f(k, step, lo, hi):
        k2 = jr.fold_in(k, step)
        return k2, jr.uniform(k2, (5,), minval=lo, maxval=hi), jr.randint(k2, (5,), lo, hi)

    lo, hi = np.float32(2.0), np.float32(9.0)
    want = f(k, 3, lo, hi)
    got = tracejit.jit(f, backend="reference")(k, np.int32(3), lo, hi)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_keys_flow_through_a_jitted_loop():
    @tracejit.jit(backend="reference")
    def step(key, x):
        key, sub = jr.split(key)
        return key, x + jr.normal(sub, x.shape)

    key, x = jr.key(0), np.zeros(3, np.float32)
    for _ in range(3):
        key, x = step(key, x)
    key2, y = jr.key(0), np.zeros(3, np.float32)
    for _ in range(3):
        key2, sub = jr.split(key2)
        y = y + jr.normal(sub, (3,))
    np.testing.assert_array_equal(key, key2)
    np.testing.assert_allclose(x, y, rtol=1e-6)


def test_bad_keys_are_rejected():
    with pytest.raises(tracejit.DTypeError, match="uint32"):
        jr.uniform(np.array([0, 1]), (3,))
    with pytest.raises(tracejit.DTypeError, match="uint32"):
        jr.normal(jr.split(jr.key(0)), (3,))
    with pytest.raises(tracejit.DTypeError, match="float"):
        jr.uniform(jr.key(0), (3,), dtype=np.int32)
