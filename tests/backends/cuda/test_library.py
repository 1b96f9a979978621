"""The CUDA backend's library lowerings against the primitives' reference
impls, on hypothesis-drawn small shapes and attributes (size-1 dims,
strides, padding, dilation, groups, ties, out-of-range indices).

Runs on a GPU or under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
which must be set before numba.cuda is first imported); sizes stay tiny
because the simulator runs one Python thread per CUDA thread.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from numba import config

if not config.ENABLE_CUDASIM:
    from numba import cuda as _cuda
    if not _cuda.is_available():
        pytest.skip("no CUDA GPU and the CUDA simulator is off (run with NUMBA_ENABLE_CUDASIM=1)",
                    allow_module_level=True)

from numba import cuda

from tracejit.backends.cuda import kernels
from tracejit.backends.cuda.library import LOWERINGS, HostFallback
from tracejit.ir.core import Instr, Var
from tracejit.ir.types import TensorType
from tracejit.core import PRIMITIVES

FEW = settings(max_examples=15, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def lower(prim, arrays, **attrs):
    ins_t = [TensorType.of(np.asarray(a)) for a in arrays]
    outs = PRIMITIVES[prim].out_types(ins_t, attrs)
    ins = Instr(prim, [Var(t) for t in ins_t], attrs, [Var(t) for t in outs])
    return LOWERINGS[prim](ins)


def check(prim, arrays, tol=1e-4, **attrs):
    """The lowering's results equal the reference impl's (dtype and shape
    exactly, values up to float rounding)."""
    arrays = [np.asarray(a, order="C") for a in arrays]  # 0-d stays 0-d
    run = lower(prim, arrays, **attrs)
    got = run(*[cuda.to_device(a) for a in arrays])
    want = PRIMITIVES[prim].impl(*arrays, **attrs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g = g.copy_to_host()
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(g, w)
    return run


def values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    lo = 0 if dtype == "uint32" else -4
    return rng.integers(lo, 5, shape).astype(dtype)


def test_every_non_fusible_primitive_is_lowered_or_left_to_the_plan():
    """Control flow runs as sub-plans (the plan), argsort, the LAPACK
    primitives (tracejit/primitives/linalg_lapack.py) and dimension_size (a
    shape read, which a plan over symbolic sizes takes as an argument) on the
    host (the plan's fallback); every other non-fused primitive has a lowering."""
    lapack = {"cholesky", "triangular_solve", "solve", "slogdet", "eigh", "qr", "svd"}
    left_to_plan = {"cond", "while", "scan", "call", "custom_vjp_call", "custom_jvp_call", "argsort",
                    "fusion", "dimension_size"} | lapack
    missing = [p for p in PRIMITIVES if not PRIMITIVES[p].fusible and p not in LOWERINGS
               and p not in left_to_plan]
    assert missing == []


# --- dot_general ---------------------------------------------------------------

@st.composite
def dot_problems(draw):
    """Operands with shuffled batch, contracting and free dims."""
    nb, nc = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    nlf, nrf = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    size = st.integers(1, 4)
    batch = [draw(size) for _ in range(nb)]
    contract = [draw(size) for _ in range(nc)]
    lfree = [draw(size) for _ in range(nlf)]
    rfree = [draw(size) for _ in range(nrf)]
    lperm = draw(st.permutations(range(nb + nc + nlf)))
    rperm = draw(st.permutations(range(nb + nc + nrf)))
    # logical dim k of each operand sits at position perm.index(k)
    lshape = [0] * len(lperm)
    rshape = [0] * len(rperm)
    for k, n in enumerate(batch + contract + lfree):
        lshape[lperm.index(k)] = n
    for k, n in enumerate(batch + contract + rfree):
        rshape[rperm.index(k)] = n
    lb = tuple(lperm.index(k) for k in range(nb))
    rb = tuple(rperm.index(k) for k in range(nb))
    lc = tuple(lperm.index(nb + k) for k in range(nc))
    rc = tuple(rperm.index(nb + k) for k in range(nc))
    dtype = draw(st.sampled_from(["float32", "float64", "int32"]))
    return tuple(lshape), tuple(rshape), ((lc, rc), (lb, rb)), dtype


@FEW
@given(dot_problems(), st.integers(0, 2**16))
def test_dot_general_any_dimension_numbers(problem, seed):
    lshape, rshape, dn, dtype = problem
    rng = np.random.default_rng(seed)
    check("dot_general", [values(rng, lshape, dtype), values(rng, rshape, dtype)],
          dimension_numbers=dn)


@pytest.mark.parametrize("dtype", ["float32", "int64", "uint32"])
def test_dot_general_several_tiles(dtype):
    """M, N and K span more than one tile (K's partial last tile included)."""
    rng = np.random.default_rng(0)
    t = kernels.TILE * kernels.MICRO     # outputs per block side
    a, b = values(rng, (t + 3, t + 2), dtype), values(rng, (t + 2, 2 * t + 1), dtype)
    check("dot_general", [a, b], dimension_numbers=(((1,), (0,)), ((), ())))


def test_dot_general_transposed_operands_and_empty_sums():
    rng = np.random.default_rng(1)
    a, b = values(rng, (6, 5), "float32"), values(rng, (7, 6), "float32")
    check("dot_general", [a, b], dimension_numbers=(((0,), (1,)), ((), ())))  # a.T @ b.T
    check("dot_general", [np.zeros((3, 0), np.float32), np.zeros((0, 2), np.float32)],
          dimension_numbers=(((1,), (0,)), ((), ())))                           # K = 0
    check("dot_general", [np.zeros((0, 4), np.float64), np.ones((4, 2))],
          dimension_numbers=(((1,), (0,)), ((), ())))                           # M = 0
    check("dot_general", [np.array(3.0, np.float32), np.array(2.5, np.float32)],
          dimension_numbers=(((), ()), ((), ())))                               # 0-d


def test_lowerings_built_before_running_keep_their_own_launch_grids():
    """A plan builds every lowering, then runs them: one kernel shared by
    two lowerings must launch each with its own grid (the simulator's
    kernel[grid, block] mutates the shared kernel object)."""
    rng = np.random.default_rng(5)
    t = kernels.TILE * kernels.MICRO     # outputs per block side
    problems = [(values(rng, (2, 6), "float32"), values(rng, (6, t + 2), "float32")),
                (values(rng, (2 * t, 3), "float32"), values(rng, (3, 2), "float32"))]
    dn = (((1,), (0,)), ((), ()))
    runs = [lower("dot_general", list(p), dimension_numbers=dn) for p in problems]
    for run, (a, b) in zip(runs, problems):
        (c,) = run(cuda.to_device(a), cuda.to_device(b))
        np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-5, atol=1e-5)


def test_dot_general_bool_runs_on_the_host():
    a = np.array([[True, False], [False, False]])
    run = check("dot_general", [a, a], dimension_numbers=(((1,), (0,)), ((), ())))
    assert isinstance(run.fallback, HostFallback)
    v = np.array([True, False])
    check("dot_general", [v, v], dimension_numbers=(((0,), (0,)), ((), ())))   # 0-d result


def test_matmul_kernel_loops_over_row_tiles_and_batches():
    """A grid smaller than the problem (as when M, N or B exceed the grid's
    65535 limit) still covers it: the kernel loops over tiles and batches."""
    rng = np.random.default_rng(2)
    t = kernels.TILE * kernels.MICRO     # outputs per block side
    B, M, N, K = 3, 3 * t, 2 * t + 1, 2 * kernels.TILE + 3
    a, b = values(rng, (B, M, K), "float32"), values(rng, (B, K, N), "float32")
    c = cuda.device_array((B, M, N), np.float32)
    p = cuda.to_device(np.array([B, M, N, K, M * K, K, 1, K * N, N, 1, M * N, N, 1], np.int64))
    kernels.matmul("float32")[(1, 1, 1), (kernels.TILE, kernels.TILE)](
        a.reshape(-1), b.reshape(-1), c.reshape(-1), p)
    np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-5, atol=1e-5)


class NumpyAsCupy:
    """What the cuBLAS path uses of CuPy, on the simulator's arrays (NumPy
    arrays inside): checks that path's views, reshapes and outputs here."""
    float32 = np.float32

    @staticmethod
    def asarray(x):
        return x._ary

    matmul = staticmethod(np.matmul)


@pytest.mark.skipif(not config.ENABLE_CUDASIM, reason="the stand-in reads simulator arrays")
def test_cublas_path_views_and_outputs(monkeypatch):
    from tracejit.backends.cuda import library
    monkeypatch.setattr(library, "cupy", lambda: NumpyAsCupy)
    rng = np.random.default_rng(6)
    f32 = "float32"
    for lshape, rshape, dn in [((3, 4), (4, 5), (((1,), (0,)), ((), ()))),
                               ((4, 3), (5, 4), (((0,), (1,)), ((), ()))),
                               ((2, 3, 4, 2), (4, 2, 5, 2), (((2,), (0,)), ((3,), (1,)))),
                               ((3, 0), (0, 2), (((1,), (0,)), ((), ()))),
                               ((), (3,), (((), ()), ((), ())))]:
        run = check("dot_general", [values(rng, lshape, f32), values(rng, rshape, f32)],
                    dimension_numbers=dn)
        assert run.cp is NumpyAsCupy
    for xs, ws, attrs in [((2, 5, 4, 3), (3, 2, 3, 4), conv_attrs(2, window_strides=(2, 1),
                                                                  padding=((1, 1), (0, 2)))),
                          ((2, 3, 3, 4), (1, 1, 4, 2), conv_attrs(2))]:
        run = check("conv_general", [values(rng, xs, f32), values(rng, ws, f32)], **attrs)
        assert run.cp is NumpyAsCupy


# --- conv_general --------------------------------------------------------------

@st.composite
def conv_problems(draw):
    nd = draw(st.integers(1, 2))
    g = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    spatial = [draw(st.integers(1, 5)) for _ in range(nd)]
    window = [draw(st.integers(1, 3)) for _ in range(nd)]
    attrs = dict(
        window_strides=tuple(draw(st.integers(1, 2)) for _ in range(nd)),
        padding=tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd)),
        lhs_dilation=tuple(draw(st.integers(1, 2)) for _ in range(nd)),
        rhs_dilation=tuple(draw(st.integers(1, 2)) for _ in range(nd)),
        feature_group_count=g)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return (n, *spatial, g * cg), (*window, cg, g * og), attrs, dtype


@FEW
@given(conv_problems(), st.integers(0, 2**16))
def test_conv_general_all_attrs(problem, seed):
    xs, ws, attrs, dtype = problem
    rng = np.random.default_rng(seed)
    check("conv_general", [values(rng, xs, dtype), values(rng, ws, dtype)], **attrs)


def conv_attrs(nd, **kw):
    attrs = dict(window_strides=(1,) * nd, padding=((0, 0),) * nd, lhs_dilation=(1,) * nd,
                 rhs_dilation=(1,) * nd, feature_group_count=1)
    attrs.update(kw)
    return attrs


def test_conv_general_depthwise_pointwise_3d_and_fallbacks():
    rng = np.random.default_rng(3)
    f32 = "float32"
    # depthwise: one group per channel
    check("conv_general", [values(rng, (1, 4, 4, 3), f32), values(rng, (2, 2, 1, 3), f32)],
          **conv_attrs(2, feature_group_count=3, padding=((1, 0), (0, 1))))
    # 1x1 stride 1: a plain matrix product, no patches
    run = check("conv_general", [values(rng, (2, 3, 2, 4), f32), values(rng, (1, 1, 4, 5), f32)],
                **conv_attrs(2))
    assert run.direct
    # three spatial dims
    check("conv_general", [values(rng, (1, 3, 3, 2, 2), f32), values(rng, (2, 2, 1, 2, 3), f32)],
          **conv_attrs(3, window_strides=(2, 1, 1), padding=((0, 1), (1, 0), (0, 0))))
    # a window larger than the padded input: an empty output
    check("conv_general", [values(rng, (1, 2, 2), f32), values(rng, (4, 2, 1), f32)], **conv_attrs(1))
    # integer convolution (the reference sums in float32) and 4 spatial dims: host
    run = check("conv_general", [values(rng, (1, 3, 3, 2), "int32"), values(rng, (2, 2, 2, 1), "int32")],
                **conv_attrs(2))
    assert isinstance(run.fallback, HostFallback)
    run = check("conv_general", [values(rng, (1, 2, 2, 2, 2, 1), f32), values(rng, (1, 2, 1, 2, 1, 1), f32)],
                **conv_attrs(4))
    assert isinstance(run.fallback, HostFallback)


# --- scatter_add -----------------------------------------------------------------

@st.composite
def scatter_problems(draw):
    rank = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    axis = draw(st.integers(0, rank - 1))
    idx_shape = [draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 2)))]
    idx_dtype = draw(st.sampled_from(["int32", "int64", "uint32"]))
    dtype = draw(st.sampled_from(["float32", "float64", "int32", "int64", "uint32"]))
    return shape, axis, idx_shape, idx_dtype, dtype


@FEW
@given(scatter_problems(), st.integers(0, 2**16))
def test_scatter_add_repeated_negative_and_out_of_range_indices(problem, seed):
    shape, axis, idx_shape, idx_dtype, dtype = problem
    rng = np.random.default_rng(seed)
    n = shape[axis]
    lo = 0 if idx_dtype == "uint32" else -n - 2
    idx = np.asarray(rng.integers(lo, n + 2, tuple(idx_shape))).astype(idx_dtype)
    upd = values(rng, shape[:axis] + idx_shape + shape[axis + 1:], dtype)
    check("scatter_add", [values(rng, shape, dtype), idx, upd], axis=axis)


def test_scatter_add_empty_axis_and_bool_fallback():
    check("scatter_add", [np.zeros((2, 0), np.float32), np.array([0, 1], np.int32),
                          np.ones((2, 2), np.float32)], axis=1)
    run = check("scatter_add", [np.zeros(3, bool), np.array([1, 1], np.int32),
                                np.array([True, False])], axis=0)
    assert isinstance(run.fallback, HostFallback)


# --- select_and_scatter_add ------------------------------------------------------

@st.composite
def pooling_problems(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    window = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    padding = [(draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(rank)]
    dtype = draw(st.sampled_from(["float32", "float64", "int32"]))
    return shape, dict(window_dimensions=tuple(window), window_strides=tuple(strides),
                       padding=tuple(padding)), dtype


def pooling_check(operand, attrs, rng):
    pooled = PRIMITIVES["reduce_window"].impl(operand, computation="max", **attrs)[0]
    source = rng.integers(-3, 4, pooled.shape).astype(operand.dtype)
    return check("select_and_scatter_add", [source, operand], **attrs)


@FEW
@given(pooling_problems(), st.integers(0, 2**16))
def test_select_and_scatter_add_first_maximum_wins(problem, seed):
    """Operands of few distinct values, so windows have tied maxima; integer
    sources, so the atomic sums are exact in any order."""
    shape, attrs, dtype = problem
    rng = np.random.default_rng(seed)
    operand = rng.integers(-2, 2, shape).astype(dtype)
    pooling_check(operand, attrs, rng)


def test_select_and_scatter_add_lowest_values_padding_and_fallback():
    rng = np.random.default_rng(4)
    attrs = dict(window_dimensions=(2, 2), window_strides=(1, 1), padding=((1, 1), (1, 0)))
    # -inf equals the padding: a window whose first maximum is padding adds nothing
    operand = np.array([[-np.inf, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], np.float32)
    pooling_check(operand, attrs, rng)
    # NaN compares false, as in the reference
    pooling_check(np.array([[np.nan, 1.0], [0.0, np.nan]]), attrs, rng)
    attrs5 = dict(window_dimensions=(1, 2, 1, 1, 2), window_strides=(1, 1, 1, 1, 2),
                  padding=((0, 0),) * 5)
    run = pooling_check(rng.integers(0, 3, (1, 3, 1, 2, 4)).astype(np.float32), attrs5, rng)
    assert isinstance(run.fallback, HostFallback)


def test_stop_gradient_copies():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    run = lower("stop_gradient", [x])
    d = cuda.to_device(x)
    (y,) = run(d)
    assert y is not d
    np.testing.assert_array_equal(y.copy_to_host(), x)


# --- in a plan ------------------------------------------------------------------------

def test_gradients_through_a_plan_match_the_reference():
    """A plan builds all its lowerings before running any: a dense head's
    and a conv + max-pool layer's gradients (matrix products with
    transposed operands, transposed and dilated convolutions, the pooling
    gradient) on the cuda backend equal the reference backend's."""
    import tracejit
    import tracejit.numpy as tnp
    from tracejit.nn import functional as F

    def loss(params, x):
        h = tnp.maximum(F.conv2d(x, params["conv"], padding="SAME", strides=2), 0)
        h = F.max_pool(h, 3, 2, "SAME")
        h = tnp.reshape(h, (h.shape[0], -1))
        for w in params["dense"]:
            h = tnp.tanh(h @ w)
        return tnp.sum(h * h)

    rng = np.random.default_rng(7)
    params = {"conv": values(rng, (3, 3, 2, 3), "float32"),
              "dense": [values(rng, (12, 10), "float32"), values(rng, (10, 3), "float32")]}
    x = values(rng, (2, 7, 7, 2), "float32")
    grad = tracejit.grad(loss)
    got = tracejit.jit(grad, backend="cuda")(params, x)
    want = tracejit.jit(grad, backend="reference")(params, x)
    for g, w in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)
