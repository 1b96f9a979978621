"""Backend tests share one on-disk kernel cache per checkout (under
.pytest_cache, which git ignores): Numba compile time dominates these tests,
and a kernel compiled by one test (or an earlier run) is loaded, not
recompiled, by the next. Set before any kernel is compiled."""
import os
from pathlib import Path

CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "tracejit-kernels"
os.environ.setdefault("TRACEJIT_CACHE_DIR", str(CACHE))
