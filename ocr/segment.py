"""Cut a field into digits: remove its box lines, then split its ink into characters.

Combs are cut by their cells (an empty cell is reported as such); boxes and
lines by connected components, with broken strokes merged, touching digits
split at the thinnest point, specks dropped, small marks on the baseline
kept as decimal separators and flat strokes at mid-height between digits as
hyphens (a date written 3-7-2025).  A straight stroke leaning as a slash does is
marked with its lean, an arc bowed as a parenthesis is with its bow;
:mod:`ocr.punctuation` decides whether they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np

from ocr.errors import BlankCropError
from ocr.fields import long_components
from ocr.geometry import Box, FieldRegion, label_components, pad_box, runs, stroke_lean
from ocr.normalize import normalize_digit
from ocr.stats import median

# A comb cell left empty whose specks in its middle together hold this share of its area and
# reach over this share of its height may hold a digit broken up (:func:`specks_in_empty_cells`).
# A faint 4 on a bilevel scan left 12 px of 2,500 (0.0048) reaching 0.2 of the cell, and its
# two-cell field was accepted empty (fresh set 20261216).
_CELL_SPECKS_INK = 0.004
_CELL_SPECKS_REACH = 0.15

# Narrowest run of ink, against the field's digit height, that may be touching digits
# (a 1 touching a 0 makes a run not much wider than one digit).
_MIN_RUN_WIDTH = 0.75
# A separator is a comma when it is this much taller than wide, at least this share of a digit's
# height tall, and reaches the digits' baseline; otherwise a point.  On calibration pages (validation
# digits) commas stood 1.43-1.62 times taller than wide and 0.23-0.37 of a digit tall, points
# 1.0-1.11 times and 0.09-0.23 (1.33 for dots a few pixels across, under 0.18 tall).
_COMMA_ASPECT = 1.25
_COMMA_HEIGHT = 0.2
# Dots of a dotted rule (:func:`dotted_rule_marks`): centres within this share of a digit's height
# of one row, the nearest neighbour closer than this share.
_DOT_ROW = 0.06
_DOT_GAP = 0.5
# Specks standing one above another (:func:`stacked_specks`): at most this share of a digit's
# height apart, together at least this share of its height tall and at most this share wide.
_STACK_GAP = 0.15
# Specks up to this share of a digit's height apart stand one above another too, but such a digit
# is a guess and its field goes to review (:func:`loosely_stacked_specks`).  A faint 1 broken into
# four specks 0.17-0.19 of a digit's height apart was read as nothing in a box, and "1936" was
# accepted as "936"; at 0.25 the specks of a dithered scan also stack now and then.
_LOOSE_STACK_GAP = 0.25
_STACK_HEIGHT = 0.6
_STACK_WIDTH = 0.6
# A hyphen (:func:`hyphen_marks`): a stroke at most this share of a digit's height tall, at least
# this many times as long as tall, as long as these shares of a digit's height, its middle between
# these shares of the height of each digit beside it from its top, and clear of them.
_HYPHEN_HEIGHT = 0.33
_HYPHEN_FLAT = 1.6
_HYPHEN_LENGTH = (0.15, 0.9)
_HYPHEN_BAND = (0.15, 0.85)
# A straight stroke (:func:`stroke_lean`) that may be a slash: at least this share of the field's
# digit height tall, its ink at most this much as wide across as along its axis, leaning right by
# this many degrees from the vertical (a stroke leaning further is a dash, or a long stroke of writing).
_SLASH_HEIGHT = 0.8
_SLASH_STRAIGHT = 0.2
_SLASH_LEAN = (15.0, 50.0)
# An arc that may be a parenthesis (:func:`stroke_bow`): at least this share of the field's digit
# height tall and at most this share of its own height wide, one stroke across on this share of
# its rows or more, its middle this share of its height or more off the line through its ends.
_ARC_HEIGHT = 0.8
_ARC_WIDTH = 0.5
_ARC_ONE_STROKE = 0.85
_ARC_BOW = 0.05
# Of two separators one digit apart, one whose bottom stands this share of a digit's height above
# the other's is a speck or a broken-off piece (:func:`_spaced_separators`).
_SEPARATOR_STEP = 0.1


@dataclass(frozen=True)
class Segment:
    """One character of a field.

    bbox : (x, y, w, h) in the pixels of the page the field was found on.
    crop : (h, w) uint8 ink mask of this character alone (255 ink); empty for separators but slashes.
    char : "" for a digit still to be classified; a separator: "." or ",", "-" (a hyphen), "/" (a
        date's slash), "(" and ")" (a telephone number's area code; :mod:`ocr.punctuation`), ":"
        (two marks in one gap between digits, :func:`_spaced_separators`).
    cell : comb cell index (0-based) or None.
    alternatives : splits of this segment into several digits, to be weighed
        against reading it as one.
    """

    bbox: Box
    crop: np.ndarray
    char: str = ""
    cell: int | None = None
    # Other readings of the same ink, each a run of narrower segments (touching
    # digits); the reader keeps whichever the classifiers are surest of.
    alternatives: tuple[tuple[Segment, ...], ...] = ()
    digit_height: int = 0  # typical digit height of the field, for weighing splits (0: unknown)
    # A piece cut from touching digits: the most separate strokes one of its cuts ran through.
    # Two or more: the digits overlap there, and each piece keeps some of the other's ink.
    cut_strokes: int = 0
    # A straight stroke leaning right by this many degrees (a slash or a 1, see :mod:`ocr.punctuation`).
    lean: float | None = None
    # An arc bowed by this share of its height, negative to the left: "(" (:func:`arc_bow`).
    bow: float | None = None
    # On every character of a line or box: the most ink left out as specks in one gap between
    # its digits, as a share of a digit's ink (:func:`ink_left_out`).
    ink_left_out: float = 0.0
    # Specks only loosely stacked one above another, read as a digit (:func:`loosely_stacked_specks`).
    from_loose_specks: bool = False

    @property
    def is_digit(self) -> bool:
        return self.char == ""

    @cached_property
    def stroke_width(self) -> float:
        """:func:`stroke_width` of the crop, measured once (reading and the field's checks both use it)."""
        return stroke_width(self.crop)


def remove_lines(ink: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Erase ruled and box lines from ``ink`` but keep the strokes that cross them.

    Where a stroke passes through a line there is ink on both sides of it; a
    closing across the line's thickness reconnects those, and only the line
    pixels between them are restored.
    """
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    rest = cv2.bitwise_and(ink, cv2.bitwise_not(lines))
    thickness = _line_thickness(lines)
    span = thickness + 4
    bridged = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, span)))
    bridged |= cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (span, 1)))
    restored = cv2.bitwise_and(bridged, lines)
    return cv2.bitwise_or(rest, cv2.bitwise_and(restored, ink))


def _line_thickness(lines: np.ndarray) -> int:
    if not lines.any():
        return 1
    dist = cv2.distanceTransform((lines > 0).astype(np.uint8), cv2.DIST_L2, 3)
    return int(max(1, round(2 * float(np.percentile(dist[dist > 0], 90)))))


def segment_field(ink: np.ndarray, h_mask: np.ndarray, v_mask: np.ndarray, region: FieldRegion) -> list[Segment]:
    """Characters of one field, left to right.

    Parameters
    ----------
    ink : (H, W) uint8 page ink mask, 255 ink.
    h_mask, v_mask : (H, W) uint8 horizontal and vertical straight strokes
        (:func:`ocr.fields.line_masks`); only those on the field's own borders
        and rules are removed, so straight strokes of digits stay.
    region : where the field is (page pixels).
    """
    clean, (x, y) = _field_ink(ink, h_mask, v_mask, region)
    if region.kind == "comb":
        return _segment_comb(clean, (x, y), region)
    inner = region.cells[0] if region.kind == "box" and region.cells else region.bbox
    ix, iy, iw, ih = inner
    keep = np.zeros_like(clean)
    # Free digits may stray over a box border by a few pixels; keep those strokes.
    wx0, wy0 = max(0, ix - x - 4), max(0, iy - y - 4)
    keep[wy0 : iy - y + ih + 4, wx0 : ix - x + iw + 4] = clean[wy0 : iy - y + ih + 4, wx0 : ix - x + iw + 4]
    # Inside a box, specks standing one above another are a faint digit broken up; on a line of
    # free writing (a photo's grainy table, its edge) they are as often noise.
    return _segment_free(keep, (x, y), broken_digits=region.kind == "box")


def _field_ink(
    ink: np.ndarray, h_mask: np.ndarray, v_mask: np.ndarray, region: FieldRegion
) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink of ``region``'s window without its own borders and rules (see :func:`segment_field`),
    and the window's origin on the page."""
    x, y, w, h = _field_window(region, ink.shape)
    window = (slice(y, y + h), slice(x, x + w))
    h_band, v_band = border_bands(region, (x, y), (h, w))
    # Horizontal strokes on the top and bottom borders, vertical ones on the side walls:
    # a digit's own stroke crossing a border is neither, so it survives.
    lines = cv2.bitwise_or(cv2.bitwise_and(h_mask[window], h_band), cv2.bitwise_and(v_mask[window], v_band))
    if region.kind in ("comb", "box"):
        lines = cv2.bitwise_or(lines, askew_borders(h_mask[window], region, (x, y), h_band))
    if region.kind == "line":
        # The rule under a line of digits runs across the window, or at least
        # far longer than the line is tall; a digit's bar never does.
        rule_length = int(min(0.9 * w, 2.5 * region.bbox[3]))
        lines = cv2.bitwise_or(lines, rule_band(long_components(h_mask[window], 2, rule_length)))
    clean = remove_lines(ink[window], lines)
    for tx, ty, tw, th in region.ticks:  # an open comb's ticks: walls too short for the vertical mask
        clean[max(0, ty - y) : max(0, ty - y + th), max(0, tx - x) : max(0, tx - x + tw)] = 0
    return clean, (x, y)


def specks_in_empty_cells(
    ink: np.ndarray, h_mask: np.ndarray, v_mask: np.ndarray, region: FieldRegion, written: set[int]
) -> bool:
    """Whether a comb cell left empty (not in ``written``) holds specks enough to be a digit
    broken up by a faint pen or a bilevel scan.

    :func:`segment_field` leaves a cell empty when its marks are all specks.  Those in the
    middle of the cell (the inner 70% each way) count where together they hold
    :data:`_CELL_SPECKS_INK` of the cell's area and reach over :data:`_CELL_SPECKS_REACH` of
    its height.
    """
    if region.kind != "comb" or len(written) >= len(region.cells):
        return False
    clean, (ox, oy) = _field_ink(ink, h_mask, v_mask, region)
    count, _, stats, centroids = label_components(clean)
    if count <= 1:
        return False
    cx, cy, area = centroids[1:, 0], centroids[1:, 1], stats[1:, cv2.CC_STAT_AREA]
    for index, (x, y, w, h) in enumerate(region.cells):
        if index in written:
            continue
        x, y = x - ox, y - oy
        inside = np.flatnonzero((x + 0.15 * w <= cx) & (cx < x + 0.85 * w) & (y + 0.15 * h <= cy) & (cy < y + 0.85 * h))
        if inside.size == 0 or area[inside].sum() < _CELL_SPECKS_INK * w * h:
            continue
        boxes = stats[inside + 1]
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        if max(x1 - x0, y1 - y0) > _CELL_SPECKS_REACH * h:
            return True
    return False


def _field_window(region: FieldRegion, shape: tuple[int, ...]) -> Box:
    """The part of the page a field's writing is looked for in: writers overflow their boxes, so
    strokes reaching a third of a box beyond it are taken in."""
    return pad_box(region.bbox, max(6, region.bbox[3] // 3), shape)


# A stroke written along a box's border is taken for the border and erased with it (a 7's bar on
# the top border reads 1; a 0's side on a wall, 7).  The border's ink is then thicker there than
# the field's borders are elsewhere: by this many pixels or this share of their thickness,
# whichever is more, along at least this share of a side of a cell holding a digit (its middle
# part: where two borders meet, each is the other's thickness).
_BORDER_STROKE_EXTRA = (3, 0.5)
_BORDER_STROKE_RUN = 0.1
_BORDER_SIDE_MIDDLE = (0.15, 0.85)


def stroke_along_border(
    ink: np.ndarray, h_mask: np.ndarray, v_mask: np.ndarray, region: FieldRegion, cells: set[int]
) -> bool:
    """Whether a digit's stroke may lie along a border of ``region``'s ``cells`` (indices; a box's
    is 0), and have been erased with it by :func:`segment_field`.

    Measured on the straight lines :func:`segment_field` erases (``h_mask`` and ``v_mask`` in the
    border bands, where there is ink): across each side wall row by row, and across the top and
    bottom borders column by column.
    """
    if region.kind not in ("comb", "box") or not cells:
        return False
    x, y, w, h = _field_window(region, ink.shape)
    window = (slice(y, y + h), slice(x, x + w))
    h_band, v_band = border_bands(region, (x, y), (h, w))
    across = {
        "v": cv2.bitwise_and(cv2.bitwise_and(v_mask[window], v_band), ink[window]) > 0,
        "h": cv2.bitwise_and(cv2.bitwise_and(h_mask[window], h_band), ink[window]) > 0,
    }
    band, (lo, hi) = _BORDER_BAND, _BORDER_SIDE_MIDDLE
    sides: dict[str, list[tuple[int, np.ndarray, int]]] = {"v": [], "h": []}  # (cell, thickness per step, side)
    for index, (cx, cy, cw, ch) in enumerate(region.cells):
        cx, cy = cx - x, cy - y
        rows = slice(max(0, cy + int(lo * ch)), max(0, cy + int(hi * ch)))
        columns = slice(max(0, cx + int(lo * cw)), max(0, cx + int(hi * cw)))
        for wall in (cx, cx + cw - 1):
            sides["v"].append((index, across["v"][rows, max(0, wall - band) : wall + band + 1].sum(axis=1), ch))
        for border in (cy, cy + ch - 1):
            sides["h"].append((index, across["h"][max(0, border - band) : border + band + 1, columns].sum(axis=0), cw))
    for measured in sides.values():
        steps = [t for _, t, _ in measured if t.size]
        if not steps:
            continue
        usual = float(np.median(np.concatenate(steps)))
        thick = usual + max(_BORDER_STROKE_EXTRA[0], _BORDER_STROKE_EXTRA[1] * usual)
        for index, thickness, side in measured:
            longest = max((end - start for start, end in runs(thickness >= thick)), default=0)
            if index in cells and longest >= _BORDER_STROKE_RUN * side:
                return True
    return False


def rule_band(rule: np.ndarray) -> np.ndarray:
    """The pixels (255) of a ruled line itself, without the strokes that lie along it.

    The bottom bar of a 2 written on an underline merges with it in the
    horizontal-stroke mask.  The rule is the band of its usual thickness
    around a straight line fitted through it; what bulges out of that band is
    handwriting.
    """
    cols = np.flatnonzero(rule.any(axis=0))
    if cols.size < 2:
        return rule
    ys, xs = np.nonzero(rule)
    counts = np.bincount(xs, minlength=rule.shape[1])[cols]
    centres = np.bincount(xs, weights=ys, minlength=rule.shape[1])[cols] / counts
    thickness = median(counts)
    # Bulges shift the centre of their columns: fit through the columns of usual thickness.
    usual = counts <= thickness + 1
    slope, intercept = np.polyfit(cols[usual], centres[usual], 1) if usual.sum() >= 2 else (0.0, centres.mean())
    rows = np.arange(rule.shape[0])[:, None]
    band = np.abs(rows - (slope * np.arange(rule.shape[1])[None, :] + intercept)) <= thickness / 2 + 1
    return np.where(band & (rule > 0), 255, 0).astype(np.uint8)


# How far either side of a cell's border its strokes are looked for (:func:`border_bands`).
_BORDER_BAND = 7
# A box's or comb's top or bottom border is looked for this share of its height either side of
# where its cells put it, as a horizontal stroke at least this share of its width long
# (:func:`askew_borders`).
_ASKEW_REACH = 0.3
_ASKEW_LENGTH = 0.6


def askew_borders(
    h_window: np.ndarray, region: FieldRegion, origin: tuple[int, int], h_band: np.ndarray | None = None
) -> np.ndarray:
    """The top and bottom borders (255) of a box or comb, wherever they run across its field window.

    The bands of :func:`border_bands` lie along the cells' edges, straight across the page. A
    border that runs askew of them (a photographed form flattened a little off, a sheet that was
    not flat) leaves the bands within a few cells, and what is left of it joins the first and last
    digits.  A horizontal stroke near the top or bottom edge and longer than most of the field
    (:data:`_ASKEW_LENGTH`) is no digit's: its own line (:func:`rule_band`, so that a bar merged
    into it stays) is a border.
    ``h_window``: the field window's horizontal strokes; ``origin``: the window's top-left;
    ``h_band``: the bands along the cells' top and bottom edges (:func:`border_bands`), if known: a
    border that stays within them is left to them.
    """
    rx, ry, rw, rh = region.bbox
    ox, oy = origin
    reach = max(_BORDER_BAND, int(_ASKEW_REACH * rh))
    out = np.zeros_like(h_window)
    for edge in (ry - oy, ry - oy + rh - 1):
        band = np.zeros_like(h_window)
        band[max(0, edge - reach) : max(0, edge + reach + 1)] = 255
        strokes = cv2.bitwise_and(h_window, band)
        if h_band is not None and not cv2.countNonZero(cv2.subtract(strokes, h_band)):
            continue  # nothing runs outside the cells' bands: they take it all
        border = long_components(strokes, 2, int(_ASKEW_LENGTH * rw))
        if not border.any() or (h_band is not None and not cv2.countNonZero(cv2.subtract(border, h_band))):
            continue  # no border, or one square to the cells
        out = cv2.bitwise_or(out, rule_band(border))
    return out


def border_bands(
    region: FieldRegion, origin: tuple[int, int], shape: tuple[int, int], width: int = _BORDER_BAND
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (255) of the strips where each cell's top/bottom borders and its side walls lie."""
    h_band = np.zeros(shape, np.uint8)
    v_band = np.zeros(shape, np.uint8)
    ox, oy = origin
    for cx, cy, cw, ch in region.cells:
        x0, y0, x1, y1 = cx - ox, cy - oy, cx - ox + cw - 1, cy - oy + ch - 1
        for yy in (y0, y1):
            cv2.rectangle(h_band, (x0 - width, yy - width), (x1 + width, yy + width), 255, -1)
        for xx in (x0, x1):
            cv2.rectangle(v_band, (xx - width, y0 - width), (xx + width, y1 + width), 255, -1)
    # Only the outside of the interior: a stroke inside the cell is never a border.
    for cx, cy, cw, ch in region.cells:
        x0, y0 = cx - ox, cy - oy
        cv2.rectangle(h_band, (x0 + 1, y0 + 1), (x0 + cw - 2, y0 + ch - 2), 0, -1)
        cv2.rectangle(v_band, (x0 + 1, y0 + 1), (x0 + cw - 2, y0 + ch - 2), 0, -1)
    return h_band, v_band


def _segment_comb(clean: np.ndarray, origin: tuple[int, int], region: FieldRegion) -> list[Segment]:
    ox, oy = origin
    _, labels, stats, centroids = label_components(clean)
    segments = []
    centre_x, centre_y, area = centroids[1:, 0], centroids[1:, 1], stats[1:, cv2.CC_STAT_AREA]
    for index, (cx, cy, cw, ch) in enumerate(region.cells):
        lx, ly = cx - ox, cy - oy
        inside = (
            np.flatnonzero(
                (lx <= centre_x)
                & (centre_x < lx + cw)
                & (ly - 0.2 * ch <= centre_y)
                & (centre_y < ly + 1.2 * ch)
                & (area >= max(6, 0.004 * cw * ch))
            )
            + 1
        ).tolist()
        if not inside:
            continue
        tallest = max(max(stats[i, cv2.CC_STAT_HEIGHT], stats[i, cv2.CC_STAT_WIDTH]) for i in inside)
        span = max(stats[i, 1] + stats[i, 3] for i in inside) - min(stats[i, 1] for i in inside)
        # A dot or a speck leaves the cell empty; the pieces of a stroke broken
        # by a faint scan are each small but run down the cell together.
        if tallest < 0.25 * ch and (len(inside) < 3 or span < 0.5 * ch):
            continue
        # Drop specks relative to the main stroke of this cell.
        main_area = max(stats[i, cv2.CC_STAT_AREA] for i in inside)
        keep = [i for i in inside if stats[i, cv2.CC_STAT_AREA] >= 0.06 * main_area]
        segments.append(_segment_of(labels, stats, keep, origin, cell=index))
    return segments


def _segment_of(labels: np.ndarray, stats: np.ndarray, members: list[int], origin: tuple[int, int], **kw) -> Segment:
    x0 = min(stats[i, 0] for i in members)
    y0 = min(stats[i, 1] for i in members)
    x1 = max(stats[i, 0] + stats[i, 2] for i in members)
    y1 = max(stats[i, 1] + stats[i, 3] for i in members)
    window = labels[y0:y1, x0:x1]
    # A digit has a few components: comparing with each costs far less than np.isin's set machinery.
    mask = window == members[0]
    for i in members[1:]:
        mask |= window == i
    crop = mask.view(np.uint8) * np.uint8(255)
    return Segment((int(x0 + origin[0]), int(y0 + origin[1]), int(x1 - x0), int(y1 - y0)), crop, **kw)


def _segment_free(clean: np.ndarray, origin: tuple[int, int], broken_digits: bool = False) -> list[Segment]:
    count, labels, stats, _ = label_components(clean)
    if count <= 1:
        return []
    boxes = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count)]
    areas = stats[1:, cv2.CC_STAT_AREA]
    digit_height = estimate_digit_height(boxes, areas)
    if digit_height == 0:
        return []
    loose = loosely_stacked_specks(boxes, digit_height) if broken_digits else set()
    stack_gap = _LOOSE_STACK_GAP if loose else _STACK_GAP
    groups, separators = plan_characters(boxes, areas, digit_height, broken_digits, stack_gap)
    left_out = ink_left_out(boxes, areas, digit_height, groups, separators)
    # Pieces of broken digits made the first estimate low; measure the assembled digits.
    group_heights = [max(boxes[j][1] + boxes[j][3] for j in g) - min(boxes[j][1] for j in g) for g in groups]
    if group_heights:
        tall = [gh for gh in group_heights if gh >= 0.5 * max(group_heights)]
        digit_height = max(digit_height, int(median(tall)))
    segments = []
    for members in groups:
        ids = [m + 1 for m in members]
        seg = _segment_of(
            labels, stats, ids, origin, ink_left_out=left_out, from_loose_specks=bool(loose & set(members))
        )
        lean = slash_lean(seg.crop, digit_height) if len(members) == 1 else None
        if lean is not None:  # one straight stroke: a slash or a 1, not touching digits
            segments.append(replace(seg, lean=lean, digit_height=digit_height))
            continue
        seg = with_split_alternatives(seg, digit_height)
        bow = arc_bow(seg.crop, digit_height) if len(members) == 1 else None
        segments.append(seg if bow is None else replace(seg, bow=bow))
    for m, char in separators:
        x, y, w, h = boxes[m]
        segments.append(
            Segment((x + origin[0], y + origin[1], w, h), np.zeros((0, 0), np.uint8), char=char, ink_left_out=left_out)
        )
    return sorted(segments, key=lambda s: s.bbox[0] + s.bbox[2] / 2)


# Marks left out between a line's digits: those at least this share of a digit's height across,
# standing in the band of the digits (not on a rule under them), count.
_LEFT_OUT_SIZE = 0.15


def ink_left_out(
    boxes: list[Box], areas: np.ndarray, digit_height: int, groups: list[list[int]], separators: list[tuple[int, str]]
) -> float:
    """The most ink left out in one gap between digits, as a share of a digit's ink (median group).

    :func:`plan_characters` drops small marks that are neither separators nor pieces
    of a digit beside them.  A digit broken into pieces by a faint pen or a bilevel
    scan leaves such pieces in the gap where it stood (one of them may pass for a
    hyphen): the line then reads a digit short.
    """
    if len(groups) < 2:
        return 0.0
    used = {i for g in groups for i in g} | {i for i, _ in separators}
    extents = [_group_extent(g, boxes) for g in groups]
    spans = sorted((x0, x1) for x0, x1, _, _ in extents)
    top = median([y0 for _, _, y0, _ in extents])
    baseline = median([y1 for _, _, _, y1 in extents])
    digit_ink = float(median([sum(int(areas[j]) for j in g) for g in groups]))
    gaps = [0.0] * (len(spans) - 1)
    for i, (x, y, w, h) in enumerate(boxes):
        if i in used or max(w, h) < _LEFT_OUT_SIZE * digit_height:
            continue
        cx, cy = x + w / 2, y + h / 2
        if not top <= cy <= baseline:
            continue
        for k in range(len(gaps)):
            if spans[k][1] <= cx <= spans[k + 1][0]:
                gaps[k] += int(areas[i])
                break
    return max(gaps) / digit_ink if digit_ink else 0.0


def ink_past_the_ends(ink: np.ndarray, digits: list[Segment], separators: list[Segment]) -> float:
    """The most ink left out just past the first or the last digit of a line, as a share of a digit's ink.

    ``ink``: the page's ink mask; ``digits``: the line's digit segments; ``separators``: its
    separators (a point or a hyphen after the number is no ink left out).  A digit written with a
    skipping pen, or drawn faint, breaks into pieces none of a digit's size; at the end of a
    number they are no part of the line found, and the number reads a digit short, each digit
    clear.  Counted: marks in the digits' band (their median top to median bottom), within a
    digit height of the first or last digit, at least :data:`_LEFT_OUT_SIZE` of a digit's height
    across and no larger than half of it, that do not run on out of that reach.
    """
    if len(digits) < 2:
        return 0.0
    boxes = [d.bbox for d in digits]
    height = int(median([h for _, _, _, h in boxes]))
    top = int(median([y for _, y, _, _ in boxes]))
    bottom = int(median([y + h for _, y, _, h in boxes]))
    marks = boxes + [s.bbox for s in separators]
    first, last = min(x for x, _, _, _ in marks), max(x + w for x, _, w, _ in marks)
    digit_ink = float(median([int(np.count_nonzero(d.crop)) for d in digits]))
    if height <= 0 or bottom <= top or digit_ink <= 0:
        return 0.0
    most = 0.0
    for lo, hi, far in ((first - height, first, "left"), (last, last + height, "right")):
        lo, hi = max(0, lo), min(ink.shape[1], hi)
        if hi - lo < 2:
            continue
        count, _, stats, _ = label_components(ink[max(0, top) : bottom, lo:hi])
        left_out = 0
        for x, _, w, h, area in stats[1:count]:
            size = max(w, h)
            # A mark reaching the window's far side runs on beyond it (print, another number).
            runs_on = x == 0 if far == "left" else x + w == hi - lo
            if _LEFT_OUT_SIZE * height <= size <= 0.5 * height and not runs_on:
                left_out += int(area)
        most = max(most, left_out / digit_ink)
    return most


def estimate_digit_height(boxes: list[Box], areas: np.ndarray) -> int:
    """Typical height of the digits among component boxes (0 if there is no stroke of any size)."""
    heights = np.array([b[3] for b in boxes])
    if heights.size == 0 or heights.max() < 8:
        return 0
    big = heights[(heights >= 0.5 * heights.max()) & (areas >= 0.1 * areas.max())]
    return int(median(big)) if big.size else int(heights.max())


def plan_characters(
    boxes: list[Box], areas: np.ndarray, digit_height: int, broken_digits: bool = False, stack_gap: float = _STACK_GAP
) -> tuple[list[list[int]], list[tuple[int, str]]]:
    """Decide which components form each digit and which are separators.

    Pure geometry on component boxes ``(x, y, w, h)``: returns digit groups
    (lists of component indices, left to right) and ``(index, char)`` for
    separators.  Components overlapping horizontally by half the narrower one
    belong to the same digit (a broken stroke, a detached bar); small marks
    in the lower part of the line between two digits are separators, and so are
    flat strokes at mid-height between them (:func:`hyphen_marks`); other
    small marks are specks.  With ``broken_digits`` (inside a box), specks
    standing one above another beside the digits are a digit of their own
    (:func:`stacked_specks`, specks up to ``stack_gap`` of a digit's height apart).
    """
    hyphens = set(hyphen_marks(boxes, digit_height))
    small = _small_marks(boxes, digit_height)
    for i in stacked_specks(boxes, small, digit_height, stack_gap) if broken_digits else ():
        small[i] = False  # the pieces of a digit broken into specks (a faint 1) are a digit
    big = [i for i, s in enumerate(small) if not s and i not in hyphens]
    big.sort(key=lambda i: boxes[i][0])
    groups: list[list[int]] = []
    for i in big:
        x, y, w, h = boxes[i]
        if groups:
            gx0, gx1, gy0, gy1 = _group_extent(groups[-1], boxes)
            overlap = min(x + w, gx1) - max(x, gx0)
            # Two full-height strokes side by side are two digits (a slanted 1 leaning over
            # its neighbour); a piece of a broken digit is shorter than a digit.
            both_full = h >= 0.75 * digit_height and gy1 - gy0 >= 0.75 * digit_height
            if overlap >= 0.5 * min(w, gx1 - gx0) and not both_full:
                groups[-1].append(i)
                continue
        groups.append([i])
    if not groups:
        return [], []
    groups = _merge_flat_fragments(groups, boxes, digit_height)
    baseline = median([boxes[g[0]][1] + boxes[g[0]][3] for g in groups])
    top = median([boxes[g[0]][1] for g in groups])
    marks = [i for i, s in enumerate(small) if s]
    dots = dotted_rule_marks([boxes[i] for i in marks], digit_height)
    rule = {i for i, dot in zip(marks, dots, strict=True) if dot}
    separators = []
    for i, s in enumerate(small):
        if not s or i in rule or i in hyphens:
            continue
        x, y, w, h = boxes[i]
        centre_x, centre_y = x + w / 2, y + h / 2
        lefts = [min(boxes[j][0] for j in g) for g in groups]
        rights = [max(boxes[j][0] + boxes[j][2] for j in g) for g in groups]
        between = any(r <= centre_x + 2 for r in rights) and any(left >= centre_x - 2 for left in lefts)
        low = centre_y > top + 0.6 * (baseline - top) and y + h >= baseline - 0.35 * digit_height
        blob = max(w, h) >= 0.06 * digit_height and areas[i] >= 0.3 * w * h
        if between and low and blob:
            comma = h > _COMMA_ASPECT * w and h >= _COMMA_HEIGHT * digit_height and y + h >= baseline
            separators.append((i, "," if comma else "."))
        else:
            # A small mark that touches a digit horizontally is a broken-off piece of it.
            for g in groups:
                gx0 = min(boxes[j][0] for j in g)
                gx1 = max(boxes[j][0] + boxes[j][2] for j in g)
                if gx0 - 2 <= centre_x <= gx1 + 2 and top - 0.2 * digit_height <= centre_y <= baseline:
                    if areas[i] >= 0.05 * max(areas[j] for j in g):
                        g.append(i)
                    break
    kept = _spaced_separators(separators, groups, boxes, digit_height) + [(i, "-") for i in sorted(hyphens)]
    return groups, sorted(kept, key=lambda sep: boxes[sep[0]][0])


def hyphen_marks(boxes: list[Box], digit_height: int) -> list[int]:
    """Which components ``(x, y, w, h)`` are hyphens between digits (a date written 3-7-2025).

    A hyphen is a flat stroke (:data:`_HYPHEN_HEIGHT`, :data:`_HYPHEN_FLAT`, :data:`_HYPHEN_LENGTH`)
    clear of the digits on either side of it, its middle at mid-height of each of the two digits
    next to it (:data:`_HYPHEN_BAND`) and at most a digit's height from each.  The bar of a 5 broken
    off stands over it or above its top, a 7's or a 4's crosses their stem, a minus sign has no
    digit before it.
    """
    if not boxes:
        return []
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    xs, ys, ws, hs = b.T
    flat = (
        (hs <= _HYPHEN_HEIGHT * digit_height)
        & (ws >= _HYPHEN_FLAT * hs)
        & (ws >= _HYPHEN_LENGTH[0] * digit_height)
        & (ws <= _HYPHEN_LENGTH[1] * digit_height)
    )
    tall = b[hs >= 0.5 * digit_height]
    ends = tall[:, 0] + tall[:, 2]
    out = []
    for i in np.flatnonzero(flat):
        x, y, w, h = (int(v) for v in b[i])
        left, right = ends <= x + 1, tall[:, 0] >= x + w - 1
        if not left.any() or not right.any() or not (left | right).all():  # a digit stands across it
            continue
        before = tall[left][np.argmax(ends[left])]
        after = tall[right][np.argmin(tall[right, 0])]
        if x - (before[0] + before[2]) > digit_height or after[0] - (x + w) > digit_height:
            continue
        middle = y + h / 2
        # Within the band of each: a 5's bar broken off and set beside it stands over its top.
        if all(d[1] + _HYPHEN_BAND[0] * d[3] <= middle <= d[1] + _HYPHEN_BAND[1] * d[3] for d in (before, after)):
            out.append(int(i))
    return out


def _small_marks(boxes: list[Box], digit_height: int) -> list[bool]:
    """Which marks are too small to be a digit by themselves: specks, dots, a comma, a hyphen's stroke."""
    return [max(b[2], b[3]) < 0.38 * digit_height for b in boxes]


def loosely_stacked_specks(boxes: list[Box], digit_height: int) -> set[int]:
    """The specks that stand one above another only when up to :data:`_LOOSE_STACK_GAP` of a digit's
    height apart, not at :data:`_STACK_GAP`: a digit broken further, read as one with doubt."""
    small = _small_marks(boxes, digit_height)
    strict = stacked_specks(boxes, small, digit_height)
    return set(stacked_specks(boxes, small, digit_height, _LOOSE_STACK_GAP)) - set(strict)


def stacked_specks(boxes: list[Box], small: list[bool], digit_height: int, stack_gap: float = _STACK_GAP) -> list[int]:
    """The small marks (``small``) that stand one above another, nearly touching, as tall as
    :data:`_STACK_HEIGHT` of a digit and no wider than :data:`_STACK_WIDTH`, in the line of the
    field's digits and beside one of them: a faint digit that binarisation broke into specks,
    each too small to count (a faint 1 read as nothing)."""
    digits = [boxes[i] for i, is_small in enumerate(small) if not is_small]
    if not digits:
        return []
    # Left to right: a mark is paired only with those that start before it ends.
    marks = sorted((i for i, is_small in enumerate(small) if is_small), key=lambda i: boxes[i][0])
    parent = {i: i for i in marks}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    gap = stack_gap * digit_height
    for a, i in enumerate(marks):
        xi, yi, wi, hi = boxes[i]
        for j in marks[a + 1 :]:
            xj, yj, wj, hj = boxes[j]
            if xj > xi + wi + 2:
                break
            if max(yi, yj) - min(yi + hi, yj + hj) <= gap:
                parent[root(j)] = root(i)
    stacks: dict[int, list[int]] = {}
    for i in marks:
        stacks.setdefault(root(i), []).append(i)
    out = []
    for members in stacks.values():
        if len(members) < 2:
            continue
        x0 = min(boxes[i][0] for i in members)
        x1 = max(boxes[i][0] + boxes[i][2] for i in members)
        y0 = min(boxes[i][1] for i in members)
        y1 = max(boxes[i][1] + boxes[i][3] for i in members)
        if y1 - y0 < _STACK_HEIGHT * digit_height or x1 - x0 > _STACK_WIDTH * digit_height:
            continue
        beside = any(
            max(bx - x1, x0 - bx - bw) <= digit_height and min(y1, by + bh) - max(y0, by) >= 0.5 * (y1 - y0)
            for bx, by, bw, bh in digits
        )
        if beside:
            out.extend(members)
    return sorted(out)


def dotted_rule_marks(boxes: list[Box], digit_height: int) -> list[bool]:
    """Which of a field's small marks ``(x, y, w, h)`` are dots of a dotted rule.

    A dot of a rule has at least two marks of its size at its height, the
    nearest closer than half a digit's height: the dots of a rule stand a few
    pixels apart, while the separators of a number ("1,250,000.00") stand
    digits apart, so none of them has a neighbour that near.
    """
    if not boxes:
        return []
    b = np.asarray(boxes, np.float64)
    cx, cy, size = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, b[:, 2:].max(axis=1)
    tolerance = max(2.0, _DOT_ROW * digit_height)
    # Marks sorted by height on the page: each one's row-mates lie in one window of that order.
    order = np.argsort(cy, kind="stable")
    sorted_cy = cy[order]
    lo = np.searchsorted(sorted_cy, cy - tolerance, side="left")
    hi = np.searchsorted(sorted_cy, cy + tolerance, side="right")
    out = []
    for k in range(len(boxes)):
        mates = order[lo[k] : hi[k]]
        mates = mates[(mates != k) & (size[mates] >= 0.5 * size[k]) & (size[mates] <= 2 * size[k])]
        gaps = np.abs(cx[mates] - cx[k])
        out.append(bool(gaps.size >= 2 and gaps.min() < _DOT_GAP * digit_height))
    return out


def _spaced_separators(
    separators: list[tuple[int, str]], groups: list[list[int]], boxes: list[Box], digit_height: int
) -> list[tuple[int, str]]:
    """The separators, less a mark one digit from another that stands clearly higher than it.

    A mark one digit from a separator is a speck or a piece broken off a digit when it stands
    higher than the point or comma written on the line ("591.4.3" for 591.43); two marks at one
    height, as in a date written 5.2.2023, are both kept.  Two marks at one height in one gap
    between digits are no two separators: they are kept as one, ":" (the foot of a faint 1 broken
    into dots and a speck beside it made "446127" read "446..27"; reading sends such a field to
    review).
    """
    centres = sorted((min(boxes[j][0] for j in g) + max(boxes[j][0] + boxes[j][2] for j in g)) / 2 for g in groups)
    kept: list[tuple[int, str]] = []
    for i, char in sorted(separators, key=lambda sep: boxes[sep[0]][0]):
        x = boxes[i][0] + boxes[i][2] / 2
        if kept:
            previous = boxes[kept[-1][0]][0] + boxes[kept[-1][0]][2] / 2
            step = _bottom(boxes[i]) - _bottom(boxes[kept[-1][0]])
            between = sum(previous < c < x for c in centres)
            if between < 2 and abs(step) > _SEPARATOR_STEP * digit_height:
                if step < 0:
                    continue
                kept.pop()
            elif between == 0:
                kept[-1] = (kept[-1][0], ":")
                continue
        kept.append((i, char))
    return kept


def _bottom(box: Box) -> int:
    return box[1] + box[3]


# A group shorter than this share of the digit height that ends this share of it above the line's
# baseline hangs in the upper part of the line: no digit by itself, but a piece of one (a 5's flag
# lifted off its body, a tick beside a 9's head).  Calibration pages (seeds 91-100): 6 fields (4
# photos, 2 forms) had such a mark read as a digit of its own, a 1 mostly; joined, all 6 read as the
# truth has them, and no other field changed.  At 0.4 of the height above the baseline, 3 of them.
_HANGING_HEIGHT = 0.6
_HANGING_RISE = 0.25


def _group_extent(group: list[int], boxes: list[Box]) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) of the component boxes of one character's group."""
    return (
        min(boxes[j][0] for j in group),
        max(boxes[j][0] + boxes[j][2] for j in group),
        min(boxes[j][1] for j in group),
        max(boxes[j][1] + boxes[j][3] for j in group),
    )


def _merge_flat_fragments(groups: list[list[int]], boxes: list[Box], digit_height: int) -> list[list[int]]:
    """Join a group much shorter than a digit (a pen skip cut it off), or one hanging in the upper part
    of the line, to the nearest digit beside it."""

    merged = [list(g) for g in groups]
    spans = [_group_extent(g, boxes)[2:] for g in merged]
    bottoms = [y1 for y0, y1 in spans if y1 - y0 >= _HANGING_HEIGHT * digit_height]
    baseline = median(bottoms) if bottoms else None
    changed = True
    while changed and len(merged) > 1:
        changed = False
        for k, g in enumerate(merged):
            x0, x1, y0, y1 = _group_extent(g, boxes)
            hanging = (
                baseline is not None
                and y1 - y0 < _HANGING_HEIGHT * digit_height
                and y1 < baseline - _HANGING_RISE * digit_height
            )
            if y1 - y0 >= 0.45 * digit_height and not hanging:
                continue
            gaps = []
            for m in (k - 1, k + 1):
                if 0 <= m < len(merged):
                    nx0, nx1, ny0, ny1 = _group_extent(merged[m], boxes)
                    if ny1 - ny0 >= 0.45 * digit_height:
                        gaps.append((max(nx0 - x1, x0 - nx1), m))
            if gaps:
                gap, m = min(gaps)
                if gap <= 0.35 * digit_height:
                    merged[m].extend(g)
                    merged[m].sort(key=lambda j: boxes[j][0])
                    del merged[k]
                    changed = True
                    break
    return merged


def split_points(profile: np.ndarray, parts: int) -> list[int]:
    """Columns at which to cut a run of ``parts`` touching digits: the thinnest column near each even split."""
    width = len(profile)
    pitch = width / parts
    cuts = []
    for k in range(1, parts):
        centre = int(round(k * pitch))
        lo, hi = max(1, int(centre - 0.3 * pitch)), min(width - 1, int(centre + 0.3 * pitch))
        window = profile[lo:hi]
        cuts.append(lo + int(np.argmin(window)) if window.size else centre)
    return cuts


def width_penalty(width: int, digit_height: int) -> float:
    """Log-odds against one digit being this wide: none up to 1.2 times its height, steeply more beyond."""
    if digit_height <= 0:
        return 0.0
    return -4.0 * max(0.0, width / digit_height - 1.2)


def split_parts(width: int, digit_height: int) -> int:
    """How many digits a run of ink this wide most likely holds (handwritten digits are ~0.72 as wide as tall)."""
    return max(1, int(round(width / (0.72 * digit_height))))


def with_split_alternatives(seg: Segment, digit_height: int) -> Segment:
    """``seg`` with candidate splits attached when it is wide enough to be touching digits.

    Width alone cannot tell a wide 5 or 0 from two touching digits, so both
    readings are kept and the classifiers decide (see :mod:`ocr.read`).
    """
    x, y, w, h = seg.bbox
    if w <= _MIN_RUN_WIDTH * digit_height:
        # Too narrow to cut by its width; the field's digit height stays with it for a second look
        # (ocr.read.run_together: a 1 run into its neighbour).
        return replace(seg, digit_height=digit_height)
    counts = sorted({max(2, split_parts(w, digit_height)), 2})
    alternatives = [tuple(split_touching(seg, parts, digit_height)) for parts in counts]
    # A narrow 1 touching its neighbour joins it far from the middle: also try the thinnest column anywhere.
    alternatives.append(tuple(_split_at(seg, _thinnest_column(seg.crop), digit_height)))
    # A cut that leaves a piece far shorter than a digit (the tail of a comma,
    # a serif) is no way of cutting digits apart.
    kept = tuple(a for a in alternatives if len(a) >= 2 and all(p.bbox[3] >= 0.5 * digit_height for p in a))
    return replace(seg, alternatives=kept, digit_height=digit_height)


def _thinnest_column(crop: np.ndarray) -> int:
    profile = (crop > 0).sum(axis=0)
    w = len(profile)
    lo, hi = max(1, int(0.12 * w)), max(2, int(0.88 * w))
    return lo + int(np.argmin(profile[lo:hi]))


def _split_at(seg: Segment, column: int, digit_height: int) -> list[Segment]:
    return _pieces(seg, [0, column, seg.bbox[2]], digit_height)


def split_touching(seg: Segment, parts: int, digit_height: int = 0) -> list[Segment]:
    """Cut a segment into ``parts`` pieces at the thinnest columns near even spacing."""
    x, y, w, h = seg.bbox
    if parts <= 1:
        return [seg]
    profile = (seg.crop > 0).sum(axis=0)
    return _pieces(seg, [0, *split_points(profile, parts), w], digit_height)


def _pieces(seg: Segment, cuts: list[int], digit_height: int) -> list[Segment]:
    """The segment cut at the given columns, each piece trimmed to its ink rows."""
    x, y, w, _ = seg.bbox
    strokes = {c: strokes_crossed(seg.crop[:, c]) for c in cuts if 0 < c < w}
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=False):
        piece = seg.crop[:, a:b]
        rows = np.flatnonzero(piece.any(axis=1))
        if rows.size == 0 or b - a < 2:
            continue
        piece = piece[rows[0] : rows[-1] + 1]
        out.append(
            Segment(
                (x + a, y + int(rows[0]), b - a, piece.shape[0]),
                piece,
                cell=seg.cell,
                digit_height=digit_height,
                cut_strokes=max(strokes.get(a, 0), strokes.get(b, 0)),
                ink_left_out=seg.ink_left_out,
            )
        )
    return out


def strokes_crossed(column: np.ndarray) -> int:
    """Separate runs of ink down one column of a mask."""
    ink = np.concatenate([[False], column > 0])
    return int(np.count_nonzero(ink[1:] & ~ink[:-1]))


def slash_lean(crop: np.ndarray, digit_height: int) -> float | None:
    """The lean of a mark drawn as a slash is (:data:`_SLASH_HEIGHT`, :data:`_SLASH_STRAIGHT`,
    :data:`_SLASH_LEAN`), in degrees; None for any other mark.  Many 1s lean as far."""
    if crop.shape[0] < _SLASH_HEIGHT * digit_height:
        return None
    lean, spread = stroke_lean(crop)
    return lean if spread <= _SLASH_STRAIGHT and _SLASH_LEAN[0] <= lean <= _SLASH_LEAN[1] else None


def stroke_bow(mask: np.ndarray) -> tuple[float, float]:
    """(bow, one_stroke) of a tall mark (255 ink): how far the middle of its ink lies off the line
    through the middles of its top and bottom, against its height (negative: to the left, as a
    "(" is bowed), and the share of its rows that one stroke crosses."""
    ink = mask > 0
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size < 8:
        return 0.0, 0.0
    ink = ink[rows[0] : rows[-1] + 1]
    height = ink.shape[0]
    counts = ink.sum(axis=1)
    centres = (ink * np.arange(ink.shape[1])).sum(axis=1) / np.maximum(counts, 1)
    starts = np.count_nonzero(np.diff(ink.view(np.int8), axis=1, prepend=0) == 1, axis=1)
    end = max(1, int(0.15 * height))
    middle = slice(int(0.4 * height), max(int(0.4 * height) + 1, int(0.6 * height)))
    top, bottom = centres[:end].mean(), centres[-end:].mean()
    top_y, bottom_y = (end - 1) / 2, height - 1 - (end - 1) / 2
    middle_y = np.arange(height)[middle].mean()
    chord = top + (bottom - top) * (middle_y - top_y) / max(bottom_y - top_y, 1.0)
    return float((centres[middle].mean() - chord) / height), float(np.mean(starts == 1))


def arc_bow(crop: np.ndarray, digit_height: int) -> float | None:
    """The bow of a mark drawn as a parenthesis is (:data:`_ARC_HEIGHT`, :data:`_ARC_WIDTH`,
    :data:`_ARC_ONE_STROKE`, :data:`_ARC_BOW`); None for any other mark.  Some 1s are as bowed."""
    height, width = crop.shape[:2]
    if height < _ARC_HEIGHT * digit_height or width > _ARC_WIDTH * height:
        return None
    bow, one_stroke = stroke_bow(crop)
    return bow if one_stroke >= _ARC_ONE_STROKE and abs(bow) >= _ARC_BOW else None


def stroke_width(mask: np.ndarray) -> float:
    """Mean width (pixels) of the strokes of a binary mask: ink area over half its outline length."""
    ink = (mask > 0).view(np.uint8)
    area = float(cv2.countNonZero(ink))
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(c, True) for c in contours)
    return area / max(outline / 2, 1.0)


def thicken_strokes(crop: np.ndarray, min_share: float = 0.08, width: float | None = None) -> np.ndarray:
    """A digit crop (255 ink) whose strokes are at least ``min_share`` of its size thick.

    MNIST digits are written with a pen about a tenth of their height wide; a
    fine pen or a faint scan leaves strokes of a pixel or two that shrink to
    nothing when the digit is scaled down to the classifiers' size.
    """
    if crop.size == 0:
        return crop
    size = max(crop.shape)
    width = stroke_width(crop) if width is None else width
    grow = int(round(min_share * 1.4 * size - width))
    if width >= min_share * size or grow < 1:
        return crop
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
    padded = cv2.copyMakeBorder(crop, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0)
    return cv2.dilate(padded, kernel)


def frame_crop(crop: np.ndarray, margin: int = 2) -> np.ndarray:
    """The crop with an empty margin: its strokes end inside it, not on its border.

    Segment crops are cut to their ink, so a stroke of the digit (the bar of a 5
    broken off by a faint scan) touches the border and would be taken for a
    fragment of a box line by :func:`ocr.normalize.normalize_digit`; lines are
    already removed from them.
    """
    if crop.size == 0:
        return crop
    return cv2.copyMakeBorder(crop, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)


def reading_crop(crop: np.ndarray, width: float | None = None) -> np.ndarray:
    """A segment's crop (255 ink) as the classifiers read it: thin strokes thickened, an empty
    margin framed round it, normalised to MNIST's 28x28.

    Raises BlankCropError when nothing of a stroke is left.
    """
    return normalize_digit(frame_crop(thicken_strokes(crop, width=width)), bright_ink=True)


# Reading a digit from the page's gray (:func:`gray_reading_crop`): the ink around its strokes within
# this share of the digit height (2 px at least) is read with them; the paper is this percentile of
# the gray beyond that reach, the ink's full darkness this percentile of the gray under the strokes.
_GRAY_REACH = 0.12
_GRAY_PAPER_PERCENTILE = 60
_GRAY_INK_PERCENTILE = 20


def gray_reading_crop(gray: np.ndarray, ink: np.ndarray, seg: Segment) -> np.ndarray:
    """A digit as the classifiers read it, from the page's gray rather than from its ink mask.

    ``gray`` is the flattened page the segment was cut from (paper near 255) and ``ink`` the
    page's ink mask, both in the pixels of ``seg.bbox``.  Each pixel within reach of the
    segment's strokes (:data:`_GRAY_REACH`) counts as much ink as it is dark between the paper and
    the strokes' own darkness, as MNIST's soft strokes do; farther pixels count for none, and so
    does ink that is not the segment's (a neighbour, the other piece of a cut run, a box's rule).
    A stroke's light edge or a loop drawn lighter than the page's threshold (the left side of a
    9's head, left a 7 by the mask) is read as the writer drew it.

    Raises BlankCropError as :func:`reading_crop` does.
    """
    x, y, w, h = seg.bbox
    reach = max(2, round(_GRAY_REACH * max(seg.digit_height, h)))
    height, width = gray.shape
    x0, y0, x1, y1 = max(0, x - reach), max(0, y - reach), min(width, x + w + reach), min(height, y + h + reach)
    levels = gray[y0:y1, x0:x1]
    window = levels.astype(np.float32)
    strokes = np.zeros(window.shape, np.uint8)
    strokes[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = seg.crop[: max(0, y1 - y), : max(0, x1 - x)]
    if not strokes.any():
        raise BlankCropError("no stroke under the segment")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    reached = cv2.dilate(strokes, kernel) > 0
    others = (ink[y0:y1, x0:x1] > 0) & (strokes == 0)
    near = reached & ~others
    paper_levels = levels[~reached & ~others]
    paper = _level(paper_levels if paper_levels.size >= 10 else levels.ravel(), _GRAY_PAPER_PERCENTILE)
    full = _level(levels[strokes > 0], _GRAY_INK_PERCENTILE)  # the strokes' own darkness
    darkness = np.clip((paper - window) / max(paper - full, 1.0), 0.0, 1.0)
    darkness[~near] = 0.0
    return normalize_digit((darkness * 255).astype(np.uint8), bright_ink=True)


def _level(values: np.ndarray, q: float) -> float:
    """The gray level ``q`` percent of the way up ``values`` (1-D, non-empty), to the nearest one of them:
    ``np.percentile``'s own cost is most of a digit's on a page."""
    k = int(round(q / 100 * (values.size - 1)))
    return float(np.partition(values, k)[k])
