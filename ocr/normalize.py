"""Turn any digit crop into the 28x28 MNIST format.

MNIST digits were size-normalised to fit a 20x20 box (keeping their aspect
ratio, anti-aliased) and then placed in a 28x28 field so that their centre of
mass sits at the centre.  :func:`normalize_digit` does the same for a crop cut
from a scan, so that the classifiers see at reading time what they saw in
training: the training code runs every MNIST digit through this same function.

Crops from scans differ from MNIST in ways handled here: either ink polarity,
gray or binary or colour, 8 or 16 bit, loose crops with a margin, stray
fragments of box lines at the edges, and specks of scanner noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr.errors import BlankCropError
from ocr.geometry import label_components

DIGIT_SIZE = 28
BOX_SIZE = 20
# Index coordinates of the centre of mass of MNIST digits (measured on x_train: 13.99, 14.00).
_MNIST_CENTRE = 14.0
# Least ink/paper contrast, on a 0-1 scale, for a crop to hold a stroke at all.
_MIN_CONTRAST = 0.08
# A component smaller than this share of the largest one is a speck.
_SPECK_SHARE = 0.05
# A border-touching component at least this elongated (length / thickness) is a line fragment.
_LINE_ELONGATION = 4.0


def normalize_digit(crop: np.ndarray, bright_ink: bool | None = None) -> np.ndarray:
    """Normalise one digit crop to MNIST format.

    Parameters
    ----------
    crop : (H, W) or (H, W, C) ndarray
        The digit, any size, any real or boolean dtype, dark ink on light paper
        or light on dark, with or without a margin.  C is 1, 3 (BGR) or 4.
    bright_ink : bool or None
        Whether ink is the bright side (as in ink masks and MNIST).  None:
        decide from the crop, taking the majority of pixels as paper; a tight
        crop of a bold digit can be mostly ink, so callers that know should say.

    Returns
    -------
    (28, 28) float32 ndarray
        Ink 1, paper 0; the digit fitted into 20x20 pixels with its aspect
        ratio kept and its centre of mass at the centre.

    Raises
    ------
    BlankCropError
        The crop is empty, uniform (blank paper or all ink) or holds no stroke.
    ValueError
        The crop is not an image (wrong number of dimensions or channels).
    """
    mask = _binary_ink(crop) if bright_ink else None
    if mask is not None:
        # A 0/255 ink mask (as segmentation cuts): the steps below reduce to its own pixels.
        ink = None
        if not 0 < np.count_nonzero(mask) < mask.size:
            raise BlankCropError("digit crop is uniform (blank paper or all ink): no stroke to read")
    else:
        ink = _to_ink(crop, bright_ink)
        mask = _ink_mask(ink)
    mask = _drop_fragments(mask)
    if not mask.any():
        raise BlankCropError("digit crop holds no stroke after removing specks and line fragments")
    if ink is None:
        # Whatever was dropped is its own 8-connected component, so no pixel of it
        # lies within one pixel of a kept one: the kept strokes are the ink.
        ink = mask.astype(np.float32)
    else:
        # Keep the anti-aliased rim of the kept strokes, nothing of what was dropped.
        keep = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        ink = np.where(keep, ink, 0.0).astype(np.float32)
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return _place_in_field(_fit_box(ink[y : y + h, x : x + w]))


def normalize_digits(crops: list[np.ndarray] | np.ndarray, bright_ink: bool | None = None) -> np.ndarray:
    """Normalise a sequence of crops; see :func:`normalize_digit`.

    Returns
    -------
    (N, 28, 28) float32 ndarray
    """
    out = np.zeros((len(crops), DIGIT_SIZE, DIGIT_SIZE), np.float32)
    for i, crop in enumerate(crops):
        out[i] = normalize_digit(crop, bright_ink)
    return out


def _binary_ink(crop: np.ndarray) -> np.ndarray | None:
    """The ink (bool) of a 2-D uint8 crop holding only 0 (paper) and 255 (ink), else None.

    For such a crop :func:`_to_ink` gives the ink as 0/1 and :func:`_ink_mask`
    marks exactly its 255 pixels (Otsu's threshold on two levels stays below
    the upper one), so the mask is read off directly.
    """
    if not isinstance(crop, np.ndarray) or crop.ndim != 2 or crop.dtype != np.uint8 or crop.size == 0:
        return None
    ink = crop == 255
    if np.count_nonzero(ink) + np.count_nonzero(crop == 0) != crop.size:
        return None
    return ink


def _to_ink(crop: np.ndarray, bright_ink: bool | None) -> np.ndarray:
    """Gray float image with ink high (up to 1) and paper at 0."""
    a = np.asarray(crop)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = (
            a[..., 0]
            if a.shape[2] == 1
            else cv2.cvtColor(a.astype(np.float32), cv2.COLOR_BGRA2GRAY if a.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        )
    if a.ndim != 2:
        raise ValueError(f"a digit crop must be a 2-D gray or 3-D colour image, got shape {np.shape(crop)}")
    if a.size == 0:
        raise BlankCropError(f"digit crop is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"a digit crop must hold numbers, got dtype {a.dtype}")
    gray = a.astype(np.float32)
    integer = np.issubdtype(a.dtype, np.integer)
    if not integer and a.dtype != bool and not np.isfinite(gray).all():
        raise ValueError("digit crop holds NaN or infinite values")
    lo, hi = float(gray.min()), float(gray.max())
    full_scale = float(np.iinfo(a.dtype).max) if integer else max(hi, 1.0)
    if hi - lo < _MIN_CONTRAST * full_scale:
        raise BlankCropError("digit crop is uniform (blank paper or all ink): no stroke to read")
    if bright_ink is None:
        # Paper is the majority of most digit crops, so the median is the paper level.
        paper = float(np.median(gray))
        bright_ink = paper - lo <= hi - paper
    if bright_ink:
        ink = (gray - lo) / (hi - lo)
    else:
        ink = (hi - gray) / (hi - lo)
    # np.clip's own overhead costs more than the work on a digit-sized crop.
    np.maximum(ink, 0.0, out=ink)
    return np.minimum(ink, 1.0, out=ink)


def _ink_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels that belong to strokes: Otsu on the ink image, lowered to keep faint rims."""
    ink8 = np.round(ink * 255).astype(np.uint8)
    otsu, _ = cv2.threshold(ink8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return ink8 > max(0.5 * otsu, 25)


def _drop_fragments(mask: np.ndarray) -> np.ndarray:
    """Remove specks and border-touching line fragments, keep every stroke of the digit."""
    count, labels, stats, _ = label_components(mask.astype(np.uint8))
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(np.argmax(areas))
    keep = _keep_components(stats[1:], mask.shape, largest)
    return keep[labels - 1] & mask


def _keep_components(stats: np.ndarray, shape: tuple[int, int], largest: int) -> np.ndarray:
    """Which components (rows of a connectedComponentsWithStats table, background excluded) to keep.

    Pure geometry so that it can be tested without images.
    """
    height, width = shape
    x, y, w, h, area = (stats[:, i] for i in range(5))
    touches = (x == 0) | (y == 0) | (x + w == width) | (y + h == height)
    length = np.maximum(w, h)
    thickness = np.maximum(area / np.maximum(length, 1), 1.0)
    line_like = touches & (length / thickness >= _LINE_ELONGATION) & (length >= 0.3 * max(height, width))
    # The digit is the largest component that is not a line fragment, unless
    # there is no such component of fair size (a lone "1" touching the edges).
    anchor = largest
    candidates = np.flatnonzero(~line_like & (area >= 0.15 * area[largest]))
    if candidates.size:
        anchor = int(candidates[np.argmax(area[candidates])])
    keep = (area >= max(2.0, _SPECK_SHARE * area[anchor])) & ~line_like
    keep[anchor] = True
    return keep


def _fit_box(box: np.ndarray) -> np.ndarray:
    """Scale so the longer side is 20 px, keeping the aspect ratio; ink renormalised to peak at 1."""
    h, w = box.shape
    scale = BOX_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    fitted = cv2.resize(box, size, interpolation=interp)
    peak = float(fitted.max())
    # Thin strokes shrunk a long way come out faint; MNIST ink is saturated.
    return fitted / peak if peak > 0 else fitted


def _place_in_field(fitted: np.ndarray) -> np.ndarray:
    """Paste into 28x28 with the centre of mass at MNIST's centre, never cutting the digit."""
    h, w = fitted.shape
    rows, cols = fitted.sum(axis=1), fitted.sum(axis=0)
    total = float(fitted.sum())
    cy = float(rows @ np.arange(h, dtype=rows.dtype) / total)
    cx = float(cols @ np.arange(w, dtype=cols.dtype) / total)
    top = min(max(round(_MNIST_CENTRE - cy), 0), DIGIT_SIZE - h)
    left = min(max(round(_MNIST_CENTRE - cx), 0), DIGIT_SIZE - w)
    field = np.zeros((DIGIT_SIZE, DIGIT_SIZE), np.float32)
    field[top : top + h, left : left + w] = fitted
    return field
