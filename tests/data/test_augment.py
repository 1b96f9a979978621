"""Semantics and determinism of tracejit.data.augment (TensorFlow's formulas)."""
import numpy as np
import pytest

import tracejit
from tracejit.data import Pipeline, augment as A


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (16, 10, 12, 3)).astype(np.float32)


def test_random_crop_is_a_window_of_each_image(images):
    out = A.random_crop(images, tracejit.random.key(1), (6, 7))
    assert out.shape == (16, 6, 7, 3)
    offsets = set()
    for i in range(len(images)):
        found = [(t, l) for t in range(10 - 6 + 1) for l in range(12 - 7 + 1)
                 if np.array_equal(out[i], images[i, t:t + 6, l:l + 7])]
        assert found, f"crop {i} is not a window of its image"
        offsets.add(found[0])
    assert len(offsets) > 1, "every image got the same offset"


def test_random_crop_full_size_is_identity(images):
    np.testing.assert_array_equal(A.random_crop(images, 3, (10, 12)), images)
    with pytest.raises(ValueError, match="larger than the images"):
        A.random_crop(images, 3, 11)


def test_flip_is_an_exact_mirror_or_identity(images):
    out = A.random_flip_left_right(images, 7)
    flipped = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, images)]
    kept = [np.array_equal(o, x) for o, x in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def test_brightness_adds_one_delta_per_image(images):
    out = A.random_brightness(images, 11, 63.0)
    delta = (out - images).reshape(len(images), -1)
    np.testing.assert_allclose(delta, delta[:, :1] * np.ones_like(delta), atol=1e-4)
    assert np.all(np.abs(delta[:, 0]) <= 63.0)
    assert len(np.unique(np.round(delta[:, 0], 3))) > 1


def test_contrast_scales_deviation_from_channel_mean(images):
    out = A.random_contrast(images, 12, 0.2, 1.8)
    mean = images.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2), keepdims=True), mean, rtol=1e-4, atol=1e-3)
    factor = (out - mean) / (images - mean)
    per_image = np.median(factor.reshape(len(images), -1), axis=1)
    np.testing.assert_allclose(out, (images - mean) * per_image[:, None, None, None] + mean,
                               rtol=1e-4, atol=1e-2)
    assert np.all((per_image >= 0.2) & (per_image < 1.8))


def test_per_image_standardization(images):
    out = A.per_image_standardization(images)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    # A uniform image: stddev 0, divisor 1/sqrt(N) -> zeros, not NaN.
    flat = np.full((1, 4, 4, 3), 9.0, np.float32)
    np.testing.assert_array_equal(A.per_image_standardization(flat), 0.0)
    # TF's formula on a low-variance image: max(stddev, 1/sqrt(N)) = 1/sqrt(48).
    x = flat.copy()
    x[0, 0, 0, 0] += 0.01
    expect = (x - x.mean()) * np.sqrt(48.0)
    np.testing.assert_allclose(A.per_image_standardization(x), expect, rtol=1e-4, atol=1e-6)


def test_resize_with_crop_or_pad_is_central(images):
    crop = A.resize_image_with_crop_or_pad(images, 6, 7)
    np.testing.assert_array_equal(crop, images[:, 2:8, 2:9])
    pad = A.resize_image_with_crop_or_pad(images, 13, 12)
    assert pad.shape == (16, 13, 12, 3)
    np.testing.assert_array_equal(pad[:, 1:11], images)
    assert not pad[:, 0].any() and not pad[:, 11:].any()


@pytest.mark.parametrize("fn, args", [
    (A.random_crop, (5,)),
    (A.random_flip_left_right, ()),
    (A.random_brightness, (30.0,)),
    (A.random_contrast, (0.5, 1.5)),
])
def test_deterministic_given_key_and_seed_equals_key(images, fn, args):
    a = fn(images, 42, *args)
    np.testing.assert_array_equal(a, fn(images, tracejit.random.key(42), *args))
    np.testing.assert_array_equal(a, fn(images, 42, *args))
    assert not np.array_equal(a, fn(images, 43, *args))


def test_cifar10_distort_in_a_pipeline_is_reproducible():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 20).astype(np.int32)

    def distort(images, labels, seed):
        return A.cifar10_distort(images, seed), labels

    pipe = Pipeline((x, y)).shuffle(3).batch(8).map(distort, with_seed=True)
    first = [b[0] for b in pipe.epoch(0)]
    again = [b[0] for b in pipe.epoch(0)]
    assert [b.shape for b in first] == [(8, 24, 24, 3)] * 2 + [(4, 24, 24, 3)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    evaluated = A.cifar10_eval_preprocess(x)
    assert evaluated.shape == (20, 24, 24, 3) and evaluated.dtype == np.float32
