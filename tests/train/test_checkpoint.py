import json
import os
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.train.checkpoint import (
    CheckpointError,
    encode_manifest,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def make_tree(seed=0, hidden=300):
    rng = np.random.default_rng(seed)
    return {
        "params": {
            "dense1": {
                "kernel": rng.standard_normal((784, hidden)).astype(np.float32),
                "bias": np.zeros(hidden, np.float32),
            },
            "dense2": {
                "kernel": rng.standard_normal((hidden, 10)).astype(np.float32),
                "bias": np.zeros(10, np.float32),
            },
        },
        "opt_state": (
            {"m": {"dense": {"bias": np.ones(10, np.float64)}}, "count": np.int64(7)},
            None,
            [0.9, 0.999],
        ),
        "rng": np.array([0, 42], dtype=np.uint32),
        "step": 12,
        "use_nesterov": True,
        "name": "mlp",
    }


def assert_tree_equal(a, b, where="<root>"):
    assert type(a) is type(b), f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_tree_equal(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tree_equal(x, y, f"{where}/{i}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def data_file(manifest_path):
    return manifest_path[: -len(".json")] + ".safetensors"


# ---------------------------------------------------------------- round trip

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint32, np.bool_]

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(
        dtype=dt,
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
np_scalars = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.from_dtype(np.dtype(dt)).map(lambda v: np.dtype(dt).type(v))
)
py_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
trees = st.recursive(
    st.one_of(arrays, np_scalars, py_scalars),
    lambda children: st.one_of(
        st.dictionaries(keys, children, max_size=4),
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=10,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, step=st.integers(0, 10**9))
def test_round_trip_hypothesis(tmp_path_factory, tree, step):
    d = tmp_path_factory.mktemp("ckpt")
    meta = {"epoch": 3, "best": 0.91, "pipeline": {"offset": [1, 2]}}
    path = save_checkpoint(d, step, tree, metadata=meta)
    assert os.path.basename(path) == f"ckpt-{step:08d}.json"
    got_step, got, got_meta = load_checkpoint(d)
    assert got_step == step
    assert got_meta == meta
    assert_tree_equal(tree, got)
    # Loading against itself as `like` passes.
    load_checkpoint(path, like=tree)


def test_round_trip_nested_named_paths(tmp_path):
    tree = make_tree()
    path = save_checkpoint(tmp_path, 12, tree, metadata={"epoch": 2})
    step, got, meta = load_checkpoint(path)
    assert step == 12 and meta == {"epoch": 2}
    assert_tree_equal(tree, got)
    # Returned arrays are ordinary writable arrays.
    got["params"]["dense1"]["bias"][0] = 1.0
    manifest = json.loads(open(path).read())
    names = {t["name"] for t in manifest["tensors"]}
    assert "params/dense1/kernel" in names
    assert "opt_state/0/m/dense/bias" in names
    assert "opt_state/0/count" in names
    assert "rng" in names
    assert manifest["step"] == 12 and manifest["format_version"] == 2
    assert len(manifest["sha256"]) == 64


def test_noncontiguous_and_big_endian_arrays(tmp_path):
    a = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]
    b = np.arange(5, dtype=">i4")
    save_checkpoint(tmp_path, 0, {"a": a, "b": b})
    _, got, _ = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)
    assert got["b"].dtype == np.int32


def test_bad_inputs_rejected(tmp_path):
    with pytest.raises(TypeError, match="dict keys must be str"):
        save_checkpoint(tmp_path, 0, {1: np.zeros(2)})
    with pytest.raises(TypeError, match="unsupported leaf"):
        save_checkpoint(tmp_path, 0, {"f": object()})
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path, 0, {}, metadata={"x": object()})
    with pytest.raises(TypeError, match="dtype"):
        save_checkpoint(tmp_path, 0, {"s": np.array(["a", "b"])})
    with pytest.raises(ValueError, match="same name"):
        save_checkpoint(tmp_path, 0, {"a/b": np.zeros(1), "a": {"b": np.zeros(1)}})
    assert list_checkpoints(tmp_path) == []


# ---------------------------------------------------------------- pruning / latest


def test_keep_k_pruning(tmp_path):
    for step in range(0, 80, 10):
        save_checkpoint(tmp_path, step, {"w": np.full(3, step)}, keep=3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [50, 60, 70]
    files = sorted(os.listdir(tmp_path))
    assert files == [
        f"ckpt-{s:08d}.{ext}" for s in (50, 60, 70) for ext in ("json", "safetensors")
    ]
    # Saving an older step never deletes the one just written.
    save_checkpoint(tmp_path, 5, {"w": np.zeros(3)}, keep=3)
    assert 5 in [s for s, _ in list_checkpoints(tmp_path)]
    # keep=None keeps everything.
    save_checkpoint(tmp_path, 100, {"w": np.zeros(3)}, keep=None)
    assert len(list_checkpoints(tmp_path)) == 5


def test_latest_selection_is_by_step(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "does-not-exist") is None
    for step in (3, 200_000_000, 17):  # numeric, not lexicographic/mtime order
        save_checkpoint(tmp_path, step, {"w": np.array([step])})
    assert latest_checkpoint(tmp_path).endswith("ckpt-200000000.json")
    step, tree, _ = load_checkpoint(tmp_path)
    assert step == 200_000_000 and tree["w"][0] == 200_000_000
    # Any of manifest path, data path or stem loads the same checkpoint.
    m = os.path.join(tmp_path, "ckpt-00000017.json")
    for p in (m, data_file(m), m[: -len(".json")]):
        assert load_checkpoint(p)[0] == 17


def test_empty_directory_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


def test_resave_same_step_replaces(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": np.zeros(2)})
    save_checkpoint(tmp_path, 1, {"w": np.ones(4)})
    _, tree, _ = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(tree["w"], np.ones(4))


# ---------------------------------------------------------------- corruption


def test_truncated_file_refused(tmp_path):
    good = save_checkpoint(tmp_path, 1, make_tree(1))
    bad = save_checkpoint(tmp_path, 2, make_tree(2))
    with open(data_file(bad), "r+b") as f:
        f.truncate(os.path.getsize(data_file(bad)) // 2)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path)  # must not silently fall back to step 1
    msg = str(e.value)
    assert "ckpt-00000002.safetensors" in msg and "truncated" in msg
    assert "ckpt-00000001.json" in msg  # points at the fallback
    # The previous good checkpoint is still on disk and loadable by path.
    assert load_checkpoint(good)[0] == 1


def test_flipped_byte_refused(tmp_path):
    path = save_checkpoint(tmp_path, 4, make_tree())
    data = data_file(path)
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        f.seek(size - 100)
        b = f.read(1)
        f.seek(size - 100)
        f.write(bytes([b[0] ^ 0x01]))
    with pytest.raises(CheckpointError, match=r"ckpt-00000004\.safetensors.*sha256 mismatch"):
        load_checkpoint(path)


def test_missing_data_file_refused(tmp_path):
    path = save_checkpoint(tmp_path, 4, {"w": np.zeros(2)})
    os.unlink(data_file(path))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)


def test_manifest_mismatch_refused(tmp_path):
    path = save_checkpoint(tmp_path, 4, make_tree(hidden=8))
    manifest = json.loads(open(path).read())
    for t in manifest["tensors"]:
        if t["name"] == "params/dense1/kernel":
            t["shape"] = [784, 9]
        if t["name"] == "rng":
            t["dtype"] = "int32"
    with open(path, "wb") as f:   # re-signed: the checks behind the checksum
        f.write(encode_manifest(manifest))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "params/dense1/kernel: data file has float32[784,8], manifest says float32[784,9]" in msg
    assert "rng: data file has uint32[2], manifest says int32[2]" in msg


def test_manifest_garbage_or_wrong_sha_refused(tmp_path):
    path = save_checkpoint(tmp_path, 4, {"w": np.zeros(2)})
    manifest = json.loads(open(path).read())
    manifest["sha256"] = "0" * 64
    with open(path, "wb") as f:
        f.write(encode_manifest(manifest))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_checkpoint(path)
    with open(path, "w") as f:
        f.write('{"format": "tracejit-checkp')
    with pytest.raises(CheckpointError, match="unreadable manifest"):
        load_checkpoint(path)


def test_like_mismatch_message(tmp_path):
    save_checkpoint(tmp_path, 1, make_tree(hidden=300))
    load_checkpoint(tmp_path, like=make_tree(hidden=300))  # matches
    like = make_tree(hidden=200)
    like["params"]["extra"] = {"w": np.zeros(3, np.float32)}
    del like["rng"]
    like["opt_state"] = like["opt_state"][:2]
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path, like=like)
    msg = str(e.value)
    assert "params/dense1/kernel: checkpoint has float32[784,300], model expects float32[784,200]" in msg
    assert "params/dense1/bias: checkpoint has float32[300], model expects float32[200]" in msg
    assert "params/extra: missing from checkpoint" in msg
    assert "rng: in checkpoint (uint32[2]) but not expected by model" in msg
    assert "opt_state: checkpoint has tuple of length 3, model expects tuple of length 2" in msg


def test_like_accepts_shape_dtype_structs(tmp_path):
    class Spec:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    save_checkpoint(tmp_path, 1, {"w": np.zeros((2, 3), np.float32)})
    load_checkpoint(tmp_path, like={"w": Spec((2, 3), np.float32)})
    with pytest.raises(CheckpointError,
                       match=r"w: checkpoint has float32\[2,3\], model expects float64\[2,3\]"):
        load_checkpoint(tmp_path, like={"w": Spec((2, 3), np.float64)})


# ---------------------------------------------------------------- crash safety


def test_simulated_crash_leaves_no_visible_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 10, {"w": np.ones(3)})
    # A crash mid-write leaves temporary files (never renamed) ...
    (tmp_path / ".ckpt-00000020.safetensors.abc123.tmp").write_bytes(b"\x00" * 10)
    (tmp_path / ".ckpt-00000020.json.def456.tmp").write_bytes(b'{"step": 20')
    # ... or a crash between the two renames leaves data without a manifest.
    (tmp_path / "ckpt-00000030.safetensors").write_bytes(b"partial")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10]
    assert latest_checkpoint(tmp_path).endswith("ckpt-00000010.json")
    assert load_checkpoint(tmp_path)[0] == 10


def test_crash_during_write_cleans_up(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"w": np.ones(3)})
    real_replace = os.replace
    calls = []

    def dying_replace(src, dst):
        calls.append(dst)
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt("killed")  # die before the manifest lands
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, {"w": np.zeros(3)})
    monkeypatch.setattr(os, "replace", real_replace)
    # Data file was renamed before the manifest (manifest last).
    assert calls[0].endswith("ckpt-00000002.safetensors")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert load_checkpoint(tmp_path)[0] == 1


# ---------------------------------------------------------------- no pickle


def test_data_file_is_safetensors_not_pickle(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path, 3, make_tree(hidden=4))
    raw = open(data_file(path), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["params/dense1/kernel"]["dtype"] == "F32"
    assert header["params/dense1/kernel"]["shape"] == [784, 4]
    assert header["rng"]["dtype"] == "U32"
    assert header["__metadata__"]["format"] == "tracejit-checkpoint"
    assert not raw.startswith(b"\x80")  # pickle protocol 2+ marker
    assert not raw.startswith(b"PK")  # npz / torch zip

    def forbidden(*a, **k):
        raise AssertionError("pickle used while loading a checkpoint")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    step, tree, _ = load_checkpoint(path)
    assert step == 3 and tree["params"]["dense1"]["kernel"].shape == (784, 4)
