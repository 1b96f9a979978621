"""Fault injection into checkpoints: every changed byte of a manifest or a
tensor file is a CheckpointError naming the file; deep nesting is refused
without a RecursionError; a save killed at any point leaves the previous
checkpoint loadable and its leftovers are removed by the next save."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracejit.train.checkpoint import (
    MAX_DEPTH,
    CheckpointError,
    encode_manifest,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_files,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("TRACEJIT_SOAK") == "1"


def small_tree():
    return {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                       "b": np.array([0.5, -1.5], np.float64)},
            "step": np.int64(7), "rng": np.array([1, 2], np.uint32), "lr": 0.125,
            "name": "run", "history": [1, 2.5, None, True]}


def saved(tmp_path):
    path = save_checkpoint(tmp_path, 12, small_tree(),
                           metadata={"pipeline": {"epoch": 3, "position": 40}, "seed": 0,
                                     "config": {"learning_rate": 0.001}, "best": 0.25})
    return path, path[:-len(".json")] + ".safetensors"


def mutations(data: bytes):
    """(description, bytes) for every byte position and class of change:
    a bit flip, a digit or letter swapped for its neighbour, a byte deleted,
    a byte inserted, truncation there; plus appended bytes. (Outside the soak,
    TRACEJIT_SOAK=1, deletions, insertions and truncations are tried at every
    7th position.)"""
    for i in range(len(data)):
        b = data[i]
        yield f"flip bit at {i}", data[:i] + bytes([b ^ 0x01]) + data[i + 1:]
        if 0x30 <= b <= 0x39:
            yield f"digit at {i}", data[:i] + bytes([0x30 + (b - 0x30 + 1) % 10]) + data[i + 1:]
        if 0x61 <= b <= 0x7A:
            yield f"case at {i}", data[:i] + bytes([b - 0x20]) + data[i + 1:]
        if not SOAK and i % 7:
            continue
        yield f"delete at {i}", data[:i] + data[i + 1:]
        yield f"insert space at {i}", data[:i] + b" " + data[i:]
        yield f"truncate at {i}", data[:i]
    yield "append newline", data + b"\n"
    yield "append byte", data + b"\0"


def test_every_manifest_change_is_refused(tmp_path):
    manifest, _ = saved(tmp_path)
    original = Path(manifest).read_bytes()
    count = 0
    for _, damaged in mutations(original):
        Path(manifest).write_bytes(damaged)
        with pytest.raises(CheckpointError, match=str(manifest)):
            load_checkpoint(manifest)
        count += 1
    assert count > 2 * len(original)
    Path(manifest).write_bytes(original)
    assert load_checkpoint(manifest)[0] == 12


def test_every_tensor_file_change_is_refused(tmp_path):
    manifest, data = saved(tmp_path)
    original = Path(data).read_bytes()
    for _, damaged in mutations(original):
        Path(data).write_bytes(damaged)
        with pytest.raises(CheckpointError, match=str(data)):
            load_checkpoint(manifest)
    Path(data).write_bytes(original)
    load_checkpoint(manifest)


def test_edited_manifest_value_is_refused(tmp_path):
    """The issue's case: one digit of the pipeline position, rewritten as
    valid JSON (not re-signed)."""
    manifest, _ = saved(tmp_path)
    doc = json.loads(Path(manifest).read_text())
    doc["metadata"]["pipeline"]["position"] = 41
    Path(manifest).write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    with pytest.raises(CheckpointError, match="manifest checksum mismatch"):
        load_checkpoint(manifest)


def test_swapped_and_renamed_files_are_refused(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": np.zeros(3, np.float32)}, keep=None)
    save_checkpoint(tmp_path, 2, {"w": np.ones(3, np.float32)}, keep=None)
    d1, d2 = tmp_path / "ckpt-00000001.safetensors", tmp_path / "ckpt-00000002.safetensors"
    a, b = d1.read_bytes(), d2.read_bytes()
    d1.write_bytes(b)
    d2.write_bytes(a)
    for step in (1, 2):
        with pytest.raises(CheckpointError, match=f"ckpt-0000000{step}.safetensors"):
            load_checkpoint(tmp_path / f"ckpt-0000000{step}.json")
    d1.write_bytes(a)
    d2.write_bytes(b)
    m1, m2 = tmp_path / "ckpt-00000001.json", tmp_path / "ckpt-00000002.json"
    m1b, m2b = m1.read_bytes(), m2.read_bytes()
    m1.write_bytes(m2b)
    m2.write_bytes(m1b)
    with pytest.raises(CheckpointError, match="renamed or swapped"):
        load_checkpoint(m2)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    manifest, _ = saved(tmp_path)
    head = b'{"format":"tracejit-checkpoint","format_version":2,"structure":'
    for depth in (MAX_DEPTH * 3, 100_000):
        Path(manifest).write_bytes(head + b"[" * depth + b"]" * depth + b"}\n")
        with pytest.raises(CheckpointError, match=str(manifest)):
            load_checkpoint(manifest)
    # a deep manifest with a valid checksum is refused too
    doc = json.loads(encode_manifest({"format": "tracejit-checkpoint", "format_version": 2}))
    nest = None
    for _ in range(3 * MAX_DEPTH):
        nest = {"t": "list", "items": [nest or {"t": "none"}]}
    doc.update(step=12, sha256="0" * 64, tensors=[], structure=nest)
    Path(manifest).write_bytes(encode_manifest(doc))
    with pytest.raises(CheckpointError, match="deeper"):
        load_checkpoint(manifest)


def test_saving_a_too_deep_tree_is_refused(tmp_path):
    tree = []
    for _ in range(MAX_DEPTH + 5):
        tree = [tree]
    with pytest.raises(ValueError, match="nested more than"):
        save_checkpoint(tmp_path, 1, tree)


def test_version_1_manifest_is_refused_with_a_reason(tmp_path):
    manifest, _ = saved(tmp_path)
    doc = json.loads(Path(manifest).read_text())
    doc["format_version"] = 1
    del doc["manifest_sha256"]
    Path(manifest).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="carry no checksum"):
        load_checkpoint(manifest)


KILLER = """
import os, signal, sys
import numpy as np
from tracejit.train import checkpoint
directory, target, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
checkpoint.save_checkpoint(directory, 1, {"w": np.zeros(1000, np.float32)}, keep=1)
calls = {"n": 0}
real = getattr(os, target)
def killing(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(os, target, killing)
checkpoint.save_checkpoint(directory, 2, {"w": np.ones(1000, np.float32)}, keep=1)
print("finished")
"""

# (function to die in, which call): data file written; before the data file
# is moved into place; between data and manifest; before the manifest is moved
# into place; while pruning the old checkpoint.
KILL_POINTS = [("fsync", 1), ("replace", 1), ("fsync", 2), ("fsync", 3), ("replace", 2),
               ("unlink", 1)]


@pytest.mark.parametrize(("target", "nth"), KILL_POINTS)
def test_sigkill_during_save(tmp_path, target, nth):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), target, str(nth)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    step, tree, _ = load_checkpoint(tmp_path)      # the latest complete checkpoint
    assert step in (1, 2)
    assert np.all(tree["w"] == (0 if step == 1 else 1))
    save_checkpoint(tmp_path, 3, {"w": np.full(1000, 3, np.float32)}, keep=1)
    names = sorted(os.listdir(tmp_path))
    assert names == ["ckpt-00000003.json", "ckpt-00000003.safetensors"], names
    assert load_checkpoint(latest_checkpoint(tmp_path))[0] == 3


def test_remove_stale_files_keeps_complete_checkpoints(tmp_path):
    save_checkpoint(tmp_path, 5, {"w": np.zeros(2)})
    (tmp_path / ".ckpt-00000006.safetensors.x1.tmp").write_bytes(b"\0")
    (tmp_path / ".ckpt-00000006.json.x2.tmp").write_bytes(b"{")
    (tmp_path / "ckpt-00000006.safetensors").write_bytes(b"orphan")
    (tmp_path / "notes.txt").write_text("mine")
    removed = remove_stale_files(tmp_path)
    assert len(removed) == 3
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000005.json", "ckpt-00000005.safetensors",
                                            "notes.txt"]
