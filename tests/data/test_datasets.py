import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.data import (
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    MNIST_FILES,
    DatasetError,
    load_cifar10,
    load_digits,
    load_mnist,
    read_idx,
    synthetic_images,
    write_cifar10_batch,
    write_idx,
)

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


# ---------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(IDX_DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
    ),
    suffix=st.sampled_from(["", ".gz"]),
)
def test_idx_round_trip_property(array, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("a.idx" + suffix)
        write_idx(path, array)
        back = read_idx(path)
    assert back.dtype == array.dtype
    assert back.dtype.isnative
    assert back.shape == array.shape
    assert back.tobytes() == array.tobytes()  # bitwise, NaNs included
    assert back.flags.writeable


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        (np.arange(100) % 10).astype(np.uint8),  # 1-D labels
        np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8),
        np.arange(-5, 5, dtype=np.int32) * 100000,
        np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
    ],
    ids=["labels-u8", "images-u8", "int32", "float32-3d"],
)
def test_idx_round_trip(tmp_path, array, gz):
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_header_layout(tmp_path):
    path = tmp_path / "h.idx"
    write_idx(path, np.zeros((3, 2), dtype=np.int32))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2])
    assert raw[4:12] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big")
    assert len(raw) == 12 + 6 * 4


def test_idx_gzip_detected_by_magic_without_suffix(tmp_path):
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    write_idx(tmp_path / "a.gz", a)
    os.rename(tmp_path / "a.gz", tmp_path / "a-ubyte")
    np.testing.assert_array_equal(read_idx(tmp_path / "a-ubyte"), a)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def _idx_bytes(array):
    with tempfile.TemporaryDirectory() as d:
        write_idx(Path(d) / "t", array)
        return (Path(d) / "t").read_bytes()


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("truncated-data", _idx_bytes(np.zeros((4, 5), np.uint8))[:-3], "truncated"),
        ("trailing", _idx_bytes(np.zeros(4, np.uint8)) + b"\0", "trailing"),
        ("bad-magic", b"\x01\x00\x08\x01" + b"\0\0\0\0", "magic"),
        ("bad-dtype", b"\x00\x00\x07\x01" + b"\0\0\0\0", "dtype code"),
        ("short-header", b"\x00\x00\x08\x03\x00\x00\x00\x01", "header"),
        ("tiny", b"\x00\x00", "not an IDX"),
        ("empty", b"", "not an IDX"),
    ],
)
def test_read_idx_corrupt_names_file(tmp_path, name, content, pattern):
    path = tmp_path / f"{name}-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=pattern) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_idx_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "labels.idx.gz"
    write_idx(path, np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_garbage_with_gz_suffix(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DatasetError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="not found") as info:
        read_idx(tmp_path / "nope")
    assert "nope" in str(info.value)


# ---------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------


def _fake_mnist(directory, n_train=6, n_test=4, gz=(False, True, True, False), seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for (key, name), z in zip(MNIST_FILES.items(), gz):
        write_idx(Path(directory) / (name + (".gz" if z else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("flatten", [True, False])
def test_load_mnist(tmp_path, flatten):
    arrays = _fake_mnist(tmp_path)
    (xtr, ytr), (xte, yte) = load_mnist(tmp_path, flatten=flatten)
    shape_tail = (784,) if flatten else (28, 28, 1)
    assert xtr.shape == (6,) + shape_tail and xte.shape == (4,) + shape_tail
    assert xtr.dtype == np.float32 and xte.dtype == np.float32
    assert ytr.dtype == np.int32 and yte.dtype == np.int32
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    np.testing.assert_array_equal(
        xtr.reshape(6, 28, 28), arrays["train_images"].astype(np.float32) / 255
    )
    np.testing.assert_array_equal(yte, arrays["test_labels"])


def test_load_mnist_missing_files_lists_names(tmp_path):
    _fake_mnist(tmp_path)
    os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
    os.remove(tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg
    assert "t10k-images-idx3-ubyte" in msg and "train-images-idx3-ubyte" in msg


def test_load_mnist_empty_directory(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path)
    for name in MNIST_FILES.values():
        assert name in str(info.value)


def test_load_mnist_truncated_file_named(tmp_path):
    _fake_mnist(tmp_path, gz=(False,) * 4)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated") as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_load_mnist_label_count_mismatch(tmp_path):
    _fake_mnist(tmp_path, gz=(False,) * 4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="5 labels") as info:
        load_mnist(tmp_path)
    assert "train-labels-idx1-ubyte" in str(info.value)


# ---------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------


def _fake_cifar(directory, per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,):
        x = rng.integers(0, 256, (per_batch, 32, 32, 3)).astype(np.uint8)
        y = rng.integers(0, 10, per_batch)
        write_cifar10_batch(directory / name, x, y)
        out[name] = (x, y)
    return out


def test_cifar_record_layout(tmp_path):
    x = np.zeros((1, 32, 32, 3), np.uint8)
    x[0, 0, 1, 0] = 11  # R at row 0, col 1
    x[0, 2, 0, 2] = 33  # B at row 2, col 0
    write_cifar10_batch(tmp_path / "b.bin", x, [7])
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 3073 and raw[0] == 7
    assert raw[1 + 1] == 11  # channel-major: R plane first
    assert raw[1 + 2 * 1024 + 2 * 32] == 33


@pytest.mark.parametrize("nested", [False, True])
def test_load_cifar10(tmp_path, nested):
    data_dir = tmp_path / "cifar-10-batches-bin" if nested else tmp_path
    written = _fake_cifar(data_dir)
    (xtr, ytr), (xte, yte) = load_cifar10(tmp_path)
    assert xtr.shape == (15, 32, 32, 3) and xtr.dtype == np.uint8
    assert xte.shape == (3, 32, 32, 3) and xte.dtype == np.uint8
    assert ytr.dtype == np.int32 and yte.dtype == np.int32
    np.testing.assert_array_equal(xtr, np.concatenate([written[n][0] for n in CIFAR10_TRAIN_FILES]))
    np.testing.assert_array_equal(ytr, np.concatenate([written[n][1] for n in CIFAR10_TRAIN_FILES]))
    np.testing.assert_array_equal(xte, written[CIFAR10_TEST_FILE][0])
    np.testing.assert_array_equal(yte, written[CIFAR10_TEST_FILE][1])


def test_load_cifar10_missing_files(tmp_path):
    _fake_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_3.bin")
    os.remove(tmp_path / "test_batch.bin")
    with pytest.raises(DatasetError) as info:
        load_cifar10(tmp_path)
    msg = str(info.value)
    assert "data_batch_3.bin" in msg and "test_batch.bin" in msg and str(tmp_path) in msg


@pytest.mark.parametrize("cut", [1, 3072, 3073 + 5])
def test_load_cifar10_bad_size(tmp_path, cut):
    _fake_cifar(tmp_path)
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(DatasetError, match="3073") as info:
        load_cifar10(tmp_path)
    assert str(path) in str(info.value)


def test_load_cifar10_bad_label(tmp_path):
    _fake_cifar(tmp_path)
    path = tmp_path / "test_batch.bin"
    raw = bytearray(path.read_bytes())
    raw[3073] = 42
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="label") as info:
        load_cifar10(tmp_path)
    assert str(path) in str(info.value)


def test_write_cifar10_batch_validates(tmp_path):
    with pytest.raises(ValueError):
        write_cifar10_batch(tmp_path / "x", np.zeros((2, 3, 32, 32), np.uint8), [0, 1])
    with pytest.raises(ValueError):
        write_cifar10_batch(tmp_path / "x", np.zeros((2, 32, 32, 3), np.float32), [0, 1])
    with pytest.raises(ValueError):
        write_cifar10_batch(tmp_path / "x", np.zeros((2, 32, 32, 3), np.uint8), [0])


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------


def test_load_digits_shapes_dtypes_range():
    (xtr, ytr), (xte, yte) = load_digits()
    assert xtr.shape[0] + xte.shape[0] == 1797
    assert xtr.shape[1:] == (64,) and xte.shape[1:] == (64,)
    assert abs(xte.shape[0] - 0.2 * 1797) <= 10
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32 and yte.dtype == np.int32
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xte.max() <= 1.0
    assert set(np.unique(ytr)) == set(range(10)) == set(np.unique(yte))


def test_load_digits_is_a_partition_and_stratified():
    from sklearn.datasets import load_digits as sk

    full = sk().data.astype(np.float32) / 16
    (xtr, ytr), (xte, yte) = load_digits(test_fraction=0.25, seed=3)
    both = np.concatenate([xtr, xte])
    key = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_array_equal(key(both), key(full))
    counts_all = np.bincount(np.concatenate([ytr, yte]), minlength=10)
    np.testing.assert_array_equal(np.bincount(yte, minlength=10), np.round(0.25 * counts_all))


def test_load_digits_deterministic_and_seeded():
    (a, ya), (b, yb) = load_digits(seed=1)
    (a2, ya2), (b2, yb2) = load_digits(seed=1)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(yb, yb2)
    (a3, _), _ = load_digits(seed=2)
    assert not np.array_equal(a, a3)
    # training labels are shuffled, not sorted by class
    assert np.any(np.diff(ya) < 0)


def test_load_digits_nhwc():
    (x, _), (xt, _) = load_digits(flatten=False)
    (xf, _), _ = load_digits(flatten=True)
    assert x.shape[1:] == (8, 8, 1) and xt.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(x.reshape(len(x), -1), xf)


def test_load_digits_bad_fraction():
    with pytest.raises(ValueError):
        load_digits(test_fraction=1.0)


# ---------------------------------------------------------------------------
# Synthetic images
# ---------------------------------------------------------------------------


def test_synthetic_images_basic():
    x, y = synthetic_images(50, size=16, num_classes=5, seed=1)
    assert x.shape == (50, 16, 16, 3) and x.dtype == np.uint8
    assert y.shape == (50,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y), [10] * 5)
    x2, y2 = synthetic_images(50, size=16, num_classes=5, seed=1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, synthetic_images(50, size=16, num_classes=5, seed=2)[0])
    assert x.std() > 10  # not blank


def _spectrum(x):
    g = x.astype(np.float32).mean(-1)
    g -= g.mean(axis=(1, 2), keepdims=True)
    f = np.abs(np.fft.rfft2(g)).reshape(len(x), -1)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_synthetic_images_learnable_and_flip_invariant():
    # A nearest-centroid classifier on Fourier magnitudes (translation
    # invariant, like conv + pooling) must be far above chance (10%), also on
    # flipped images (classes are closed under flips), while the raw class
    # means carry little signal (the task is not trivially linear).
    x, y = synthetic_images(1000, seed=0)
    xt, yt = synthetic_images(500, seed=1)
    feats = _spectrum(x)
    centroids = np.stack([feats[y == k].mean(0) for k in range(10)])

    def accuracy(images):
        pred = np.argmax(_spectrum(images) @ centroids.T, axis=1)
        return np.mean(pred == yt)

    assert accuracy(xt) > 0.6
    assert accuracy(xt[:, :, ::-1]) > 0.6
    assert accuracy(xt[:, ::-1]) > 0.6
