"""The on-disk kernel cache: a second process compiles nothing the first one
compiled (neither imports Numba: irgen.py translates these kernels), concurrent processes share a
cache directory safely, and identical kernels in one program compile once."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tracejit
    import tracejit.numpy as tnp
    from tracejit.backends import cpu

    @tracejit.jit
    def f(x, y):
        e = tnp.exp(x - x.max(axis=1, keepdims=True))
        # the same elementwise kernel on two shapes: one compiled kernel
        return e / e.sum(axis=1, keepdims=True), tnp.tanh(x) * 2, tnp.tanh(y) * 2

    x = np.linspace(-3, 3, 20, dtype=np.float32).reshape(4, 5)
    y = np.linspace(-1, 1, 7, dtype=np.float32)
    s, a, b = f(x, y)
    assert np.allclose(s.sum(axis=1), 1, rtol=1e-5)
    assert np.allclose(a, np.tanh(x) * 2, rtol=1e-5) and np.allclose(b, np.tanh(y) * 2, rtol=1e-5)
    import sys
    print(json.dumps(dict(cpu.stats(), numba_imported="numba" in sys.modules)))
""")


def run(cache, log=""):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(cache), TRACEJIT_LOG=log,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_second_process_compiles_nothing(tmp_path):
    first, log1 = result(run(tmp_path, "compile"))
    assert first["compiled"] == 2 and first["memory_hits"] == 1, first
    assert "compiled in" in log1
    assert not first["numba_imported"]   # irgen.py translated every kernel: no Numba at all
    second, log2 = result(run(tmp_path, "compile"))
    assert second["compiled"] == 0 and second["disk_hits"] == 2, second
    assert "loaded from the disk cache" in log2 and "compiled in" not in log2
    assert not second["numba_imported"]   # a warm process links object code only
    assert len(list((tmp_path / "kernels").glob("k_*.py"))) == 2


def test_concurrent_processes_share_the_cache(tmp_path):
    procs = [run(tmp_path) for _ in range(2)]
    for p in procs:
        result(p)
    after, _ = result(run(tmp_path))
    assert after["compiled"] == 0, after
    assert not list((tmp_path / "kernels").glob(".tmp-*"))
