"""Prepared launches (tracejit/backends/cuda/launch.py). The simulator
launches through the dispatcher, so this drives ``Prepared`` with
stand-ins for numba-cuda's compiled kernel and driver launch that build
the argument list the way numba-cuda 0.30 does; the real path is checked
on the first GPU run (benchmarks/gpu_check.sh)."""
import ctypes

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cuda
from tracejit.backends.cuda import launch
from tracejit.backends.cuda.launch import Prepared


class Dev:
    """A device array: a shape and an address."""

    def __init__(self, shape, ptr):
        self.shape, self.ptr = shape, ptr
        self.device_ctypes_pointer = ctypes.c_void_p(ptr)


class Kernel:
    """numba-cuda's _Kernel, as far as Prepared uses it."""

    def __init__(self, argument_types, pointer_offset=4):
        self.argument_types = argument_types
        self.offset = pointer_offset
        self.prepared = 0

    def _prepare_args(self, ty, val, stream, retr, kernelargs):
        self.prepared += 1
        if ty == "i64":
            kernelargs.append(ctypes.c_int64(val))
            return
        size = 1
        for n in val.shape:
            size *= n
        head = [0, 0, size, 4]
        kernelargs.extend(head[:self.offset] + [val.ptr] + head[self.offset:])
        kernelargs.extend(val.shape)
        kernelargs.extend(4 * n for n in val.shape)


def _setup(**kw):
    calls, slow = [], []
    kernel = Kernel(["i64", "i64", "a", "a"], **kw)
    p = Prepared(kernel, (7, 3), "config", "stream",
                 lambda stream, config, fn, *args: calls.append((stream, config, fn, args)),
                 lambda *arrays: slow.append(arrays), cufunc="cufunc")
    return kernel, p, calls, slow


def test_later_calls_only_write_the_addresses():
    kernel, p, calls, slow = _setup()
    p(Dev((2, 3), 1000), Dev((3,), 2000))
    prepared = kernel.prepared
    p(Dev((2, 3), 5000), Dev((3,), 6000))
    assert kernel.prepared == prepared and not slow and p.fast_calls == 2
    (s0, c0, f0, a0), (_, _, _, a1) = calls
    assert (s0, c0, f0) == ("stream", "config", "cufunc")
    assert [x.value for x in a0[:2]] == [7, 3]
    assert a0[2 + 4] == 1000 and a1[2 + 4] == 5000
    assert a1[2 + 4 + 1:2 + 4 + 3] == (2, 3)            # the shape stays
    second = 2 + 9                                      # 5 + 2 shape + 2 strides per 2-d array
    assert a0[second + 4] == 2000 and a1[second + 4] == 6000
    assert a0[2:6] == (0, 0, 6, 4)                      # meminfo, parent, size, itemsize


def test_a_different_shape_goes_through_the_dispatcher():
    _, p, calls, slow = _setup()
    p(Dev((2, 3), 1000), Dev((3,), 2000))
    p(Dev((3, 2), 1000), Dev((3,), 2000))
    assert len(calls) == 1 and len(slow) == 1


def test_an_unexpected_argument_layout_disables_the_fast_path():
    _, p, calls, slow = _setup(pointer_offset=3)
    for _ in range(2):
        p(Dev((2, 3), 1000), Dev((3,), 2000))
    assert not calls and len(slow) == 2 and p.broken


def test_a_failing_first_launch_falls_back_for_good():
    slow = []

    def launch(*args):
        raise TypeError("not a stream")
    p = Prepared(Kernel(["i64", "i64", "a", "a"]), (7, 3), "config", 0, launch,
                 lambda *arrays: slow.append(arrays), cufunc="cufunc")
    for _ in range(2):
        p(Dev((2, 3), 1000), Dev((3,), 2000))
    assert len(slow) == 2 and p.broken


@pytest.mark.skipif(cuda.simulator(), reason="the simulator launches through the dispatcher")
def test_plans_use_prepared_launches_on_a_gpu():
    before = dict(launch.STATS)
    f = tracejit.jit(lambda x: tnp.tanh(x * 2) + tnp.sum(x), backend="cuda")
    x = np.linspace(-1, 1, 1000).astype(np.float32)
    for _ in range(3):
        got = np.asarray(f(x))
    np.testing.assert_allclose(got, np.tanh(x * 2) + x.sum(), rtol=1e-5, atol=1e-5)
    assert launch.STATS["gave_up"] == before["gave_up"]
    assert launch.STATS["fast"] > before["fast"]
