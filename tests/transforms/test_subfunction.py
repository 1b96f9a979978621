"""tracejit.subfunction: a call kept as one instruction in the traced IR,
inlined by simplify, and transparent to jit, grad, jvp and vmap."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.ir import parse
from tracejit.ir.dot import to_dot
from tracejit.testing import check_grads


@tracejit.subfunction
def relu(x):
    return tnp.maximum(x, 0.0)


@tracejit.subfunction
def layer(x, w, b=None):
    return {"out": relu(x @ w + b), "pre": x @ w}


def relus(x):
    # FEATURES row 23: relu() called five times, summed with add_n
    return tnp.sum(tnp.stack([relu(x - i) for i in range(5)]), axis=0)


def _calls(fn):
    return [ins for ins in fn.body if ins.prim == "call"]


def test_traced_ir_keeps_one_call_per_use_named_uniquely():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    fn = tracejit.make_ir(relus)(x)
    calls = _calls(fn)
    assert [c.results[0].name for c in calls] == ["relu", "relu_1", "relu_2", "relu_3", "relu_4"]
    body = calls[1].attrs["fun"]
    assert [i.prim for i in body.body if i.prim != "constant"][-1] == "max"
    assert all(r.name.startswith("relu_1/") for i in body.body for r in i.results)
    text = str(fn)
    assert "%relu_4: f32[7] = call" in text
    assert str(parse(text)) == text   # the parser reads calls back


def test_simplify_inlines_calls_and_jit_matches_numpy():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    want = sum(np.maximum(x - i, 0) for i in range(5))
    for backend in ("cpu", "reference"):
        np.testing.assert_allclose(tracejit.jit(relus, backend=backend)(x), want, rtol=1e-6)
    simplified = tracejit.stages.simplify(tracejit.make_ir(relus)(x))
    assert not _calls(simplified)
    assert any((r.name or "").startswith("relu_3/") for i in simplified.body for r in i.results)


def test_dot_draws_each_call_as_one_box():
    fn = tracejit.make_ir(relus)(np.ones(3, np.float32))
    dot = to_dot(fn)
    assert dot.count("\\ncall\"") == 5
    assert "max" not in dot


def test_pytree_arguments_keywords_and_nested_calls():
    rng = np.random.default_rng(0)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in [(4, 3), (3, 2), (2,)])

    def f(x, w, b):
        return layer(x, w, b=b)
    got = tracejit.jit(f)(x, w, b)
    np.testing.assert_allclose(got["out"], np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["pre"], x @ w, rtol=1e-5, atol=1e-6)
    fn = tracejit.make_ir(f)(x, w, b)
    (outer,) = _calls(fn)
    assert _calls(outer.attrs["fun"])   # relu stays a call inside layer


def test_closed_over_values_become_operands():
    scale = np.float32(3.0)
    table = np.arange(4, dtype=np.float32)

    @tracejit.subfunction
    def scaled(x):
        return x * scale + table

    x = np.ones(4, np.float32)
    np.testing.assert_allclose(tracejit.jit(scaled)(x), x * 3 + table)
    (call,) = _calls(tracejit.make_ir(lambda x: scaled(x))(x))
    assert call.attrs["num_consts"] >= 1


def test_eager_call_is_the_function():
    x = np.array([-1.0, 2.0])
    np.testing.assert_array_equal(relu(x), [0.0, 2.0])


def test_gradients_jvp_and_vmap_see_through_calls():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 2))
    b = rng.normal(size=(2,))

    def loss(x, w, b):
        return tnp.sum(tnp.tanh(layer(x, w, b=b)["out"]) ** 2)
    check_grads(loss, (x, w, b), order=2)
    check_grads(tracejit.jit(loss), (x, w, b), order=1)
    g = tracejit.jit(tracejit.grad(loss, argnums=(1, 2)))(x, w, b)

    def plain(x, w, b):
        return tnp.sum(tnp.tanh(tnp.maximum(x @ w + b, 0.0)) ** 2)
    want = tracejit.grad(plain, argnums=(1, 2))(x, w, b)
    for a, e in zip(g, want):
        np.testing.assert_allclose(a, e, rtol=1e-10)
    for vmapped in (tracejit.vmap(lambda r: relu(r - 0.5)),
                    tracejit.jit(tracejit.vmap(lambda r: relu(r - 0.5)))):
        np.testing.assert_allclose(vmapped(x), np.maximum(x - 0.5, 0))
    batched = tracejit.vmap(lambda r, w: layer(r, w, b=b)["out"], in_axes=(0, None))(x, w)
    np.testing.assert_allclose(batched, np.maximum(x @ w + b, 0), rtol=1e-12)
    _, t = tracejit.jvp(lambda v: relu(v * v), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, np.where(x * x > 0, 2 * x, 0))


def test_call_inside_scan_body_is_inlined_there():
    def f(xs):
        def body(c, x):
            y = relu(x + c)
            return c + tnp.sum(y), y
        return tracejit.lax.scan(body, 0.0, xs)

    xs = np.linspace(-2, 2, 12).reshape(4, 3)
    c, ys = tracejit.jit(f)(xs)
    want_c, want = 0.0, []
    for x in xs:
        y = np.maximum(x + want_c, 0)
        want_c += y.sum()
        want.append(y)
    np.testing.assert_allclose(ys, want)
    np.testing.assert_allclose(c, want_c)
    fn = tracejit.stages.simplify(tracejit.make_ir(f)(xs))
    (scan,) = [i for i in fn.body if i.prim == "scan"]
    assert not _calls(scan.attrs["body"])


def test_call_rejects_wrong_operand_types():
    fn = tracejit.make_ir(relus)(np.ones(3, np.float32))
    call = _calls(fn)[0]
    with pytest.raises(tracejit.ShapeError, match="call"):
        call.primitive.out_types([tracejit.ir.TensorType((4,), "float32")], call.attrs)


def test_lax_names_of_control_flow():
    lax = tracejit.lax
    xs = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(tracejit.jit(lambda xs: lax.map(lambda r: r * r, xs))(xs), xs * xs)
    branches = [lambda x: x + 1.0, lambda x: x * 10.0, lambda x: -x]
    f = tracejit.jit(lambda i, x: lax.switch(i, branches, x))
    for i, want in [(-5, 3.0), (0, 3.0), (1, 20.0), (2, -2.0), (7, -2.0)]:
        assert float(f(np.int32(i), 2.0)) == want
    assert float(lax.fori_loop(0, 4, lambda i, v: v + i, 0.0)) == 6.0
