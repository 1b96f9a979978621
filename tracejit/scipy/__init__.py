"""tracejit.scipy: the parts of SciPy's API that tracejit traces and
differentiates (``import tracejit.scipy.linalg``)."""
from . import linalg  # noqa: F401
