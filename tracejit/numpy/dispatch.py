"""NumPy's dispatch protocols on traced values: ``np.sum(t)``, ``np.exp(t)``,
``np.concatenate([t, u])``, ``np.linalg.inv(t)`` run tracejit.numpy's
function of the same name, so code written against NumPy traces unchanged.

NumPy hands a ufunc call with a traced operand to ``Tracer.__array_ufunc__``
and any other API function to ``Tracer.__array_function__`` (NEP 13, NEP 18).
Where tracejit.numpy has no such function, or the call asks for in-place
output (``out=``), the error names the user's line and says what to use.
"""
from __future__ import annotations

from ..core import Tracer
from ..errors import ConcretizationError
from . import base, floatbits, intmath, linalg, more, nanstats, vectorization

#: ufunc.reduce / accumulate as tracejit.numpy reductions and scans.
_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
           "logical_and": "all", "logical_or": "any", "fmax": "nanmax", "fmin": "nanmin"}
_ACCUMULATE = {"add": "cumsum", "multiply": "cumprod"}


def _lookup(module: str, name: str):
    """tracejit.numpy's (or tnp.linalg's) function ``name``, or None."""
    if module.endswith("linalg"):
        return getattr(linalg, name, None)
    for m in (base, more, floatbits, intmath, nanstats, vectorization):
        fn = getattr(m, name, None)
        if callable(fn) and not isinstance(fn, type):
            return fn
    return None


def _refuse(what: str, hint: str):
    raise ConcretizationError(f"{what} cannot run on a traced value: {hint}")


def _check_out(what, kwargs):
    out = kwargs.pop("out", None)
    if out is not None and not (isinstance(out, tuple) and all(o is None for o in out)):
        _refuse(what, "traced values are immutable, so out= is not supported; use the "
                      "result (or x.at[...].set(...))")


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    name = ufunc.__name__
    what = f"numpy.{name}" + ("" if method == "__call__" else f".{method}")
    _check_out(what, kwargs)
    if kwargs.pop("where", True) is not True:
        _refuse(what, "where= is not supported; use tracejit.numpy.where")
    if method == "__call__":
        fn = _lookup("numpy", name)
        if fn is None:
            _refuse(what, f"tracejit.numpy has no {name} (see docs/numpy.md)")
        return fn(*inputs, **kwargs)
    if method == "reduce" and name in _REDUCE:
        kwargs.setdefault("axis", 0)
        return _lookup("numpy", _REDUCE[name])(*inputs, **kwargs)
    if method == "accumulate" and name in _ACCUMULATE:
        kwargs.setdefault("axis", 0)
        return _lookup("numpy", _ACCUMULATE[name])(*inputs, **kwargs)
    if method == "outer" and len(inputs) == 2:
        a, b = (base.asarray(x) for x in inputs)
        a = base.reshape(a, base.shape(a) + (1,) * base.ndim(b))
        return array_ufunc(self, ufunc, "__call__", a, b, **kwargs)
    _refuse(what, "this ufunc method has no traced version; use tracejit.numpy's functions")


def array_function(self, func, types, args, kwargs):
    name = func.__name__
    module = getattr(func, "__module__", "numpy") or "numpy"
    what = f"{module}.{name}"
    fn = _lookup(module, name)
    if fn is None:
        _refuse(what, f"tracejit.numpy has no {name}; see docs/numpy.md for what it leaves "
                      f"out and why")
    kwargs = dict(kwargs)
    _check_out(what, kwargs)
    return fn(*args, **kwargs)


Tracer.__array_ufunc__ = array_ufunc
Tracer.__array_function__ = array_function
