"""Shared fixtures: MNIST from ../shared/data (the project never downloads in tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
MNIST_PATH = Path(os.environ.get("DIGITFLOW_MNIST", ROOT.parent / "shared" / "data" / "mnist.npz"))
# A fixed subset of MNIST test for the accuracy checks: the first 2,000 digits.
SUBSET = 2000


@pytest.fixture(scope="session")
def mnist():
    from ocr.mnist import load_mnist

    if not MNIST_PATH.is_file():
        pytest.fail(f"MNIST not found at {MNIST_PATH}; set DIGITFLOW_MNIST to a local mnist.npz")
    return load_mnist(MNIST_PATH)


@pytest.fixture(scope="session")
def test_subset(mnist) -> tuple[np.ndarray, np.ndarray]:
    return mnist.x_test[:SUBSET], mnist.y_test[:SUBSET]


@pytest.fixture(scope="session")
def models():
    from ocr.classifiers import load_models

    return load_models()
