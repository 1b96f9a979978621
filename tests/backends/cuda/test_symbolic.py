"""A symbolic batch dimension on the cuda backend: one trace; each batch
size runs the plan of that size (tracejit/symbolic.py), as on the cpu."""
import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import ShapeDtypeStruct
from tracejit.nn import functional as F


def _loss(params, x, y):
    logits = tnp.tanh(x @ params["w"]) + params["b"]
    return tnp.mean(F.sparse_softmax_cross_entropy_with_logits(y, logits))


def test_value_and_grad_over_a_symbolic_batch_matches_the_reference():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}
    specs = [None, ShapeDtypeStruct((None, 4), np.float32), ShapeDtypeStruct((None,), np.int32)]
    f = tracejit.jit(tracejit.value_and_grad(_loss), input_specs=specs, backend="cuda")
    ref = tracejit.jit(tracejit.value_and_grad(_loss), backend="reference")
    for n in (5, 2):
        x = rng.normal(size=(n, 4)).astype(np.float32)
        y = rng.integers(0, 3, n).astype(np.int32)
        got, want = tracejit.tree_leaves(f(params, x, y)), tracejit.tree_leaves(ref(params, x, y))
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1
