"""Simplification passes: each rewrite on a small IR program, CSE, DCE,
constant folding, purity, and a differential test over generated programs
(NaN, inf and signed zeros included): simplifying never changes a value."""
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit.ir import Function, Instr, TensorType, Var, parse, verify
from tracejit.core import eval_function
from tracejit.transforms.simplify import (algebraic_simplify, cse, dce, fold_constants,
                                          simplify)


def _inputs(fn, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for t in fn.in_types:
        if t.dtype == "bool":
            out.append(rng.random(t.shape) < 0.5)
        elif t.dtype in ("int32", "int64", "uint32"):
            out.append(rng.integers(0, 5, t.shape).astype(t.dtype))
        else:
            x = rng.normal(size=t.shape)
            x.reshape(-1)[:4] = [np.nan, np.inf, -0.0, -np.inf][:x.size]
            out.append(x.astype(t.dtype))
    return out


def assert_same_values(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), (a, b)
    if a.dtype.kind == "f":   # the sign of zeros (and infs) too
        real = ~np.isnan(a)
        assert np.array_equal(np.signbit(a[real]), np.signbit(b[real])), (a, b)


def check(pass_, before, after):
    """``pass_`` turns the program ``before`` into ``after`` (text form),
    leaves its input as it was, and computes the same values."""
    fn = parse(textwrap.dedent(before).strip())
    verify(fn)
    text = str(fn)
    out = pass_(fn)
    assert str(fn) == text, "a pass changed its input"
    verify(out)
    assert str(out) == textwrap.dedent(after).strip()
    args = _inputs(fn)
    for a, b in zip(eval_function(fn, args), eval_function(out, args)):
        assert_same_values(a, b)
    return out


# --- algebraic rewrites -----------------------------------------------------------
def test_multiply_and_divide_by_one():
    check(simplify, """
        func @f(%0: f32[3], %1: i32[3]) -> (f32[3], f32[3], f32[3], i32[3]) {
          %2: f32[] = constant[value=1.0]()
          %3: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%2)
          %4: f32[3] = mul(%0, %3)
          %5: f32[3] = mul(%3, %0)
          %6: f32[3] = div(%0, %3)
          %7: i32[] = constant[value=1]()
          %8: i32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%7)
          %9: i32[3] = mul(%8, %1)
          return (%4, %5, %6, %9)
        }""", """
        func @f(%0: f32[3], %1: i32[3]) -> (f32[3], f32[3], f32[3], i32[3]) {
          return (%0, %0, %0, %1)
        }""")


def test_add_and_subtract_zero_only_where_exact():
    """x - 0.0 and x + (-0.0) are x; x + 0.0 is not (-0.0 + 0.0 = +0.0)."""
    check(simplify, """
        func @f(%0: f32[3], %1: i64[3]) -> (f32[3], f32[3], f32[3], f32[3], i64[3]) {
          %2: f32[] = constant[value=0.0]()
          %3: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%2)
          %4: f32[] = constant[value=-0.0]()
          %5: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%4)
          %6: f32[3] = sub(%0, %3)
          %7: f32[3] = add(%0, %5)
          %8: f32[3] = add(%5, %0)
          %9: f32[3] = add(%0, %3)
          %10: i64[] = constant[value=0]()
          %11: i64[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%10)
          %12: i64[3] = add(%11, %1)
          return (%6, %7, %8, %9, %12)
        }""", """
        func @f(%0: f32[3], %1: i64[3]) -> (f32[3], f32[3], f32[3], f32[3], i64[3]) {
          %2: f32[] = constant[value=0.0]()
          %3: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%2)
          %4: f32[3] = add(%0, %3)
          return (%0, %0, %0, %4, %1)
        }""")


def test_times_zero_is_kept():
    """inf * 0 and NaN * 0 are NaN, so x * 0 must stay."""
    out = check(simplify, """
        func @f(%0: f32[3]) -> (f32[3]) {
          %1: f32[] = constant[value=0.0]()
          %2: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%1)
          %3: f32[3] = mul(%0, %2)
          return (%3)
        }""", """
        func @f(%0: f32[3]) -> (f32[3]) {
          %1: f32[] = constant[value=0.0]()
          %2: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%1)
          %3: f32[3] = mul(%0, %2)
          return (%3)
        }""")
    x = np.array([np.inf, np.nan, 2.0], np.float32)
    assert np.isnan(eval_function(out, [x])[0][:2]).all()


def test_weak_types_are_kept():
    """x * 1 with a weak x and a strong 1 has a strong result: not x."""
    check(simplify, """
        func @f(%0: f32[]~) -> (f32[]) {
          %1: f32[] = constant[value=1.0]()
          %2: f32[] = mul(%0, %1)
          return (%2)
        }""", """
        func @f(%0: f32[]~) -> (f32[]) {
          %1: f32[] = constant[value=1.0]()
          %2: f32[] = mul(%0, %1)
          return (%2)
        }""")


def test_double_negation_and_same_dtype_convert():
    check(algebraic_simplify, """
        func @f(%0: f32[3]) -> (f32[3]) {
          %1: f32[3] = neg(%0)
          %2: f32[3] = neg(%1)
          %3: f32[3] = convert[dtype='float32'](%2)
          return (%3)
        }""", """
        func @f(%0: f32[3]) -> (f32[3]) {
          %1: f32[3] = neg(%0)
          return (%0)
        }""")


def test_broadcasts():
    check(simplify, """
        func @f(%0: f32[3], %1: f32[2,3]) -> (f32[3], f32[4,2,3], f32[2,3,5]) {
          %2: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=(0,)](%0)
          %3: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=(1,)](%0)
          %4: f32[4,2,3] = broadcast_in_dim[shape=(4, 2, 3), broadcast_dimensions=(1, 2)](%3)
          %5: f32[2,3,1] = reshape[new_shape=(2, 3, 1)](%1)
          %6: f32[2,3,5] = broadcast_in_dim[shape=(2, 3, 5), broadcast_dimensions=(0, 1, 2)](%5)
          return (%2, %4, %6)
        }""", """
        func @f(%0: f32[3], %1: f32[2,3]) -> (f32[3], f32[4,2,3], f32[2,3,5]) {
          %2: f32[4,2,3] = broadcast_in_dim[shape=(4, 2, 3), broadcast_dimensions=(2,)](%0)
          %3: f32[2,3,5] = broadcast_in_dim[shape=(2, 3, 5), broadcast_dimensions=(0, 1)](%1)
          return (%0, %2, %3)
        }""")


def test_broadcast_of_a_reshape_that_drops_unit_dims():
    check(simplify, """
        func @f(%0: f32[5,1]) -> (f32[5,4]) {
          %1: f32[5] = reshape[new_shape=(5,)](%0)
          %2: f32[5,4] = broadcast_in_dim[shape=(5, 4), broadcast_dimensions=(0,)](%1)
          return (%2)
        }""", """
        func @f(%0: f32[5,1]) -> (f32[5,4]) {
          %1: f32[5,4] = broadcast_in_dim[shape=(5, 4), broadcast_dimensions=(0, 1)](%0)
          return (%1)
        }""")
    # no room for the unit dim in order: left alone
    check(simplify, """
        func @f(%0: f32[1,5]) -> (f32[5,4]) {
          %1: f32[5] = reshape[new_shape=(5,)](%0)
          %2: f32[5,4] = broadcast_in_dim[shape=(5, 4), broadcast_dimensions=(0,)](%1)
          return (%2)
        }""", """
        func @f(%0: f32[1,5]) -> (f32[5,4]) {
          %1: f32[5] = reshape[new_shape=(5,)](%0)
          %2: f32[5,4] = broadcast_in_dim[shape=(5, 4), broadcast_dimensions=(0,)](%1)
          return (%2)
        }""")


def test_reshapes_and_transposes():
    check(simplify, """
        func @f(%0: f32[2,3,4]) -> (f32[2,3,4], f32[6,4], f32[2,3,4], f32[4,2,3]) {
          %1: f32[2,3,4] = reshape[new_shape=(2, 3, 4)](%0)
          %2: f32[24] = reshape[new_shape=(24,)](%0)
          %3: f32[6,4] = reshape[new_shape=(6, 4)](%2)
          %4: f32[2,3,4] = transpose[permutation=(0, 1, 2)](%0)
          %5: f32[3,4,2] = transpose[permutation=(1, 2, 0)](%0)
          %6: f32[2,3,4] = transpose[permutation=(2, 0, 1)](%5)
          %7: f32[4,2,3] = transpose[permutation=(1, 2, 0)](%5)
          return (%1, %3, %6, %7)
        }""", """
        func @f(%0: f32[2,3,4]) -> (f32[2,3,4], f32[6,4], f32[2,3,4], f32[4,2,3]) {
          %1: f32[6,4] = reshape[new_shape=(6, 4)](%0)
          %2: f32[4,2,3] = transpose[permutation=(2, 0, 1)](%0)
          return (%0, %1, %0, %2)
        }""")


def test_moves_of_a_broadcast_scalar():
    check(simplify, """
        func @f(%0: f32[]) -> (f32[6], f32[3,2], f32[2,3], f32[1,3]) {
          %1: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=()](%0)
          %2: f32[6] = reshape[new_shape=(6,)](%1)
          %3: f32[3,2] = transpose[permutation=(1, 0)](%1)
          %4: f32[2,3] = rev[dimensions=(0,)](%1)
          %5: f32[1,3] = slice[start=(1, 0), limit=(2, 3), strides=(1, 1)](%1)
          return (%2, %3, %4, %5)
        }""", """
        func @f(%0: f32[]) -> (f32[6], f32[3,2], f32[2,3], f32[1,3]) {
          %1: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=()](%0)
          %2: f32[6] = broadcast_in_dim[shape=(6,), broadcast_dimensions=()](%0)
          %3: f32[3,2] = broadcast_in_dim[shape=(3, 2), broadcast_dimensions=()](%0)
          %4: f32[1,3] = broadcast_in_dim[shape=(1, 3), broadcast_dimensions=()](%0)
          return (%2, %3, %1, %4)
        }""")


def test_reductions_over_no_or_unit_axes():
    """max, min and prod of one element are that element, and so is an
    integer sum; a float sum is not (it starts from +0.0, so -0.0 sums to
    +0.0) and stays."""
    check(simplify, """
        func @f(%0: f32[3,1], %1: i32[3,1]) -> (f32[3,1], f32[3], f32[3,1], i32[3]) {
          %2: f32[3,1] = reduce_sum[axes=()](%0)
          %3: f32[3] = reduce_max[axes=(1,)](%0)
          %4: f32[3,1] = reduce_prod[axes=()](%0)
          %5: i32[3] = reduce_sum[axes=(1,)](%1)
          return (%2, %3, %4, %5)
        }""", """
        func @f(%0: f32[3,1], %1: i32[3,1]) -> (f32[3,1], f32[3], f32[3,1], i32[3]) {
          %2: f32[3,1] = reduce_sum[axes=()](%0)
          %3: f32[3] = reshape[new_shape=(3,)](%0)
          %4: i32[3] = reshape[new_shape=(3,)](%1)
          return (%2, %3, %0, %4)
        }""")


def test_select():
    check(simplify, """
        func @f(%0: bool[3], %1: f32[3], %2: f32[3]) -> (f32[3], f32[3], f32[3]) {
          %3: f32[3] = select(%0, %1, %1)
          %4: bool[] = constant[value=True]()
          %5: bool[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%4)
          %6: f32[3] = select(%5, %1, %2)
          %7: bool[3] = not(%5)
          %8: f32[3] = select(%7, %1, %2)
          return (%3, %6, %8)
        }""", """
        func @f(%0: bool[3], %1: f32[3], %2: f32[3]) -> (f32[3], f32[3], f32[3]) {
          return (%1, %1, %2)
        }""")


# --- CSE ------------------------------------------------------------------------------
def test_cse_merges_duplicates():
    check(cse, """
        func @f(%0: f32[3], %1: f32[3]) -> (f32[3], f32[3], f32[3], f32[3]) {
          %2: f32[3] = mul(%0, %1)
          %3: f32[3] = mul(%0, %1)
          %4: f32[3] = add(%2, %3)
          %5: f32[3] = add(%3, %2)
          %6: f32[3] = max(%0, %1)
          %7: f32[3] = max(%1, %0)
          return (%4, %5, %6, %7)
        }""", """
        func @f(%0: f32[3], %1: f32[3]) -> (f32[3], f32[3], f32[3], f32[3]) {
          %2: f32[3] = mul(%0, %1)
          %3: f32[3] = add(%2, %2)
          %4: f32[3] = max(%0, %1)
          %5: f32[3] = max(%1, %0)
          return (%3, %3, %4, %5)
        }""")


def test_cse_compares_constants_by_bits_and_type():
    check(cse, """
        func @f() -> (f32[], f32[], f32[], f32[], f64[], f32[], f32[]) {
          %0: f32[] = constant[value=0.0]()
          %1: f32[] = constant[value=-0.0]()
          %2: f32[] = constant[value=0.0]()
          %3: f32[] = constant[value=nan]()
          %4: f64[] = constant[value=0.0]()
          %5: f32[] = constant[value=nan]()
          %6: f32[]~ = constant[value=0.0]()
          %7: f32[] = convert[dtype='float32'](%6)
          return (%0, %1, %2, %3, %4, %5, %7)
        }""", """
        func @f() -> (f32[], f32[], f32[], f32[], f64[], f32[], f32[]) {
          %0: f32[] = constant[value=0.0]()
          %1: f32[] = constant[value=-0.0]()
          %2: f32[] = constant[value=nan]()
          %3: f64[] = constant[value=0.0]()
          %4: f32[]~ = constant[value=0.0]()
          %5: f32[] = convert[dtype='float32'](%4)
          return (%0, %1, %0, %2, %3, %2, %5)
        }""")


def test_cse_merges_equal_random_bits_and_keeps_different_ones():
    check(simplify, """
        func @f(%0: u32[2]) -> (u32[4], u32[4], u32[5]) {
          %1: u32[4] = random_bits[shape=(4,)](%0)
          %2: u32[4] = random_bits[shape=(4,)](%0)
          %3: u32[5] = random_bits[shape=(5,)](%0)
          return (%1, %2, %3)
        }""", """
        func @f(%0: u32[2]) -> (u32[4], u32[4], u32[5]) {
          %1: u32[4] = random_bits[shape=(4,)](%0)
          %2: u32[5] = random_bits[shape=(5,)](%0)
          return (%1, %1, %2)
        }""")


# --- DCE --------------------------------------------------------------------------------
def test_dce_drops_unused_work_random_bits_included():
    check(dce, """
        func @f(%0: f32[3], %1: u32[2]) -> (f32[3]) {
          %2: f32[3] = exp(%0)
          %3: u32[8] = random_bits[shape=(8,)](%1)
          %4: f32[3] = log(%2)
          %5: f32[3] = tanh(%0)
          return (%5)
        }""", """
        func @f(%0: f32[3], %1: u32[2]) -> (f32[3]) {
          %2: f32[3] = tanh(%0)
          return (%2)
        }""")


def test_sub_functions_are_simplified_with_their_signatures_kept():
    def f(p, x):
        def true_fun(x):
            dead = tnp.exp(x)  # noqa: F841
            return -(-x) * 1.0   # noqa: B002  (the double negation under test)
        return tracejit.cond(p, true_fun, lambda x: x + x, x)

    fn = tracejit.make_ir(f)(np.bool_(True), np.ones(3, np.float32))
    out = simplify(fn)
    verify(out)
    (cond,) = [i for i in out.body if i.prim == "cond"]
    branch = cond.attrs["true_fun"]
    assert branch.body == [] and branch.results == branch.params[-1:]
    before = [i for i in fn.body if i.prim == "cond"][0].attrs["true_fun"]
    assert len(before.params) == len(branch.params)
    assert fn.num_instructions() > out.num_instructions()
    for p in (True, False):
        args = [np.bool_(p), np.array([1.0, -0.0, np.nan], np.float32)]
        for a, b in zip(eval_function(fn, args), eval_function(out, args)):
            assert_same_values(a, b)


def test_scan_body_is_simplified():
    def f(xs):
        def body(c, x):
            return c + x * 1.0, tnp.reshape(tnp.reshape(x, (2, 2)), (4,))
        return tracejit.scan(body, tnp.zeros(4, np.float32), xs)

    fn = tracejit.make_ir(f)(np.ones((3, 4), np.float32))
    out = simplify(fn)
    verify(out)
    (scan,) = [i for i in out.body if i.prim == "scan"]
    assert [i.prim for i in scan.attrs["body"].body] == ["add"]
    args = _inputs(fn)
    for a, b in zip(eval_function(fn, args), eval_function(out, args)):
        assert_same_values(a, b)


# --- constant folding ---------------------------------------------------------------------
def test_scalar_constants_fold():
    check(simplify, """
        func @f(%0: f32[]) -> (f32[], i32[]) {
          %1: f32[] = constant[value=2.0]()
          %2: f32[] = constant[value=3.0]()
          %3: f32[] = mul(%1, %2)
          %4: f32[] = exp(%3)
          %5: f32[] = add(%0, %4)
          %6: i32[] = convert[dtype='int32'](%3)
          return (%5, %6)
        }""", """
        func @f(%0: f32[]) -> (f32[], i32[]) {
          %1: f32[] = constant[value=403.42877197265625]()
          %2: f32[] = add(%0, %1)
          %3: i32[] = constant[value=6]()
          return (%2, %3)
        }""")


def test_big_broadcast_constants_fold_without_materializing():
    """An elementwise op on broadcast constants folds to one broadcast, at
    any size; the broadcast itself stays (it is free for fusion)."""
    check(simplify, """
        func @f() -> (f32[1000,1000], f32[1000,1000]) {
          %0: f32[] = constant[value=0.0]()
          %1: f32[1000,1000] = broadcast_in_dim[shape=(1000, 1000), broadcast_dimensions=()](%0)
          %2: f32[1000,1000] = exp(%1)
          return (%1, %2)
        }""", """
        func @f() -> (f32[1000,1000], f32[1000,1000]) {
          %0: f32[] = constant[value=0.0]()
          %1: f32[1000,1000] = broadcast_in_dim[shape=(1000, 1000), broadcast_dimensions=()](%0)
          %2: f32[] = constant[value=1.0]()
          %3: f32[1000,1000] = broadcast_in_dim[shape=(1000, 1000), broadcast_dimensions=()](%2)
          return (%1, %3)
        }""")


def test_small_reductions_fold_and_big_ones_do_not():
    check(fold_constants, """
        func @f() -> (f32[3], f32[100]) {
          %0: f32[] = constant[value=0.5]()
          %1: f32[3,4] = broadcast_in_dim[shape=(3, 4), broadcast_dimensions=()](%0)
          %2: f32[3] = reduce_sum[axes=(1,)](%1)
          %3: f32[100,100] = broadcast_in_dim[shape=(100, 100), broadcast_dimensions=()](%0)
          %4: f32[100] = reduce_sum[axes=(1,)](%3)
          return (%2, %4)
        }""", """
        func @f() -> (f32[3], f32[100]) {
          %0: f32[] = constant[value=0.5]()
          %1: f32[3,4] = broadcast_in_dim[shape=(3, 4), broadcast_dimensions=()](%0)
          %2: f32[] = constant[value=2.0]()
          %3: f32[3] = broadcast_in_dim[shape=(3,), broadcast_dimensions=()](%2)
          %4: f32[100,100] = broadcast_in_dim[shape=(100, 100), broadcast_dimensions=()](%0)
          %5: f32[100] = reduce_sum[axes=(1,)](%4)
          return (%3, %5)
        }""")


def test_results_that_are_not_one_repeated_value_are_not_folded():
    check(simplify, """
        func @f() -> (i32[4], u32[3]) {
          %0: i32[4] = iota[shape=(4,), dimension=0, dtype='int32']()
          %1: u32[] = constant[value=7]()
          %2: u32[2] = broadcast_in_dim[shape=(2,), broadcast_dimensions=()](%1)
          %3: u32[3] = random_bits[shape=(3,)](%2)
          return (%0, %3)
        }""", """
        func @f() -> (i32[4], u32[3]) {
          %0: i32[4] = iota[shape=(4,), dimension=0, dtype='int32']()
          %1: u32[] = constant[value=7]()
          %2: u32[2] = broadcast_in_dim[shape=(2,), broadcast_dimensions=()](%1)
          %3: u32[3] = random_bits[shape=(3,)](%2)
          return (%0, %3)
        }""")


def test_folding_leaves_errors_to_run_time():
    fn = parse(textwrap.dedent("""
        func @f() -> (i32[]) {
          %0: i32[] = constant[value=2]()
          %1: i32[] = constant[value=-1]()
          %2: i32[] = pow(%0, %1)
          return (%2)
        }""").strip())
    assert str(simplify(fn)) == str(fn)


# --- whole programs ----------------------------------------------------------------------
def _redundant(x, y):
    a = x * 1.0 - 0.0
    b = tnp.reshape(tnp.reshape(a, (12,)), (3, 4)).T.T
    c = tnp.where(x > 0, a * y, a * y) - tnp.zeros_like(x)
    return c + b, tnp.sum(a, axis=1) * (tnp.exp(tnp.zeros(3, np.float32)) * 2.0)


def test_typical_program_shrinks_and_keeps_its_values():
    x = np.array([[1.0, -0.0, np.nan, np.inf], [2.0, -3.0, 0.0, -np.inf], [4.0, 5.0, 6.0, 7.0]],
                 np.float32)
    y = np.ones((3, 4), np.float32)
    fn = tracejit.make_ir(_redundant)(x, y)
    out = simplify(fn)
    assert out.num_instructions() < fn.num_instructions() / 3, str(out)
    assert [i.prim for i in out.body] == ["mul", "add", "reduce_sum", "constant",
                                         "broadcast_in_dim", "mul"]
    for a, b in zip(eval_function(fn, [x, y]), eval_function(out, [x, y])):
        assert_same_values(a, b)
    assert str(simplify(out)) == str(out), "simplify is idempotent"


def test_jit_runs_simplify():
    f = tracejit.jit(_redundant, backend="reference")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for a, b in zip(f(x, x), _redundant(x, x)):
        np.testing.assert_array_equal(a, b)
    from tracejit.stages import simplify as optimize
    fn = f.lower(x, x)
    assert str(optimize(fn)) == str(simplify(fn))


def test_long_chains_do_not_recurse():
    """Each instruction is rewritten with a constant amount of work and
    stack, however long the chains of reshapes and negations get."""
    t, flat = TensorType((3, 4), "float32"), TensorType((12,), "float32")
    x, one, ones = Var(t), Var(TensorType((), "float32")), Var(t)
    body = [Instr("constant", [], {"value": 1.0, "dtype": "float32", "weak": False}, [one]),
            Instr("broadcast_in_dim", [one], {"shape": (3, 4), "broadcast_dimensions": ()}, [ones])]
    v = x
    for _ in range(2001):
        a, b, c, d = Var(t), Var(t), Var(flat), Var(t)
        body += [Instr("mul", [v, ones], {}, [a]), Instr("neg", [a], {}, [b]),
                 Instr("reshape", [b], {"new_shape": (12,)}, [c]),
                 Instr("reshape", [c], {"new_shape": (3, 4)}, [d])]
        v = d
    out = simplify(Function([x], body, [v]))
    assert [i.prim for i in out.body] == ["neg"]   # an odd number of negations


@pytest.mark.skipif(not hasattr(tracejit, "value_and_grad"), reason="needs autodiff")
def test_mlp_gradient_shrinks():
    def loss(params, x, y):
        h = tnp.tanh(x @ params["w1"] + params["b1"])
        logits = h @ params["w2"] + params["b2"]
        m = tnp.max(logits, axis=1, keepdims=True)
        lse = tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True)) + m
        return -tnp.mean(tnp.sum(y * (logits - lse), axis=1))

    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(8, 16)).astype(np.float32),
              "b1": np.zeros(16, np.float32),
              "w2": rng.normal(size=(16, 4)).astype(np.float32),
              "b2": np.zeros(4, np.float32)}
    x = rng.normal(size=(5, 8)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 5)]
    fn = tracejit.make_ir(tracejit.value_and_grad(loss))(params, x, y)
    out = simplify(fn)
    print(f"MLP value_and_grad: {fn.num_instructions()} -> {out.num_instructions()} instructions")
    assert out.num_instructions() < fn.num_instructions()
    args = tracejit.tree_leaves((params, x, y))
    for a, b in zip(eval_function(fn, args), eval_function(out, args)):
        assert_same_values(a, b)


# --- differential test over generated programs ---------------------------------------------
UNARY = {
    "neg": lambda a: -a,
    "negneg": lambda a: -(-a),   # noqa: B002
    "exp": tnp.exp,
    "log": tnp.log,
    "tanh": tnp.tanh,
    "abs": tnp.abs,
    "sqrt": tnp.sqrt,
    "mul1": lambda a: a * 1.0,
    "rmul1": lambda a: 1.0 * a,
    "add0": lambda a: a + 0.0,
    "add_neg0": lambda a: a + (-0.0),
    "sub0": lambda a: a - 0.0,
    "div1": lambda a: a / 1.0,
    "mul0": lambda a: a * 0.0,
    "recip": lambda a: 1.0 / a,   # tells -0.0 from +0.0
    "via_f64": lambda a: a.astype(np.float64).astype(np.float32),
    "same_dtype": lambda a: a.astype(np.float32),
    "reshapes": lambda a: tnp.reshape(tnp.reshape(tnp.reshape(a, (12,)), (2, 6)), (3, 4)),
    "transposes": lambda a: a.T.T,
    "flip": lambda a: a[::-1],
    "unit_sum": lambda a: tnp.sum(tnp.reshape(a, (3, 4, 1)), axis=2),
    "row_sum": lambda a: tnp.broadcast_to(tnp.sum(a, axis=1, keepdims=True), (3, 4)),
    "col_max": lambda a: tnp.broadcast_to(tnp.max(a, axis=0), (3, 4)),
    "zeros_like": lambda a: a + tnp.zeros_like(a),
    "ones_like": lambda a: a * tnp.ones_like(a),
    "const": lambda a: a * (tnp.exp(tnp.zeros((3, 4), np.float32)) * 2.0 - 1.0),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": tnp.maximum,
    "min": tnp.minimum,
    "where": lambda a, b: tnp.where(a > b, a, b),
    "where_same": lambda a, b: tnp.where(a > b, a, a),
    "twice": lambda a, b: a * b + a * b,
    "commuted": lambda a, b: (a + b) * (b + a),
}
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 1e30, -1e-30, np.inf, -np.inf, np.nan]
arrays = st.lists(st.sampled_from(SPECIAL) | st.floats(-4, 4, width=32),
                  min_size=12, max_size=12).map(lambda v: np.array(v, np.float32).reshape(3, 4))
steps = st.lists(st.one_of(
    st.tuples(st.sampled_from(sorted(UNARY)), st.integers(0, 99)),
    st.tuples(st.sampled_from(sorted(BINARY)), st.integers(0, 99), st.integers(0, 99))),
    min_size=1, max_size=12)


def _program(steps):
    def f(x, y):
        pool = [x, y]
        for name, *idx in steps:
            operands = [pool[i % len(pool)] for i in idx]
            pool.append((UNARY.get(name) or BINARY[name])(*operands))
        return pool[2:]
    return f


@settings(max_examples=150, deadline=None)
@given(steps, arrays, arrays)
def test_simplify_never_changes_results(steps, x, y):
    fn = tracejit.make_ir(_program(steps))(x, y)
    out = simplify(fn)
    assert out.num_instructions() <= fn.num_instructions()
    with np.errstate(all="ignore"):
        want, got = eval_function(fn, [x, y]), eval_function(out, [x, y])
    for a, b in zip(want, got):
        assert_same_values(a, b)
