"""The float16/bfloat16 conversions kernels use (tracejit/kernel/halfs.py),
compiled with Numba as the CPU backend compiles them, against NumPy's
float16 and ml_dtypes' bfloat16 casts: every 16-bit pattern widens exactly,
and float32 and float64 values round to nearest even (overflow to inf,
subnormals, signed zeros; NaN stays NaN)."""
import ml_dtypes
import numpy as np
import pytest
from numba import njit

from tracejit.backends.cpu import intrinsics
from tracejit.kernel import halfs

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # casts of inf/NaN samples

H = halfs.compiled(njit)
DTYPES = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


@njit
def _map_load(load, bits, out):
    for i in range(bits.size):
        out[i] = load(bits[i])


@njit
def _map_store(store, xs, out):
    for i in range(xs.size):
        out[i] = store(xs[i])


@njit
def _map_store64(store, odd, xs, out):
    for i in range(xs.size):
        out[i] = store(odd(xs[i]))


def _samples32():
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    f16_values = BITS.view(np.float16).astype(np.float32)
    bf16_values = BITS.view(ml_dtypes.bfloat16).astype(np.float32)
    # values half-way between neighbours (the ties) and just off them
    f16_mid = ((f16_values[:-1].astype(np.float64) + f16_values[1:]) / 2).astype(np.float32)
    bf16_mid = ((bf16_values[:-1].astype(np.float64) + bf16_values[1:]) / 2).astype(np.float32)
    mids = np.concatenate([f16_mid, bf16_mid])
    near = np.concatenate([np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, -np.inf)])
    edges = np.array([0.0, -0.0, 65504, 65519.996, 65520, -65520, 6e-8, 2.9802322e-08,
                      2.9802326e-08, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45], np.float32)
    return np.concatenate([random_bits.view(np.float32), f16_values, bf16_values, mids,
                           near, edges])


@pytest.mark.parametrize("name", ["f16", "bf16"])
def test_every_pattern_widens_exactly(name):
    out = np.empty(BITS.size, np.float32)
    _map_load(H[f"{name}_load"], BITS, out)
    want = BITS.view(DTYPES[name]).astype(np.float32)
    nan = np.isnan(want)
    assert np.isnan(out[nan]).all()
    np.testing.assert_array_equal(out[~nan].view(np.uint32), want[~nan].view(np.uint32))


@pytest.mark.parametrize("name", ["f16", "bf16"])
def test_float32_rounds_to_nearest_even(name):
    xs = _samples32()
    out = np.empty(xs.size, np.uint16)
    _map_store(H[f"{name}_store"], xs, out)
    with np.errstate(all="ignore"):
        want = xs.astype(DTYPES[name]).view(np.uint16)
    nan = np.isnan(xs)
    assert np.isnan(out[nan].view(DTYPES[name]).astype(np.float32)).all()
    bad = np.flatnonzero(out[~nan] != want[~nan])
    assert bad.size == 0, (xs[~nan][bad[:5]], out[~nan][bad[:5]], want[~nan][bad[:5]])


@pytest.mark.parametrize("name", ["f16", "bf16"])
def test_float64_rounds_once(name):
    """float64 -> float32 rounded to odd -> 16 bits is one correct rounding,
    where float64 -> float32 -> 16 bits would round twice."""
    rng = np.random.default_rng(1)
    base = np.concatenate([BITS.view(np.float16).astype(np.float64),
                           BITS.view(ml_dtypes.bfloat16).astype(np.float64)])
    base = base[np.isfinite(base)]
    ulp = np.spacing(base.astype(np.float32)).astype(np.float64)
    xs = np.concatenate([base * (1 + 2.0 ** -12) + ulp / 3, base + ulp / 2 ** 20,
                         rng.standard_normal(50_000) * 10.0 ** rng.integers(-40, 38, 50_000),
                         [1 + 2.0 ** -11 + 2.0 ** -40, 1 + 2.0 ** -8 + 2.0 ** -40, 1e300, -1e-300]])
    out = np.empty(xs.size, np.uint16)
    _map_store64(H[f"{name}_store"], H["f32_odd"], xs, out)
    with np.errstate(all="ignore"):
        want = xs.astype(DTYPES[name]).view(np.uint16)
    bad = np.flatnonzero(out != want)
    assert bad.size == 0, (xs[bad[:5]], out[bad[:5]], want[bad[:5]])


# What CPU kernels call: F16C's conversion instructions where the host has
# them (intrinsics.py), else the functions above; either way NumPy's results.
_load16, _store16, _round16 = intrinsics.f16_load, intrinsics.f16_store, intrinsics.f16


@njit
def _cpu_f16(bits, xs, loaded, stored, rounded):
    for i in range(bits.size):
        loaded[i] = _load16(bits[i])
    for i in range(xs.size):
        stored[i] = _store16(xs[i])
        rounded[i] = _round16(xs[i])


def test_cpu_kernels_float16_conversions():
    xs = _samples32()
    loaded, stored, rounded = (np.empty(BITS.size, np.float32), np.empty(xs.size, np.uint16),
                               np.empty(xs.size, np.float32))
    _cpu_f16(BITS, xs, loaded, stored, rounded)
    want = BITS.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    assert np.isnan(loaded[nan]).all()
    np.testing.assert_array_equal(loaded[~nan].view(np.uint32), want[~nan].view(np.uint32))
    with np.errstate(all="ignore"):
        want16 = xs.astype(np.float16)
    nan = np.isnan(xs)
    np.testing.assert_array_equal(stored[~nan], want16[~nan].view(np.uint16))
    np.testing.assert_array_equal(rounded[~nan].view(np.uint32),
                                  want16[~nan].astype(np.float32).view(np.uint32))
    assert np.isnan(rounded[nan]).all() and np.isnan(stored[nan].view(np.float16)).all()
