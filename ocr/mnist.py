"""Read MNIST from a local ``.npz`` copy or through Keras's own download cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocr.errors import DatasetError

_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 arrays: images (N, 28, 28) with ink 255, labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str


def load_mnist(path: Path | str | None = None) -> Mnist:
    """Load MNIST from ``path`` (Keras's ``mnist.npz`` layout) or, if None, via Keras.

    Without a path, Keras reads its cache (``~/.keras/datasets/mnist.npz``) and
    downloads the file there first if it is missing, which needs internet.
    """
    if path is None:
        path = _keras_mnist_path()
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise DatasetError(f"{path} is not an MNIST .npz: missing {', '.join(missing)}")
            arrays = {k: data[k] for k in _KEYS}
    except (OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read MNIST from {path}: {exc}") from exc
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError(f"{path}: x_{split} {x.shape} / y_{split} {y.shape} are not MNIST-shaped")
    return Mnist(**arrays, source=str(path), sha256=sha256_file(path))


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _keras_mnist_path() -> Path:
    # keras.datasets.mnist.load_data() returns arrays, not the file; fetch the
    # same file through the same cache so its checksum can go into the manifest.
    from keras.utils import get_file

    try:
        return Path(
            get_file(
                "mnist.npz",
                origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
                file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
            )
        )
    except Exception as exc:  # network errors come in many types
        raise DatasetError(
            f"MNIST is not in Keras's cache and could not be downloaded ({exc}); pass --data PATH to a local mnist.npz"
        ) from exc
