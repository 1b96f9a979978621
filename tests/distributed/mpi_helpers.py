"""Launch a test program under ``mpiexec -n N`` with a timeout, so a hung
collective fails the test instead of hanging the suite."""
import os
import shutil
import subprocess
import sys

import pytest

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_mpiexec():
    """The ``mpiexec`` next to this Python (a venv with the pip ``mpich``), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(beside):
        return beside
    return shutil.which("mpiexec")


def _why_not():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'tracejit[mpi]')"
    if find_mpiexec() is None:
        return "no mpiexec next to sys.executable or on PATH (pip install mpich)"
    return None


REASON = _why_not()
needs_mpi = pytest.mark.skipif(REASON is not None, reason=str(REASON))


def mpirun(n, args, *, timeout=120, cwd=None, env=None, check=True):
    """Run ``mpiexec -n n python args...``; returns the CompletedProcess.
    ``args[0]`` may name a file in ``programs/`` or be ``-m``."""
    args = list(args)
    if not args[0].startswith("-") and not os.path.isabs(args[0]):
        args[0] = os.path.join(PROGRAMS, args[0])
    environment = dict(os.environ)
    environment["PYTHONPATH"] = REPO + os.pathsep + environment.get("PYTHONPATH", "")
    environment.setdefault("TRACEJIT_BACKEND", "cpu")
    environment.update(env or {})
    command = [find_mpiexec(), "-n", str(n), sys.executable] + args
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, env=environment)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(command)} did not finish in {timeout} s (a hung "
                    f"collective?)\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {proc.returncode}\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
