"""Numba's CUDA simulator for the whole test session.

The cuda backend's tests (tests/backends/cuda) run kernels in Numba's CUDA
simulator: the simulator is fixed when ``numba.cuda`` is first imported,
and any test module may import it, so it is switched on here, before
every test module (set NUMBA_ENABLE_CUDASIM=0 to run those tests on a real
GPU). It changes nothing else: the default backend never picks the
simulator (tracejit.backends.default_backend)."""
import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
if "numba" in sys.modules and "numba.cuda" not in sys.modules:
    from numba.core import config
    config.reload_config()
