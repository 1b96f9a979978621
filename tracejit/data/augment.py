"""Image augmentations of the TensorFlow CIFAR-10 tutorial, batched and jitted.

Every function takes a batch of NHWC ``float32`` images and works per image,
as TensorFlow's per-image ops do inside the tutorial's input queue.  The
random ones take a ``key`` (a ``tracejit.random`` key, ``uint32[2]``) or an
integer seed, and draw every image's parameters from it, so the result is a
pure function of ``(images, key)``: the same on every backend and every run.

They plug straight into :meth:`tracejit.data.Pipeline.map`::

    def distort(images, labels, seed):
        return cifar10_distort(images.astype(np.float32), seed), labels

    pipe = Pipeline((x, y)).shuffle(0).batch(128).map(distort, with_seed=True)

The formulas are TensorFlow's (``tf.image``):

- ``random_crop``: a ``size`` window at a uniformly random offset.
- ``random_flip_left_right``: each image mirrored along its width with
  probability 1/2.
- ``random_brightness(max_delta)``: ``x + delta``, ``delta ~ U[-max_delta, max_delta)``.
- ``random_contrast(lower, upper)``: ``(x - mean) * f + mean`` with the mean
  over height and width for each channel, ``f ~ U[lower, upper)``.
- ``per_image_standardization``: ``(x - mean) / max(stddev, 1/sqrt(N))``
  over all ``N = H*W*C`` values of each image.
"""
from __future__ import annotations

import math

import numpy as np

from .. import numpy as tnp
from .. import random
from ..api import jit
from ..polymorphic import BatchPolymorphicStep

__all__ = [
    "random_crop",
    "random_flip_left_right",
    "random_brightness",
    "random_contrast",
    "per_image_standardization",
    "resize_image_with_crop_or_pad",
    "cifar10_distort",
    "cifar10_eval_preprocess",
]


def _as_key(key_or_seed):
    """A key from a key or an integer seed (both may be traced)."""
    if tnp.shape(key_or_seed) == (2,) and tnp.result_type_of(key_or_seed) == np.uint32:
        return key_or_seed
    if tnp.shape(key_or_seed) != ():
        raise ValueError("expected a tracejit.random key (uint32[2]) or an integer seed, "
                         f"got an array of shape {tnp.shape(key_or_seed)}")
    return random.key(key_or_seed)


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


def _check_images(images, name):
    if tnp.ndim(images) != 4:
        raise ValueError(f"{name}: expected a batch of NHWC images (4 dimensions), "
                         f"got shape {tnp.shape(images)}")


def _per_image(values, images):
    """Broadcast one value per image, shape (N,), against NHWC images."""
    return tnp.reshape(values, (tnp.shape(images)[0], 1, 1, 1))


@jit(static_argnums=(2,))
def random_crop(images, key, size):
    """Crop a random ``size`` (int or ``(height, width)``) window from each image.

    Each image gets its own offset, uniform over every window that fits.
    """
    _check_images(images, "random_crop")
    n, h, w, _ = tnp.shape(images)
    ch, cw = _hw(size)
    if ch > h or cw > w:
        raise ValueError(f"random_crop: window {ch}x{cw} is larger than the images {h}x{w}")
    ky, kx = random.split(_as_key(key))
    top = random.randint(ky, (n,), 0, h - ch + 1)
    left = random.randint(kx, (n,), 0, w - cw + 1)
    rows = tnp.reshape(top, (n, 1, 1)) + tnp.reshape(tnp.arange(ch, dtype="int32"), (1, ch, 1))
    cols = tnp.reshape(left, (n, 1, 1)) + tnp.reshape(tnp.arange(cw, dtype="int32"), (1, 1, cw))
    batch = tnp.reshape(tnp.arange(n, dtype="int32"), (n, 1, 1))
    return images[batch, rows, cols]


@jit
def random_flip_left_right(images, key):
    """Mirror each image along its width with probability 1/2."""
    _check_images(images, "random_flip_left_right")
    flip = random.bernoulli(_as_key(key), 0.5, (tnp.shape(images)[0],))
    return tnp.where(_per_image(flip, images), images[:, :, ::-1, :], images)


@jit
def random_brightness(images, key, max_delta):
    """Add ``delta ~ U[-max_delta, max_delta)`` to each image (one delta per image)."""
    _check_images(images, "random_brightness")
    dtype = tnp.result_type_of(images)
    delta = random.uniform(_as_key(key), (tnp.shape(images)[0],), dtype, -max_delta, max_delta)
    return images + _per_image(delta, images)


@jit
def random_contrast(images, key, lower, upper):
    """Scale each image's deviation from its per-channel mean by ``f ~ U[lower, upper)``."""
    _check_images(images, "random_contrast")
    dtype = tnp.result_type_of(images)
    factor = random.uniform(_as_key(key), (tnp.shape(images)[0],), dtype, lower, upper)
    mean = tnp.mean(images, axis=(1, 2), keepdims=True)
    return (images - mean) * _per_image(factor, images) + mean


@jit
def per_image_standardization(images):
    """Scale each image to mean 0 and variance 1: ``(x - mean) / max(stddev, 1/sqrt(N))``.

    The lower bound on the divisor (TensorFlow's) keeps uniform images finite.
    """
    _check_images(images, "per_image_standardization")
    _, h, w, c = tnp.shape(images)
    mean = tnp.mean(images, axis=(1, 2, 3), keepdims=True)
    stddev = tnp.sqrt(tnp.mean(tnp.square(images - mean), axis=(1, 2, 3), keepdims=True))
    return (images - mean) / tnp.maximum(stddev, 1.0 / math.sqrt(h * w * c))


@jit(static_argnums=(1, 2))
def resize_image_with_crop_or_pad(images, target_height, target_width):
    """Centrally crop or zero-pad each image to ``target_height x target_width``
    (TensorFlow's offsets: ``(size - target) // 2`` cropped, ``(target - size) // 2`` padded)."""
    _check_images(images, "resize_image_with_crop_or_pad")
    _, h, w, _ = tnp.shape(images)
    top, left = max((h - target_height) // 2, 0), max((w - target_width) // 2, 0)
    images = images[:, top:top + min(h, target_height), left:left + min(w, target_width), :]
    pad_h, pad_w = max(target_height - h, 0), max(target_width - w, 0)
    if pad_h or pad_w:
        images = tnp.pad(images, ((0, 0), (pad_h // 2, pad_h - pad_h // 2),
                                  (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    return images


def _float32(images):
    """Images as float32: raw uint8 batches (which jit does not take) are
    converted on the host, traced ones inside the trace."""
    if tnp.is_tracing():
        return tnp.astype(images, "float32")
    return np.asarray(images, dtype=np.float32)


def cifar10_distort(images, key, size=24, max_delta=63.0, lower=0.2, upper=1.8):
    """The tutorial's training distortions (``distorted_inputs``), in its order:
    random crop to ``size``, flip, brightness, contrast, standardization.

    ``images`` hold raw pixel values in ``[0, 255]`` (``max_delta=63`` is on
    that scale), as uint8 or float; the result is float32.
    """
    return _distort(_float32(images), key, _hw(size), max_delta, lower, upper)


def _distort_batch(images, key, size, max_delta, lower, upper):
    k_crop, k_flip, k_bright, k_contrast = random.split(_as_key(key), 4)
    x = random_crop(images, k_crop, size)
    x = random_flip_left_right(x, k_flip)
    x = random_brightness(x, k_bright, max_delta)
    x = random_contrast(x, k_contrast, lower, upper)
    return per_image_standardization(x)


# one trace for every batch size: an epoch's smaller last batch too
_distort = BatchPolymorphicStep(_distort_batch, data_argnums=(0,), static_argnums=(2,))


def cifar10_eval_preprocess(images, size=24):
    """The tutorial's evaluation preprocessing (``inputs``): central crop to
    ``size``, standardization."""
    height, width = _hw(size)
    return per_image_standardization(
        resize_image_with_crop_or_pad(_float32(images), height, width))
