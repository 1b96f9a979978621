"""Verified entries of the on-disk kernel cache, shared by the CPU and CUDA
backends.

An entry is one file, ``<cache dir>/<folder>/k_<key><suffix>``: a header line
naming the entry's key, payload size and SHA-256, then the payload::

    #tracejit-cache-entry v1 key=<key> size=<bytes> sha256=<hex>
    <payload>

The header starts with ``#`` so that a CUDA entry (Python source) is still a
module file Numba can cache beside. :meth:`EntryStore.read` hands back a
payload only after checking the header's key against the requested one (a
swapped or foreign entry), its size (a truncated one) and its checksum (a
damaged one); any entry that fails, or cannot be read, is logged
(``TRACEJIT_LOG=cache``), removed, and reported as missing, so the caller
compiles again and rewrites it. Nothing read from disk reaches LLVM's
loader or ``import`` unverified. (The checksum guards against damage and
mix-ups, not against someone who rewrites an entry on purpose: whoever can
write the cache directory can run code as you.)

Writes go to a temporary file in the entry's folder that is then linked (or
renamed) into place, so concurrent processes can share a directory and a
killed writer leaves at worst a ``.tmp-*`` file (removed by the first write
of a later process once it is an hour old). A directory that cannot be
written (read-only file system, a path under a regular file, no permission)
is not an error: kernels are compiled in memory, with one warning per
process.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path

from .. import log

MAGIC = b"#tracejit-cache-entry v1"
_HEADER = re.compile(rb"^#tracejit-cache-entry v1 key=([0-9a-f]{1,64}) size=([0-9]{1,12}) "
                     rb"sha256=([0-9a-f]{64})$")
_MAX_HEADER = 200

_warned: set = set()
_warn_lock = threading.Lock()
_swept: set = set()
#: A temporary file older than this was left by a killed writer.
STALE_SECONDS = 3600


def cache_dir() -> Path:
    """``$TRACEJIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/tracejit`` (by default
    ``~/.cache/tracejit``)."""
    env = os.environ.get("TRACEJIT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracejit"


def encode(key: str, payload: bytes) -> bytes:
    """The bytes of an entry file: header line, then ``payload``."""
    digest = hashlib.sha256(payload).hexdigest()
    return MAGIC + f" key={key} size={len(payload)} sha256={digest}\n".encode() + payload


def decode(key: str, data: bytes) -> bytes:
    """The payload of entry file bytes ``data`` for ``key``; ValueError saying
    what is wrong if the entry is not intact or belongs to another key."""
    newline = data.find(b"\n", 0, _MAX_HEADER)
    if newline < 0:
        raise ValueError("no entry header (not a tracejit cache entry, or truncated)")
    match = _HEADER.match(data[:newline])
    if match is None:
        raise ValueError("malformed entry header")
    their_key, size, digest = match.group(1).decode(), int(match.group(2)), match.group(3).decode()
    if their_key != key:
        raise ValueError(f"foreign entry: it holds k_{their_key}")
    payload = data[newline + 1:]
    if len(payload) != size:
        raise ValueError(f"{'truncated' if len(payload) < size else 'extra bytes'}: "
                         f"{len(payload)} bytes, header says {size}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError("damaged: checksum mismatch")
    return payload


def warn_unwritable(directory, error: OSError):
    """Warn once per process and directory that the cache cannot be written."""
    with _warn_lock:
        if str(directory) in _warned:
            return
        _warned.add(str(directory))
    warnings.warn(f"tracejit: the kernel cache directory {directory} cannot be written "
                  f"({error.strerror or error}); compiling kernels in memory (set "
                  f"TRACEJIT_CACHE_DIR to a writable directory to keep them)",
                  RuntimeWarning, stacklevel=3)


class EntryStore:
    """The entries in ``<cache dir>/<folder>/``, named ``k_<key><suffix>``."""

    def __init__(self, folder: str, suffix: str):
        self.folder = folder
        self.suffix = suffix

    def directory(self) -> Path:
        return cache_dir() / self.folder

    def path(self, key: str) -> Path:
        return self.directory() / f"k_{key}{self.suffix}"

    def read(self, key: str, what: str = "kernel") -> bytes | None:
        """The verified payload of ``key``'s entry, or None when there is none
        or it failed verification (then it was logged and removed)."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:   # a directory, no permission, an I/O error
            self.discard(key, what, f"unreadable ({e.strerror or e})")
            return None
        try:
            return decode(key, data)
        except ValueError as e:
            self.discard(key, what, str(e))
            return None

    def discard(self, key: str, what: str, reason: str):
        """Log that ``key``'s entry is unusable and remove it (if we can)."""
        path = self.path(key)
        log.log("cache", f"{what}: k_{key}: discarding cache entry {path}: {reason}")
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            log.log("cache", f"{what}: k_{key}: cannot remove {path}: {e.strerror or e}")

    def write(self, key: str, payload: bytes) -> Path | None:
        """Store ``payload`` as ``key``'s entry; its path, or None when the
        directory cannot be written (warned once)."""
        return write_file(self.path(key), encode(key, payload))

    def write_beside(self, name: str, data: bytes) -> Path | None:
        """A plain file next to the entries (kernel source for people to read;
        never read back)."""
        return write_file(self.directory() / name, data)


def sweep_stale(directory: Path, now: float | None = None) -> list[Path]:
    """Remove ``.tmp-*`` files older than STALE_SECONDS from ``directory``
    (no writer takes that long: they were left by killed processes)."""
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = list(directory.glob(".tmp-*"))
    except OSError:
        return removed
    for tmp in candidates:
        try:
            if now - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    if removed:
        log.log("cache", f"removed {len(removed)} temporary file(s) left by killed writers "
                         f"in {directory}")
    return removed


def write_file(path: Path, data: bytes) -> Path | None:
    """Write ``data`` to ``path`` unless a file is there: to a temporary file
    first, then linked into place (renamed where hard links are missing).
    Returns ``path``, or None when the directory cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            return path
        if str(path.parent) not in _swept:
            _swept.add(str(path.parent))
            sweep_stale(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError as e:
        warn_unwritable(path.parent, e)
        return None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)     # fails if another process got there first
        except FileExistsError:
            pass
        except OSError:            # no hard links here: rename (atomic, may repeat)
            os.replace(tmp, path)
    except OSError as e:           # disk full, quota
        warn_unwritable(path.parent, e)
        return None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return path
