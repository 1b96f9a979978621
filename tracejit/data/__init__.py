"""Datasets, a deterministic resumable input pipeline, and image augmentations.

See :mod:`tracejit.data.datasets` for the loaders,
:mod:`tracejit.data.pipeline` for :class:`Pipeline`, and
:mod:`tracejit.data.augment` for jitted image augmentations.
"""

from .datasets import (
    CIFAR10_CLASSES,
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
from .pipeline import STATE_VERSION, Pipeline, batch_seed, epoch_permutation
from . import augment

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_TRAIN_FILES",
    "MNIST_FILES",
    "DatasetError",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "read_idx",
    "synthetic_images",
    "write_cifar10_batch",
    "write_idx",
    "Pipeline",
    "batch_seed",
    "epoch_permutation",
    "STATE_VERSION",
    "augment",
]
