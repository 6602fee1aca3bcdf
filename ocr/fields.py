"""Find digit fields on a cleaned page without a template (auto mode).

* comb: a row of boxes, adjacent (sharing walls) or with small gaps, one digit
  each, becomes one field with its cells in order;
* box: a lone rectangle with a number written freely inside;
* line: on pages without boxes, each line of handwriting; on pages with boxes,
  handwriting written on a printed underline.

Boxes are found from the page's straight strokes: horizontal rules are paired
into bands, and a band becomes boxes where vertical rules run the full height
of the band at its ends.  Handwriting rarely draws a stroke that spans a box
from border to border, so it is not mistaken for a wall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ocr.errors import PageTooBusyError
from ocr.geometry import (
    Box,
    Components,
    FieldRegion,
    Outlines,
    box_intersection,
    box_iou,
    label_components,
    outline_components,
    pad_box,
    runs,
    stroke_lean,
    union_box,
)
from ocr.stats import median, percentile


@dataclass(frozen=True)
class Rule:
    """A straight horizontal rule: x0..x1 (exclusive) at row y, ``thickness`` px."""

    x0: int
    x1: int
    y: int
    thickness: int
    # A row of dots or dashes (:func:`dotted_rules`) rather than a solid line.
    dotted: bool = False

    @property
    def length(self) -> int:
        return self.x1 - self.x0


@dataclass(frozen=True)
class Rect:
    """A detected rectangle: outer box and interior box (inside its borders)."""

    outer: Box
    inner: Box


def find_fields(
    ink: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    h_outlines: Outlines | None = None,
    fine: np.ndarray | None = None,
    paper: np.ndarray | None = None,
    free_lines_only: bool = False,
) -> list[FieldRegion]:
    """All digit fields on a page, top to bottom then left to right.

    Parameters
    ----------
    ink : (H, W) uint8
        Ink mask, 255 ink (see :func:`ocr.cleanup.binarize`).
    masks : the page's :func:`line_masks`, when the caller has them already.
    h_outlines : the components of the horizontal mask, when the caller has them already.
    fine : the page's thin marks however light (:attr:`ocr.cleanup.CleanPage.fine`), when known:
        the dots of dotted rules (:func:`dotted_rules`) that binarisation loses.
    paper : the page's :func:`paper_blocks`, when the caller has them already.
    free_lines_only : look for lines of writing only, as on a page without boxes, whatever
        box-like shapes the page holds.
    """
    h_mask, v_mask = masks if masks is not None else line_masks(ink)
    if h_outlines is None:  # found once: rules and long lines both come from it
        h_outlines = outline_components(h_mask)
    # Ink without the ruled lines, computed once: three steps below start from it.
    handwriting = _handwriting(ink, h_mask, v_mask, h_outlines)
    # Labelled once: writing height, underlines and text lines use it (compact: only compared and indexed with).
    marks = label_components(handwriting, compact=True)
    if free_lines_only:
        return _in_reading_order(find_text_lines(handwriting, marks, []))
    rules = find_rules(h_mask, outlines=h_outlines)
    rects = find_rects(rules, v_mask)
    strokes = np.array(stroke_boxes(marks), np.int64).reshape(-1, 4)  # their boxes, for the next two steps
    rects = drop_rects_in_writing(rects, strokes)
    fields = group_rects(rects, *writing_height(strokes, [r.outer for r in rects]))
    # Every mark, ink or thin however light: the outlines of cells the box finder missed, and open combs.
    all_marks = ink if fine is None else cv2.bitwise_or(ink, fine)
    fields = complete_combs(fields, all_marks)
    # Everything inside any box, read or not (tick boxes, comment boxes, logos), is not a free line.
    used = [r.outer for r in rects] + [f.bbox for f in fields]
    if paper is None:  # for the open combs and dotted rules, which look only on paper
        paper = paper_blocks(ink)
    open_combs = find_open_combs(all_marks, rules, used, strokes, paper)
    fields += open_combs
    used += [f.bbox for f in open_combs]
    if fields:
        # On a page with boxes, digits written on a dotted or dashed rule are a field as on a solid one.
        # Given the marks already made (ink and thin marks together), with the paper blocks of the ink.
        dotted = [d for d in dotted_rules(all_marks, paper=paper) if not _along_a_rule(d, rules)]
        fields += find_underline_fields(marks, rules + dotted, used)
    else:
        fields = find_text_lines(handwriting, marks, used)
    return _in_reading_order(fields)


def _in_reading_order(fields: list[FieldRegion]) -> list[FieldRegion]:
    return sorted(fields, key=lambda f: (f.bbox[1] // 20, f.bbox[0]))


# Openings at least this long are split into a short line and a sparse one (:func:`open_along`).
_SPLIT_OPENING = 24


def line_masks(
    ink: np.ndarray, lengths: tuple[int, int] | None = None, bridge: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical straight strokes (255), by morphological opening.

    ``lengths``: the least length of a horizontal and of a vertical stroke (default: :func:`rule_lengths`);
    ``bridge``: close the small breaks in them.
    """
    long_h, long_v = lengths or rule_lengths(ink.shape)
    h_mask, v_mask = open_along(ink, long_h, horizontal=True), open_along(ink, long_v, horizontal=False)
    if not bridge:
        return h_mask, v_mask
    # Close the small breaks a scan or a thin pen leaves in printed rules.
    return _bridged(h_mask, (9, 1)), _bridged(v_mask, (1, 9))


def rule_lengths(shape: tuple[int, ...]) -> tuple[int, int]:
    """The least length of a horizontal and of a vertical ruled line on a page of ``shape`` (H, W)."""
    return max(20, shape[1] // 60), max(12, shape[0] // 120)


# Hairlines are looked for only where at most this share of the page around them (about 40 x 40
# pixels) is ink: on a photo, the grain of the table beside the sheet is ridges everywhere and
# gave boxes of noise, which made the page a form (and its lines of digits no fields).
_MAX_INK_AROUND_HAIRLINES = 0.3
# Nor within this share of the page's width or height from its edge: beside a photographed
# sheet lies the table, whose grain passes for paper where it shows as a narrow band.
_HAIRLINE_EDGE = 0.02
# A hairline must run this many times the length of a ruled line (:func:`line_masks`).
_HAIRLINE_STRETCH = 3.0
# Light thin marks (not ink) make rules and walls from this many rule lengths, where at most this
# share of the page around is such marks: the short sides of boxes printed apart in a pale colour,
# not the grain of a photographed table (all light marks; at a 12% guard most boxes were lost too).
_LIGHT_STRETCH = 1.0
_MAX_LIGHT_AROUND = 0.28


def line_masks_with_hairlines(
    ink: np.ndarray, fine: np.ndarray, paper: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`line_masks` of the ink, with the long straight hairlines of ``fine`` on paper added.

    ``fine``: the page's thin dark marks however light (:attr:`ocr.cleanup.CleanPage.fine`).
    Boxes and combs printed in 1-pixel gray lines, in a pale drop-out colour or on a
    shading are lost to the ink mask once a 300-dpi page is shrunk to the working
    resolution; these are their rules and walls.  Light marks (not ink) count from one rule
    length where few are around (:data:`_LIGHT_STRETCH`): the sides of boxes printed apart.
    ``paper``: the page's :func:`paper_blocks`, when known.
    """
    h, w = ink.shape
    if h < 8 or w < 8:
        return line_masks(ink)
    h_mask, v_mask = line_masks(ink, bridge=False)
    candidates = on_paper(ink, fine, paper)
    long_h, long_v = rule_lengths(ink.shape)
    lengths = (round(long_h * _HAIRLINE_STRETCH), round(long_v * _HAIRLINE_STRETCH))
    h_fine, v_fine = line_masks(candidates, lengths, bridge=False)
    h_fine = _light_only(h_fine, h_mask, ink, lengths[0])
    # Light marks only (not in the ink): the short sides of boxes printed apart in a light colour,
    # where few of them are around (the grain of a photographed table is light marks everywhere).
    light = cv2.bitwise_and(candidates, cv2.bitwise_not(ink))
    quiet = cv2.resize(paper_blocks(light, _MAX_LIGHT_AROUND), (w, h), interpolation=cv2.INTER_NEAREST)
    light = cv2.bitwise_and(light, quiet)
    short = (round(long_h * _LIGHT_STRETCH), round(long_v * _LIGHT_STRETCH))
    h_light, v_light = line_masks(light, short, bridge=False)
    # All bridged at once (:func:`line_masks`): where a light box's side meets the next side, the
    # corner is dark enough to be ink, and breaks the light line.
    h_mask = _bridged(cv2.bitwise_or(cv2.bitwise_or(h_mask, h_fine), h_light), (9, 1))
    v_mask = _bridged(cv2.bitwise_or(cv2.bitwise_or(v_mask, v_fine), v_light), (1, 9))
    return h_mask, v_mask


# A horizontal run of thin marks that the ink's own lines do not hold is no hairline where this
# share of it or more is ink and :data:`_MAX_SIDE_INK` of a band along one side of it
# (:data:`_SIDE_BAND` px off) is ink too: it runs across printed words.  On a page scanned at
# 200 dpi and shrunk to the working resolution, the soft edges of the print join its letters among
# the thin marks, and runs across the middle of words (0.38-0.70 of them ink, 0.25-0.39 of the
# band below) passed for rules: the words above them became fields of writing on a rule ("digit"
# read "11911").  Hairlines of boxes printed light are up to 0.48 ink where binarisation kept
# some of them, with no ink beside them.
_MAX_HAIRLINE_INK = 0.3
_SIDE_BAND = (2, 8)
_MAX_SIDE_INK = 0.2


def _light_only(fine_lines: np.ndarray, ink_lines: np.ndarray, ink: np.ndarray, length: int) -> np.ndarray:
    """Horizontal ``fine_lines`` less the runs they add to ``ink_lines`` that cross printed words
    (:data:`_MAX_HAIRLINE_INK`).

    Only runs of a hairline's ``length`` on their own count: shorter ones fill the gaps of lines the
    ink holds, and digits written on those lines put ink beside them.  Vertical runs are left as they
    are: a comb's wall, partly ink, has the digits of its cells beside it.
    """
    # Not labelled: the runs' outer borders give their boxes, and only the long ones are looked at.
    added = outline_components(cv2.bitwise_and(fine_lines, cv2.bitwise_not(ink_lines)))
    near, far = _SIDE_BAND
    out = fine_lines
    for i in np.flatnonzero(added.boxes[:, 2] >= length).tolist():
        x, y, w, h = (int(v) for v in added.boxes[i])
        run = added.pixels(i)
        if np.count_nonzero(ink[y : y + h, x : x + w][run]) < _MAX_HAIRLINE_INK * np.count_nonzero(run):
            continue
        sides = (ink[max(0, y - far) : max(0, y - near), x : x + w], ink[y + h + near : y + h + far, x : x + w])
        if any(side.size and (side > 0).mean() >= _MAX_SIDE_INK for side in sides):
            if out is fine_lines:
                out = fine_lines.copy()
            out[y : y + h, x : x + w][run] = 0
    return out


def open_along(mask: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """The opening of ``mask`` by a straight line of ``length`` pixels across (or down): the runs that long.

    The same as OpenCV's opening by a ``length`` x 1 rectangle, whose cost grows with the
    length; a long line is taken as a short one (r pixels) repeated every k pixels
    (k about the square root of the length, r between k and 2k), two passes of about
    a square root's cost each: half the time for the 63-pixel hairline search.
    """
    if length < _SPLIT_OPENING:
        size = (length, 1) if horizontal else (1, length)
        return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
    step = int(math.sqrt(length))
    repeats = length // step
    short = length - (repeats - 1) * step  # step <= short < 2 * step: the repeats overlap or touch
    sparse = np.zeros((1, (repeats - 1) * step + 1), np.uint8)
    sparse[0, ::step] = 1
    segment = np.ones((1, short), np.uint8)
    # Anchors that add up to the rectangle's (OpenCV's: half its length, rounded down).
    anchors = [(short // 2, 0), (length // 2 - short // 2, 0)]
    if not horizontal:
        sparse, segment = sparse.T.copy(), segment.T.copy()
        anchors = [(0, a) for a, _ in anchors]
    # Each pass sees the page padded as the one-pass opening sees it: ink beyond the border
    # while eroding, paper while dilating (otherwise runs at the border come out otherwise).
    pad = (0, 0, length, length) if horizontal else (length, length, 0, 0)
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, *pad, cv2.BORDER_CONSTANT, value=255)
    eroded = cv2.erode(cv2.erode(padded, segment, anchor=anchors[0]), sparse, anchor=anchors[1])
    eroded = cv2.copyMakeBorder(eroded[pad[0] : pad[0] + h, pad[2] : pad[2] + w], *pad, cv2.BORDER_CONSTANT, value=0)
    opened = cv2.dilate(cv2.dilate(eroded, sparse, anchor=anchors[1]), segment, anchor=anchors[0])
    return np.ascontiguousarray(opened[pad[0] : pad[0] + h, pad[2] : pad[2] + w])


def _bridged(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` closed along a line of ``size`` (width, height): the small breaks in its lines filled."""
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, size))


def on_paper(ink: np.ndarray, marks: np.ndarray, paper: np.ndarray | None = None) -> np.ndarray:
    """``marks`` (a 0/255 mask of the page of ``ink``) where the page around is paper and not near its edge.

    Paper: at most :data:`_MAX_INK_AROUND_HAIRLINES` of about 40 x 40 pixels around is ink
    (:func:`paper_blocks`, given as ``paper`` when known); the edge: :data:`_HAIRLINE_EDGE` of the
    page's width or height.
    """
    h, w = ink.shape
    paper = paper_blocks(ink) if paper is None else paper
    out = cv2.bitwise_and(marks, cv2.resize(paper, (w, h), interpolation=cv2.INTER_NEAREST))
    edge_y, edge_x = max(1, round(h * _HAIRLINE_EDGE)), max(1, round(w * _HAIRLINE_EDGE))
    out[:edge_y] = out[-edge_y:] = 0
    out[:, :edge_x] = out[:, -edge_x:] = 0
    return out


def _on_paper_points(paper: np.ndarray, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """For points (``xs``, ``ys`` int arrays) of a page of ``shape``: whether each lies on paper
    (in a block of ``paper``, its :func:`paper_blocks`) and :data:`_HAIRLINE_EDGE` or more from
    the page's border, as :func:`on_paper` takes pixels."""
    h, w = shape[:2]
    edge_y, edge_x = h * _HAIRLINE_EDGE, w * _HAIRLINE_EDGE
    inside = (xs >= edge_x) & (xs < w - edge_x) & (ys >= edge_y) & (ys < h - edge_y)
    rows = np.clip(ys // 8, 0, paper.shape[0] - 1)
    columns = np.clip(xs // 8, 0, paper.shape[1] - 1)
    return inside & (paper[rows, columns] > 0)


def paper_blocks(ink: np.ndarray, share: float = _MAX_INK_AROUND_HAIRLINES) -> np.ndarray:
    """255 for each 8 x 8 block of the page (H // 8, W // 8) around which at most ``share`` of
    the page is ink (5 x 5 blocks)."""
    h, w = ink.shape
    if h < 8 or w < 8:  # a sliver of a page: one block, taken for paper
        return np.full((max(1, h // 8), max(1, w // 8)), 255, np.uint8)
    # From a copy an eighth the size: a blur over the whole page costs more, and a whole-number
    # factor takes OpenCV's fast path.
    small = cv2.resize(ink[: h // 8 * 8, : w // 8 * 8], (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    return cv2.threshold(cv2.blur(small, (5, 5)), 255 * share, 255, cv2.THRESH_BINARY_INV)[1]


# A dot or dash of a dotted rule is at most this tall, and this many times a rule length wide
# (:func:`rule_lengths`; 6 x 21 pixels on a page at 150 dpi: a full stop, a printed dash).
_DOT_HEIGHT = 6
_DASH_WIDTH = 1.0
# A dotted rule: at least this many dots or dashes, of like size, each at most a rule length
# from the next, running on for at least three rule lengths.
_MIN_DOTS = 8
_DOT_STRETCH = 3.0
# The share of a rule's marks that must be of the size of its median mark (within 0.4-2.5 times
# the area of its box): the dots of a printed line are alike, noise and the specks of writing are not.
_ALIKE_DOTS = 0.7
# Its steps from one mark to the next: this share within _STEP_SLACK of the median step (or 2
# pixels); a printed row is evenly spaced, specks of a background pattern are not.
_EVEN_STEPS = 0.7
_STEP_SLACK = 0.25
# At most this many marks per mark of the row just above and below it (:func:`_alone`).
_DOTS_BESIDE = 0.25
# Pieces of a dotted rule on one row join across gaps of up to this many rule lengths: the
# dots that digits written on the rule touch belong to the digits.
_DOTS_REACH = 8


def dotted_rules(ink: np.ndarray, fine: np.ndarray | None = None, paper: np.ndarray | None = None) -> list[Rule]:
    """Horizontal rules printed as a row of dots or dashes on paper, as on a form's dotted lines.

    ``fine``: the page's thin marks however light (:attr:`ocr.cleanup.CleanPage.fine`), which
    keeps the dots that binarisation loses (a caller with the two together already passes
    them as ``ink``, ``fine`` None, and the ink's ``paper``).  Marks count where the page around them is paper
    and away from its edge (:func:`on_paper`'s rule, taken at each mark's centre: a mark cut
    by the limit of a dense title would be a dot).  ``paper``: the page's :func:`paper_blocks`, when known.
    """
    h, w = ink.shape
    if h < 16 or w < 16:
        return []
    marks = ink if fine is None else cv2.bitwise_or(ink, fine)
    contours, _ = cv2.findContours(marks, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) < _MIN_DOTS:
        return []
    boxes = np.array([cv2.boundingRect(c) for c in contours], np.int64)
    long_h, _ = rule_lengths(ink.shape)
    bx, by, bw, bh = boxes.T
    cx, cy = bx + bw // 2, by + bh // 2
    paper = paper_blocks(ink) if paper is None else paper
    small = (bh <= _DOT_HEIGHT) & (bw <= _DASH_WIDTH * long_h) & (bw * bh >= 2)
    small &= _on_paper_points(paper, cx, cy, (h, w))
    index = np.flatnonzero(small)
    if index.size < _MIN_DOTS:
        return []
    x0, x1, y, height = bx[index], (bx + bw)[index], cy[index], bh[index]
    centres = cx[index]
    areas = (bw * bh)[index]
    pieces = [
        _DotRow(int(x0[c].min()), int(x1[c].max()), float(y[c].mean()), areas[c], height[c], centres[c], x0[c], x1[c])
        for c in _dot_chains(x0, x1, y, long_h)
    ]
    rules = [p for p in pieces if p.is_rule(_DOT_STRETCH * long_h) and _alone(p, cx, cy)]
    return sorted(_run_on(rules, pieces, _DOTS_REACH * long_h), key=lambda r: (r.y, r.x0))


def _along_a_rule(dotted: Rule, rules: list[Rule]) -> bool:
    """Whether ``dotted`` lies along one of the solid ``rules`` for half its length or more (a
    printed rule that binarisation broke into dashes)."""
    return any(
        abs(rule.y - dotted.y) <= max(3, rule.thickness)
        and min(rule.x1, dotted.x1) - max(rule.x0, dotted.x0) >= 0.5 * dotted.length
        for rule in rules
    )


def _dot_chains(x0: np.ndarray, x1: np.ndarray, y: np.ndarray, reach: int) -> list[np.ndarray]:
    """Indices of the marks (left end ``x0``, right end ``x1``, centre row ``y``) that chain into a row:
    each within ``reach`` pixels of the next and within 2 rows of it."""
    parent = list(range(x0.size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(x0, kind="stable").tolist()
    lefts, rights, rows = x0.tolist(), x1.tolist(), y.tolist()
    window: list[int] = []
    for i in order:
        window = [j for j in window if rights[j] >= lefts[i] - reach]
        for j in window:
            if abs(rows[j] - rows[i]) <= 2:
                parent[root(j)] = root(i)
        window.append(i)
    roots = np.array([root(i) for i in range(x0.size)])
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def _alone(row: _DotRow, cx: np.ndarray, cy: np.ndarray) -> bool:
    """Whether few marks (centres ``cx``, ``cy``: all the page's) lie just above and below ``row``.

    A printed dotted line runs on paper; the specks of a cheque's background pattern
    chain into rows too, but with more of the same above and below them.
    """
    beside = (np.abs(cy - row.y) > _DOT_HEIGHT / 2 + 1) & (np.abs(cy - row.y) <= 2 * _DOT_HEIGHT)
    near = beside & (cx >= row.x0) & (cx < row.x1)
    return int(near.sum()) <= _DOTS_BESIDE * row.count


@dataclass(frozen=True)
class _DotRow:
    """A chain of small marks on one row (:func:`_dot_chains`): extent, centre row, areas, heights and centres."""

    x0: int
    x1: int
    y: float
    sizes: np.ndarray
    heights: np.ndarray
    centres: np.ndarray
    lefts: np.ndarray  # each mark's left and right end
    rights: np.ndarray

    @property
    def count(self) -> int:
        return int(self.centres.size)

    def is_rule(self, min_length: float) -> bool:
        """Enough marks, over enough length, alike in size and evenly spaced."""
        if self.count < _MIN_DOTS or self.x1 - self.x0 < min_length:
            return False
        typical = median(self.sizes.tolist())
        if ((self.sizes >= 0.4 * typical) & (self.sizes <= 2.5 * typical)).mean() < _ALIKE_DOTS:
            return False
        # The steps from one mark to the next, leaving out the gaps where digits took the dots in;
        # or the gaps between marks, where neighbouring dots ran together in pairs or threes
        # (a blurred or scaled print): their steps vary then, the paper between them does not.
        order = np.argsort(self.centres, kind="stable")
        steps = np.diff(self.centres[order]).astype(np.float64)
        gaps = (self.lefts[order][1:] - self.rights[order][:-1]).astype(np.float64)
        return _even(steps) or _even(gaps)


def _even(distances: np.ndarray) -> bool:
    """Whether :data:`_EVEN_STEPS` of ``distances`` or more are within :data:`_STEP_SLACK` of their median (or 2 px)."""
    typical = median(distances.tolist())
    if typical <= 0:
        return False
    return bool((np.abs(distances - typical) <= max(2.0, _STEP_SLACK * typical)).mean() >= _EVEN_STEPS)


def _run_on(rules: list[_DotRow], pieces: list[_DotRow], reach: float) -> list[Rule]:
    """Each dotted rule run on over the other pieces on its row (within 2 pixels) less than ``reach`` apart.

    Digits written on a dotted rule take in the dots they touch, which cuts the rule into
    pieces; the pieces beside a rule are of it."""
    out = []
    for rule in rules:
        x0, x1 = rule.x0, rule.x1
        grown = True
        while grown:
            grown = False
            for p in pieces:
                if abs(p.y - rule.y) <= 2 and (x0 - reach <= p.x1 < x0 or x1 < p.x0 <= x1 + reach):
                    x0, x1, grown = min(x0, p.x0), max(x1, p.x1), True
        thickness = max(1, round(median(rule.heights.tolist())))
        out.append(Rule(x0, x1, round(rule.y), thickness, dotted=True))
    # A rule run on over another is one rule.
    unique: list[Rule] = []
    for r in sorted(out, key=lambda r: (r.x0, r.y)):
        if not any(abs(u.y - r.y) <= 2 and u.x0 <= r.x0 and r.x1 <= u.x1 for u in unique):
            unique.append(r)
    return unique


def rules_run_on(region: FieldRegion, h_mask: np.ndarray) -> bool:
    """Whether the rules along a comb's top and bottom run on past its first or last cell by a cell or more.

    Such a comb was found in part: the walls of its other cells were lost (a faint or broken
    print), and its digits there were not read.
    """
    if region.kind != "comb" or not region.cells:
        return False
    x, y, w, h = region.bbox
    reach = max(c[2] for c in region.cells)

    def ruled(x0: int, x1: int) -> bool:
        x0, x1 = max(0, x0), min(h_mask.shape[1], x1)
        return (
            x1 - x0 >= reach
            and _ruled_share(h_mask, (y - 2, y + 4), (x0, x1)) == 1.0
            and _ruled_share(h_mask, (y + h - 4, y + h + 2), (x0, x1)) == 1.0
        )

    return ruled(x + w, x + w + reach) or ruled(x - reach, x)


def between_rules(region: FieldRegion, h_mask: np.ndarray) -> bool:
    """Whether a line of digits has a rule right above it as well as below it, along all its width.

    Digits ruled in above and below are in a box or comb whose walls were not found (a
    faint print, an open comb): read as a free line, its cells' order and count are unknown.
    """
    if region.kind != "line":
        return False
    x, y, w, h = region.bbox
    columns = (x, x + w)
    above = _ruled_share(h_mask, (y - h // 2, y + h // 4), columns)
    below = _ruled_share(h_mask, (y + 3 * h // 4, y + h + h // 2), columns)
    return above >= 0.9 and below >= 0.9


def _ruled_share(h_mask: np.ndarray, rows: tuple[int, int], columns: tuple[int, int]) -> float:
    """The share of ``columns`` (x0, x1) with a rule somewhere in ``rows`` (y0, y1), both clipped to the page."""
    band = h_mask[max(0, rows[0]) : max(0, rows[1]), max(0, columns[0]) : max(0, columns[1])]
    return float(band.any(axis=0).mean()) if band.size else 0.0


# Least total length (px) of long vertical rules for a page to be judged lying on its side.
_SIDEWAYS_MIN_RULES = 2000


def looks_sideways(h_mask: np.ndarray, v_mask: np.ndarray, h_outlines: Outlines | None = None) -> bool:
    """Whether a ruled page lies on its side: far more long vertical rules than horizontal ones.

    Forms and cheques are ruled across (box tops and bottoms, the lines of a
    cheque); their walls are short.  Lengths of the strokes at least an eighth
    of the page (100 px or more) long are summed each way.  On the calibration
    pages (60 forms, 80 cheques) the vertical length was under half the
    horizontal on every page as drawn and over twice it, and over 4,500 px,
    on every page turned by 90 degrees (a cheque drawn without its frame has
    some 2,500 px of rules); two of 80 photos, which have no rules but the
    paper's edges, pass for sideways at 1,000 px, none at 2,000.
    ``h_outlines``: the components of ``h_mask``, when the caller has them.
    """
    height, width = h_mask.shape
    across = (outline_components(h_mask) if h_outlines is None else h_outlines).boxes
    down = outline_components(v_mask).boxes
    horizontal = int(across[across[:, 2] >= max(100, width // 8), 2].sum())
    vertical = int(down[down[:, 3] >= max(100, height // 8), 3].sum())
    return vertical >= max(_SIDEWAYS_MIN_RULES, 2 * horizontal)


# Free writing on its side (:func:`writing_runs_down`): at least this share of the marks of a
# digit's size have their nearest such mark above or below them rather than beside them, of at
# least this many marks of at least this many pixels.  Calibration photos (seeds 97-100, 200
# pages) as drawn: at most 0.62 (a page's median: 0); turned a quarter either way (150 pages):
# at least 0.37, and 1.0 on more than half.
_COLUMN_SHARE = 0.75
_MIN_COLUMN_MARKS = 6
_MIN_COLUMN_MARK = 12


def digit_sized_marks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The marks of a page's ink about a digit's size: within half and twice the median size (the
    larger of width and height) of those of :data:`_MIN_COLUMN_MARK` pixels or more.

    Returns the page's component labels, stats and centroids (:func:`ocr.geometry.label_components`)
    and the labels of those marks (:data:`Marks`: :func:`writing_runs_down` and
    :func:`ocr.orientation.marks_lie_on_their_side` both take them).
    """
    count, labels, stats, centroids = label_components(ink)
    size = np.maximum(stats[:count, cv2.CC_STAT_WIDTH], stats[:count, cv2.CC_STAT_HEIGHT])
    candidates = size >= _MIN_COLUMN_MARK
    candidates[0] = False  # the background
    if not candidates.any():
        return labels, stats, centroids, np.zeros(0, np.int64)
    typical = _typical_mark_size(size, stats[:count, cv2.CC_STAT_AREA], candidates, min(ink.shape[:2]))
    return labels, stats, centroids, np.flatnonzero(candidates & (size >= 0.5 * typical) & (size <= 2 * typical))


# Marks larger than this share of the page's short side (a table's edge, a shadow) have no say in
# the typical size of its writing.
_MAX_MARK_SHARE = 0.25


def _typical_mark_size(size: np.ndarray, area: np.ndarray, candidates: np.ndarray, short_side: int) -> float:
    """The size (larger of width and height) of the mark holding the middle pixel of the candidates' ink,
    the candidates sorted by size.

    Weighed by their ink, the marks' sizes tell the writing's: a photo's paper grain breaks into many
    small specks, and on 5 of the 200 dev photos they outnumbered the digits, so that the bare median
    size (12-23 px against digits of 60-90) chose specks as the page's digits, and those photos,
    lying on their side, were not turned back.
    """
    kept = candidates & (size <= _MAX_MARK_SHARE * short_side)
    if not kept.any():
        return float(np.median(size[candidates]))
    sizes, ink = size[kept], area[kept]
    order = np.argsort(sizes, kind="stable")
    cumulative = np.cumsum(ink[order])
    return float(sizes[order][int(np.searchsorted(cumulative, cumulative[-1] / 2))])


Marks = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def writing_runs_down(ink: np.ndarray, marks: Marks | None = None) -> bool:
    """Whether the writing of a page without boxes runs down it in columns rather than across it in
    lines: a photo of digits on paper lying on its side.

    The marks of about a digit's size (within half and twice the median of those of
    :data:`_MIN_COLUMN_MARK` pixels or more) are each paired with the nearest other; in lines of
    digits that is the next digit beside it, on a page on its side the one above or below.
    """
    from scipy.spatial import cKDTree

    _, _, centroids, chosen = digit_sized_marks(ink) if marks is None else marks
    if len(chosen) < _MIN_COLUMN_MARKS:
        return False
    centres = centroids[chosen]
    _, nearest = cKDTree(centres).query(centres, k=2)
    step = centres[nearest[:, 1]] - centres
    return float(np.mean(np.abs(step[:, 1]) > np.abs(step[:, 0]))) >= _COLUMN_SHARE


def find_rules(h_mask: np.ndarray, min_length: int = 24, outlines: Outlines | None = None) -> list[Rule]:
    """Horizontal rules as segments, from the horizontal-stroke mask (``outlines``: its components, if known)."""
    outlines = outline_components(h_mask) if outlines is None else outlines
    rules = []
    for i, (x, y, w, h) in enumerate(outlines.boxes.tolist()):
        # Printed rules are long for their thickness; pen strokes are short and thick.
        if w < min_length or h > max(12, w // 4):
            continue
        thickness = max(1, round(outlines.area(i) / w))  # only the flat, long ones are counted
        if w >= 8 * thickness:
            rules.append(Rule(x, x + w, y + h // 2, thickness))
    return sorted(rules, key=lambda r: (r.y, r.x0, r.x1, r.thickness))


def find_rects(rules: list[Rule], v_mask: np.ndarray, min_height: int = 18, max_height: int = 260) -> list[Rect]:
    """Rectangles bounded by two rules and vertical walls that span the band between them."""
    rects: list[Rect] = []
    claimed: set[tuple[int, int, int]] = set()
    # Running sums of vertical ink: any band's coverage per column is then two
    # row differences, not a pass over the band.
    _, flags = cv2.threshold(v_mask, 0, 1, cv2.THRESH_BINARY)
    sums = cv2.integral(flags)
    for i, j in closed_bands(rules, sums, min_height, max_height):
        top, bottom = rules[i], rules[j]
        gap = bottom.y - top.y
        walls = find_walls(sums, max(top.x0, bottom.x0), min(top.x1, bottom.x1), top, bottom)
        if len(walls) < 2:
            continue
        widths = [right[0] - left[1] for left, right in zip(walls[:-1], walls[1:], strict=False)]
        typical = percentile(widths, 75)
        for (left, right), width in zip(zip(walls[:-1], walls[1:], strict=False), widths, strict=True):
            key = (left[0] // 4, top.y // 4, right[1] // 4)
            # A narrow slot between two boxes of a row of separate boxes is no box.
            if key in claimed or width < 6 or (len(widths) >= 3 and width < 0.45 * typical):
                continue
            claimed.add(key)
            outer = (
                left[0],
                top.y - top.thickness // 2,
                right[1] - left[0],
                gap + (top.thickness + bottom.thickness) // 2,
            )
            inner_y0 = top.y + (top.thickness + 1) // 2 + 1
            inner_y1 = bottom.y - (bottom.thickness + 1) // 2
            inner = (left[1] + 1, inner_y0, right[0] - left[1] - 1, inner_y1 - inner_y0)
            if inner[2] > 4 and inner[3] > 4:
                rects.append(Rect(outer, inner))
    if len(rects) > MAX_RECTS:
        raise PageTooBusyError(
            f"the page holds {len(rects)} box-like shapes, over the {MAX_RECTS} a form is read with "
            "(graph paper, a halftone screen or noise)"
        )
    return _drop_nested(rects)


# The most box-like shapes a page may hold.  Boxes are compared pair by pair, in arrays of
# about 150 bytes a pair (a dithered fax once made 36,460, and asked for 40 GiB); a form has
# some hundreds (the most on the sample and benchmark pages: see the test).
MAX_RECTS = 1000


def closed_bands(rules: list[Rule], sums: np.ndarray, min_height: int, max_height: int) -> list[tuple[int, int]]:
    """Index pairs (top, bottom) of ``rules`` (sorted by y) that may bound a row of boxes, in loop order.

    A pair qualifies when the rules are ``min_height`` to ``max_height``
    apart, overlap by at least 0.6 of ``min_height``, and vertical ink covers
    the band between them near both ends of the overlap: a box's rules end at
    its outer walls, and strokes of handwriting that happen to look like two
    rules and a wall do not close like that.  Made for every pair of the page
    at once (a page has some 150 such pairs, nearly all of them no box), before
    :func:`find_walls` works out the walls of the few left.  ``sums``: as for
    :func:`find_walls`.
    """
    if len(rules) < 2:
        return []
    y, x0, x1, thick = (
        np.array(v, np.int64) for v in zip(*((r.y, r.x0, r.x1, r.thickness) for r in rules), strict=True)
    )
    i, j = np.triu_indices(len(rules), 1)
    gap = y[j] - y[i]
    lo_x, hi_x = np.maximum(x0[i], x0[j]), np.minimum(x1[i], x1[j])
    keep = (gap >= min_height) & (gap <= max_height) & (hi_x - lo_x >= min_height * 0.6)
    band_top, band_bottom = y[i] + thick[i], y[j] - thick[j]
    keep &= band_bottom - band_top >= 4
    i, j, lo_x, hi_x = i[keep], j[keep], lo_x[keep], hi_x[keep]
    if not len(i):
        return []
    height, width = sums.shape[0] - 1, sums.shape[1] - 1
    y0, y1 = np.minimum(band_top[keep], height), np.minimum(band_bottom[keep], height)
    need = 0.85 * (y1 - y0)
    tolerance = np.maximum(6, 2 * np.maximum(thick[i], thick[j]))
    start, stop = np.maximum(0, lo_x - 3), np.minimum(width, hi_x + 3)
    closed = np.ones(len(i), bool)
    for lo, hi in ((start, np.minimum(stop, lo_x + tolerance + 1)), (np.maximum(start, hi_x - tolerance - 1), stop)):
        # Column c of the window is covered when the band holds ``need`` ink pixels in it.
        columns = lo[:, None] + np.arange(max(1, int((hi - lo).max())))[None, :]
        inside = columns < hi[:, None]
        columns = np.minimum(columns, width - 1)
        ink = (sums[y1[:, None], columns + 1] - sums[y0[:, None], columns + 1]) - (
            sums[y1[:, None], columns] - sums[y0[:, None], columns]
        )
        closed &= (inside & (ink >= need[:, None])).any(axis=1)
    return list(zip(i[closed].tolist(), j[closed].tolist(), strict=True))


def find_walls(sums: np.ndarray, x0: int, x1: int, top: Rule, bottom: Rule) -> list[tuple[int, int]]:
    """Column runs [start, end) in x0..x1 where vertical ink covers the band between two rules.

    ``sums`` is ``cv2.integral`` of the vertical-stroke mask as 0/1 (shape (H + 1, W + 1)).
    Only for a band that :func:`closed_bands` picked (at least 4 rows high,
    closed at both ends): those tests are made there, for every pair of rules
    of the page at once, and not again here.
    """
    y0, y1 = top.y + top.thickness, bottom.y - bottom.thickness
    pad = 3
    start, stop = max(0, x0 - pad), min(sums.shape[1] - 1, x1 + pad)
    y0, y1 = min(y0, sums.shape[0] - 1), min(y1, sums.shape[0] - 1)
    need = 0.85 * (y1 - y0)
    band = sums[y1, start : stop + 1] - sums[y0, start : stop + 1]  # ink above y1 minus above y0, cumulative in x
    covered = np.diff(band) >= need
    walls = [(a + start, b + start) for a, b in runs(covered)]
    return drop_false_walls(walls)


# The first or last inner "wall" of a comb, at least this many times as thick as the walls usually
# are, with the comb's only cell under this share of the typical width between it and the outer
# wall, is a pen stroke written against that wall: a bold 1 beside a comb's left wall (7 px against
# walls of 4-5) became the wall, its 9-pixel sliver of a cell was dropped, and "12" read "2",
# accepted (dev form, seed 7002).  The two cells it parts make up to this many typical cells.
_BOLD_STROKE = 1.3
# Up to this many cells, a comb's typical cell is its widest: a 2 in the second of two cells,
# its stroke taken for a wall, made cells of 46, 24 and 17 px, whose upper quartile (35 px) was
# too narrow for the two false cells to make one; the "1" cell was lost and "12" read "2".
_FEW_CELLS = 3
_SLIVER = 0.35
_BOLD_STROKE_JOINED = 1.5


def drop_false_walls(walls: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Remove inner "walls" that cut one box in two, such as a tall 1 written from border to border.

    A wall may go when the two cells beside it together make about one cell
    (the typical cell: the upper quartile of the widths, the widest of up to
    :data:`_FEW_CELLS`) and either both are under 0.7 of the typical cell width or the wall is
    under half as thick as the walls usually are (a pen stroke among printed
    walls; written off-centre, a 1 leaves one wide part of its box).  In a row
    of separate boxes the narrow slot between two boxes passes the first test
    too, beside the wall of a box holding a 1: of the walls that may go, the
    thinnest goes first, then the one whose removal leaves a cell closest to
    the typical width.
    """
    walls = list(walls)
    while len(walls) > 2:
        cells = [walls[i + 1][0] - walls[i][1] for i in range(len(walls) - 1)]
        # False walls only make cells narrower: of a short comb's few cells, the widest is its cell.
        typical = max(cells) if len(cells) <= _FEW_CELLS else percentile(cells, 75)
        usual_thickness = median([end - start for start, end in walls])
        slivers = sum(cell < _SLIVER * typical for cell in cells)
        candidates = []
        for i in range(1, len(walls) - 1):
            left, right = cells[i - 1], cells[i]
            joined = walls[i + 1][0] - walls[i - 1][1]
            thickness = walls[i][1] - walls[i][0]
            narrow = left < 0.7 * typical and right < 0.7 * typical
            if joined <= 1.25 * typical and (narrow or thickness <= 0.5 * usual_thickness):
                candidates.append((thickness, abs(joined - typical), i))
            elif (
                slivers == 1
                and ((i == 1 and left < _SLIVER * typical) or (i == len(walls) - 2 and right < _SLIVER * typical))
                and thickness >= _BOLD_STROKE * usual_thickness
                and joined <= _BOLD_STROKE_JOINED * typical
            ):
                # A bold 1 written against the comb's first or last wall: a sliver of a cell beside it.
                candidates.append((thickness, abs(joined - typical), i))
        if not candidates:
            return walls
        del walls[min(candidates)[2]]
    return walls


def _drop_nested(rects: list[Rect]) -> list[Rect]:
    """Keep the innermost of rectangles that contain others (a box drawn around a comb, a frame).

    A rectangle inside a comb cell, or a lone one well under the height of the
    box holding it, is handwriting (a 0 or the loop of a 9 drawn square), not
    a box: it goes, and the box it sits in stays.
    """
    if not rects:
        return []
    outer = np.array([r.outer for r in rects], np.int64)
    inner_h = np.array([r.inner[3] for r in rects], np.int64)
    holds = contains_boxes(outer, outer, 2)  # [r, o]: r holds o
    np.fill_diagonal(holds, False)
    cell = comb_neighbours(outer).any(axis=1)
    # o is writing when a comb cell holds it, or when it is no cell and well under the height of a box holding it.
    writing = (holds & (cell[:, None] | (~cell[None, :] & (outer[None, :, 3] < 0.6 * inner_h[:, None])))).any(axis=0)
    kept = np.flatnonzero(~writing)
    area = outer[kept, 2] * outer[kept, 3]
    holds_smaller = (holds[np.ix_(kept, kept)] & (area[None, :] < 0.8 * area[:, None])).any(axis=1)
    return [rects[i] for i in kept[~holds_smaller].tolist()]


def drop_rects_in_writing(rects: list[Rect], strokes: np.ndarray) -> list[Rect]:
    """No rectangles when every one of them lies inside a much taller mark of handwriting.

    Closed loops of digits (a 0, a 4, a 9 drawn squarely) can hold a "box" between their
    strokes, and the mark they belong to is far taller than that box.  On a photo of digits
    such boxes would make the page a form, and its lines of digits would not be looked for.
    A printed box's walls are a mark of their own or are taken out as ruled lines, but a
    sloppy digit overflowing a small box can join its walls into a taller mark too: so the
    boxes go only when all of them look like this, never some boxes of a form.
    ``strokes`` (N, 4): the :func:`stroke_boxes` of the page's ink without ruled lines.
    """
    if not rects:
        return rects
    outer = np.array([r.outer for r in rects], np.int64).reshape(-1, 4)
    held = contains_boxes(strokes, outer, 2) & (strokes[:, None, 3] >= 1.5 * outer[None, :, 3])
    return [] if held.any(axis=0).all() else rects


def contains_boxes(outer: np.ndarray, inner: np.ndarray, slack: int = 0) -> np.ndarray:
    """(N, M) bool: whether box ``inner[m]`` lies within ``outer[n]`` (give or take ``slack`` pixels).

    Boxes are (x, y, w, h) rows of (N, 4) and (M, 4) integer arrays.
    """
    o, i = np.asarray(outer, np.int64)[:, None, :], np.asarray(inner, np.int64)[None, :, :]
    return (
        (i[..., 0] >= o[..., 0] - slack)
        & (i[..., 1] >= o[..., 1] - slack)
        & (i[..., 0] + i[..., 2] <= o[..., 0] + o[..., 2] + slack)
        & (i[..., 1] + i[..., 3] <= o[..., 1] + o[..., 3] + slack)
    )


def comb_neighbours(boxes: np.ndarray) -> np.ndarray:
    """(N, N) bool, symmetric: whether two boxes (x, y, w, h rows) sit side by side as cells of one comb.

    They share top and bottom (within a few pixels), have similar widths and
    follow each other with a gap under half a box; adjacent boxes share a wall,
    so their outer boxes may overlap by its thickness.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    a, c = b[:, None, :], b[None, :, :]
    # Each pair as (left, right); a box is never its own neighbour (nor one at the same x).
    left = np.where((a[..., 0] <= c[..., 0])[..., None], a, c)
    right = np.where((a[..., 0] <= c[..., 0])[..., None], c, a)
    lx, ly, lw, lh = (left[..., k] for k in range(4))
    x, y, w, h = (right[..., k] for k in range(4))
    tolerance = np.maximum(4, 0.12 * lh)
    same_row = (np.abs(y - ly) <= tolerance) & (np.abs(h - lh) <= tolerance)
    ratio = w / lw
    similar = (ratio >= 0.7) & (ratio <= 1.4) & (np.maximum(w, lw) <= 2.2 * h)
    gap = x - (lx + lw)
    close = (-0.25 * lw <= gap) & (gap <= 0.5 * lw)
    return same_row & similar & close


# Least height of a comb's boxes against the typical height of the page's marks outside boxes
# (print and free writing).  On calibration forms and cheques (seeds 91, 92) and 240 pages of
# unseen layouts, every comb's boxes stood 1.5 times that or more (inner heights); the two 0s of
# "450.00" printed in OpenCV's Hershey duplex face, a comb on a page of print, 0.73.
_MIN_COMB_HEIGHT = 0.8
# ... measured on this many marks or more: a few marks outside boxes (a digit run through a comb
# and out of it, merged with the comb's borders into one tall mark) say nothing of the page's print.
_MIN_PRINT_MARKS = 8


def group_rects(rects: list[Rect], writing: float | None = None, marks: int = 0) -> list[FieldRegion]:
    """Rows of similar boxes become combs; lone boxes stay boxes.

    Boxes join a comb when they share top and bottom (within a few pixels),
    have similar widths and sit side by side with a gap under half a box.
    ``writing`` is the typical height (pixels) of the page's marks outside
    boxes (:func:`writing_height`), measured on ``marks`` of them; a lone box
    cannot be much smaller, nor, where :data:`_MIN_PRINT_MARKS` or more were
    measured (a page of print), a comb's boxes (:data:`_MIN_COMB_HEIGHT`).
    """
    rects = sorted(rects, key=lambda r: (r.outer[1], r.outer[0]))
    order = sorted(range(len(rects)), key=lambda k: rects[k].outer[0])
    neighbours = comb_neighbours(np.array([r.outer for r in rects], np.int64).reshape(-1, 4))
    groups: list[list[int]] = []
    for k in order:
        for g in groups:
            if neighbours[g[-1], k]:
                g.append(k)
                break
        else:
            groups.append([k])
    rect_groups = [[rects[k] for k in g] for g in groups]
    # A row of boxes smaller than the page's print is no comb: the rounded-square 0s of a
    # printed "450.00" side by side make one.
    rect_groups = [
        g
        for g in rect_groups
        if len(g) == 1
        or writing is None
        or marks < _MIN_PRINT_MARKS
        or median([r.outer[3] for r in g]) >= _MIN_COMB_HEIGHT * writing
    ]
    combs = [g for g in rect_groups if len(g) >= 2]
    cell_height = median([r.outer[3] for g in combs for r in g]) if combs else None
    fields = []
    for g in rect_groups:
        if len(g) == 1 and not is_number_box(g[0].outer, cell_height, writing):
            continue
        x0 = min(r.outer[0] for r in g)
        y0 = min(r.outer[1] for r in g)
        x1 = max(r.outer[0] + r.outer[2] for r in g)
        y1 = max(r.outer[1] + r.outer[3] for r in g)
        bbox = (x0, y0, x1 - x0, y1 - y0)
        if len(g) >= 2:
            fields.append(FieldRegion("comb", bbox, tuple(r.inner for r in g)))
        else:
            fields.append(FieldRegion("box", bbox, (g[0].inner,)))
    return fields


# A cell of a comb the box finder missed is taken where the page's marks outline it: its top and
# bottom rules and both walls each cover at least this share of the cell's width or height
# (within a few pixels of where the comb's other cells put them), and marks fill at most
# :data:`_MAX_CELL_FILL` of its inside.
_CELL_OUTLINE = 0.8
_MAX_CELL_FILL = 0.5
# Pixels beyond a cell's inside in which its rules and walls are looked for.
_OUTLINE_BAND = 5
# At most this many cells are added between two parts of one comb.
_MAX_CELLS_BETWEEN = 6


def complete_combs(fields: list[FieldRegion], marks: np.ndarray) -> list[FieldRegion]:
    """Combs with the cells the box finder missed put back: between two parts of one comb, and at either end.

    A bold digit read as a wall, or a wall lost to a light or broken print, leaves a
    comb in parts or short of its last cells, and those cells' digits unread.
    Where two combs share a row, a cell size and a step, and lie a whole number of
    steps apart, the cells between them are looked for; then each comb is carried
    on a step at a time at both ends.  A cell is taken only where ``marks`` (every
    mark of the page, ink or thin) outline it (:func:`_outlined`), so the gap
    between two separate fields is no cell, nor is writing beside a comb.
    """
    combs = sorted((f for f in fields if f.kind == "comb" and len(f.cells) >= 2), key=lambda f: f.bbox[0])
    if not combs:
        return fields
    others = [f for f in fields if not (f.kind == "comb" and len(f.cells) >= 2)]
    rows: list[tuple[list[FieldRegion], list[Box]]] = []  # the combs joined into one, and its cells
    for comb in combs:
        for parts, cells in rows:
            between = _cells_between(cells, list(comb.cells), marks)
            if between is not None:
                parts.append(comb)
                cells.extend(between + list(comb.cells))
                break
        else:
            rows.append(([comb], list(comb.cells)))
    completed = []
    for parts, cells in rows:
        cells = _carried_on(cells, marks)
        if len(parts) == 1 and len(cells) == len(parts[0].cells):
            completed.append(parts[0])
            continue
        # Cells added at the ends are framed as the first part frames its own end cells.
        x, _, w, _ = parts[0].bbox
        first, last = parts[0].cells[0], parts[0].cells[-1]
        x0, y0 = min(p.bbox[0] for p in parts), min(p.bbox[1] for p in parts)
        x1 = max(p.bbox[0] + p.bbox[2] for p in parts)
        y1 = max(p.bbox[1] + p.bbox[3] for p in parts)
        x0 = min(x0, cells[0][0] - (first[0] - x))
        x1 = max(x1, cells[-1][0] + cells[-1][2] + (x + w) - (last[0] + last[2]))
        completed.append(FieldRegion("comb", (x0, y0, x1 - x0, y1 - y0), tuple(cells)))
    # Cells whose walls were lost come out of the box finder as one wide box: inside a comb now.
    others = [f for f in others if not any(_inside(f.bbox, c.bbox) for c in completed)]
    return others + completed


def _inside(box: Box, outer: Box, share: float = 0.8) -> bool:
    """Whether at least ``share`` of ``box`` (x, y, w, h) lies within ``outer``."""
    return box_intersection(box, outer) >= share * box[2] * box[3]


def _cell_geometry(cells: list[Box]) -> tuple[float, int, int, int]:
    """(step, y, width, height) typical of a comb's cells (their insides, left to right)."""
    step = median([b[0] - a[0] for a, b in zip(cells[:-1], cells[1:], strict=True)])
    return (
        step,
        round(median([c[1] for c in cells])),
        round(median([c[2] for c in cells])),
        round(median([c[3] for c in cells])),
    )


def _cells_between(left: list[Box], right: list[Box], marks: np.ndarray) -> list[Box] | None:
    """The cells that join comb ``left`` to comb ``right`` on its right (none, if they abut), or None."""
    step, y, w, h = _cell_geometry(left)
    step_r, y_r, w_r, h_r = _cell_geometry(right)
    tolerance = max(4, 0.15 * h)
    if abs(y - y_r) > tolerance or abs(h - h_r) > tolerance or not 0.8 <= step_r / step <= 1.25:
        return None
    steps = (right[0][0] - left[-1][0]) / step
    n = round(steps)
    if n < 1 or n > _MAX_CELLS_BETWEEN + 1 or abs(steps - n) > 0.2:
        return None
    between = [(round(left[-1][0] + k * step), y, w, h) for k in range(1, n)]
    return between if all(_outlined(c, marks) for c in between) else None


def _carried_on(cells: list[Box], marks: np.ndarray) -> list[Box]:
    """``cells`` with the outlined cells (:func:`_outlined`) that continue the comb at either end."""
    step, y, w, h = _cell_geometry(cells)
    cells = list(cells)
    # Each stops at the page's edge too: no cell past it is outlined.
    while _outlined(before := (round(cells[0][0] - step), y, w, h), marks):
        cells.insert(0, before)
    while _outlined(after := (round(cells[-1][0] + step), y, w, h), marks):
        cells.append(after)
    return cells


def _outlined(cell: Box, marks: np.ndarray) -> bool:
    """Whether ``marks`` draw the outline of a box around ``cell`` (x, y, w, h: its inside), and do not fill it."""
    x, y, w, h = cell
    band = _OUTLINE_BAND
    height, width = marks.shape
    if w < 4 or h < 4 or x < band or y < band or x + w + band > width or y + h + band > height:
        return False
    top = marks[y - band : y, x : x + w].any(axis=0).mean()
    bottom = marks[y + h : y + h + band, x : x + w].any(axis=0).mean()
    left = marks[y : y + h, x - band : x].any(axis=1).mean()
    right = marks[y : y + h, x + w : x + w + band].any(axis=1).mean()
    inside = np.count_nonzero(marks[y : y + h, x : x + w]) / (w * h)
    return min(top, bottom, left, right) >= _CELL_OUTLINE and inside <= _MAX_CELL_FILL


def is_number_box(box: Box, comb_cell_height: float | None, writing: float | None = None) -> bool:
    """Whether a lone rectangle is shaped like a box for a written number.

    Tick boxes and logo frames are square; note and comment boxes are several
    lines tall.  A number box is wider than tall and, on a page with combs, at
    most about twice as tall as their boxes.  It is big enough to write in: not
    much smaller than the comb boxes or than the page's other writing (a
    handwritten 0 drawn nearly square makes a small "box" among digits of its
    own size).
    """
    _, _, w, h = box
    if w < 1.3 * h:
        return False
    if writing is not None and h < 0.6 * writing:
        return False
    return comb_cell_height is None or 0.6 * comb_cell_height <= h <= 2.5 * comb_cell_height


def writing_height(strokes: np.ndarray, boxes: list[Box]) -> tuple[float | None, int]:
    """Median height (pixels) of the marks outside ``boxes`` (printed text and free handwriting), and their number.

    ``strokes`` (N, 4): the :func:`stroke_boxes` of the page's ink without ruled lines.
    The height is None when there are no such marks.
    """
    marks = strokes
    if len(boxes):
        marks = marks[~contains_boxes(np.array(boxes, np.int64).reshape(-1, 4), marks, 2).any(axis=0)]
    return (median(marks[:, 3]) if len(marks) else None), len(marks)


def _handwriting(
    ink: np.ndarray, h_mask: np.ndarray, v_mask: np.ndarray, h_outlines: Outlines | None = None
) -> np.ndarray:
    """Ink without long ruled lines (the straight strokes of digits stay, and so does writing pressed
    onto a rule: :func:`_thick_writing`)."""
    h, w = ink.shape
    long_rules = long_components(h_mask, 2, max(100, w // 8), h_outlines)
    long_lines = cv2.bitwise_or(long_rules, long_components(v_mask, 3, max(100, h // 8)))
    writing = _thick_writing(long_rules)
    if writing is not None:
        long_lines[writing] = 0
    lines = cv2.dilate(long_lines, np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(ink, cv2.bitwise_not(lines))


# A horizontal rule is at most this many pixels thick; parts of a long horizontal component at least
# this thick, twice as tall, and no more than :data:`_THICK_WRITING_FLAT` times as wide as tall, are
# writing that touches the rule.  A flat, bold 0 written on a notebook's line is made of horizontal
# runs long enough to pass for rule (:func:`line_masks`), and joined to the line it went with it:
# "300808" on a photo of lined paper came out as "3" and "808", its two 0s gone.  Where a stroke
# only ends on the rule (a 5's foot), the two make a part under twice that tall, left with the rule.
_THICK_WRITING = 9
_THICK_WRITING_FLAT = 4


def _thick_writing(rules: np.ndarray) -> np.ndarray | None:
    """Where the long horizontal components ``rules`` (255) hold writing rather than rule (a bool mask),
    or None where they hold none."""
    thick = cv2.morphologyEx(rules, cv2.MORPH_OPEN, np.ones((_THICK_WRITING, 1), np.uint8))
    if not thick.any():
        return None
    _, labels, stats, _ = label_components(thick)
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    compact = np.flatnonzero((heights >= 2 * _THICK_WRITING) & (widths <= _THICK_WRITING_FLAT * heights))
    compact = compact[compact > 0]
    return np.isin(labels, compact) if compact.size else None


def long_components(mask: np.ndarray, stat: int, min_length: int, outlines: Outlines | None = None) -> np.ndarray:
    """Components of ``mask`` whose width (stat 2) or height (stat 3) is at least ``min_length``.

    ``outlines``: the components of ``mask``, when the caller has them
    already.  The page is not labelled: the components' outer borders give
    their boxes, and only the long ones are labelled, each within its own box.
    """
    outlines = outline_components(mask) if outlines is None else outlines
    out = np.zeros_like(mask)
    for i in np.flatnonzero(outlines.boxes[:, stat] >= min_length).tolist():
        x, y, w, h = (int(v) for v in outlines.boxes[i])
        out[y : y + h, x : x + w][outlines.pixels(i)] = 255
    return out


def find_text_lines(handwriting: np.ndarray, components: Components, used: list[Box]) -> list[FieldRegion]:
    """Lines of handwriting on a page without boxes, each as one ``line`` field.

    ``handwriting``: the page's ink without ruled lines, ``components`` its
    labelling; ``used``: the boxes whose pixels are no free line.  Marks much smaller than
    the page's typical character, anything touching the page edge, and
    hairlines (the paper's edge or a shadow's border in a photo) start no line;
    curved marks as fine as hairlines but of a digit's size are digits written
    with a finer pen than the rest of the page: they join a line, or make one
    of two or more.
    """
    thin = hairline_components(handwriting, components)
    height, width = handwriting.shape
    marks = [
        c
        for c in stroke_components_outside(components, used, drop=thin)
        if c[0] > 0 and c[1] > 0 and c[0] + c[2] < width and c[1] + c[3] < height
    ]
    if not marks:
        return []
    typical = median([c[3] for c in marks if c[3] >= 20] or [20])
    characters = [c for c in marks if c[3] >= 0.4 * typical]
    small = [c for c in marks if c[3] < 0.4 * typical]
    # A digit written with a finer pen than the page's other writing is no hairline: those (the
    # paper's edge, a shadow's border) run far longer than a digit.  It joins a line of writing.
    fine = [
        c
        for c in (stroke_components_outside(components, used, drop=~thin) if thin.any() else [])
        if c[0] > 0
        and c[1] > 0
        and c[0] + c[2] < width
        and c[1] + c[3] < height
        and 0.4 * typical <= c[3] <= 1.5 * typical
        and c[2] <= 1.5 * typical
        and _curved(handwriting[c[1] : c[1] + c[3], c[0] : c[0] + c[2]])
    ]
    lines = group_lines(characters + fine)
    if fine:  # a lone fine curve is no line of writing
        held = contains_boxes(np.array(lines).reshape(-1, 4), np.array(characters + fine).reshape(-1, 4))
        n = len(characters)
        lines = [box for box, row in zip(lines, held, strict=True) if row[:n].any() or row[n:].sum() >= 2]
    lines = with_detached_strokes(lines, small, reach=round(0.1 * typical))
    return [FieldRegion("line", pad_box(box, 8, handwriting.shape)) for box in lines]


def _curved(mark: np.ndarray) -> bool:
    """Whether a mark's ink spreads across its long axis (a digit's curves), not along one straight stroke."""
    return stroke_lean(mark)[1] > 0.3


def with_detached_strokes(lines: list[Box], small: list[Box], reach: int) -> list[Box]:
    """Line boxes grown over the small marks that come within ``reach`` pixels of them.

    A flat stroke written apart from its digit (the bar of a 5 or a 7) is too
    short to start or join a line, and a line box cut to its characters would
    cut it off, leaving its digit to be read without it.
    """
    grown = []
    for box in lines:
        x0, y0, x1, y1 = box[0] - reach, box[1] - reach, box[0] + box[2] + reach, box[1] + box[3] + reach
        reaching = [m for m in small if m[0] < x1 and x0 < m[0] + m[2] and m[1] < y1 and y0 < m[1] + m[3]]
        grown.append(union_box([box, *reaching]))
    return grown


# An open comb's ticks: at least this many, each at most this wide (pixels) and at least this
# tall above its baseline, as tall as each other within this share of their median height.
_MIN_TICKS = 4
_TICK_WIDTH = 4
_MIN_TICK_HEIGHT = 5
_TICK_HEIGHT_SLACK = 0.3
# A tick lies within this share of a cell width of where the step from the first tick puts it.
_TICK_STEP_SLACK = 0.15
# Cells are 0.6-2.5 rule lengths (:func:`rule_lengths`) wide: 13-52 pixels on a page at 150 dpi.
_CELL_WIDTHS = (0.6, 2.5)
# Ticks at least this share of a cell width tall, and the row of them this share of its baseline long.
_MIN_TICK_SHARE = 0.2
_MIN_COMB_SHARE = 0.6


def find_open_combs(
    ink: np.ndarray, rules: list[Rule], used: list[Box], strokes: np.ndarray, paper: np.ndarray | None = None
) -> list[FieldRegion]:
    """Combs printed open: a baseline with short ticks rising from it between the cells, and no top rule.

    ``ink``: the page's marks, with its thin light ones (:attr:`ocr.cleanup.CleanPage.fine`)
    where known: ticks are printed as finely as hairlines.  ``rules``: the page's rules;
    those that touch a ``used`` box are not looked at.  ``strokes`` (N, 4): the boxes of
    the page's marks other than ruled lines (:func:`stroke_boxes`), the digits among
    them; the cells reach up over the tallest digit written in them, and at least
    1.25 cell widths.  A tick is a run of ink straight up from the rule, thin, as
    tall as the other ticks, at an even step from them; digits touching the rule
    are wider, taller or out of step.  ``paper``: the page's :func:`paper_blocks`,
    when known.
    """
    long_h, _ = rule_lengths(ink.shape)
    min_step, max_step = _CELL_WIDTHS[0] * long_h, _CELL_WIDTHS[1] * long_h
    bands = np.array([(r.x0, max(0, r.y - 2), r.x1 - r.x0, 5) for r in rules], np.int64).reshape(-1, 4)
    touched, _ = _touched_and_inside(*bands.T, used, ink.shape)
    # On paper, away from the page's edge: a photographed table's grain stands up from a sheet's edge.
    paper = paper_blocks(ink) if paper is None else paper
    combs = []
    for rule, taken in zip(rules, touched, strict=True):
        if taken or rule.length < 3 * min_step or not _rule_on_paper(paper, rule, ink.shape):
            continue
        ticks = _ticks_on(ink, rule, round(1.6 * max_step))
        cells = _comb_cells(ticks, min_step, max_step)
        if cells is None:
            continue
        xs, step, height = cells
        if height < _MIN_TICK_SHARE * step or xs[-1] - xs[0] < _MIN_COMB_SHARE * rule.length:
            continue
        # The baseline is the comb's: cells whose tick was lost (a digit written over it) are on it too.
        before = int((xs[0] - rule.x0 + 0.3 * step) // step)
        after = int((rule.x1 - xs[-1] + 0.3 * step) // step)
        xs = xs[0] + step * np.arange(-before, len(xs) + after)
        base = rule.y - rule.thickness // 2
        top = base - max(1.25 * step, 1.2 * height)
        # The cells reach over the digits written in them.
        sx, sy, sw, sh = (strokes[:, k] for k in range(4))
        centre = sx + sw / 2
        standing = (centre > xs[0]) & (centre < xs[-1]) & (sy + sh >= top) & (sy + sh <= base + 3) & (sh < 3 * step)
        if standing.any():
            top = min(top, float(sy[standing].min()) - 2)
        top = max(0, round(top))
        cell_boxes = tuple(
            (int(a) + 2, top, int(b) - int(a) - 3, base - top) for a, b in zip(xs[:-1], xs[1:], strict=True)
        )
        tick_boxes = tuple((int(x) - 2, base - round(height) - 1, 5, round(height) + 2) for x in xs)
        bbox = (int(xs[0]), top, int(xs[-1] - xs[0]) + 1, base + rule.thickness - top)
        combs.append(FieldRegion("comb", bbox, cell_boxes, ticks=tick_boxes))
    return combs


def _rule_on_paper(paper: np.ndarray, rule: Rule, shape: tuple[int, ...]) -> bool:
    """Whether ``rule`` lies within the page away from its edge, its middle on paper (:func:`_on_paper_points`)."""
    edge_x = shape[1] * _HAIRLINE_EDGE
    if rule.x0 < edge_x or rule.x1 > shape[1] - edge_x:
        return False
    middle = np.array([(rule.x0 + rule.x1) // 2]), np.array([rule.y])
    return bool(_on_paper_points(paper, *middle, shape)[0])


def _ticks_on(ink: np.ndarray, rule: Rule, max_height: int) -> list[tuple[float, int, int]]:
    """(centre x, width, height) of each run of thin ink rising straight up from ``rule``.

    Each column's height is the longest run of ink going up from any of the rows
    just above the rule's top (a page turned by a fraction of a degree).
    """
    top_row = rule.y - rule.thickness // 2
    # A few pixels past each end: a tick at the end of a rule may stand just beyond where it was found.
    x0, x1 = max(0, rule.x0 - 4), min(ink.shape[1], rule.x1 + 4)
    # The columns tall enough to start a tick first, in a strip just that tall: most rules have none.
    low = _heights_up(ink, top_row, _MIN_TICK_HEIGHT, x0, x1)
    thin = [(a, b) for a, b in runs(low >= _MIN_TICK_HEIGHT) if b - a <= _TICK_WIDTH]
    if len(thin) < _MIN_TICKS:
        return []
    return [
        (x0 + (a + b - 1) / 2, b - a, int(_heights_up(ink, top_row, max_height, x0 + a, x0 + b).max())) for a, b in thin
    ]


def _heights_up(ink: np.ndarray, top_row: int, height: int, x0: int, x1: int) -> np.ndarray:
    """For each column x0..x1, the longest run of ink (up to ``height``) going up from the
    first, second or third row above ``top_row``."""
    first = max(0, top_row - height - 3)
    strip = ink[first : top_row + 1, x0:x1] > 0
    heights = np.zeros(x1 - x0, np.int64)
    for start in (1, 2, 3):  # rows above the rule's top row, going up
        if strip.shape[0] > start:
            column = strip[: strip.shape[0] - start][::-1]
            heights = np.maximum(heights, np.cumprod(column, axis=0).sum(axis=0))
    return heights


def _comb_cells(
    ticks: list[tuple[float, int, int]], min_step: float, max_step: float
) -> tuple[np.ndarray, float, float] | None:
    """The ticks that divide the cells of an open comb: their x (missing ones filled in at the step),
    the step and their height, or None when no even row of like ticks is there."""
    if len(ticks) < _MIN_TICKS:
        return None
    xs = np.array([t[0] for t in ticks])
    hs = np.array([t[2] for t in ticks], np.float64)
    best = None
    # Each pair of neighbouring like ticks proposes a step; the row it makes with the most ticks wins.
    for i in range(len(ticks) - 1):
        step = xs[i + 1] - xs[i]
        if not min_step <= step <= max_step or abs(hs[i + 1] - hs[i]) > _TICK_HEIGHT_SLACK * max(hs[i], hs[i + 1]):
            continue
        like = np.abs(hs - (hs[i] + hs[i + 1]) / 2) <= _TICK_HEIGHT_SLACK * (hs[i] + hs[i + 1]) / 2
        k = (xs - xs[i]) / step
        in_step = np.abs(k - np.rint(k)) * step <= _TICK_STEP_SLACK * step
        on_step = like & in_step
        # The row runs on from tick i each way while no step is missing.  A thin mark in step but
        # taller than the others is a tick too (a digit touches it), if most of the row's are alike.
        present = set(np.rint(k[in_step]).astype(np.int64).tolist())
        lo = hi = 0
        while lo - 1 in present:
            lo -= 1
        while hi + 1 in present:
            hi += 1
        count = hi - lo + 1
        alike = int((on_step & (np.rint(k) >= lo) & (np.rint(k) <= hi)).sum())
        if count >= _MIN_TICKS and 2 * alike >= count and (best is None or count > best[0]):
            members = on_step & (np.rint(k) >= lo) & (np.rint(k) <= hi)
            # The step refitted through the row's ticks.
            fitted = np.polyfit(np.rint(k[members]), xs[members], 1)[0] if members.sum() >= 2 else step
            best = (count, xs[i] + lo * fitted, fitted, hi - lo, float(median(hs[members].tolist())))
    if best is None:
        return None
    _, first, step, gaps, height = best
    return first + step * np.arange(gaps + 1), float(step), height


# A rule is a box's own (its top or bottom, or a comb's) when used boxes reaching into the band of
# rows around it cover at least this share of its length.  Any box at all was too strict: a 23 px
# box found in the handwriting standing on a 473 px rule (an 8's loop) hid the whole number.
_BOXED_RULE = 0.5
# Pixels past a solid rule's own rows that a mark written on the rule may end at (its foot in the line).
_RULE_OVERSHOOT = 2
# ... on a rule at least this many times as long as the mark is tall.
_RULE_FOOT_LENGTH = 4


def _boxed_share(rule: Rule, corners: tuple[np.ndarray, ...]) -> float:
    """Share of ``rule``'s length covered by the boxes that reach into the rows around it, of those whose
    ``corners`` (x0, y0, x1, y1 arrays, as :func:`_clipped` gives them) are given."""
    x0, y0, x1, y1 = corners
    near = (y0 < rule.y + 3) & (y1 > max(0, rule.y - 2)) & (x0 < rule.x1) & (x1 > rule.x0)
    covered = np.zeros(max(1, rule.x1 - rule.x0), bool)
    for a, b in zip(x0[near].tolist(), x1[near].tolist(), strict=True):
        covered[max(0, a - rule.x0) : max(0, b - rule.x0)] = True
    return float(covered.mean())


def find_underline_fields(components: Components, rules: list[Rule], used: list[Box]) -> list[FieldRegion]:
    """Handwriting standing on a printed rule that is not part of a box.

    ``components``: the labelling of the page's ink without ruled lines;
    ``used``: the boxes (read or not) whose rules are no underlines.
    """
    shape = components[1].shape
    corners = _clipped(used, shape)
    free_rules = [r for r in rules if _boxed_share(r, corners) < _BOXED_RULE]
    if not free_rules:
        return []
    # No stray walls: marks much taller than wide.
    marks = [c for c in stroke_components_outside(components, used) if (c[3] <= 6 * c[2] or c[3] < 60) and c[3] >= 15]
    boxes = np.array(marks, np.int64).reshape(-1, 4)
    x, y, w, h = boxes.T
    fields: list[FieldRegion] = []
    for rule in free_rules:
        gap = rule.y - (y + h)
        # Digits written on a dotted rule cross it more freely (a 7's or a 9's tail) and take in the dots
        # they touch.  A solid rule is no part of the handwriting, and digits end above it or on it: a
        # stroke that ends in the rule's own rows (a 1 whose foot overshot the line by a pixel, and
        # "133" was accepted as "33") stands on it as much as one that stops short.
        lowest = -np.maximum(rule.thickness + 2, 0.3 * h) if rule.dotted else -(rule.thickness + _RULE_OVERSHOOT)
        along = (x >= rule.x0 - 10) & (x + w <= rule.x1 + 10)
        if rule.dotted:
            # A digit at an end of a dotted rule took in the dots it touches, and the rule found
            # begins or ends under it: it comes down to the rule's row and overlaps the rule's end.
            along |= (gap <= rule.thickness) & (x + w > rule.x0) & (x < rule.x1)
        # A mark's foot may be in the rule only where the mark stands above the rule for the most part
        # (not small print hanging from it) and the rule is far longer than the mark: the feet of
        # printed serifs are found as short rules of their own, and a title's letters stood on them.
        foot_in_rule = rule.dotted | ((rule.y - y >= 0.8 * h) & (rule.x1 - rule.x0 >= _RULE_FOOT_LENGTH * h))
        standing = along & (gap >= lowest) & (gap <= 0.6 * h + 6) & ((gap >= 0) | foot_in_rule)
        above = [marks[i] for i in np.flatnonzero(standing).tolist()]
        if not above:
            continue
        for box in group_lines(above):
            region = FieldRegion("line", pad_box(box, 8, shape), on_rule=True)
            if all(box_iou(region.bbox, f.bbox) < 0.5 for f in fields):
                fields.append(region)
    return fields


def hairline_components(mask: np.ndarray, components: Components) -> np.ndarray:
    """Which labels of ``mask``'s ``components`` (a bool per label, background False) are hairlines."""
    count, labels, stats, _ = components
    thin = np.zeros(count, bool)
    if count <= 1:
        return thin
    dist = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 3)
    inked = labels > 0
    half_width = np.zeros(count, np.float32)
    np.maximum.at(half_width, labels[inked], dist[inked])
    # float64: on a page without any paper the distances are FLT_MAX, and doubling them overflows.
    thin[1:] = hairlines(2 * half_width[1:].astype(np.float64), stats[1:, cv2.CC_STAT_AREA])
    return thin


def hairlines(widths: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Which components are hairlines: under 0.4 of the median stroke width of the big marks.

    ``widths`` are stroke widths (pixels, at the widest point of each
    component), ``areas`` their ink in pixels; big marks hold at least 0.3 of
    the ink of the biggest marks (95th percentile of those over 20 pixels).
    """
    widths = np.asarray(widths, np.float64)
    areas = np.asarray(areas, np.float64)
    if widths.size == 0:
        return np.zeros(0, bool)
    marks = areas[areas >= 20]  # noise specks do not count
    if marks.size == 0:
        return np.zeros(widths.shape, bool)
    big = areas >= max(20.0, 0.3 * percentile(marks, 95))
    if big.sum() < 3:
        return np.zeros(widths.shape, bool)
    pen = median(widths[big])
    return widths < 0.4 * pen


def stroke_components(mask: np.ndarray, min_height: int = 12) -> list[Box]:
    """Bounding boxes of connected ink that could be (part of) a handwritten digit."""
    return stroke_boxes(label_components(mask), min_height)


def stroke_boxes(components: Components, min_height: int = 12) -> list[Box]:
    """:func:`stroke_components` of an already labelled mask."""
    return _stroke_rows(components[2][1:], min_height)


def _stroke_rows(stats: np.ndarray, min_height: int) -> list[Box]:
    keep = (stats[:, 4] >= 20) & ((stats[:, 3] >= min_height) | (stats[:, 2] >= min_height))
    return [tuple(row) for row in stats[keep, :4].tolist()]


def stroke_components_outside(
    components: Components, used: list[Box], min_height: int = 12, drop: np.ndarray | None = None
) -> list[Box]:
    """:func:`stroke_components` of a labelled mask once the pixels of the ``used`` boxes are cleared from it.

    The page is not labelled again: a component clear of the boxes keeps its
    box, one lying inside a box vanishes, and only the few that the boxes
    cut (or that lie under several at once) are labelled again, each within
    its own box.  Boxes reaching past the page are clipped to it.
    ``drop``: labels (a bool per label) to leave out altogether.
    """
    count, labels, stats, _ = components
    if count <= 1:
        return []
    x, y, w, h = (stats[1:, i].astype(np.int64) for i in range(4))
    touched, inside = _touched_and_inside(x, y, w, h, used, labels.shape)
    wanted = np.ones(count - 1, bool) if drop is None else ~drop[1:]
    clear = wanted & ~touched
    boxes = _stroke_rows(stats[1:][clear], min_height)
    used_corners = list(zip(*_clipped(used, labels.shape), strict=True))
    for i in (np.flatnonzero(wanted & touched & ~inside) + 1).tolist():
        bx, by, bw, bh = (int(v) for v in stats[i, :4])
        free = np.ones((bh, bw), bool)  # this component's box, less the used boxes' pixels
        for x0, y0, x1, y1 in used_corners:
            free[max(0, y0 - by) : max(0, y1 - by), max(0, x0 - bx) : max(0, x1 - bx)] = False
        window = (labels[by : by + bh, bx : bx + bw] == i) & free
        if window.any():
            pieces = stroke_components(window.view(np.uint8) * np.uint8(255), min_height)
            boxes += [(px + bx, py + by, pw, ph) for px, py, pw, ph in pieces]
    return boxes


def _touched_and_inside(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, boxes: list[Box], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """For each box (x, y, w, h): does it share a pixel with any of ``boxes``, does it lie inside one of them.

    ``boxes`` are clipped to an image of ``shape`` first (:func:`_clipped`).
    """
    bx0, by0, bx1, by1 = _clipped(boxes, shape)
    x0, y0, x1, y1 = x[:, None], y[:, None], (x + w)[:, None], (y + h)[:, None]
    touched = ((x0 < bx1) & (bx0 < x1) & (y0 < by1) & (by0 < y1)).any(axis=1)
    clipped = np.stack([bx0, by0, bx1 - bx0, by1 - by0], axis=1)
    inside = contains_boxes(clipped, np.stack([x, y, w, h], axis=1)).any(axis=0)
    return touched, inside


def _clipped(boxes: list[Box], shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """``boxes`` (x, y, w, h) clipped to an image of ``shape``, as (x0, y0, x1, y1) arrays; empty ones left out."""
    b = np.array(boxes, np.int64).reshape(-1, 4)
    x0, y0 = np.clip(b[:, 0], 0, shape[1]), np.clip(b[:, 1], 0, shape[0])
    x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, shape[1]), np.clip(b[:, 1] + b[:, 3], 0, shape[0])
    real = (x1 > x0) & (y1 > y0)
    return x0[real], y0[real], x1[real], y1[real]


def group_lines(components: list[Box]) -> list[Box]:
    """Group component boxes into text lines; the bounding box of each line.

    Components are taken left to right; each joins the line whose rightmost
    component it overlaps vertically by 40% of the smaller height and follows
    within three character heights (so lines may slope, as in photos), else it
    starts a line.
    """
    if not components:
        return []
    lines: list[list[Box]] = []
    for c in sorted(components):  # left to right; ties by position, so the input's order does not matter
        cy0, cy1 = c[1], c[1] + c[3]
        best, best_overlap = None, 0.0
        for line in lines:
            last = line[-1]
            overlap = min(cy1, last[1] + last[3]) - max(cy0, last[1])
            share = overlap / min(c[3], last[3])
            gap = c[0] - max(b[0] + b[2] for b in line)
            if share >= 0.4 and gap <= 3 * max(c[3], last[3]) and share > best_overlap:
                best, best_overlap = line, share
        if best is None:
            lines.append([c])
        else:
            best.append(c)
    return merge_lines([union_box(line) for line in lines], median([c[3] for c in components]))


def merge_lines(lines: list[Box], char_height: float) -> list[Box]:
    """Join line boxes that are pieces of one line of writing.

    A digit that sits low or high, or a wide gap, can start a second line
    beside the first; pieces of broken digits can make a second line over
    it.  Two lines join when they share most of their height and, side by
    side, are under three character heights apart, or, one over the other,
    share nearly all of it.
    """
    lines = list(lines)
    merged = True
    while merged:
        merged = False
        for i in range(len(lines)):
            for j in range(i + 1, len(lines)):
                a, b = lines[i], lines[j]
                overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
                share = overlap / max(1, min(a[3], b[3]))
                gap = max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]))  # negative where they overlap
                if (gap >= 0 and share >= 0.5 and gap <= 3 * char_height) or (gap < 0 and share >= 0.7):
                    lines[i] = union_box([a, b])
                    del lines[j]
                    merged = True
                    break
            if merged:
                break
    return lines
