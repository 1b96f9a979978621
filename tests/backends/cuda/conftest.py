"""The cuda backend's tests run where numba-cuda works: Numba's CUDA
simulator (switched on by tests/conftest.py) or a real GPU."""
import pytest

from tracejit.backends import cuda


def pytest_collection_modifyitems(config, items):
    ok = cuda.available()
    skip = pytest.mark.skip(reason="numba-cuda finds no GPU and the simulator is off")
    # The simulator computes on NumPy scalars, which warn where a GPU
    # silently gives inf or NaN (the values are checked against the reference).
    quiet = pytest.mark.filterwarnings("ignore::RuntimeWarning")
    for item in items:
        if "backends/cuda" in str(item.fspath):
            item.add_marker(quiet)
            if not ok:
                item.add_marker(skip)
