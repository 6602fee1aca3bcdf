"""Tell one digit from a run of touching digits.

A run of ink in a line of free writing may be one wide digit (a 0, a 4, a 2
with a long base) or two digits whose strokes touch.  Width alone cannot tell
them apart, and the digit classifiers cannot either: shown two touching
digits, the CNN is often sure they are one (an "83" read as an 8 at 0.999).
:class:`TouchingDetector` looks at the whole run and gives the probability
that it holds more than one digit; :mod:`ocr.read` weighs that against the
readings of each way of cutting it.

The detector is a logistic regression on the HOG descriptor of the run,
normalised as a digit would be, and on three shape figures (its aspect, its
width and its height against the field's digit height).  It is trained on
MNIST train digits (the validation split held out) and on pairs of them
pushed together until their ink joins, drawn at the sizes digits have on
pages; :func:`draw_runs` makes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.errors import BlankCropError
from ocr.geometry import cut_to_ink
from ocr.hog import HogLinearModel, HogParams, fit_logistic, hog_features
from ocr.segment import reading_crop

TOUCHING_FILE = "touching.npz"
# Ink threshold of an upscaled MNIST digit (0-255) when it is drawn as a binary run of ink.
_INK_LEVEL = 110


@dataclass(frozen=True)
class TouchingDetector(HogLinearModel):
    """P(a run of ink holds touching digits) = sigmoid(features . weights + bias); the weights are the
    HOG features', then the three shape figures'."""

    def features(self, normalized: np.ndarray, sizes: np.ndarray, digit_heights: np.ndarray) -> np.ndarray:
        """:func:`run_features` with this detector's HOG settings."""
        return run_features(self.hog, normalized, sizes, digit_heights)

    def probability(self, normalized: np.ndarray, sizes: np.ndarray, digit_heights: np.ndarray) -> np.ndarray:
        """(N,) probability that each run holds more than one digit."""
        if len(normalized) == 0:
            return np.zeros(0)
        z = self.scores(self.features(normalized, sizes, digit_heights))
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def run_features(hog: HogParams, normalized: np.ndarray, sizes: np.ndarray, digit_heights: np.ndarray) -> np.ndarray:
    """(N, F) features of N runs: their normalised crops (N, 28, 28), ``sizes`` (N, 2) as
    (width, height) in page pixels, and the typical digit height of each one's field."""
    return np.hstack([hog_features(normalized, hog), shape_figures(sizes, digit_heights)])


def shape_figures(sizes: np.ndarray, digit_heights: np.ndarray) -> np.ndarray:
    """(N, 3): log aspect (width / height), width and height against the field's digit height."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    w, h = np.maximum(sizes[:, 0], 1), np.maximum(sizes[:, 1], 1)
    dh = np.maximum(np.asarray(digit_heights, np.float64).reshape(-1), 1)
    return np.stack([np.log(w / h), w / dh, h / dh], axis=1)


def ink_run(digit: np.ndarray, scale: float) -> np.ndarray | None:
    """An MNIST digit (28x28, bright ink) scaled up and cut to its ink as a binary mask (255 ink)."""
    up = cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    mask = np.where(up > _INK_LEVEL, 255, 0).astype(np.uint8)
    return cut_to_ink(mask) if mask.any() else None


def _pieces(mask: np.ndarray) -> int:
    return cv2.connectedComponents((mask > 0).astype(np.uint8))[0] - 1


def push_together(left: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Two digit masks side by side, moved together until their ink joins, then a little further.

    Their bottoms line up give or take a few percent of the height, as on a
    line of writing.  None if they do not touch before overlapping by most
    of the narrower one.
    """
    hl, wl = left.shape
    hr, wr = right.shape
    dy = int(round(hl - hr + rng.normal(0, 0.06) * hl))
    top_l, top_r = max(0, -dy), max(0, dy)
    height = max(top_l + hl, top_r + hr)
    apart = _pieces(left) + _pieces(right)

    def place(overlap: int) -> np.ndarray:
        x = wl - overlap
        canvas = np.zeros((height, max(wl, x + wr)), np.uint8)
        canvas[top_l : top_l + hl, :wl] = left
        canvas[top_r : top_r + hr, x : x + wr] |= right
        return canvas

    narrower = min(wl, wr)
    for overlap in range(int(0.7 * narrower)):
        if _pieces(place(overlap)) < apart:
            overlap += int(rng.integers(0, max(1, int(0.12 * narrower))))
            return place(overlap) if overlap < wl else None
    return None


def draw_runs(digits: np.ndarray, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``n`` runs of ink, half single digits and half two touching digits, from MNIST ``digits``.

    Returns the masks (255 ink, cut to their ink), labels (1: touching) and the
    digit height of the line each would be written in.
    """
    runs: list[np.ndarray] = []
    labels: list[int] = []
    heights: list[float] = []
    while len(runs) < n:
        scale = rng.uniform(1.4, 2.8)
        if rng.random() < 0.5:
            run = ink_run(digits[rng.integers(len(digits))], scale)
            if run is None:
                continue
            runs.append(run)
            labels.append(0)
            heights.append(run.shape[0] * rng.uniform(0.85, 1.15))
            continue
        left = ink_run(digits[rng.integers(len(digits))], scale)
        right = ink_run(digits[rng.integers(len(digits))], scale * rng.uniform(0.88, 1.12))
        if left is None or right is None:
            continue
        run = push_together(left, right, rng)
        if run is None:
            continue
        runs.append(run)
        labels.append(1)
        heights.append(0.5 * (left.shape[0] + right.shape[0]) * rng.uniform(0.9, 1.1))
    return runs, np.array(labels), np.array(heights)


def prepare_runs(runs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs prepared exactly as page segments are for reading (:func:`ocr.segment.reading_crop`).

    Returns the normalised crops (N, 28, 28), their runs' (width, height) (N, 2), and the
    indices of the runs kept (a run that leaves no stroke is dropped).
    """
    batch, kept = [], []
    for i, run in enumerate(runs):
        try:
            batch.append(reading_crop(run))
        except BlankCropError:
            continue
        kept.append(i)
    sizes = np.array([(runs[i].shape[1], runs[i].shape[0]) for i in kept], np.float64).reshape(-1, 2)
    return np.stack(batch).astype(np.float32), sizes, np.array(kept, np.int64)


def train_touching_detector(
    train_digits: np.ndarray,
    val_digits: np.ndarray,
    seed: int,
    n_train: int = 30000,
    n_val: int = 6000,
    c: float = 0.1,
    hog: HogParams | None = None,
) -> tuple[TouchingDetector, dict]:
    """Fit the detector on runs drawn from ``train_digits``; score it on runs from ``val_digits``.

    Both are raw MNIST digits (28x28 uint8).  Returns the detector and its
    validation figures.
    """
    hog = hog or HogParams()
    rng = np.random.default_rng(seed)
    runs, labels, heights = draw_runs(train_digits, n_train, rng)
    batch, sizes, kept = prepare_runs(runs)
    x = run_features(hog, batch, sizes, heights[kept])
    y = labels[kept]
    weights, bias = fit_logistic(x, y, c)
    detector = TouchingDetector(hog, weights, bias)

    val_runs, val_labels, val_heights = draw_runs(val_digits, n_val, np.random.default_rng(seed + 1))
    batch, sizes, kept = prepare_runs(val_runs)
    p = detector.probability(batch, sizes, val_heights[kept])
    truth = val_labels[kept]
    figures = {
        "validation_runs": int(len(truth)),
        "accuracy": round(float(np.mean((p > 0.5) == truth)), 4),
        "single_taken_for_touching": round(float(np.mean(p[truth == 0] > 0.5)), 4),
        "touching_taken_for_single": round(float(np.mean(p[truth == 1] <= 0.5)), 4),
        "train_runs": int(len(y)),
        "c": c,
    }
    return detector, figures
