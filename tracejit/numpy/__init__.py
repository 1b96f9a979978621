"""tracejit.numpy: NumPy's names and semantics on traced arrays
(``import tracejit.numpy as tnp``). See base.py for the core of the
namespace and how it differs from NumPy, linalg.py for ``tnp.linalg``,
more.py for the rest of NumPy's real-valued API, and docs/numpy.md."""
from . import linalg  # noqa: F401
from .base import *  # noqa: F401,F403
from .base import __all__ as _base_all
from .base import asarray, promote_dtypes, unary_op  # noqa: F401  (used by lax)
from .more import *  # noqa: F401,F403
from .more import __all__ as _more_all
from .floatbits import frexp, nextafter  # noqa: F401
from .intmath import gcd, lcm  # noqa: F401
from .nanstats import nanmedian, nanpercentile, nanquantile  # noqa: F401
from .vectorization import vectorize  # noqa: F401

from . import dispatch  # noqa: F401,E402  (np.sum(tracer) & co. trace: NEP 13 and 18)
from ..ir import dtypes as _dtypes  # noqa: E402



def __getattr__(name):
    if name == "bfloat16":   # imported on first use (tracejit/ir/dtypes.py)
        return _dtypes.load_bfloat16().bfloat16
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(set(_base_all) | set(_more_all) | {"linalg"} |
                 {"frexp", "nextafter", "gcd", "lcm", "nanmedian", "nanpercentile", "nanquantile",
                  "vectorize"})
