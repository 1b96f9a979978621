"""Fault injection into the kernel cache: whatever is found on disk, a jitted
call gives the right answer. Damaged, truncated, swapped, foreign or
unreadable entries are logged, removed and compiled again; a cache directory
that cannot be written means compiling in memory with one warning."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cache_store, cuda
from tracejit.backends.cpu import cache as cpu_cache
from tracejit.backends.cpu import loader
from tracejit.backends.cuda import cache as cuda_cache

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)


def expected():
    return np.tanh(X) * 3 + 1


def program(x):
    return tnp.tanh(x) * 3 + 1


def run():
    """A fresh process's view: nothing loaded in memory, a new jit."""
    cpu_cache._loaded.clear()
    out = tracejit.jit(program, backend="cpu")(X)
    np.testing.assert_allclose(out, expected(), rtol=1e-6)


def run_two_programs():
    """Two programs with different kernels: two chances to warn."""
    run()
    cpu_cache._loaded.clear()
    out = tracejit.jit(lambda x: tnp.exp(x) - 1, backend="cpu")(X)
    np.testing.assert_allclose(out, np.expm1(X), rtol=1e-5, atol=1e-6)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TRACEJIT_LOG", "cache")
    monkeypatch.setattr(cpu_cache, "_loaded", {})
    monkeypatch.setattr(cache_store, "_warned", set())
    return tmp_path


def entries(cache):
    return sorted((cache / "kernels").glob("k_*.o"))


def assert_intact(path):
    key = path.stem[2:]
    cache_store.decode(key, path.read_bytes())


def header_end(data):
    return data.index(b"\n") + 1


# (name, function of the entry's bytes -> damaged bytes)
DAMAGE = {
    "flip magic": lambda d: bytes([d[0] ^ 0xFF]) + d[1:],
    "flip key": lambda d: d[:30] + bytes([d[30] ^ 0x01]) + d[31:],
    "flip size": lambda d: d.replace(b" size=", b" size=9", 1),
    "flip checksum": lambda d: d[:header_end(d) - 2] + b"0" + d[header_end(d) - 1:]
    if d[header_end(d) - 2:header_end(d) - 1] != b"0" else
    d[:header_end(d) - 2] + b"1" + d[header_end(d) - 1:],
    "drop header newline": lambda d: d.replace(b"\n", b" ", 1),
    "flip symbol": lambda d: d[:header_end(d) + 3] + b"X" + d[header_end(d) + 4:],
    "flip ELF magic": lambda d: d[:d.index(b"\x7fELF")] + b"\x00" + d[d.index(b"\x7fELF") + 1:],
    "flip section offset": lambda d: d[:d.index(b"\x7fELF") + 0x28] + b"\xff"
    + d[d.index(b"\x7fELF") + 0x29:],
    "flip middle byte": lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0x10]) + d[len(d) // 2 + 1:],
    "flip last byte": lambda d: d[:-1] + bytes([d[-1] ^ 0x01]),
    "truncate to nothing": lambda d: b"",
    "truncate in header": lambda d: d[:20],
    "truncate after header": lambda d: d[:header_end(d)],
    "truncate half": lambda d: d[:len(d) // 2],
    "truncate one byte": lambda d: d[:-1],
    "extra byte": lambda d: d + b"\0",
    "old format (no header)": lambda d: d[header_end(d):],
    "garbage": lambda d: bytes(range(256)) * 4,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_discarded_and_recompiled(cache, capfd, damage):
    run()
    (path,) = entries(cache)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    before = cpu_cache.stats()["compiled"]
    run()
    assert cpu_cache.stats()["compiled"] == before + 1
    assert "discarding cache entry" in capfd.readouterr().err
    assert_intact(path)          # rewritten
    run()                        # and now a hit
    assert cpu_cache.stats()["compiled"] == before + 1


def test_swapped_entries_are_foreign(cache, capfd):
    def two(x):
        return tnp.tanh(x) * 3 + 1, tnp.exp(x).sum(axis=1)
    cpu_cache._loaded.clear()
    tracejit.jit(two, backend="cpu")(X)
    a, b = entries(cache)[:2]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    cpu_cache._loaded.clear()
    t, s = tracejit.jit(two, backend="cpu")(X)
    np.testing.assert_allclose(t, expected(), rtol=1e-6)
    np.testing.assert_allclose(s, np.exp(X).sum(axis=1), rtol=1e-6)
    err = capfd.readouterr().err
    assert err.count("foreign entry") == 2, err
    assert_intact(a) and assert_intact(b)


def test_entry_copied_under_another_name_is_foreign(cache, capfd):
    run()
    (path,) = entries(cache)
    other = path.with_name("k_" + "0" * 24 + ".o")
    shutil.copy(path, other)
    key = "0" * 24
    assert cache_store.EntryStore("kernels", ".o").read(key) is None
    assert "foreign entry" in capfd.readouterr().err
    assert not other.exists()


def test_unreadable_entry_is_discarded(cache, capfd):
    run()
    (path,) = entries(cache)
    path.unlink()
    path.mkdir()            # a directory where the entry should be
    run()
    assert "unreadable" in capfd.readouterr().err
    assert_intact(path)


def test_cache_under_a_regular_file_compiles_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(cache_store, "_warned", set())
    monkeypatch.setattr(cpu_cache, "_loaded", {})
    with pytest.warns(RuntimeWarning, match="cannot be written") as record:
        run_two_programs()
    assert len([w for w in record if "cannot be written" in str(w.message)]) == 1


def test_read_only_file_system_compiles_in_memory(cache, monkeypatch):
    """EROFS from every attempt to create a file (a read-only mount)."""
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(cache_store.tempfile, "mkstemp", read_only)
    with pytest.warns(RuntimeWarning, match="Read-only file system") as record:
        run_two_programs()
    assert len(record) == 1
    assert entries(cache) == []


def test_read_only_cache_still_serves_its_entries(cache, monkeypatch):
    run()
    monkeypatch.setattr(cache_store.tempfile, "mkstemp",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(30, "Read-only file system")))
    before = cpu_cache.stats()
    run()
    after = cpu_cache.stats()
    assert after["disk_hits"] == before["disk_hits"] + 1
    assert after["compiled"] == before["compiled"]


def test_cache_without_permission_compiles_in_memory(cache, monkeypatch):
    """A directory this user may not write (as root, which ignores the mode
    bits, the refusal is injected where the file would be created)."""
    (cache / "kernels").mkdir()
    os.chmod(cache / "kernels", 0o555)
    try:
        if os.access(cache / "kernels", os.W_OK):
            def denied(*args, **kwargs):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr(cache_store.tempfile, "mkstemp", denied)
        with pytest.warns(RuntimeWarning, match="Permission denied") as record:
            run_two_programs()
        assert len(record) == 1
        assert list((cache / "kernels").iterdir()) == []
    finally:
        os.chmod(cache / "kernels", 0o755)


def test_loader_refuses_malformed_objects():
    for bad in (b"", b"\x7fELF", b"\x7fELF\x02\x01" + b"\0" * 58, b"\x7fELF\x01\x01" + b"\0" * 100):
        with pytest.raises(loader.LoadError):
            loader.undefined_symbols(bad)


CHILD = """
import json, sys, numpy as np, tracejit, tracejit.numpy as tnp
from tracejit.backends import cpu
x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
a = tracejit.jit(lambda x: (tnp.tanh(x) * 3 + 1, tnp.exp(x).sum(axis=1)), backend="cpu")(x)
assert np.allclose(a[0], np.tanh(x) * 3 + 1, rtol=1e-6)
assert np.allclose(a[1], np.exp(x).sum(axis=1), rtol=1e-6)
print(json.dumps(cpu.stats()))
"""


def test_concurrent_compiles_into_one_cache(tmp_path):
    """Four processes compile the same kernels into one empty cache at once:
    all give the right answer, every entry is intact, and a fifth process
    compiles nothing."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path),
               PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for path in entries(tmp_path):
        assert_intact(path)
    assert not list((tmp_path / "kernels").glob(".tmp-*"))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1])["compiled"] == 0


def test_cuda_module_entry_damage_is_repaired(cache, capfd, monkeypatch):
    """The CUDA backend's module files are verified entries too (run in
    Numba's CUDA simulator here)."""
    if not cuda.available():
        pytest.skip("numba-cuda finds no GPU and the simulator is off")
    monkeypatch.setattr(cuda_cache, "_loaded", {})

    def go():
        cuda_cache._loaded.clear()
        out = tracejit.jit(program, backend="cuda")(X)
        np.testing.assert_allclose(np.asarray(out), expected(), rtol=1e-6)
    go()
    files = sorted((cache / "cuda").glob("k_*.py"))
    assert files
    for path in files:
        text = path.read_bytes()
        path.write_bytes(text.replace(b"def kernel(", b"def kernel(  ", 1))   # edited source
    go()
    assert "discarding cache entry" in capfd.readouterr().err
    for path in files:
        assert_intact(path)


@pytest.mark.skipif(os.environ.get("TRACEJIT_SOAK") != "1", reason="soak: TRACEJIT_SOAK=1")
def test_soak_every_header_byte_and_sampled_payload_bytes(cache, capfd):
    """Every byte of the entry's header and 100 payload bytes, each flipped."""
    run()
    (path,) = entries(cache)
    original = path.read_bytes()
    end = header_end(original)
    rng = np.random.default_rng(0)
    positions = list(range(end)) + sorted(rng.choice(np.arange(end, len(original)), 100,
                                                     replace=False).tolist())
    for i in positions:
        path.write_bytes(original[:i] + bytes([original[i] ^ 0x20]) + original[i + 1:])
        run()
        assert "discarding cache entry" in capfd.readouterr().err, i
        assert path.read_bytes() == original or cache_store.decode(path.stem[2:],
                                                                   path.read_bytes())


def test_cuda_cache_under_a_regular_file_compiles_in_memory(tmp_path, monkeypatch):
    if not cuda.available():
        pytest.skip("numba-cuda finds no GPU and the simulator is off")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(cache_store, "_warned", set())
    monkeypatch.setattr(cuda_cache, "_loaded", {})
    with pytest.warns(RuntimeWarning, match="cannot be written") as record:
        out = tracejit.jit(program, backend="cuda")(X)
    np.testing.assert_allclose(np.asarray(out), expected(), rtol=1e-6)
    assert len([w for w in record if "cannot be written" in str(w.message)]) == 1


def test_temporary_files_of_killed_writers_are_swept(cache, monkeypatch):
    monkeypatch.setattr(cache_store, "_swept", set())
    (cache / "kernels").mkdir()
    old = cache / "kernels" / ".tmp-killed"
    old.write_bytes(b"half an entry")
    os.utime(old, (1, 1))
    fresh = cache / "kernels" / ".tmp-writing"
    fresh.write_bytes(b"another process, writing now")
    run()
    assert not old.exists() and fresh.exists()
