"""``fusion`` (a kernel made by tracejit.transforms.fusion) is a registered
primitive: a fused Function verifies, prints and parses back identically,
and the reference interpreter runs it to the values of the unfused one."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import IRVerifyError
from tracejit.ir import Function, Instr, Var, parse, verify
from tracejit.stages import simplify as optimize
from tracejit.core import PRIMITIVES
from tracejit.core import eval_function
from tracejit.transforms.fusion import fuse
from tracejit.tree import tree_flatten


def mlp_loss(params, x, y):
    h = tnp.maximum(x @ params["W1"] + params["b1"], 0.0)
    logits = h @ params["W2"] + params["b2"]
    m = tnp.max(logits, axis=1, keepdims=True)
    logp = logits - m - tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True))
    return -tnp.mean(logp[tnp.arange(x.shape[0]), y])


def mlp_args():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(20, 16)).astype(np.float32) * 0.3,
              "b1": rng.normal(size=16).astype(np.float32),
              "W2": rng.normal(size=(16, 5)).astype(np.float32) * 0.3,
              "b2": rng.normal(size=5).astype(np.float32)}
    x = rng.normal(size=(8, 20)).astype(np.float32)
    y = rng.integers(0, 5, 8).astype(np.int32)
    return params, x, y


@pytest.fixture(scope="module")
def grad_functions():
    args = mlp_args()
    unfused = optimize(tracejit.make_ir(tracejit.value_and_grad(mlp_loss))(*args))
    return unfused, fuse(unfused), tree_flatten(args)[0]


def test_fusion_is_registered():
    assert PRIMITIVES["fusion"].kind == "other"


def test_fused_value_and_grad_verifies_and_round_trips(grad_functions):
    _, fused, _ = grad_functions
    assert sum(ins.prim == "fusion" for ins in fused.body) >= 3
    verify(fused)
    text = str(fused)
    again = parse(text)
    verify(again)
    assert str(again) == text


def test_reference_evaluation_of_fused_equals_unfused(grad_functions):
    unfused, fused, leaves = grad_functions
    want = eval_function(unfused, leaves)
    for fn in (fused, parse(str(fused))):
        got = eval_function(fn, leaves)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_reference_backend_runs_a_fused_function(grad_functions):
    unfused, fused, leaves = grad_functions
    from tracejit.backends import reference
    got = reference.compile(fused)(leaves)
    for g, w in zip(got, eval_function(unfused, leaves)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_verifier_checks_a_kernel_against_its_body():
    fn = fuse(optimize(tracejit.make_ir(lambda x: tnp.exp(x) * 2.0)(np.zeros(3, np.float32))))
    (ins,) = [i for i in fn.body if i.prim == "fusion"]
    verify(fn)
    wrong_operand = Var(tracejit.ir.TensorType((4,), "float32"))
    bad = Function([wrong_operand], [Instr("fusion", [wrong_operand], ins.attrs,
                                           [Var(r.type) for r in ins.results])],
                   [], "bad")
    bad.results = list(bad.body[0].results)
    with pytest.raises(IRVerifyError, match="fusion: kernel kernel0 takes"):
        verify(bad)
    bad_kind = Function(fn.params, [Instr("fusion", ins.operands,
                                          dict(ins.attrs, kind="tiles"), ins.results)],
                        fn.results, "bad_kind")
    with pytest.raises(IRVerifyError, match="kind must be one of"):
        verify(bad_kind)
