"""Register a scan onto a form template, and draft templates from blank forms.

Registration matches the boxes found on the scan (see :mod:`ocr.fields`)
against the boxes the template expects (its box fields and every cell of its
combs).  A translation is voted for by all box pairs of similar size, then
refined to a similarity transform (shift, rotation, scale) by RANSAC on the
matched box centres.  The score is the share of template boxes found where
the transform puts them; a page scoring under ``MIN_SCORE`` is not read into
the template's fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.fields import Rect, find_fields, find_rects, find_rules, line_masks
from ocr.geometry import Box, FieldRegion, box_iou, transform_box
from ocr.template import Template, TemplateField

MIN_SCORE = 0.6
MAX_SHIFT = 80  # px, beyond the +-60 px the reader promises
MAX_ROTATION = 3.5  # degrees
MAX_SCALE_CHANGE = 0.06
# Leading shifts of the translation vote that are each refined and scored.
_SHIFT_CANDIDATES = 4
# Scales at which the translation is voted for, around the page-to-template size ratio.  Scaled
# by 4%, boxes 150 px apart move 6 px apart, and the pairs of a wide form no longer agree on one
# shift: the vote went to shifts a comb cell or a row out, and the page did not register (an
# application form scanned at 1.039, its cells found 3 px wider on each side with their lines:
# 11 of 35 boxes).  Turns need no such steps: the page is deskewed before it is registered.
_SCALE_STEPS = (1.0, 0.98, 1.02, 0.96, 1.04)


@dataclass(frozen=True)
class Registration:
    """matrix : 2x3 affine from template pixels to page pixels; score : 0-1."""

    matrix: np.ndarray
    score: float
    matched: int
    expected: int

    @property
    def ok(self) -> bool:
        return self.score >= MIN_SCORE


def expected_boxes(template: Template) -> list[tuple[str, int, Box]]:
    """(field name, cell index, box) for every box a template's fields draw on the page."""
    out = []
    for f in template.fields:
        x, y, w, h = f.bbox
        if f.kind == "comb":
            for i in range(f.cells):
                x0, x1 = x + round(i * w / f.cells), x + round((i + 1) * w / f.cells)
                out.append((f.name, i, (x0, y, x1 - x0, h)))
        elif f.kind == "box":
            out.append((f.name, 0, f.bbox))
    return out


def register(
    ink: np.ndarray, template: Template, masks: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[Registration, list[Rect]]:
    """Find the template-to-page transform for a cleaned page's ink mask (255 ink).

    ``masks``: the page's :func:`ocr.fields.line_masks`, when the caller has them already.
    """
    h_mask, v_mask = masks if masks is not None else line_masks(ink)
    rects = find_rects(find_rules(h_mask), v_mask)
    return register_rects(rects, template, (ink.shape[1], ink.shape[0])), rects


def register_rects(rects: list[Rect], template: Template, page_size: tuple[int, int]) -> Registration:
    """Pure geometry: the transform that puts the template's boxes onto ``rects``."""
    expected = [b for _, _, b in expected_boxes(template)]
    identity = np.float64([[1, 0, 0], [0, 1, 0]])
    if not expected or not rects:
        return Registration(identity, 0.0, 0, len(expected))
    # A scan at another resolution than the template: start from the size ratio.
    s0 = page_size[0] / template.size[0]
    if abs(s0 - 1) <= MAX_SCALE_CHANGE:
        s0 = 1.0
    t_centres = np.array([_centre(b) for b in expected])
    t_sizes = np.array([(b[2], b[3]) for b in expected], np.float64)
    d_centres = np.array([_centre(r.outer) for r in rects])
    d_sizes = np.array([(r.outer[2], r.outer[3]) for r in rects], np.float64)
    middle = np.array(template.size, np.float64) / 2
    best = Registration(identity, 0.0, 0, len(expected))
    # The vote's winner is not always right: a row of combs lines up as well shifted by a cell
    # where the scan is a little smaller than the template.  Each of the leading shifts at each
    # scale is refined and scored on all the boxes; the one that matches most wins (ties go to
    # the scale tried first, then to the vote's order).
    for step in _SCALE_STEPS:
        scale = s0 * step
        # Template pixels to page pixels, scaled about the template's middle (as a scanner does).
        offset = (s0 - scale) * middle
        for shift in _vote_translations(t_centres * scale + offset, t_sizes * scale, d_centres, d_sizes):
            start = np.float64([[scale, 0, offset[0] + shift[0]], [0, scale, offset[1] + shift[1]]])
            matrix = _refine(expected, rects, start, s0)
            matched = len(_match(expected, rects, matrix))
            if matched > best.matched:
                best = Registration(matrix, matched / len(expected), matched, len(expected))
        if best.matched == len(expected):
            break
    return best


def _refine(expected: list[Box], rects: list[Rect], matrix: np.ndarray, s0: float) -> np.ndarray:
    """A similarity transform fitted by RANSAC on the box centres ``matrix`` pairs up, three times over."""
    for _ in range(3):
        pairs = _match(expected, rects, matrix)
        if len(pairs) < 2:
            break
        src = np.float32([_centre(expected[i]) for i, _ in pairs])
        dst = np.float32([_centre(rects[j].outer) for _, j in pairs])
        refined, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=6)
        if refined is None or not _plausible(refined, s0):
            break
        matrix = refined.astype(np.float64)
    return matrix


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2] / 2, box[1] + box[3] / 2)


def _vote_translations(t_centres, t_sizes, d_centres, d_sizes, count: int = _SHIFT_CANDIDATES) -> list:
    """The shifts that line up the most template boxes with found boxes of similar size, best first.

    Each is the mean of a cluster of pairwise shifts agreeing within 6 px; clusters whose centre
    lies within 6 px of a better one's are the same shift and are skipped.
    """
    ratio_ok = (np.abs(d_sizes[None, :, 0] / t_sizes[:, None, 0] - 1) < 0.15) & (
        np.abs(d_sizes[None, :, 1] / t_sizes[:, None, 1] - 1) < 0.15
    )
    ti, di = np.nonzero(ratio_ok)
    if ti.size == 0:
        return []
    shifts = d_centres[di] - t_centres[ti]
    shifts = shifts[np.all(np.abs(shifts) <= MAX_SHIFT * max(1.0, t_sizes.mean() / 40), axis=1)]
    if len(shifts) == 0:
        return []
    close = np.all(np.abs(shifts[:, None, :] - shifts[None, :, :]) <= 6, axis=2)
    chosen: list[np.ndarray] = []
    for k in np.argsort(-close.sum(axis=1), kind="stable"):
        centre = shifts[close[k]].mean(axis=0)
        if all(np.any(np.abs(centre - c) > 6) for c in chosen):
            chosen.append(centre)
            if len(chosen) == count:
                break
    return [tuple(c) for c in chosen]


def _match(expected: list[Box], rects: list[Rect], matrix: np.ndarray) -> list[tuple[int, int]]:
    pairs = []
    for i, box in enumerate(expected):
        predicted = transform_box(box, matrix)
        scores = [box_iou(predicted, r.outer) for r in rects]
        j = int(np.argmax(scores))
        if scores[j] >= 0.5:
            pairs.append((i, j))
    return pairs


def _plausible(matrix: np.ndarray, s0: float) -> bool:
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
    return abs(scale / s0 - 1) <= MAX_SCALE_CHANGE and abs(angle) <= MAX_ROTATION


def template_regions(template: Template, registration: Registration, rects: list[Rect]) -> list[FieldRegion]:
    """The template's fields in page pixels, snapped to the boxes found on the page."""
    regions = []
    for f in template.fields:
        bbox = transform_box(f.bbox, registration.matrix)
        if f.kind == "line":
            regions.append(FieldRegion("line", bbox, (), f.name))
            continue
        cells = [
            _snap(transform_box(cell, registration.matrix), rects) for _, _, cell in expected_boxes(_only(template, f))
        ]
        regions.append(FieldRegion(f.kind, bbox, tuple(cells), f.name))
    return regions


def _only(template: Template, f: TemplateField) -> Template:
    return Template(template.name, template.size, (f,))


def _snap(predicted: Box, rects: list[Rect]) -> Box:
    """The interior of the found box matching ``predicted``, else ``predicted`` shrunk by a border."""
    best, best_iou = None, 0.5
    for r in rects:
        iou = box_iou(predicted, r.outer)
        if iou >= best_iou:
            best, best_iou = r, iou
    if best is not None:
        return best.inner
    x, y, w, h = predicted
    return (x + 3, y + 3, max(1, w - 6), max(1, h - 6))


def draft_template(
    ink: np.ndarray,
    name: str = "form",
    scale: float = 1.0,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
) -> Template:
    """A template with every comb and box found on a blank form, named field_1..N in reading order.

    ``scale``: how far the blank was shrunk to give ``ink`` (see
    :func:`ocr.cleanup.working_scale`); the template is in the blank's own pixels.
    ``masks``: the blank's line masks (:func:`ocr.fields.line_masks_with_hairlines`), if known.
    """

    def grown(values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(round(v / scale) for v in values)

    fields = []
    # Open combs are left out: registration matches a template's boxes, and they have none.
    found = (r for r in find_fields(ink, masks) if r.kind in ("comb", "box") and not r.ticks)
    for i, region in enumerate(found, start=1):
        cells = len(region.cells) if region.kind == "comb" else 0
        fields.append(TemplateField(f"field_{i}", region.kind, grown(region.bbox), cells))
    return Template(name=name, size=grown((ink.shape[1], ink.shape[0])), fields=tuple(fields))
