"""Kernel launches with the least host work numba-cuda allows.

A plan step launches the same kernel with the same grid, block and scalar
arguments (counts and dims) on every call, on arrays whose shapes never
change; only the arrays' addresses do. ``launcher`` returns a callable
taking just the arrays:

- on a GPU, a :class:`Prepared` launch. At its first call it lets
  numba-cuda build the kernel's argument list (``_prepare_args``, what
  ``kernel.launch`` does on every call), checks that each array's address
  sits where it expects, and keeps the list as a template; later calls copy
  the template, write the arrays' addresses in and call the driver launch
  numba-cuda itself uses. No argument typing, no specialisation lookup, no
  per-argument conversion. If the check fails, a shape differs or an
  array has no device pointer, that call (or, for a failed check, every
  call) goes through the configured dispatcher ``kernel[grid, block]``
  instead, which is always correct.
- under Numba's simulator, ``dispatcher[grid, block](*scalars, *arrays)``
  at each call (the simulator's configuration is shared state).

These are numba-cuda internals (0.30: ``_Kernel._prepare_args``,
``numba.cuda.dispatcher.launch`` / ``LaunchConfig``); the fallback keeps
other versions working. Untested on hardware so far.
"""
from __future__ import annotations

from ... import log
from .snippets import SIMULATOR

if not SIMULATOR:
    try:
        from numba.cuda import dispatcher as _nd
    except ImportError:   # another numba-cuda layout: launches use the dispatcher
        _nd = None
else:
    _nd = None

__all__ = ["launcher", "Prepared", "STATS"]

#: Launches through prepared argument lists, and prepared launches that
#: gave up (numba-cuda internals not as expected): on a GPU, the first
#: should grow and the second stay 0 (tests/backends/cuda/test_launch.py).
STATS = {"fast": 0, "gave_up": 0}

#: Offset of the data pointer in the arguments numba-cuda passes for one
#: array: meminfo, parent, size, itemsize, data, shape..., strides...
POINTER_OFFSET = 4


def _config(grid, block):
    try:
        return _nd.LaunchConfig(grid=grid, block=block, shmem_size=0, is_cooperative=False)
    except TypeError:   # cuda-core before 1.0
        return _nd.LaunchConfig(grid=grid, block=block, shmem_size=0, cooperative_launch=False)


def launcher(dispatcher, grid: int, block: int, scalars=()):
    """A callable ``launch(*arrays)`` running ``dispatcher``'s kernel on
    (grid, block) with the scalar arguments ``scalars`` first."""
    scalars = tuple(scalars)
    if SIMULATOR:   # the simulator's kernel[grid, block] configures the shared kernel itself
        def configure_and_launch(*arrays):
            dispatcher[grid, block](*scalars, *arrays)
        return configure_and_launch
    configured = dispatcher[grid, block]

    def slow(*arrays):
        configured(*scalars, *arrays)
    overloads = list(getattr(dispatcher, "overloads", {}).values())
    if _nd is None or len(overloads) != 1 or not hasattr(overloads[0], "_prepare_args"):
        return slow
    try:
        config = _config((grid, 1, 1), (block, 1, 1))
    except Exception as e:   # numba-cuda internals differ: the dispatcher it is
        log.log("compile", f"prepared launches unavailable ({e}); using the dispatcher")
        return slow
    return Prepared(overloads[0], scalars, config, configured.stream, _nd.launch, slow)


class Prepared:
    """A launch whose argument list is built once (see the module docstring).
    ``kernel`` is numba-cuda's compiled kernel (``_prepare_args``,
    ``argument_types``, ``_codelibrary``); ``launch(stream, config,
    cufunc_kernel, *args)`` the driver launch; ``slow(*arrays)`` the
    configured dispatcher."""

    def __init__(self, kernel, scalars, config, stream, launch, slow, cufunc=None):
        self.kernel, self.scalars = kernel, scalars
        self.config, self.stream, self.launch, self.slow = config, stream, launch, slow
        self.cufunc = cufunc
        self.template = None
        self.arrays = None          # (position in the template, shape) per array argument
        self.broken = False
        self.fast_calls = 0

    def _prepare(self, arrays):
        """Build the template from numba-cuda's own argument list; False
        when it does not look as expected."""
        args = (*self.scalars, *arrays)
        kernelargs, retr, where = [], [], []
        types = self.kernel.argument_types
        if len(types) != len(args):
            return False
        for k, (t, v) in enumerate(zip(types, args)):
            start = len(kernelargs)
            self.kernel._prepare_args(t, v, self.stream, retr, kernelargs)
            if k >= len(self.scalars):
                pos = start + POINTER_OFFSET
                if pos >= len(kernelargs) or kernelargs[pos] != _pointer(v):
                    return False
                where.append((pos, tuple(v.shape)))
        if self.cufunc is None:
            self.cufunc = self.kernel._codelibrary.get_cufunc().kernel
        self.template, self.arrays = kernelargs, where
        return True

    def __call__(self, *arrays):
        if self.broken:
            return self.slow(*arrays)
        if self.template is None:
            try:
                ok = self._prepare(arrays)
            except Exception as e:   # numba-cuda internals differ
                ok = False
                log.log("compile", f"prepared launch: {type(e).__name__}: {e}")
            if not ok:
                self.broken = True
                STATS["gave_up"] += 1
                log.log("compile", "prepared launch: unexpected kernel arguments; using the "
                                   "configured dispatcher")
                return self.slow(*arrays)
        args = list(self.template)
        try:
            for (pos, shape), a in zip(self.arrays, arrays):
                if a.shape != shape:
                    return self.slow(*arrays)
                args[pos] = _pointer(a)
        except AttributeError:   # not a Numba device array
            return self.slow(*arrays)
        try:
            self.launch(self.stream, self.config, self.cufunc, *args)
        except Exception as e:
            if self.fast_calls:
                raise
            self.broken = True   # the first direct launch failed: numba-cuda internals differ
            STATS["gave_up"] += 1
            log.log("compile", f"prepared launch failed ({type(e).__name__}: {e}); using the "
                               f"configured dispatcher")
            return self.slow(*arrays)
        self.fast_calls += 1
        STATS["fast"] += 1


def _pointer(a) -> int:
    """A Numba device array's data address."""
    return a.device_ctypes_pointer.value or 0
