"""Page cleanup: flatten the illumination, binarise, measure and remove the skew."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from ocr.geometry import Box, runs

MAX_SKEW = 5.0  # degrees either way, for pages whose skew comes from their projection profile
# Pages with long straight segments (rules, box borders) have their skew measured from them up to
# this many degrees either way: a page fed crooked or photographed askew is often turned more
# than 5 degrees, and read 3-5 degrees askew its combs and boxes are lost or cut wrong.
MAX_SEGMENT_SKEW = 15.0
# The resolution field finding and segmentation are tuned for.  A page known to
# be well above it (a 300 dpi scan) is read at this resolution instead: at 200
# dpi, the PDF forms of the sample set were read 5.7 points less exactly, and
# every step costs in proportion to the pixels.
WORKING_DPI = 150
# The widest thin mark (pixels) :func:`fine_lines` takes on a page read at its own resolution,
# and on a page it is found on before being shrunk to half or less.
_FINE_WIDTH = 4
_FINE_WIDE = 6


# What a page holds (:func:`ink_on_page`).
PageHolds = Literal["ink", "faint", "blank"]


@dataclass(frozen=True)
class CleanPage:
    """A page ready for field finding.

    gray : (H, W) uint8, paper near 255, deskewed.
    ink : (H, W) uint8, 255 where there is ink, 0 elsewhere, deskewed.
    angle : the skew found, degrees (positive: the content was turned clockwise); the page was turned back by it.
    matrix : 2x3 affine from original page pixels to these pixels (scaling, then the turn).
    fine : (H, W) uint8, 255 on thin marks darker than the paper beside them (:func:`fine_lines`), however
        light: found before the page is shrunk or turned (either would fade a hairline), then shrunk and
        turned with it.
    holds : ``"ink"``, or ``"faint"`` marks but no ink, or ``"blank"`` (:func:`ink_on_page`, judged
        before any sharpening).
    """

    gray: np.ndarray
    ink: np.ndarray
    angle: float
    matrix: np.ndarray
    fine: np.ndarray
    holds: PageHolds = "ink"


def clean_page(gray: np.ndarray, deskew: bool = True, scale: float = 1.0, sharpen: bool = False) -> CleanPage:
    """Flatten, binarise and deskew a gray page (H, W) uint8, first shrunk by ``scale`` (at most 1).

    ``sharpen``: a blurred page is sharpened (:func:`sharpen_blur`); for scans, whose print has
    sharp edges when the scanner is in focus, not for photos of handwriting, whose sharpest
    edges are the pen's own soft ones.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"a page must be (H, W) uint8, got {gray.shape} {gray.dtype}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    resize = np.float64([[1, 0, 0], [0, 1, 0]])
    gray = smooth_noise(descreen(gray), scale)
    fine = None
    if scale < 1:
        h, w = gray.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # A block of the page with any fine mark in it is a fine mark once shrunk.  A page shrunk to
        # half or less has marks up to 6 of its pixels across taken (3 at the working resolution): a
        # box printed in a pale colour 2-3 px wide, thickened by the scanner's blur and turn.
        width = _FINE_WIDE if scale <= 0.6 else _FINE_WIDTH
        fine = _any(cv2.resize(fine_lines(gray, width), size, interpolation=cv2.INTER_AREA))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        resize = np.float64([[size[0] / w, 0, 0], [0, size[1] / h, 0]])
    flat = normalize_illumination(gray)
    holds = ink_on_page(flat)
    if sharpen:
        flat = sharpen_blur(flat)
    streaks = scanner_streaks(flat)
    if streaks is not None:
        # Left in, a streak crossed digits as a 1 beside them or a wall between them, made boxes
        # of hairlines, and its length told the skew.  Paper now, where no stroke crosses it.
        flat[streaks > 0] = 255
        if fine is not None:  # found before the page was shrunk: the streak's marks a pixel either side
            fine[cv2.dilate(streaks, np.ones((3, 3), np.uint8)) > 0] = 0
    ink = binarize(flat)
    if fine is None:
        fine = fine_lines(flat)
    angle = estimate_skew(ink, fine=fine) if deskew else 0.0
    if abs(angle) < 0.05:
        return CleanPage(flat, ink, 0.0, resize, fine, holds)
    h, w = gray.shape
    # OpenCV's positive angle turns the image counter-clockwise, undoing a clockwise skew.
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    flat = cv2.warpAffine(flat, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    # Any part of a fine mark next to a pixel: a turned hairline sampled at the nearest pixel breaks.
    fine = _any(cv2.warpAffine(fine, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=0))
    ink = binarize(flat)
    matrix = np.hstack([turn[:, :2] @ resize[:, :2], turn[:, 2:]])  # the turn after the resize
    return CleanPage(flat, ink, float(angle), matrix, fine, holds)


# A streak (:func:`scanner_streaks`): a run of columns (or rows) at most this many pixels wide,
# darker than this level (15 below the flattened paper's 255) in over half of every 4th row, and
# in over half of the page's first and last 1% of rows (a printed frame or rule stops at the
# printer's margin, and ink must cover over half the page's length to count), with the columns
# :data:`_STREAK_REACH` pixels either side of it not so.
_STREAK_WIDTH = 4
_STREAK_LEVEL = 240
_STREAK_REACH = 3
_STREAK_ENDS = 0.01


def scanner_streaks(flat: np.ndarray) -> np.ndarray | None:
    """255 on the pixels of streaks that run the whole length of an illumination-flattened page,
    where no stroke crosses them, or None.

    Dust or a scratch on an automatic feeder's glass draws a thin line down every page it feeds,
    straight along the feed, dark or light; a flatbed's lamp can draw one across.  A stroke
    crossing the streak is kept: in a row where the page two pixels either side of the streak is
    dark too, the streak's pixels stay as they are.
    """
    out = None
    for axis in (0, 1):  # columns down the page, then rows across it
        length = flat.shape[axis]
        ends = max(1, round(_STREAK_ENDS * length))
        dark = flat < _STREAK_LEVEL
        lines = dark[::4] if axis == 0 else dark[:, ::4]
        first, last = (dark[:ends], dark[-ends:]) if axis == 0 else (dark[:, :ends], dark[:, -ends:])
        half = [part.mean(axis=axis) > 0.5 for part in (lines, first, last)]
        candidates = half[0] & half[1] & half[2]
        if not candidates.any():
            continue
        streak = np.zeros(flat.shape, bool)
        across = flat.shape[1 - axis]
        for start, stop in runs(candidates):
            if stop - start > _STREAK_WIDTH or start < _STREAK_REACH or stop + _STREAK_REACH > across:
                continue
            if half[0][start - _STREAK_REACH] or half[0][stop - 1 + _STREAK_REACH]:
                continue  # part of something wider: ground, a band of print
            # Two pixels out: the scanner's blur darkens the pixel right beside a streak.
            if axis == 0:
                crossed = dark[:, start - 2] | dark[:, stop + 1]
                streak[:, start:stop] = ~crossed[:, None]
            else:
                crossed = dark[start - 2] | dark[stop + 1]
                streak[start:stop] = ~crossed[None, :]
        if streak.any():
            mask = np.where(streak, 255, 0).astype(np.uint8)
            out = mask if out is None else cv2.bitwise_or(out, mask)
    return out


# A sheet scanned short of the glass (:func:`paper_on_ground`): rows or columns from an edge in
# which this share of a small copy's pixels is darker than this share of the paper's level
# (this percentile of the page: a cheque laid on an A4 bed covers a third of it) are ground, if
# there are at least this share of the page's short side of them (8 px on a page at 150 dpi: a
# rule printed along the sheet's edge is thinner); the paper kept is at least this share of each side.
_GROUND_ROW = 0.9
_GROUND_LEVEL = 0.55
_PAPER_PERCENTILE = 90
_MIN_GROUND = 1 / 150
_GROUND_SEARCH_SIDE = 600
_MIN_PAPER_SHARE = 0.1


def paper_on_ground(gray: np.ndarray) -> Box | None:
    """The box (x, y, w, h) of the paper where a scan shows dark ground past it, or None.

    A scanner's glass larger than the sheet, or a sheet fed short of the glass, shows the lid's
    dark underside in bands along one or two edges, or all round a cheque laid on the glass.
    Read as part of the page, that ground moves the page's edges (what lies "at the page's
    edge", a whole sheet's shape) and, as ink, spans the page.  Bands are whole rows or columns
    of dark ground running in from an edge (on a copy at most :data:`_GROUND_SEARCH_SIDE` pixels
    long); the wedges left where the sheet lies askew are thin, and flattening
    (:func:`normalize_illumination`) whitens what of them is wide.
    """
    h, w = gray.shape
    factor = max(1, round(max(h, w) / _GROUND_SEARCH_SIDE))
    small_w, small_h = w // factor, h // factor
    if min(small_w, small_h) < 16:
        return None
    small = cv2.resize(gray[: small_h * factor, : small_w * factor], (small_w, small_h), interpolation=cv2.INTER_AREA)
    dark = small < _GROUND_LEVEL * float(np.percentile(small, _PAPER_PERCENTILE))
    rows, columns = dark.mean(axis=1) >= _GROUND_ROW, dark.mean(axis=0) >= _GROUND_ROW
    least = min(h, w) * _MIN_GROUND / factor
    top, bottom, left, right = (
        run if run >= least else 0
        for run in (
            _run_from_start(rows),
            _run_from_start(rows[::-1]),
            _run_from_start(columns),
            _run_from_start(columns[::-1]),
        )
    )
    if not top + bottom + left + right:
        return None
    x0, y0 = left * factor, top * factor
    # The last band reaches the page's own edge, the few pixels the copy left out included.
    x1 = w - right * factor - (w - small_w * factor if right else 0)
    y1 = h - bottom * factor - (h - small_h * factor if bottom else 0)
    if x1 - x0 < _MIN_PAPER_SHARE * w or y1 - y0 < _MIN_PAPER_SHARE * h:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _run_from_start(flags: np.ndarray) -> int:
    """How many of ``flags`` are true from its start."""
    false = np.flatnonzero(~flags)
    return int(false[0]) if false.size else flags.size


# A page holds no ink (:func:`ink_on_page`) when its darkest pixels (this share of them: 435 on an
# A4 page at 150 dpi, a digit's worth of a pen's ink) are this light or lighter once flattened;
# it holds faint marks when at least this share of it is darker than this level (25 below the
# flattened paper's 255).  The lightest scans read (ink and print at 35% of their contrast) flatten
# to 135-173 at their darkest; blank backs with the front showing through, blurred by the paper,
# to 210-242.
_DARKEST_SHARE = 0.0002
_FAINTEST_INK = 195
_FAINT_MARKS_SHARE = 0.002
_FAINT_MARK_LEVEL = 230


def ink_on_page(flat: np.ndarray) -> PageHolds:
    """What an illumination-flattened page holds: ``"ink"``; ``"faint"``, marks but no ink (the
    other side of a blank page showing through, mirrored, lighter and blurred by the paper, or a
    scan far too light); or ``"blank"``.

    Read as it stands, a page without ink has its Otsu threshold among its faint marks or its
    paper's grain, and the other side's boxes and digits are read, mirrored.
    """
    counts = np.cumsum(cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel())
    if int(np.searchsorted(counts, _DARKEST_SHARE * flat.size)) < _FAINTEST_INK:
        return "ink"
    return "faint" if counts[_FAINT_MARK_LEVEL - 1] >= _FAINT_MARKS_SHARE * flat.size else "blank"


# A photographed sheet is looked for on a copy this long, and taken when it covers this share
# of the photo or more (but not all of it: a sheet filling the frame needs no rectifying).
_SHEET_SEARCH_SIDE = 600
_SHEET_AREA = (0.3, 0.97)


def find_sheet(gray: np.ndarray) -> np.ndarray | None:
    """The corners (4 x 2 float32: top left, top right, bottom right, bottom left) of a sheet of
    paper photographed on a darker ground, or None.

    The paper is the largest bright region (Otsu's threshold on a small copy), and it must be
    a convex quadrilateral: its outline simplified to 2% of its length has four corners.  A
    shadow across the sheet (a hand, the phone) can leave part of the paper darker than the
    ground, so that no threshold parts them; then the sheet is the largest region that the
    edges of the copy enclose (:func:`_sheet_by_edges`), as sharp at the paper's border in the
    shadow as out of it, where the shadow's own border is soft.
    """
    h, w = gray.shape
    if min(h, w) < 32:
        return None
    factor = _SHEET_SEARCH_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    _, bright = cv2.threshold(cv2.GaussianBlur(small, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    corners = _sheet_corners(max(contours, key=cv2.contourArea), small.shape) if contours else None
    if corners is None:
        corners = _sheet_by_edges(small)
    return None if corners is None else _clockwise_from_top_left(corners / factor)


# Edges of the sheet (:func:`_sheet_by_edges`): Canny's hysteresis thresholds, in gray levels per
# pixel of the small copy (Canny's 3 x 3 Sobel gives 8 per level per pixel), on the copy closed
# by this many pixels so that print and writing leave no edges.  The paper's border, even in a
# shadow, rises some 20 levels a pixel; a shadow's blurred border, at most about 4.
_SHEET_EDGE_LEVELS = (6, 14)
_SHEET_EDGE_CLOSING = 11


def _sheet_by_edges(small: np.ndarray) -> np.ndarray | None:
    """The corners (unordered, in ``small``'s pixels) of the largest region of ``small`` that its
    edges enclose, if that is a sheet (:func:`_sheet_corners`), or None."""
    plain = cv2.morphologyEx(small, cv2.MORPH_CLOSE, np.ones((_SHEET_EDGE_CLOSING,) * 2, np.uint8))
    low, high = _SHEET_EDGE_LEVELS
    edges = cv2.Canny(cv2.GaussianBlur(plain, (5, 5), 0), 8 * low, 8 * high, L2gradient=True)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))  # small breaks in the border closed
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.bitwise_not(edges), connectivity=4)
    for k in (np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1)[:3]:
        # The region, grown back over the band of its border's edge.
        region = cv2.dilate((labels == k).astype(np.uint8), np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        corners = _sheet_corners(max(contours, key=cv2.contourArea), small.shape)
        if corners is not None:
            return corners
    return None


def _sheet_corners(outline: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The four corners (float32) of ``outline`` on a copy of ``shape`` if it is a sheet's: it covers
    a share of the copy within :data:`_SHEET_AREA`, and simplified to 2% of its length it is a
    convex quadrilateral."""
    share = cv2.contourArea(outline) / (shape[0] * shape[1])
    if not _SHEET_AREA[0] <= share <= _SHEET_AREA[1]:
        return None
    corners = cv2.approxPolyDP(outline, 0.02 * cv2.arcLength(outline, True), True).reshape(-1, 2)
    if len(corners) != 4 or not cv2.isContourConvex(corners.reshape(-1, 1, 2)):
        return None
    return corners.astype(np.float32)


def _clockwise_from_top_left(corners: np.ndarray) -> np.ndarray | None:
    """Four corners ordered top left, top right, bottom right, bottom left; None if two coincide."""
    by_sum, by_diff = corners.sum(axis=1), np.diff(corners, axis=1).ravel()
    ordered = np.array(
        [corners[by_sum.argmin()], corners[by_diff.argmin()], corners[by_sum.argmax()], corners[by_diff.argmax()]],
        np.float32,
    )
    if len({tuple(c) for c in ordered.tolist()}) != 4:
        return None
    return ordered


def sheet_homography(corners: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The 3x3 homography taking a photographed sheet's ``corners`` to an upright rectangle, and its (W, H).

    ``size``: the rectangle's (W, H) (a template's page); by default the sheet's longer sides.
    """
    tl, tr, br, bl = corners
    width = round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)))
    height = round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)))
    if size is not None:
        width, height = size
    target = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    return cv2.getPerspectiveTransform(corners, target), (width, height)


# Sheets whose shape gives a scan's resolution away when its file does not: A4 (and the
# other ISO A sizes, which share its shape; read as A4), US Letter, Legal and Tabloid, inches.
PAPER_SIZES = {"A4": (210 / 25.4, 297 / 25.4), "Letter": (8.5, 11.0), "Legal": (8.5, 14.0), "Tabloid": (11.0, 17.0)}
# Scanners' resolutions: a resolution worked out from a sheet's shape within 2% of one is that one.
SCAN_DPIS = (100, 150, 200, 240, 300, 400, 600, 1200)
# A page's shape must match a sheet's this closely (a scanner's own rounding is far finer).
_PAPER_SHAPE_TOLERANCE = 0.01
# The longest side a page of unknown resolution is read at (a camera's 4032x3024 photo is
# shrunk to it): an A4 page at the working resolution, the largest page reading was tuned on.
MAX_UNKNOWN_SIDE = 1754
# A whole sheet (a form) finer than this many times the working resolution is shrunk to it:
# calibration forms at 200 dpi were read 2 points less exactly than at 150 (94.4% against 96.5%
# exact fields).  Other pages (cheques, whose layout was tuned at 200 dpi) from 1.5 times.
_SHEET_LIMIT = 1.2
# Resolutions that software writes when it does not know one (screen defaults): not a scan's.
_PLACEHOLDER_DPI = 96


def paper_dpi(shape: tuple[int, ...]) -> float | None:
    """The resolution of a page of ``shape`` (H, W) pixels if it is a whole sheet (:data:`PAPER_SIZES`), else None.

    Either way up; a page cropped to its content, a cheque or a photo has no
    such shape and stays unknown.
    """
    short, long = sorted(shape[:2])
    if short < 1:
        return None
    for width, height in PAPER_SIZES.values():
        if abs(long / short - height / width) <= _PAPER_SHAPE_TOLERANCE * height / width:
            dpi = long / height
            nearest = min(SCAN_DPIS, key=lambda d: abs(d - dpi))
            return float(nearest) if abs(nearest - dpi) <= 0.02 * nearest else dpi
    return None


def working_scale(dpi: float | None, shape: tuple[int, ...] | None = None) -> float:
    """The factor that brings a page of ``dpi`` to :data:`WORKING_DPI`.

    1 (read as it is) for pages up to 1.5 times it, or up to 1.2 times it
    for a whole sheet of paper (:func:`paper_dpi`: a form scanned at 200 dpi
    is read at 150, a cheque at 200 as it is).  A page whose file gives
    no resolution, or a screen default of 96 dpi or less, is taken at
    :func:`paper_dpi` of its ``shape`` when it is a whole sheet of paper (a
    2480x3508 PNG is an A4 page at 300 dpi); if it is not, and it is longer
    than :data:`MAX_UNKNOWN_SIDE`, it is shrunk to that (a camera's photo, a
    cheque scanned fine); else it is read as it is.
    """
    sheet = paper_dpi(shape) if shape is not None else None
    if dpi is None or dpi <= _PLACEHOLDER_DPI:
        if sheet is None:  # the resolution stays unknown
            longest = max(shape[:2]) if shape is not None else 0
            return MAX_UNKNOWN_SIDE / longest if longest > MAX_UNKNOWN_SIDE else 1.0
        dpi = sheet
    if dpi <= (_SHEET_LIMIT if sheet else 1.5) * WORKING_DPI:
        return 1.0
    return WORKING_DPI / dpi


_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_level(gray: np.ndarray, bands: int = 16, rows: int = 6) -> float:
    """Standard deviation of the pixel noise of a page (H, W) uint8, in gray levels.

    Immerkaer's estimator made robust for documents: a kernel that cancels
    flat and linear shading responds to noise with 6 times its standard
    deviation; the median of that response over the page (mostly paper) is
    taken instead of its mean, so that ink edges, a small share of the
    pixels, hardly move it.  ``bands`` strips of ``rows`` rows spread over the
    page stand for it (the whole of a page at 300 dpi would cost several ms).
    """
    h, w = gray.shape
    if h < rows or w < 3:
        return 0.0
    starts = np.linspace(0, h - rows, min(bands, h // rows)).astype(int)
    strips = np.concatenate([gray[y : y + rows] for y in starts])
    response = cv2.filter2D(strips, cv2.CV_16S, _LAPLACE, borderType=cv2.BORDER_REPLICATE)
    # Each strip's first and last rows see the next strip through the kernel: left out.
    inner = response.reshape(len(starts), rows, w)[:, 1:-1, 1:-1]
    # The median from a histogram of the whole-number responses (np.partition slows down
    # severalfold on clean paper, whose responses are nearly all 0).
    counts = np.bincount(np.abs(inner).ravel())
    median = int(np.searchsorted(np.cumsum(counts), (inner.size + 1) // 2))
    # The median absolute response of Gaussian noise is 0.6745 of its standard deviation.
    return median / 0.6745 / 6


# A page whose noise, at the resolution it is read at, is over this many gray levels is smoothed
# before anything else: on calibration forms with Gaussian noise of 15-25 levels added, the
# thresholds (Otsu's, and the 30 levels of a hairline's ridge) took noise for ink, and hairline
# rules and combs were "found" in printed text.  Scans as the samples draw them measure 0-6.4.
_NOISY = 8.0
# The smoothing: a bilateral filter over 5x5 pixels (spatial sigma 3) that averages pixels
# within this many times the noise of each other, so that noise is flattened and the edges of
# strokes and rules, far more than that apart, are not.
_EDGE_PRESERVING = 2.5


# A bilevel page is taken for dithered (a scanner's black-and-white mode drawing gray as dots)
# when at least this share of its pixels are lone ink pixels, with no ink above, below or beside
# them.  Bilevel scans made by a threshold measure 0.00001-0.00008 on the samples; dithered
# copies of them 0.02-0.2, or next to nothing where the paper was white.
_DITHERED = 0.001
# The dots are averaged back into gray (inverse halftoning) by a Gaussian blur of this sigma.
_DESCREEN_SIGMA = 1.0


def descreen(gray: np.ndarray) -> np.ndarray:
    """A dithered bilevel page (:data:`_DITHERED`) averaged back into gray; any other page as it is.

    Dithered, a tinted form's paper is a field of dots, which ink thresholds and line finders
    take for marks, and the soft edges of strokes are ragged.  Only pages of two levels (0 and
    255) are looked at, so a gray scan costs a histogram.
    """
    if gray.ndim != 2 or gray.shape[0] < 3 or gray.shape[1] < 3:
        return gray
    # Every seventh row first: a gray page is told at a seventh of the cost of looking at all of it.
    if cv2.countNonZero(cv2.inRange(gray[::7], 1, 254)) or cv2.countNonZero(cv2.inRange(gray, 1, 254)):
        return gray
    if lone_ink_share(gray) < _DITHERED:
        return gray
    return cv2.GaussianBlur(gray, (0, 0), _DESCREEN_SIGMA)


def lone_ink_share(bilevel: np.ndarray) -> float:
    """Share of the pixels of a bilevel page (0 ink, 255 paper) that are ink with no ink above,
    below or beside them (the page's border rows and columns left out)."""
    if bilevel.shape[0] < 3 or bilevel.shape[1] < 3:
        return 0.0
    ink = bilevel == 0
    centre = ink[1:-1, 1:-1]
    lone = centre & ~ink[:-2, 1:-1] & ~ink[2:, 1:-1] & ~ink[1:-1, :-2] & ~ink[1:-1, 2:]
    return float(np.count_nonzero(lone)) / centre.size


def smooth_noise(gray: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``gray`` (H, W) uint8 with its noise smoothed if it is noisy once shrunk by ``scale``, else ``gray`` itself.

    A bilateral filter keeps strokes and rules whole where a Gaussian blurs
    them into the paper: on calibration pages with noise of 15-25 gray levels
    added (forms, cheques, photos), it read up to 7 points more fields exactly
    than a Gaussian or a 3x3 median, and in two of ten comparisons 0.5-1.4
    points fewer (``docs/performance.md``).  It costs 15-45 ms a page, on noisy
    pages only; measuring the noise costs under 1 ms (:func:`noise_level`).
    """
    noise = noise_level(gray)
    # Shrinking by ``scale`` averages 1/scale^2 pixels into one: the noise falls by 1/scale.
    if noise * scale <= _NOISY:
        return gray
    return cv2.bilateralFilter(gray, 5, _EDGE_PRESERVING * noise, 3)


# A scan whose sharpest edges are blurred by more than this Gaussian sigma (pixels, at the
# resolution it is read at; :func:`blur_sigma`) is sharpened before it is binarised.  Scans as
# the samples draw them (blur up to 1.1) measure 0.44-1.25; calibration forms blurred by 1.5, 2
# and 2.5 measure 1.25-1.60, 1.41-1.84 and 1.61-2.21 (cheques blurred by 2: 1.56-1.91).
_BLURRED = 1.35
# The sharpening: an unsharp mask, the page plus this many times its difference from itself
# blurred by the sigma measured.  Chosen on calibration forms and cheques blurred by 1.5-2.5
# (exact fields; 1, 1.5, 2, 2.5, 3 and 3.5 tried, with the mask's blur 1-1.5 times the sigma).
_SHARPEN = 3.5


def blur_sigma(flat: np.ndarray, rows: int = 8, step: int = 48) -> float:
    """The Gaussian blur (sigma, pixels) of the sharpest edges of an illumination-flattened page.

    A step from paper (255) to ink of contrast C blurred by sigma has a steepest slope of
    C / (sigma sqrt(2 pi)); C is taken from the darkest ink (0.5th percentile) and the slope
    from the steepest 0.1% of the page's gradients (Sobel), which on a scan are the edges of
    its print.  Both are measured on bands of ``rows`` rows every ``step`` rows (a sixth of a
    page; the whole of it took 24 ms).
    """
    h, w = flat.shape
    if h < rows or w < 3:
        return 0.0
    bands = np.concatenate([flat[y : y + rows] for y in range(0, h - rows + 1, step)])
    gx = cv2.Sobel(bands, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(bands, cv2.CV_32F, 0, 1, ksize=3)
    # Each band's first and last rows see the next band through the kernel: left out.
    # Sobel's 3x3 weights sum to 8: in half gray levels a pixel, a slope is the magnitude / 4,
    # and the steepest of a sharp scan (under 100 levels a pixel) fits a byte.
    slopes = cv2.convertScaleAbs(cv2.magnitude(gx, gy), alpha=0.25)
    slopes = np.ascontiguousarray(slopes.reshape(-1, rows, w)[:, 1:-1, 1:-1]).reshape(-1, w - 2)
    counts = cv2.calcHist([slopes], [0], None, [256], [0, 256]).ravel()
    steepest = float(np.searchsorted(np.cumsum(counts), 0.999 * slopes.size)) / 2
    levels = cv2.calcHist([bands], [0], None, [256], [0, 256]).ravel()
    contrast = 255.0 - float(np.searchsorted(np.cumsum(levels), 0.005 * bands.size))
    if steepest <= 0 or contrast <= 0:
        return 0.0
    return contrast / (math.sqrt(2 * math.pi) * steepest)


def sharpen_blur(flat: np.ndarray) -> np.ndarray:
    """An illumination-flattened page blurred past :data:`_BLURRED` sharpened by an unsharp mask; else itself.

    Binarised as it is, a blurred scan's strokes swell and close: a bold 2 came out as an 8, a 7's
    short hook as a 9's loop, both read so at 0.99 and accepted.  Held-out forms blurred by 2
    read 76.8% exact fields with 4.3% of the accepted ones wrong (docs/performance.md).
    """
    sigma = blur_sigma(flat)
    if sigma <= _BLURRED:
        return flat
    soft = cv2.GaussianBlur(flat, (0, 0), sigma)
    return cv2.addWeighted(flat, 1 + _SHARPEN, soft, -_SHARPEN, 0)


def is_scan(dpi: float | None, shape: tuple[int, ...]) -> bool:
    """Whether a page of ``shape`` whose file states ``dpi`` is a scan: the file states a scanner's
    resolution (not a screen default of 96 dpi or less), or the page is a whole sheet of paper
    (:func:`paper_dpi`).  A camera's photo is neither."""
    return (dpi is not None and dpi > _PLACEHOLDER_DPI) or paper_dpi(shape) is not None


def normalize_illumination(gray: np.ndarray) -> np.ndarray:
    """Divide the page by its estimated paper brightness so that paper becomes ~255.

    The paper level is a morphological closing (which erases ink strokes
    narrower than the kernel) of a downscaled copy, smoothed and scaled back:
    shadows, gradients and tinted paper flatten out, ink keeps its contrast.
    """
    h, w = gray.shape
    factor = max(1, round(max(h, w) / 600))
    small_w, small_h = max(1, w // factor), max(1, h // factor)
    # INTER_AREA takes a fast path for a whole-number factor (about 4x faster on
    # a page): leave out the last few rows and columns that do not fill a block.
    small = cv2.resize(gray[: small_h * factor, : small_w * factor], (small_w, small_h), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    # No division by zero below.  NumPy, not cv2.max: OpenCV takes a 1x1 array for a scalar.
    paper = np.maximum(cv2.GaussianBlur(paper, (0, 0), 4), 1)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    # gray * 255 / paper, saturated to 0-255, in one vectorised OpenCV pass.
    return cv2.divide(gray, paper, scale=255.0)


# The lightest gray that binarisation may take for ink.  Faint scans (a light pen, pencil, a
# scanner set light) put Otsu's threshold at 210-230: held-out forms with their ink at 35% of its
# contrast read 77.1% exact fields under a cap of 200, 87.7% under 215 and 88.5% under 225.  The
# sample pages as drawn (Otsu 155-205) and noisy, dark and JPEG-25 copies read the same under 225.
_MAX_INK_LEVEL = 225


def binarize(flat: np.ndarray) -> np.ndarray:
    """Ink mask (255 ink) of an illumination-flattened page.

    Otsu's threshold, kept between 90 and :data:`_MAX_INK_LEVEL`: on a page
    that is nearly all paper Otsu can land in the paper noise, and light
    background tints and patterns (cheques) must stay paper.
    """
    otsu, _ = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = float(np.clip(otsu, 90, _MAX_INK_LEVEL))
    # Ink is flat < threshold; THRESH_BINARY_INV marks src <= t, so t = ceil(threshold) - 1.
    t = float(np.ceil(threshold) - 1)
    if t < float(flat.min()) <= threshold:
        # Nothing is darker than the threshold: a page of two levels (a bilevel scan made
        # lighter, a two-colour palette), where Otsu's threshold is the ink's own level.
        t = threshold
    _, ink = cv2.threshold(flat, t, 255, cv2.THRESH_BINARY_INV)
    return ink


# How much darker than the paper right beside it a mark a few pixels across must be to count
# as a printed line, however light it is overall.  A 1-pixel gray rule of a 300-dpi form is a
# ridge of 75-85 before the page is shrunk (about 45 after), while Otsu's threshold on the
# whole page leaves it out.  At 20, more of the calibration forms' fields were accepted wrong.
_RIDGE_CONTRAST = 30


def fine_lines(gray: np.ndarray, width: int = 4) -> np.ndarray:
    """Mask (255) of marks at most ``width`` px across and :data:`_RIDGE_CONTRAST` darker than the paper around them.

    A morphological black-hat (closing minus the page): hairline rules and
    boxes printed light or in a drop-out colour, which binarisation loses,
    for :func:`ocr.fields.line_masks` to find the long straight ones among
    them.  Gradual shading and shadow borders are no ridges.
    """
    size = (width + 1, width + 1)
    ridges = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, size))
    _, mask = cv2.threshold(ridges, _RIDGE_CONTRAST, 255, cv2.THRESH_BINARY)
    return mask


def _any(mask: np.ndarray) -> np.ndarray:
    """255 wherever ``mask`` (resampled from a 0/255 mask) is above 0."""
    return cv2.threshold(mask, 0, 255, cv2.THRESH_BINARY)[1]


def estimate_skew(
    ink: np.ndarray,
    max_angle: float = MAX_SKEW,
    fine: np.ndarray | None = None,
    max_segment_angle: float = MAX_SEGMENT_SKEW,
) -> float:
    """Skew of the page in degrees (positive: content rotated clockwise), 0 if unknown.

    Long straight segments (box borders, rules, text baselines) give the angle
    directly, up to ``max_segment_angle``; on a page whose ink has none, those of
    ``fine`` (its hairlines, :func:`fine_lines`) do; pages without any fall back
    to the projection-profile method, up to ``max_angle`` (each step of it turns
    the whole page).
    """
    small = _skew_scale(ink)
    angle = _angle_from_segments(small, max_segment_angle)
    if angle is None and fine is not None:
        angle = _angle_from_segments(_skew_scale(fine), max_segment_angle)
    if angle is None:
        angle = _angle_from_profile(small, max_angle)
    return float(angle)


def _skew_scale(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    factor = max(1, round(max(h, w) / 1000))
    # At least a pixel either way: a strip a few pixels across would shrink to nothing.
    small = cv2.resize(mask, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    return (small > 96).astype(np.uint8) * 255


def _angle_from_segments(ink: np.ndarray, max_angle: float) -> float | None:
    min_length = max(40, ink.shape[1] // 8)
    # The segments are only found here, at half this resolution (a 2x2 block
    # with any ink is ink): Hough's cost grows with the inked pixels and the
    # number of angles, so two-degree bins and a quarter of the pixels (8.7 ->
    # 3.3 ms a page on 40 benchmark pages).  Each of the longest segments'
    # angle is then measured from the ink along it at this resolution
    # (:func:`fit_segment_angles`), which is far finer than any bin or the
    # segment's end points.
    h, w = ink.shape
    if h < 2 or w < 2:
        return None
    coarse = cv2.resize(ink[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    coarse = (coarse > 0).astype(np.uint8) * 255
    half = min_length // 2
    segments = cv2.HoughLinesP(coarse, 1, np.pi / 90, threshold=half, minLineLength=half, maxLineGap=2)
    if segments is None:
        return None
    segments = np.asarray(segments).reshape(-1, 4) * 2
    lengths = np.abs(segments[:, 2] - segments[:, 0]) + np.abs(segments[:, 3] - segments[:, 1])
    angles, weights = fit_segment_angles(ink, segments[np.argsort(-lengths, kind="stable")[:_REFINED_SEGMENTS]])
    good = (weights > 0) & (np.abs(angles) <= max_angle)
    if not good.any():
        return None
    angles, weights = angles[good], weights[good].astype(np.float64)
    if weights.sum() < 3 * min_length:
        return None
    return weighted_median(angles, weights)


_REFINED_SEGMENTS = 30


def fit_segment_angle(ink: np.ndarray, segment: np.ndarray, reach: int = 3) -> tuple[float, int]:
    """Angle (degrees, clockwise-positive, vertical segments turned by 90) of a straight stroke, and its support.

    Along the segment ``(x1, y1, x2, y2)``, each column (each row for a
    near-vertical segment) within ``reach`` px of it gives the centre of its
    ink; a least-squares line through those centres gives the angle.  Columns
    with no ink or with more ink than a rule's width (a crossing stroke) are
    left out; the support is the number of columns used (0: no fit).
    """
    angles, support = fit_segment_angles(ink, np.asarray(segment).reshape(1, 4), reach)
    return float(angles[0]), int(support[0])


def fit_segment_angles(ink: np.ndarray, segments: np.ndarray, reach: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_segment_angle` of every segment (N, 4) at once: (N,) angles and (N,) supports.

    All the segments' columns are gathered in one array and the fits summed
    per segment, instead of a dozen NumPy calls for each of some 30 segments.
    """
    segments = np.asarray(segments, np.int64).reshape(-1, 4)
    count = len(segments)
    angles, support = np.zeros(count), np.zeros(count, np.int64)
    x1, y1, x2, y2 = segments.T
    vertical = np.abs(y2 - y1) > np.abs(x2 - x1)
    # Each segment in its own frame: "a" runs along it, "b" across, from its lower "a" end.
    a1, b1, a2, b2 = (
        np.where(vertical, y1, x1),
        np.where(vertical, x1, y1),
        np.where(vertical, y2, x2),
        np.where(vertical, x2, y2),
    )
    turn = a2 < a1
    a1, b1, a2, b2 = np.where(turn, a2, a1), np.where(turn, b2, b1), np.where(turn, a1, a2), np.where(turn, b1, b2)
    length = a2 - a1
    columns = np.where(length > 0, length + 1, 0)
    if not columns.any():
        return angles, support
    seg = np.repeat(np.arange(count), columns)
    step = np.arange(len(seg)) - np.repeat(np.cumsum(columns) - columns, columns)
    along = a1[seg] + step
    predicted = np.rint(b1[seg] + step * (b2 - b1)[seg] / length[seg]).astype(np.int64)
    across_size = np.where(vertical, ink.shape[1], ink.shape[0])[seg]
    rows = np.clip(predicted[:, None] + np.arange(-reach, reach + 1)[None, :], 0, across_size[:, None] - 1)
    turned = vertical[seg][:, None]
    inked = ink[np.where(turned, along[:, None], rows), np.where(turned, rows, along[:, None])] > 0
    ink_count = inked.sum(axis=1)
    usable = (ink_count > 0) & (ink_count <= reach + 1)
    support = np.bincount(seg[usable], minlength=count)
    centres = (rows * inked).sum(axis=1)[usable] / ink_count[usable]
    seg, along = seg[usable], along[usable].astype(np.float64)
    fitted = support >= 10
    n = np.maximum(support, 1)
    # The least-squares slope in closed form, about each segment's own means.
    x = along - (np.bincount(seg, along, minlength=count) / n)[seg]
    y = centres - (np.bincount(seg, centres, minlength=count) / n)[seg]
    spread = np.bincount(seg, x * x, minlength=count)
    slope = np.bincount(seg, x * y, minlength=count) / np.where(fitted, spread, 1.0)
    angle = np.degrees(np.arctan(slope))
    # A near-vertical stroke leaning clockwise runs towards smaller x as y grows.
    angles = np.where(fitted, np.where(vertical, -angle, angle), 0.0)
    return angles, np.where(fitted, support, 0)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _angle_from_profile(ink: np.ndarray, max_angle: float) -> float:
    """The rotation that makes text rows sharpest (largest variance of row sums)."""
    if ink.sum() == 0:
        return 0.0
    h, w = ink.shape
    best_angle, best_score = 0.0, -1.0
    for angle in np.arange(-max_angle, max_angle + 1e-9, 0.25):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rotated = cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_NEAREST)
        score = float(np.var(rotated.sum(axis=1, dtype=np.float64)))
        if score > best_score:
            best_angle, best_score = float(angle), score
    return best_angle
