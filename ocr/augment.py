"""Distort MNIST digits toward what segmentation of real scans produces.

Three recipes share the same small primitives:

* :func:`augment_digits` draws training variants: elastic warps, rotation,
  shear, scale, thick and thin strokes, loose and off-centre crops, fragments
  of box lines along the edges, blur and noise.  Every variant goes through
  :func:`ocr.normalize.normalize_digit`, as a crop from a scan would.
* :func:`distort_test_digits` builds the fixed, seeded robustness set that
  ``evaluate`` reports on (MNIST test digits, never trained on): stroke width,
  +-15 degree rotation, off-centre loose crops and box-line fragments, without
  the elastic warps and shear that only training uses.
* :func:`scanned_digits` builds the fixed scanned set ``evaluate`` also
  reports on: the digits as reading cuts them from a page, thresholded ink
  masks instead of MNIST's gray strokes (:func:`as_scanned`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr.errors import BlankCropError
from ocr.normalize import normalize_digit

ROBUSTNESS_SEED = 20261121
FLAGGED_SEED = 20261205


def augment_digits(
    images: np.ndarray,
    rng: np.random.Generator,
    clean_share: float = 0.25,
    mild_share: float = 0.0,
    normalized: np.ndarray | None = None,
    scanned_share: float = 0.0,
    labels: np.ndarray | None = None,
    flagged_ones_share: float = 0.0,
) -> np.ndarray:
    """Training variants of a batch of MNIST digits, normalised.

    Parameters
    ----------
    images : (N, 28, 28) uint8 ndarray
        MNIST digits, ink 255.
    rng : numpy Generator
        Source of all randomness (seed it for reproducible training).
    clean_share : float
        Share of digits passed through the normaliser undistorted.
    mild_share : float
        Share given only the small slant, rotation and warp by which one
        writer's digits differ from another's (the rest get the full variants).
    normalized : (N, 28, 28) float32 ndarray, optional
        ``images`` already through the normaliser: the clean share is copied
        from it instead of normalised again (same result, less work per epoch).
    scanned_share : float
        Share of each kind (clean or distorted) given to the classifiers as
        reading gets digits from a page: an ink mask thresholded at scan
        resolution (:func:`as_scanned`) instead of MNIST's gray strokes.
    labels : (N,) int ndarray, optional
        The digits' labels, needed for ``flagged_ones_share``.
    flagged_ones_share : float
        Share of the 1s written as much of the world writes them, with a flag
        at the top and sometimes a foot (:func:`flagged_one`), before the rest.

    Returns
    -------
    (N, 28, 28) float32 ndarray in [0, 1], ink 1.
    """
    out = np.empty((len(images), 28, 28), np.float32)
    for i, image in enumerate(images):
        r = rng.random()
        flagged = False
        if flagged_ones_share and labels is not None and labels[i] == 1 and rng.random() < flagged_ones_share:
            image, flagged = flagged_one(image, rng), True
        if r < clean_share:
            if scanned_share and rng.random() < scanned_share:
                out[i] = _scanned_clean(image, rng)
            else:
                cached = normalized is not None and not flagged
                out[i] = normalized[i] if cached else normalize_digit(image, bright_ink=True)
            continue
        if r < clean_share + mild_share:
            crop = _mild_variant(image, rng)
        else:
            crop = _training_variant(image, rng)
        if scanned_share and rng.random() < scanned_share:
            out[i] = as_scanned(crop, rng, image)
        else:
            out[i] = _normalize_or_original(crop, image)
    return out


def _ink_of(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float] | None:
    """The ink mask of an MNIST digit (ink 255), its pixels' rows and columns, its height and its
    mean run of ink across a row (ink pixels per row of its height: the stroke's width, for a 1);
    None if blank."""
    ink = image > 128
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        return None
    height = int(ys.max() - ys.min()) + 1
    return ink, ys, xs, height, ink.sum() / height


def flagged_one(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 1 (28x28, ink 255) with the flag many writers outside North America give it.

    A stroke as wide as the 1's own runs down and to the left from its top,
    a fifth to two fifths of its height long, 30-60 degrees below the
    horizontal (a 7's bar runs flatter and longer); a third of them also get
    a foot.  MNIST's writers wrote 1 as a bare bar, so a CNN trained on them
    alone reads this 1 as a 7 or a 9, and often surely.
    """
    found = _ink_of(image)
    if found is None:
        return image
    _, ys, xs, height, run = found
    width = max(1, int(round(run)))
    top = int(np.argmin(ys))
    tx, ty = int(xs[top]), int(ys[top])
    length = rng.uniform(0.2, 0.4) * height
    angle = np.deg2rad(rng.uniform(30, 60))
    end = (int(round(tx - length * np.cos(angle))), int(round(ty + length * np.sin(angle))))
    out = image.copy()
    cv2.line(out, (tx, ty), end, 255, width, cv2.LINE_AA)
    if rng.random() < 1 / 3:
        _draw_foot(out, xs, ys, height, width, rng)
    return out


def footed_one(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 1 (28x28, ink 255) standing on a foot, as some writers give it without a flag:
    a bar as wide as the 1's stroke across its bottom, three tenths to three fifths of its height long."""
    found = _ink_of(image)
    if found is None:
        return image
    _, ys, xs, height, run = found
    out = image.copy()
    _draw_foot(out, xs, ys, height, max(1, int(round(run))), rng)
    return out


def _draw_foot(out: np.ndarray, xs: np.ndarray, ys: np.ndarray, height: int, width: int, rng) -> None:
    """Draw, in place, a foot under the lowest ink pixel (``xs``, ``ys``) of a 1 ``height`` tall."""
    bottom = int(np.argmax(ys))
    bx, by = int(xs[bottom]), int(ys[bottom])
    half = rng.uniform(0.15, 0.3) * height
    cv2.line(out, (int(round(bx - half)), by), (int(round(bx + half)), by), 255, width, cv2.LINE_AA)


def crossed_seven(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 7 (28x28, ink 255) crossed as 7s are written where 1s are flagged.

    A bar as wide as half the 7's mean stroke run, across its stem a little
    below the middle, half a 7's height to four fifths of it long.
    """
    found = _ink_of(image)
    if found is None:
        return image
    ink, ys, _, height, run = found
    row = int(round(ys.min() + rng.uniform(0.45, 0.6) * height))
    cols = np.flatnonzero(ink[row])
    if cols.size == 0:
        return image
    centre, half = float(cols.mean()), rng.uniform(0.25, 0.4) * height
    width = max(1, int(round(run / 2)))
    out = image.copy()
    end_row = row + int(rng.integers(-1, 2))
    cv2.line(out, (int(round(centre - half)), row), (int(round(centre + half)), end_row), 255, width, cv2.LINE_AA)
    return out


def _drawn_copies(images: np.ndarray, seed: int, draw) -> np.ndarray:
    """``draw(image, rng)`` on each raw MNIST digit in turn (:func:`_seeded_copies`), normalised."""
    return _seeded_copies(images, seed, lambda image, rng: normalize_digit(draw(image, rng), bright_ink=True))


def flagged_ones(ones: np.ndarray, seed: int = FLAGGED_SEED) -> np.ndarray:
    """MNIST 1s (N, 28, 28) each given a flag (:func:`flagged_one`), normalised: the seeded set
    ``evaluate`` reports on (from MNIST test), and the SVM's flagged training 1s."""
    return _drawn_copies(ones, seed, flagged_one)


def footed_ones(ones: np.ndarray, seed: int) -> np.ndarray:
    """MNIST 1s (N, 28, 28) each on a foot (:func:`footed_one`), normalised."""
    return _drawn_copies(ones, seed, footed_one)


def crossed_sevens(sevens: np.ndarray, seed: int) -> np.ndarray:
    """MNIST 7s (N, 28, 28) each crossed (:func:`crossed_seven`), normalised."""
    return _drawn_copies(sevens, seed, crossed_seven)


def as_scanned(crop: np.ndarray, rng: np.random.Generator, original: np.ndarray) -> np.ndarray:
    """A digit drawn at scan resolution (``crop``: uint8, ink bright) as reading gets it from a page.

    A page is thresholded into an ink mask and each digit is cut from it as
    0/255 pixels (:mod:`ocr.segment`); MNIST's soft gray strokes, and what
    they say about a stroke's width and where two strokes nearly meet, are
    not there.  The crop is thresholded at a random level of its ink and goes
    through :func:`ocr.segment.reading_crop` as a segment would; the clean
    ``original`` is used where nothing of the crop is left.
    """
    from ocr.segment import reading_crop

    top = int(crop.max())
    mask = np.where(crop > rng.uniform(0.25, 0.6) * top, 255, 0).astype(np.uint8) if top else crop
    try:
        return reading_crop(mask)
    except BlankCropError:
        return normalize_digit(original, bright_ink=True)


def distort_test_digits(images: np.ndarray, seed: int = ROBUSTNESS_SEED) -> np.ndarray:
    """The fixed robustness set: each digit with the distortions of a segmented scan.

    Every digit gets a rotation in +-15 degrees and a loose crop with uneven
    margins (so off-centre before normalisation); a third get thicker strokes
    and a third thinner ones; half get one or two box-line fragments along
    the crop edges.

    Returns
    -------
    (N, 28, 28) float32 ndarray in [0, 1], normalised.
    """
    return _seeded_copies(images, seed, _distorted)


def _distorted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(2.0, 3.0)
    big = upscale_digit(image, scale)
    big = _affine(big, angle=rng.uniform(-15, 15), shear=0.0, sx=1.0, sy=1.0)
    stroke = rng.integers(3)
    if stroke == 1:
        big = _thicken(big, max(2, round(scale * rng.uniform(0.6, 1.1))))
    elif stroke == 2:
        big = _thin(big, max(2, round(scale * rng.uniform(0.4, 0.7))))
    crop = _loose_crop(big, rng, max_margin=0.35)
    if rng.random() < 0.5:
        crop = _add_box_lines(crop, rng, scale)
    return _normalize_or_original(crop, image)


def _seeded_copies(images: np.ndarray, seed: int, draw) -> np.ndarray:
    """``draw(image, rng)`` for each digit in turn, from one generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), 28, 28), np.float32)
    for i, image in enumerate(images):
        out[i] = draw(image, rng)
    return out


SCANNED_SEED = 20261205


def scanned_digits(images: np.ndarray, seed: int = SCANNED_SEED) -> np.ndarray:
    """Each digit drawn 1.4-2.6 times as large and cut as a page's ink mask (:func:`as_scanned`),
    as reading gets every digit of a page: with the default seed, the fixed scanned set
    ``evaluate`` reports on; with the training seed, the HOG-SVM's scanned copies.

    Returns
    -------
    (N, 28, 28) float32 ndarray in [0, 1], normalised.
    """
    return _seeded_copies(images, seed, _scanned_clean)


def _scanned_clean(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return as_scanned(upscale_digit(image, rng.uniform(1.4, 2.6)), rng, image)


def _training_variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(1.25, 2.25)
    big = upscale_digit(image, scale)
    if rng.random() < 0.5:
        big = _elastic(big, rng, alpha=rng.uniform(0.5, 1.6) * scale)
    aspect = np.exp(rng.normal(0, 0.12))
    big = _affine(
        big,
        angle=float(np.clip(rng.normal(0, 8), -20, 20)),
        shear=float(np.clip(rng.normal(0, 0.15), -0.4, 0.4)),
        sx=float(aspect),
        sy=float(1 / aspect),
    )
    r = rng.random()
    if r < 0.25:
        big = _thicken(big, max(2, round(scale * rng.uniform(0.4, 1.2))))
    elif r < 0.45:
        big = _thin(big, max(2, round(scale * rng.uniform(0.3, 0.8))))
    crop = _loose_crop(big, rng, max_margin=0.45) if rng.random() < 0.7 else big
    if rng.random() < 0.35:
        crop = _add_box_lines(crop, rng, scale)
    if rng.random() < 0.2:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.5, 1.2) * scale / 2)
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(5, 25), crop.shape)
        crop = np.clip(crop.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return crop


def _mild_variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = 1.5
    big = upscale_digit(image, scale)
    if rng.random() < 0.4:
        big = _elastic(big, rng, alpha=rng.uniform(0.3, 0.8) * scale)
    aspect = np.exp(rng.normal(0, 0.05))
    return _affine(
        big,
        angle=float(np.clip(rng.normal(0, 4), -10, 10)),
        shear=float(np.clip(rng.normal(0, 0.06), -0.15, 0.15)),
        sx=float(aspect),
        sy=float(1 / aspect),
    )


def _normalize_or_original(crop: np.ndarray, original: np.ndarray) -> np.ndarray:
    try:
        return normalize_digit(crop, bright_ink=True)
    except BlankCropError:
        # A distortion that wiped out the digit (erosion of a faint stroke) teaches nothing.
        return normalize_digit(original, bright_ink=True)


def upscale_digit(image: np.ndarray, scale: float) -> np.ndarray:
    """Render the digit at scan resolution with a margin around it."""
    size = round(28 * scale)
    big = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    pad = size // 3
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)


def _affine(image: np.ndarray, angle: float, shear: float, sx: float, sy: float) -> np.ndarray:
    h, w = image.shape
    centre = np.array([w / 2, h / 2])
    rot = cv2.getRotationMatrix2D((0, 0), angle, 1.0)[:, :2]
    lin = rot @ np.array([[sx, shear], [0, sy]])
    matrix = np.hstack([lin, (centre - lin @ centre)[:, None]])
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _elastic(image: np.ndarray, rng: np.random.Generator, alpha: float) -> np.ndarray:
    """Smooth random warp, displacements up to about ``alpha`` pixels."""
    h, w = image.shape
    # Upsampling a coarse random grid gives the smooth field that blurring a
    # full-resolution one would, at a fraction of the cost.
    coarse = (5, 5)
    dx = cv2.resize(rng.uniform(-1, 1, coarse).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC) * alpha
    dy = cv2.resize(rng.uniform(-1, 1, coarse).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC) * alpha
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0)


def _thicken(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.dilate(image, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def _thin(image: np.ndarray, size: int) -> np.ndarray:
    thinned = cv2.erode(image, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    # Never erase the digit: keep the original where erosion left too little ink.
    return thinned if (thinned > 127).sum() >= 0.35 * (image > 127).sum() else image


def _loose_crop(image: np.ndarray, rng: np.random.Generator, max_margin: float) -> np.ndarray:
    """Cut around the ink with uneven margins, as a cell or a segment box would."""
    rows, cols = np.nonzero(image > 60)
    if rows.size == 0:
        return image
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = max(bottom - top, right - left)
    m = rng.uniform(0, max_margin, 4) * size
    # Sometimes a segment box clips a little off one side of the digit.
    if rng.random() < 0.15:
        m[rng.integers(4)] = -rng.uniform(0, 0.08) * size
    t, b = max(0, int(top - m[0])), min(image.shape[0], int(bottom + m[1]))
    lft, rgt = max(0, int(left - m[2])), min(image.shape[1], int(right + m[3]))
    pad = [max(0, int(m[0] - top)), max(0, int(bottom + m[1] - image.shape[0]))]
    crop = image[t:b, lft:rgt]
    if pad[0] or pad[1]:
        crop = cv2.copyMakeBorder(crop, pad[0], pad[1], 0, 0, cv2.BORDER_CONSTANT, value=0)
    return crop


def _add_box_lines(crop: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Draw one or two straight line fragments touching the crop edges (left-over box borders)."""
    out = crop.copy()
    h, w = out.shape
    for _ in range(rng.integers(1, 3)):
        thickness = max(1, round(rng.uniform(0.4, 1.2) * scale))
        edge = rng.integers(4)
        inset = int(rng.integers(0, max(1, thickness + 1)))
        frac_start, frac_end = sorted(rng.uniform(0, 1, 2))
        if rng.random() < 0.5:
            frac_start, frac_end = 0.0, 1.0
        if edge in (0, 1):  # top or bottom
            y = inset if edge == 0 else h - 1 - inset
            p, q = (int(frac_start * w), y), (int(frac_end * w), y)
        else:  # left or right
            x = inset if edge == 2 else w - 1 - inset
            p, q = (x, int(frac_start * h)), (x, int(frac_end * h))
        cv2.line(out, p, q, int(rng.integers(160, 256)), thickness)
    return out
