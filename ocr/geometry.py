"""Boxes and field regions: the geometry every page-reading step passes along.

A box is ``(x, y, w, h)`` in pixels, x to the right and y down, as OpenCV's
``boundingRect`` returns it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]

FIELD_KINDS = ("comb", "box", "line")


@dataclass(frozen=True)
class FieldRegion:
    """Where a field is on a page, before its digits are read.

    ``bbox`` is the outer rectangle; for a comb, ``cells`` are the interiors of
    its boxes from left to right (one digit each).  ``ticks``: the boxes of the
    short printed strokes that divide the cells of an open comb (a baseline with
    ticks rising from it), which segmentation clears like walls.  ``on_rule``: a
    line of writing found standing on a printed rule (an answer written on a form's
    underline), not free writing.
    """

    kind: str
    bbox: Box
    cells: tuple[Box, ...] = field(default=())
    name: str | None = None
    ticks: tuple[Box, ...] = field(default=())
    on_rule: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field kind must be one of {FIELD_KINDS}, got {self.kind!r}")


def union_box(boxes) -> Box:
    """The smallest (x, y, w, h) holding every box of ``boxes`` (an iterable of (x, y, w, h), not empty)."""
    boxes = list(boxes)
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def pad_box(box: Box, margin: int, shape: tuple[int, ...]) -> Box:
    """``box`` (x, y, w, h) grown by ``margin`` pixels each way and cut to an image of ``shape`` (H, W)."""
    x, y, w, h = box
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(shape[1], x + w + margin), min(shape[0], y + h + margin)
    return (x0, y0, x1 - x0, y1 - y0)


def box_intersection(a: Box, b: Box) -> int:
    """Area (pixels) that two boxes (x, y, w, h) have in common."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, 0-1."""
    inter = box_intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def transform_box(box: Box, matrix: np.ndarray) -> Box:
    """Bounding box of ``box``'s corners mapped through a 2x3 affine or a 3x3 projective ``matrix``."""
    x, y, w, h = box
    rows = np.asarray(matrix, np.float64).tolist()
    (a, b, c), (d, e, f) = rows[:2]
    corners = ((x, y), (x + w, y), (x, y + h), (x + w, y + h))
    if len(rows) == 3:  # a homography: each corner divided by its own scale
        g, k, m = rows[2]
        scales = [g * px + k * py + m for px, py in corners]
        xs = [(a * px + b * py + c) / s for (px, py), s in zip(corners, scales, strict=True)]
        ys = [(d * px + e * py + f) / s for (px, py), s in zip(corners, scales, strict=True)]
    else:
        # Plain floats: a page maps a few hundred boxes, and NumPy's per-call cost is most of the work.
        xs = [a * px + b * py + c for px, py in corners]
        ys = [d * px + e * py + f for px, py in corners]
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    return x0, y0, math.ceil(max(xs)) - x0, math.ceil(max(ys)) - y0


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix, as a 2x3 matrix."""
    full = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


# (count, labels, stats, centroids) as OpenCV's connectedComponentsWithStats returns them.
Components = tuple[int, np.ndarray, np.ndarray, np.ndarray]


def label_components(mask: np.ndarray, compact: bool = False) -> Components:
    """8-connected components of ``mask`` (H, W) uint8: ``(count, labels, stats, centroids)``.

    The same results as ``cv2.connectedComponentsWithStats(mask, connectivity=8)``
    (labels included), through the Grana/BBDT algorithm.  On a 1240x1754 page
    with OpenCV 5.0 the two algorithms cost the same within a few percent
    (7.3 against 7.5 ms with two threads, 4.7 ms with one); nearly all of it is
    the statistics (0.9 ms without them), so callers label a page once and share it.

    ``compact``: labels as uint16 where fewer than 65,536 labels fit (else int32,
    as without it), for callers that only compare and index with them (not
    ``labels - 1``).  With OpenCV on two threads this costs a third: its
    parallel int32 labelling took 14.4 ms for the handwriting of a 1240x1754
    form page against 4.6 for uint16 (measured this round).  On one thread, as
    a worker runs, both take 4.4 ms.
    """
    if compact:
        try:
            return cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_16U, cv2.CCL_GRANA)
        except cv2.error:  # more components than uint16 labels can number
            pass
    return cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)


@dataclass(frozen=True)
class Outlines:
    """The connected components of a mask, found from their outer borders instead of a labelling.

    ``boxes`` (N, 4): each component's bounding box (x, y, w, h); ``seeds``
    (N, 2): one of its pixels (x, y), on its border.  For a sparse mask this
    costs a fraction of :func:`label_components`, whose statistics pass
    visits every pixel of the page (the horizontal strokes of 40 benchmark
    pages, 1240x1754, one thread: 15.3 ms a page against 1.2 in the same
    hour); a component's pixels and area are found only when asked for, by
    labelling its own box.
    """

    mask: np.ndarray
    boxes: np.ndarray
    seeds: np.ndarray

    def pixels(self, index: int) -> np.ndarray:
        """Bool (h, w) window of component ``index`` within its box."""
        x, y, w, h = (int(v) for v in self.boxes[index])
        _, labels = cv2.connectedComponents(self.mask[y : y + h, x : x + w], connectivity=8)
        sx, sy = (int(v) for v in self.seeds[index])
        return labels == labels[sy - y, sx - x]

    def area(self, index: int) -> int:
        """The number of pixels of component ``index``."""
        return int(np.count_nonzero(self.pixels(index)))


def outline_components(mask: np.ndarray) -> Outlines:
    """The 8-connected components of ``mask`` (H, W) uint8 as :class:`Outlines`.

    Each component has one outer border: in OpenCV's two-level hierarchy
    (``RETR_CCOMP``) borders without a parent, a component lying in another's
    hole included; the borders with a parent are holes.
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outer = [c for c, parent in zip(contours, hierarchy[0, :, 3] if contours else (), strict=True) if parent < 0]
    boxes = np.array([cv2.boundingRect(c) for c in outer], np.int64).reshape(-1, 4)
    seeds = np.array([c[0, 0] for c in outer], np.int64).reshape(-1, 2)
    return Outlines(mask, boxes, seeds)


def cut_to_ink(mask: np.ndarray) -> np.ndarray:
    """A mask (ink non-zero, some ink in it) cut to the box of its ink, as a segment's crop is."""
    ys, xs = np.nonzero(mask)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def stroke_lean(mask: np.ndarray) -> tuple[float, float]:
    """(lean, spread) of a mark's ink (255 ink): the angle of its long axis from the vertical in
    degrees, positive when its top lies to the right, and how wide its ink spreads across that axis
    against along it (near 0 for a straight stroke, 1 for a round blob)."""
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        return 0.0, 1.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    values, vectors = np.linalg.eigh(cov)
    along = vectors[:, 1] if vectors[1, 1] >= 0 else -vectors[:, 1]  # pointing down the page
    lean = float(np.degrees(np.arctan2(-along[0], along[1])))
    return lean, float(np.sqrt(max(values[0], 0.0) / max(values[1], 1e-9)))


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``flags`` is true."""
    padded = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
