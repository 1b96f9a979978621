"""Compile kernels in a worker process, for compilations in the background.

A tiered function (tracejit/tiered.py) builds its plan in a background
thread while the caller's thread runs the reference interpreter. Numba's
front end is Python and holds the GIL almost all the time, so a compiling
thread starves the interpreting one (each NumPy call that releases the GIL
waits up to the switch interval, 5 ms, to get it back: an LSTM's first
interpreted call took seconds instead of a tenth of one). Kernels compiled
for a background build therefore go to a worker process: the same
compilation runs there (irgen.py's translation and LLVM, or Numba for what
irgen.py does not cover: Numba is imported there only then), and only the
object code comes back; the calling process links it without importing
Numba. (irgen.py's translation is Python too, and in-process its LLVM work
competes for the cores with the interpreted calls: a tiered CNN step's
first call took 3.8 s instead of 2.2.)

The worker is started on first use (a Python running this module's
``main``, with this tracejit on its path), serves requests one at a time over its
stdin and stdout (length-prefixed pickles of strings and bytes: no code is
unpickled from anywhere but this process and its own child), and exits
when the parent closes its stdin, at the latest when the parent exits.

``IN_WORKER`` (a context variable, so per thread) selects the worker for
the compilations of the thread that sets it.
"""
from __future__ import annotations

import atexit
import contextvars
import os
import pickle
import struct
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from . import compiler, irgen

#: True in a thread whose kernel compilations go to the worker process.
IN_WORKER = contextvars.ContextVar("tracejit_compile_in_worker", default=False)

_ROOT = Path(__file__).resolve().parents[3]   # the directory holding the tracejit package
_lock = threading.Lock()
_worker = None
#: Kernels compiled by the worker process for this process.
STATS = {"compiled": 0}


def _send(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _recv(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    n, = struct.unpack("<Q", head)
    return pickle.loads(stream.read(n))


def _start():
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), *paths])
    return subprocess.Popen([sys.executable, "-c", "from tracejit.backends.cpu.worker import main; main()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


def compile_here(source: str, name: str, arg_dtypes) -> tuple[bytes, str, str]:
    """(object code, symbol, which compiler): irgen.py's translation where it
    covers the kernel, else Numba's (compiler.py)."""
    if irgen.enabled():
        try:
            return (*irgen.compile_object(source, name, arg_dtypes), "llvmlite (worker process)")
        except irgen.Unsupported:
            pass
    return (*compiler.compile_object(source, name, arg_dtypes), "Numba (worker process)")


def compile_object(source: str, name: str, arg_dtypes) -> tuple[bytes, str, str]:
    """:func:`compile_here`, run in the worker process."""
    global _worker
    with _lock:   # one request at a time: the worker is sequential
        if _worker is None or _worker.poll() is not None:
            _worker = _start()
        try:
            _send(_worker.stdin, (source, name, tuple(arg_dtypes)))
            reply = _recv(_worker.stdout)
        except (BrokenPipeError, OSError):
            reply = None
    if reply is None:
        raise RuntimeError(f"the kernel compiler process exited while compiling {name}")
    status, payload = reply
    if status != "ok":
        raise RuntimeError(f"compiling {name} in the kernel compiler process failed:\n{payload}")
    STATS["compiled"] += 1
    return payload


@atexit.register
def _stop():
    """Close the worker's stdin (it exits) and reap it. Registered at import,
    so it runs after exit handlers registered later (tiered.wait_all, which
    lets background builds finish first)."""
    with _lock:
        if _worker is not None:
            _worker.stdin.close()
            _worker.wait()
            _worker.stdout.close()


def main():
    """The worker's loop: requests on stdin, replies on the original stdout
    (anything a library prints goes to stderr)."""
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    while (request := _recv(requests)) is not None:
        try:
            reply = ("ok", compile_here(*request))
        except Exception:  # noqa: BLE001 -- any failure goes back to the caller
            reply = ("error", traceback.format_exc())
        _send(replies, reply)

