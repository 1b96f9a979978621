"""Dataset loaders and file-format helpers.

Everything here returns plain NumPy arrays; nothing is downloaded.

* :func:`load_digits` -- scikit-learn's bundled 8x8 digits (1797 samples).
* :func:`read_idx` / :func:`write_idx` -- the IDX format used by MNIST
  (plain or gzipped).
* :func:`load_mnist` -- MNIST (or Fashion-MNIST, same layout) from a directory
  of IDX files.
* :func:`load_cifar10` / :func:`write_cifar10_batch` -- the CIFAR-10 *binary*
  version.
* :func:`synthetic_images` -- a small, learnable, CIFAR-shaped image set for
  examples and smoke tests when no real data is available.

All loaders return ``(x_train, y_train), (x_test, y_test)``; labels are always
``int32``.  Malformed or missing files raise :class:`DatasetError` (a
``ValueError``) whose message names the offending file.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "load_digits",
    "read_idx",
    "write_idx",
    "load_mnist",
    "MNIST_FILES",
    "load_cifar10",
    "write_cifar10_batch",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_CLASSES",
    "synthetic_images",
]


class DatasetError(ValueError):
    """A dataset file is missing, truncated or malformed."""


# ---------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Deterministic stratified split -> (train_idx, test_idx), each shuffled."""
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(idx.size)]
        n_test = int(round(test_fraction * idx.size))
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = np.concatenate(train_parts)
    test_idx = np.concatenate(test_parts)
    # Interleave classes: otherwise the split would be sorted by class.
    train_idx = train_idx[rng.permutation(train_idx.size)]
    test_idx = test_idx[rng.permutation(test_idx.size)]
    return train_idx, test_idx


def load_digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = True):
    """Load scikit-learn's bundled handwritten digits (no download).

    Returns ``(x_train, y_train), (x_test, y_test)``.  Images are ``float32``
    scaled to ``[0, 1]`` (raw pixel values are 0..16), shaped ``(n, 64)`` when
    ``flatten`` is true and NHWC ``(n, 8, 8, 1)`` otherwise.  Labels are
    ``int32`` in ``0..9``.

    The split is stratified per class (each class contributes
    ``round(test_fraction * class_count)`` test samples) and is a pure
    function of ``seed``; both parts are shuffled with the same seed.
    """
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise ImportError(
            "load_digits needs scikit-learn (pip install 'tracejit[train]')"
        ) from exc

    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)
    labels = np.asarray(bunch.target, dtype=np.int32)
    train_idx, test_idx = _stratified_split(labels, float(test_fraction), seed)

    if flatten:
        images = images.reshape(images.shape[0], -1)
    else:
        images = images[..., None]
    x_train = np.ascontiguousarray(images[train_idx])
    x_test = np.ascontiguousarray(images[test_idx])
    return (x_train, labels[train_idx]), (x_test, labels[test_idx])


# ---------------------------------------------------------------------------
# IDX (MNIST) format
# ---------------------------------------------------------------------------
#
# Header: two zero bytes, one dtype code byte, one byte with the number of
# dimensions, then ndim big-endian uint32 sizes, then the data in row-major
# order, big-endian.

_IDX_CODE_TO_DTYPE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_DTYPE_TO_CODE = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently decompressing gzip (by suffix or magic)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from exc
    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"{path}: corrupt or truncated gzip data ({exc})"
            ) from exc
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (as used by MNIST), plain or gzipped.

    Gzip is detected by a ``.gz`` suffix or the gzip magic bytes.  Returns a
    writable array in native byte order with the dtype given by the header
    (uint8, int8, int16, int32, float32 or float64).  Raises
    :class:`DatasetError` naming ``path`` if the magic number is invalid or the
    data size does not match the header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(
            f"{path}: not an IDX file (only {len(data)} bytes, header needs 4)"
        )
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()} "
            "(expected two leading zero bytes)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_CODE_TO_DTYPE:
        raise DatasetError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(
            f"{path}: truncated IDX header ({len(data)} bytes, "
            f"{ndim} dimensions need {header_len})"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_CODE_TO_DTYPE[code]
    count = math.prod(shape)  # exact (Python ints), 1 for ndim 0
    expected = count * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DatasetError(
            f"{path}: IDX data {what}: header shape {shape} of {dtype.name} "
            f"needs {expected} bytes, file has {actual}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header_len)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzipped if ``path`` ends with ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64.
    """
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=")
    if key not in _IDX_DTYPE_TO_CODE:
        raise TypeError(
            f"IDX cannot store dtype {arr.dtype}; supported: "
            + ", ".join(d.name for d in _IDX_DTYPE_TO_CODE)
        )
    if arr.ndim > 255:
        raise ValueError("IDX supports at most 255 dimensions")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"IDX dimension sizes must fit in uint32, got {arr.shape}")
    header = bytes([0, 0, _IDX_DTYPE_TO_CODE[key], arr.ndim])
    header += np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=key.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        # mtime=0 keeps the output byte-for-byte reproducible.
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


#: Classes of MNIST and the datasets in its layout (labels 0..9).
MNIST_CLASSES = 10


def _find_mnist_file(directory: Path, name: str):
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _check_images_labels(images, labels, images_path, labels_path):
    if images.ndim != 3:
        raise DatasetError(
            f"{images_path}: expected a 3-D image array (n, rows, cols), "
            f"got shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 pixels, got {images.dtype}")
    if labels.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected a 1-D label array, got shape {labels.shape}"
        )
    if labels.dtype != np.uint8:
        raise DatasetError(f"{labels_path}: expected uint8 labels, got {labels.dtype}")
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{labels_path}: {labels.shape[0]} labels but {images_path} has "
            f"{images.shape[0]} images"
        )
    if images.shape[0] < 1:
        raise DatasetError(f"{images_path}: the file holds no images (the header says 0)")
    if min(images.shape[1:]) < 1:
        raise DatasetError(f"{images_path}: images of size {images.shape[1:]} are empty")
    if labels.max() >= MNIST_CLASSES:
        bad = int(np.argmax(labels >= MNIST_CLASSES))
        raise DatasetError(
            f"{labels_path}: label {int(labels[bad])} (example {bad}) is out of range "
            f"0..{MNIST_CLASSES - 1}: a corrupt file, or not a 10-class dataset"
        )


def load_mnist(directory, flatten: bool = True):
    """Load MNIST (or any dataset in the same layout, e.g. Fashion-MNIST).

    ``directory`` must contain the four IDX files
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally
    with a ``.gz`` suffix.  Returns ``(x_train, y_train), (x_test, y_test)``
    with ``float32`` images in ``[0, 1]`` shaped ``(n, 784)`` (``flatten``) or
    NHWC ``(n, 28, 28, 1)``, and ``int32`` labels.
    """
    directory = Path(directory)
    paths = {key: _find_mnist_file(directory, name) for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetError(
            f"MNIST files missing in directory {directory}: "
            + ", ".join(f"{m}[.gz]" for m in missing)
            + " (expected: "
            + ", ".join(MNIST_FILES.values())
            + ", each optionally gzipped)"
        )

    out = []
    image_hw = None
    for split in ("train", "test"):
        ip, lp = paths[f"{split}_images"], paths[f"{split}_labels"]
        images, labels = read_idx(ip), read_idx(lp)
        _check_images_labels(images, labels, ip, lp)
        if image_hw is None:
            image_hw = images.shape[1:]
        elif images.shape[1:] != image_hw:
            raise DatasetError(
                f"{ip}: image size {images.shape[1:]} differs from the "
                f"training images' {image_hw}"
            )
        x = images.astype(np.float32) / np.float32(255.0)
        x = x.reshape(x.shape[0], -1) if flatten else x[..., None]
        out.append((x, labels.astype(np.int32)))
    return out[0], out[1]


# ---------------------------------------------------------------------------
# CIFAR-10 binary version
# ---------------------------------------------------------------------------

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_cifar10_batch(path: Path):
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from exc
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD != 0:
        raise DatasetError(
            f"{path}: size {len(raw)} bytes is not a positive multiple of the "
            f"CIFAR-10 record size {_CIFAR_RECORD} (truncated or not a CIFAR-10 "
            "binary batch)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() >= 10:
        bad = int(np.argmax(labels >= 10))
        raise DatasetError(
            f"{path}: label value {int(labels[bad])} (record {bad}) out of range 0..9 "
            "(corrupt file or CIFAR-100 data?)"
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar10(directory):
    """Load the CIFAR-10 binary version.

    ``directory`` holds ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
    ``test_batch.bin``, or contains a ``cifar-10-batches-bin/`` subdirectory
    that does (the layout of the extracted official tarball).  Each record is
    one label byte followed by 3072 pixel bytes in CHW order.

    Returns ``(x_train, y_train), (x_test, y_test)`` with ``uint8`` NHWC images
    ``(n, 32, 32, 3)`` and ``int32`` labels in ``0..9`` (names in
    :data:`CIFAR10_CLASSES`).
    """
    directory = Path(directory)
    nested = directory / "cifar-10-batches-bin"
    if nested.is_dir():
        directory = nested
    names = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files missing in directory {directory}: "
            + ", ".join(missing)
            + " (expected the binary version: "
            + ", ".join(names)
            + ", optionally inside cifar-10-batches-bin/)"
        )
    train = [_read_cifar10_batch(directory / n) for n in CIFAR10_TRAIN_FILES]
    x_test, y_test = _read_cifar10_batch(directory / CIFAR10_TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), (x_test, y_test)


def write_cifar10_batch(path, images, labels) -> None:
    """Write a CIFAR-10 binary batch file.

    ``images`` is uint8 NHWC ``(n, 32, 32, 3)``; ``labels`` has ``n`` integer
    entries in ``0..255`` (CIFAR-10 uses ``0..9``).
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(
            f"images must be uint8 with shape (n, 32, 32, 3), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"labels must have shape ({images.shape[0]},), got {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must be in 0..255")
    records = np.empty((images.shape[0], _CIFAR_RECORD), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.transpose(0, 3, 1, 2).reshape(images.shape[0], -1)
    Path(path).write_bytes(records.tobytes())


# ---------------------------------------------------------------------------
# Synthetic images
# ---------------------------------------------------------------------------


def synthetic_images(n: int, size: int = 24, num_classes: int = 10, seed: int = 0):
    """A small, learnable, CIFAR-like image set; returns ``(images, labels)``.

    ``images`` are ``uint8`` NHWC ``(n, size, size, 3)`` -- the same dtype and
    layout as :func:`load_cifar10`, so the same preprocessing applies --
    and ``labels`` are ``int32`` in ``0..num_classes-1`` (balanced, in random
    order).

    Class ``k`` is a sinusoidal stripe pattern whose orientation (index
    ``k // 2``, spread over 0..90 degrees) and spatial frequency (index
    ``k % 2``, period about ``size/4`` or ``size/2.4``) depend on the class.
    Each sample is mirrored at random, so classes are invariant under
    horizontal/vertical flips (flip augmentation keeps labels valid).  The
    pattern has a random phase and is drawn inside a soft circular window at a
    random position, with a faint class-dependent colour tint, random contrast
    and brightness, plus Gaussian pixel noise.  Orientation and frequency are the main cues
    (local, translation-invariant: what small conv filters detect), so a small
    CNN gets well above chance within a few epochs while the task is not
    trivially linear.  Deterministic in ``seed``.
    """
    n, size, num_classes = int(n), int(size), int(num_classes)
    if n < 0 or size < 4 or num_classes < 1:
        raise ValueError("need n >= 0, size >= 4, num_classes >= 1")
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % num_classes).astype(np.int32)
    labels = labels[rng.permutation(n)]

    coords = np.arange(size, dtype=np.float32) - (size - 1) / 2.0
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (size, size)

    # Class k -> (orientation index k // 2, frequency index k % 2).
    # Orientations are spread over [0, pi/2] and each sample is mirrored
    # (angle -> pi - angle) with probability 1/2, so every class is closed
    # under horizontal and vertical flips: flip augmentation keeps labels valid.
    n_orient = max((num_classes + 1) // 2, 1)
    orient = (labels // 2).astype(np.float32)
    angle = np.float32(np.pi / 2) * orient / np.float32(max(n_orient - 1, 1))
    mirror = rng.random(n) < 0.5
    angle = np.where(mirror, np.float32(np.pi) - angle, angle).astype(np.float32)
    period = np.where(labels % 2 == 0, size / 4.0, size / 2.4).astype(np.float32)
    period *= rng.uniform(0.93, 1.07, n).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)

    cy, cx = rng.uniform(-size / 6, size / 6, (2, n)).astype(np.float32)
    radius = (size / 2.2) * rng.uniform(0.8, 1.2, n).astype(np.float32)
    palette = np.random.default_rng([seed, 1]).uniform(0.7, 1.0, (num_classes, 3))
    tint = palette[labels].astype(np.float32)  # (n, 3)
    contrast = rng.uniform(0.25, 0.45, n).astype(np.float32)
    brightness = rng.uniform(0.35, 0.65, n).astype(np.float32)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    chunk = 2048  # bounds temporary memory; fixed, so output depends on seed only
    for lo in range(0, n, chunk):
        sl = slice(lo, min(lo + chunk, n))

        def e(v, sl=sl):  # per-sample parameter (m,) -> (m, 1, 1)
            return v[sl, None, None]

        proj = np.cos(e(angle)) * xx + np.sin(e(angle)) * yy
        stripes = np.sin(np.float32(2 * np.pi) * proj / e(period) + e(phase))
        dist2 = (yy - e(cy)) ** 2 + (xx - e(cx)) ** 2
        window = np.exp(-dist2 / (2 * (e(radius) / np.float32(1.5)) ** 2))
        pattern = (stripes * window)[..., None]  # in [-1, 1]
        img = e(brightness)[..., None] + e(contrast)[..., None] * pattern * tint[sl, None, None, :]
        img += rng.normal(0.0, 0.08, img.shape).astype(np.float32)
        images[sl] = np.clip(np.rint(img * np.float32(255.0)), 0, 255).astype(np.uint8)
    return images, labels
