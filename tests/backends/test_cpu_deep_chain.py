"""A kernel that is one long chain (a Python loop unrolled by tracing) nests
deeper than Python's default recursion limit in the code generator."""
import numpy as np

import tracejit


def test_long_unrolled_chain_compiles_and_matches_reference():
    def f(a, x):
        for i in range(400):
            x = x * a + 0.001 * i
        return x

    a = np.float64(0.999)
    x = np.linspace(-1, 1, 5)
    got = tracejit.jit(f, backend="cpu")(a, x)
    want = tracejit.jit(f, backend="reference")(a, x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
