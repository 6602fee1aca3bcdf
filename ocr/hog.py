"""Histogram of oriented gradients for batches of 28x28 digits.

:func:`hog_features` computes exactly what :func:`skimage.feature.hog` computes
(hard orientation binning, cell means, L2-Hys block normalisation, same feature
order) but for a whole batch in a few vectorised NumPy calls: calling skimage
once per digit caps the SVM at about 2,500 digits/s on one core, below what a
worker needs.  ``tests/ocr/test_hog.py`` checks the two agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ocr.errors import ModelNotFoundError

_CHUNK = 1024


@dataclass(frozen=True)
class HogParams:
    """HOG settings, named as in :func:`skimage.feature.hog`."""

    orientations: int = 9
    pixels_per_cell: int = 4
    cells_per_block: int = 2

    def as_skimage_kwargs(self) -> dict:
        return {
            "orientations": self.orientations,
            "pixels_per_cell": (self.pixels_per_cell, self.pixels_per_cell),
            "cells_per_block": (self.cells_per_block, self.cells_per_block),
            "block_norm": "L2-Hys",
        }


def hog_features(images: np.ndarray, params: HogParams = HogParams()) -> np.ndarray:
    """HOG descriptors of a batch of equally sized gray images.

    Parameters
    ----------
    images : (N, H, W) ndarray
        Gray images, any real dtype (28x28 digits in [0, 1] in practice).
    params : HogParams
        Orientation bins, cell size (pixels) and block size (cells).

    Returns
    -------
    (N, D) float32 ndarray
        One flattened descriptor per image, identical in layout to
        ``skimage.feature.hog(image, feature_vector=True)``.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if len(images) > _CHUNK:
        # Bounded memory: a chunk's gradients and indices are a few (chunk, H, W) arrays.
        return np.concatenate([hog_features(images[i : i + _CHUNK], params) for i in range(0, len(images), _CHUNK)])
    x = images.astype(np.float32, copy=False)
    n, height, width = x.shape
    cell, block, n_bins = params.pixels_per_cell, params.cells_per_block, params.orientations

    g_row = np.zeros_like(x)
    g_col = np.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    magnitude = np.hypot(g_row, g_col)
    # float64 like skimage: gradients at exactly 45 or 90 degrees sit on bin
    # edges for some bin counts, and float32 rounding would tip them over.
    orientation = np.rad2deg(np.arctan2(g_row.astype(np.float64), g_col)) % 180.0
    bins = np.minimum((orientation * (n_bins / 180.0)).astype(np.int64), n_bins - 1)

    cells_r, cells_c = height // cell, width // cell
    magnitude = magnitude[:, : cells_r * cell, : cells_c * cell]
    bins = bins[:, : cells_r * cell, : cells_c * cell]
    # Each pixel's magnitude goes to (image, cell row, cell column, bin) in
    # one bincount: no one-hot array of every pixel's bins to sum.
    cell_of_row = np.arange(cells_r * cell) // cell
    cell_of_col = np.arange(cells_c * cell) // cell
    cell_index = (cell_of_row[:, None] * cells_c + cell_of_col[None, :]) * n_bins
    image_index = np.arange(n)[:, None, None] * (cells_r * cells_c * n_bins)
    index = (image_index + cell_index[None] + bins).ravel()
    size = n * cells_r * cells_c * n_bins
    hist = np.bincount(index, weights=magnitude.ravel(), minlength=size).astype(np.float32)
    hist = hist.reshape(n, cells_r, cells_c, n_bins) / np.float32(cell * cell)

    blocks_r, blocks_c = cells_r - block + 1, cells_c - block + 1
    if blocks_r < 1 or blocks_c < 1:
        raise ValueError(f"images of {height}x{width} px are too small for {params}")
    windows = np.lib.stride_tricks.sliding_window_view(hist, (block, block), axis=(1, 2))
    # windows: (n, blocks_r, blocks_c, n_bins, block, block) -> skimage order (.., block, block, n_bins)
    windows = np.moveaxis(windows, 3, -1).reshape(n, blocks_r, blocks_c, -1)
    eps = np.float32(1e-5)
    out = windows / np.sqrt(np.sum(windows**2, axis=-1, keepdims=True) + eps**2)
    out = np.minimum(out, 0.2)
    out /= np.sqrt(np.sum(out**2, axis=-1, keepdims=True) + eps**2)
    return out.reshape(n, -1).astype(np.float32, copy=False)


def deskew_digits(digits: np.ndarray) -> np.ndarray:
    """Shear each digit so that its principal axis is vertical.

    Slant is the largest source of variation between writers that a
    gradient-histogram model cannot absorb; removing it (by second-order image
    moments, keeping the centre of mass in place) lifts the linear SVM by about
    half a point.  The CNN learns slant invariance itself and gets raw digits.

    Parameters
    ----------
    digits : (N, H, W) float ndarray

    Returns
    -------
    (N, H, W) float32 ndarray
    """
    digits = np.asarray(digits, dtype=np.float32)
    if digits.ndim != 3:
        raise ValueError(f"digits must have shape (N, H, W), got {digits.shape}")
    n, h, w = digits.shape
    ys = np.arange(h, dtype=np.float32)[None, :, None]
    xs = np.arange(w, dtype=np.float32)[None, None, :]
    mass = digits.sum(axis=(1, 2))
    safe = np.maximum(mass, 1e-6)
    cy = (digits * ys).sum(axis=(1, 2)) / safe
    cx = (digits * xs).sum(axis=(1, 2)) / safe
    dy = ys - cy[:, None, None]
    mu02 = (digits * dy**2).sum(axis=(1, 2))
    mu11 = (digits * dy * (xs - cx[:, None, None])).sum(axis=(1, 2))
    skew = np.where(mu02 > 1e-2, mu11 / np.maximum(mu02, 1e-2), 0.0)
    out = np.empty_like(digits)
    for i in range(n):
        # Sample source x = x + skew * (y - cy): a shear about the centre-of-mass row.
        matrix = np.float32([[1, skew[i], -skew[i] * cy[i]], [0, 1, 0]])
        out[i] = cv2.warpAffine(digits[i], matrix, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    return out


@dataclass(frozen=True)
class HogLinearModel:
    """A linear score on HOG descriptors (and any figures appended to them): features . weights + bias.

    Saved as plain arrays (``hog``, ``weights``, ``bias``) in an ``.npz``, no pickle.
    """

    hog: HogParams
    weights: np.ndarray  # (F,) float64, or (K, F) for K scores
    bias: float | np.ndarray  # or (K,)

    @classmethod
    def load(cls, path: Path):
        if not path.is_file():
            raise ModelNotFoundError(f"{cls.__name__} not found at {path}; run `digitflow train`")
        with np.load(path) as saved:
            hog = HogParams(*(int(v) for v in saved["hog"]))
            bias = saved["bias"].astype(np.float64)
            weights = saved["weights"].astype(np.float64)
            return cls(hog=hog, weights=weights, bias=float(bias) if bias.ndim == 0 else bias)

    def save(self, path: Path) -> None:
        hog = np.array(list(asdict(self.hog).values()), np.int64)
        with open(path, "wb") as f:
            np.savez(f, hog=hog, weights=self.weights, bias=np.asarray(self.bias, np.float64))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of N rows of features: (N,), or (N, K) for K scores."""
        return features @ self.weights.T + self.bias


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights and bias of a logistic regression of ``y`` (0/1) on ``x``, standardised while fitting.

    The scaling is folded into the weights: at reading time a score is one dot product.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x), y)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * scaler.mean_ / scale))
    return weights.astype(np.float64), bias
