"""Segmentation inside a field: line removal, broken and touching digits, separators."""

import cv2
import numpy as np
import pytest

from ocr.cleanup import clean_page
from ocr.fields import find_fields, line_masks
from ocr.geometry import FieldRegion
from ocr.normalize import normalize_digit
from ocr.segment import (
    Segment,
    dotted_rule_marks,
    frame_crop,
    ink_left_out,
    plan_characters,
    remove_lines,
    rule_band,
    segment_field,
    split_points,
    split_touching,
    stroke_along_border,
    stroke_width,
    strokes_crossed,
    thicken_strokes,
    with_split_alternatives,
)
from tests.ocr.drawing import blank, draw_comb, draw_digit, fill_comb


def _segments(page, region=None):
    clean = clean_page(page, deskew=False)
    h_mask, v_mask = line_masks(clean.ink)
    if region is None:
        (region,) = find_fields(clean.ink)
    return segment_field(clean.ink, h_mask, v_mask, region)


def test_a_stroke_along_a_comb_wall_is_told_for_its_cell(mnist):
    # A 0 whose left side lies on its cell's wall: the wall is thicker there than the comb's
    # walls are elsewhere.  Its neighbours are written clear of the walls.
    page = blank(400, 800)
    draw_comb(page, 100, 100, 4)
    fill_comb(page, [mnist.x_test[0], None, None, mnist.x_test[1]], 100, 100)
    cv2.line(page, (150, 112), (150, 144), 0, 6)  # cell 1's 0: its left side on the wall at x=150,
    cv2.ellipse(page, (160, 112), (10, 6), 0, 180, 360, 0, 4)  # its top, right side and bottom inside
    cv2.line(page, (170, 112), (170, 144), 0, 4)
    cv2.ellipse(page, (160, 144), (10, 6), 0, 0, 180, 0, 4)
    clean = clean_page(page, deskew=False)
    h_mask, v_mask = line_masks(clean.ink)
    (region,) = find_fields(clean.ink)
    assert region.kind == "comb" and len(region.cells) == 4
    assert stroke_along_border(clean.ink, h_mask, v_mask, region, {1})
    assert stroke_along_border(clean.ink, h_mask, v_mask, region, {0})  # the wall it lies on is cell 0's too
    assert not stroke_along_border(clean.ink, h_mask, v_mask, region, {3})
    assert not stroke_along_border(clean.ink, h_mask, v_mask, region, set())


def test_comb_gives_one_segment_per_filled_cell(mnist):
    page = blank(400, 800)
    draw_comb(page, 100, 100, 6)
    fill_comb(page, [mnist.x_test[0], None, mnist.x_test[1], mnist.x_test[2], None, None], 100, 100)
    segs = _segments(page)
    assert [s.cell for s in segs] == [0, 2, 3]
    assert all(s.is_digit and s.crop.any() for s in segs)


def test_comb_borders_askew_of_its_cells_are_removed(mnist):
    # A comb whose top and bottom borders drop 12 px across it (a photographed sheet flattened a
    # little off), its cells found square to the page: the bands along the cells' edges lose the
    # borders at its ends, where what was left of them joined the first and last digits.
    page = blank(300, 600)
    x0, y0, cells, cell_w, cell_h, drop = 100, 100, 8, 50, 56, 12
    x1 = x0 + cells * cell_w
    cv2.line(page, (x0, y0), (x1, y0 + drop), 0, 3)
    cv2.line(page, (x0, y0 + cell_h), (x1, y0 + cell_h + drop), 0, 3)
    for k in range(cells + 1):
        x = x0 + k * cell_w
        top = y0 + round(drop * k / cells)
        cv2.line(page, (x, top), (x, top + cell_h), 0, 3)
    for k in range(cells):
        top = y0 + round(drop * (k + 0.5) / cells)
        draw_digit(page, mnist.x_test[k], x0 + k * cell_w + 7, top + 10, 36)
    clean = clean_page(page, deskew=False)
    h_mask, v_mask = line_masks(clean.ink)
    inset = drop // 2 + 3
    region = FieldRegion(
        "comb",
        (x0 - 1, y0 - 1, x1 - x0 + 3, cell_h + drop + 3),
        tuple((x0 + k * cell_w + 3, y0 + inset, cell_w - 5, cell_h - 2 * inset + drop) for k in range(cells)),
    )
    segs = segment_field(clean.ink, h_mask, v_mask, region)
    assert [s.cell for s in segs] == list(range(cells))
    # Each is its digit alone: no piece of a border (as long as the cell is wide) joined to it.
    assert all(s.bbox[2] < 0.8 * cell_w and s.bbox[3] < 0.8 * cell_h for s in segs), [s.bbox for s in segs]


def test_stroke_crossing_the_box_line_is_kept():
    page = blank(300, 500)
    draw_comb(page, 100, 100, 3)
    # a long "1" that runs through the bottom border of the middle cell
    cv2.line(page, (175, 110), (172, 180), 0, 5)
    (seg,) = _segments(page)
    x, y, w, h = seg.bbox
    assert y + h >= 175  # the part below the border is still attached
    assert h >= 60


def test_remove_lines_restores_only_crossings():
    ink = np.zeros((40, 60), np.uint8)
    ink[20:23, :] = 255  # a rule
    ink[5:35, 30:33] = 255  # a stroke crossing it
    lines = np.zeros_like(ink)
    lines[20:23, :] = 255
    out = remove_lines(ink, lines)
    assert out[20:23, 30:33].all()  # the crossing is kept
    assert not out[20:23, :25].any() and not out[20:23, 38:].any()  # the rule is gone


def test_touching_digits_are_split(mnist):
    page = blank(300, 700)
    cv2.rectangle(page, (80, 80), (520, 200), 0, 2)
    # three digits drawn so close that their strokes touch
    for i, x in enumerate((110, 158, 206)):
        draw_digit(page, mnist.x_test[[3, 4, 7][i]], x, 95, 90)
    segs = [s for s in _segments(page) if s.is_digit]
    # Cut already, or offered as splits for the classifiers to weigh: three digits must be one of the readings.
    most = sum(max([1, *(len(a) for a in s.alternatives)]) for s in segs)
    assert len(segs) <= 3 <= most


def test_broken_strokes_form_one_digit(mnist):
    page = blank(300, 600)
    cv2.rectangle(page, (80, 80), (480, 200), 0, 2)
    draw_digit(page, mnist.x_test[1], 120, 95, 90)  # a 2
    page[130:134, 100:240] = 255  # cut it with a white gap
    draw_digit(page, mnist.x_test[0], 240, 95, 90)  # a 7
    segs = [s for s in _segments(page) if s.is_digit]
    assert len(segs) == 2


def _amount(mnist, separator) -> np.ndarray:
    """A box holding four digits with ``separator(page, x)`` drawn low between the second and third."""
    page = blank(300, 800)
    cv2.rectangle(page, (60, 80), (700, 200), 0, 2)
    x = 80
    for i, idx in enumerate([2, 1, 0, 3]):
        if i == 2:
            separator(page, x)
            x += 25
        draw_digit(page, mnist.x_test[idx], x, 95, 90)
        x += 75
    return page


def test_decimal_point_is_a_separator(mnist):
    page = _amount(mnist, lambda page, x: cv2.circle(page, (x + 8, 170), 5, 0, -1))
    assert "".join(s.char or "d" for s in _segments(page)) == "dd.dd"


def test_a_comma_is_told_from_a_point(mnist):
    # A comma (a dot with a tail reaching below the line) between digits, as a European amount is written.
    def comma(page, x):
        cv2.circle(page, (x + 9, 170), 5, 0, -1)
        cv2.line(page, (x + 9, 172), (x + 2, 182), 0, 4)

    assert "".join(s.char or "d" for s in _segments(_amount(mnist, comma))) == "dd,dd"


def test_numbers_on_a_dotted_rule_have_no_separators(mnist):
    # Digits written on a dotted line: the dots between and under them are the rule, not decimal points.
    page = blank(300, 800)
    cv2.rectangle(page, (60, 60), (700, 220), 0, 2)
    for x in range(80, 680, 9):
        cv2.circle(page, (x, 190), 2, 0, -1)
    for i, idx in enumerate([2, 1, 0, 3]):
        draw_digit(page, mnist.x_test[idx], 90 + 120 * i, 100, 90)
    segs = _segments(page)
    assert "".join(s.char or "d" for s in segs) == "dddd"


def test_dotted_rule_marks_are_rows_of_close_dots_not_spaced_separators():
    # Four dots 8 px apart at one height are a rule; three points three digits apart
    # ("1,250,000.00") and a lone point are not, and neither is a speck above the row.
    rule = [(100 + 8 * k, 95, 4, 4) for k in range(4)]
    points = [(30 + 90 * k, 95, 5, 5) for k in range(3)]
    assert dotted_rule_marks(rule, 50) == [True] * 4
    assert dotted_rule_marks(points, 50) == [False] * 3
    assert dotted_rule_marks([*rule[:2], (116, 60, 4, 4)], 50) == [False] * 3


def test_of_two_separators_a_digit_apart_the_lower_is_kept_unless_they_stand_level():
    # Digits 0-3 at x 0-140; a mark between digits 1 and 2 standing higher than the point
    # between digits 2 and 3 (a piece broken off a digit): only the point is a separator.
    boxes = [(0, 0, 30, 50), (40, 0, 30, 50), (80, 0, 30, 50), (120, 0, 30, 50), (73, 30, 5, 5), (113, 44, 5, 5)]
    areas = np.array([600, 600, 600, 600, 20, 20])
    groups, separators = plan_characters(boxes, areas, 50)
    assert groups == [[0], [1], [2], [3]]
    assert separators == [(5, ".")]
    # Level with each other, both are kept (a date written 5.2.2023), and so are two digits apart (05.02.2023).
    level = [*boxes[:4], (150, 0, 30, 50), (33, 44, 5, 5), (73, 45, 5, 5)]
    groups, separators = plan_characters(level, np.array([600] * 5 + [20, 20]), 50)
    assert separators == [(5, "."), (6, ".")]
    apart = [*boxes[:4], (150, 0, 30, 50), (33, 44, 5, 5), (113, 30, 5, 5)]
    groups, separators = plan_characters(apart, np.array([600] * 5 + [20, 20]), 50)
    assert separators == [(5, "."), (6, ".")]


def test_two_marks_level_in_one_gap_between_digits_are_one_colon_not_two_points():
    # The foot of a faint 1 broken into dots, and a speck beside it, both low between a 6 and a 2:
    # "446127" read "446..27" and was accepted as 44627.  They are kept as one mark, ":".
    digits = [(0, 0, 30, 50), (40, 0, 30, 50), (100, 0, 30, 50), (140, 0, 30, 50)]  # a wide gap at 70-100
    areas = np.array([600, 600, 600, 600, 24, 20])
    groups, separators = plan_characters([*digits, (74, 42, 5, 6), (88, 41, 5, 5)], areas, 50)
    assert groups == [[0], [1], [2], [3]]
    assert separators == [(4, ":")]
    # One mark in each of two gaps is a separator each (a date written 5.2.2023).
    assert plan_characters([*digits, (74, 42, 5, 6), (132, 42, 5, 5)], areas, 50)[1] == [(4, "."), (5, ".")]


def test_specks_are_not_digits(mnist):
    page = blank(300, 600)
    cv2.rectangle(page, (80, 80), (480, 200), 0, 2)
    draw_digit(page, mnist.x_test[0], 150, 95, 90)
    page[110:112, 400:402] = 0
    page[185:187, 300:302] = 0
    segs = _segments(page)
    assert len(segs) == 1 and segs[0].is_digit


def test_a_faint_digit_broken_into_specks_in_a_box_is_a_digit(mnist):
    # A faint 1 that binarisation left as a dotted stroke beside the other digits: each speck is
    # too small to count, and the amount lost a digit, accepted (621531 read 62153).
    page = blank(300, 600)
    cv2.rectangle(page, (80, 80), (480, 200), 0, 2)
    draw_digit(page, mnist.x_test[0], 110, 95, 90)  # a 7
    draw_digit(page, mnist.x_test[1], 200, 95, 90)  # a 2
    for y in range(112, 178, 10):  # the 1: seven dots down a slightly slanted stroke
        cv2.circle(page, (330 - (y - 112) // 12, y), 3, 0, -1)
    segs = _segments(page)
    assert len(segs) == 3 and segs[2].bbox[3] >= 55  # the dots are one digit, as tall as the stroke
    # The same dots on a line of free writing are left out (a photo's grainy table makes such stacks).
    boxes = [(0, 0, 30, 50), (40, 0, 30, 50), *((80, y, 5, 5) for y in range(0, 50, 8))]
    areas = np.array([600, 600, *([20] * 7)])
    assert plan_characters(boxes, areas, 50)[0] == [[0], [1]]
    assert plan_characters(boxes, areas, 50, broken_digits=True)[0] == [[0], [1], list(range(2, 9))]
    # Far from the digits, or spread wider than a digit, they are still specks.
    far = [*boxes[:2], *((300, y, 5, 5) for y in range(0, 50, 8))]
    assert plan_characters(far, areas, 50, broken_digits=True)[0] == [[0], [1]]


def test_ink_left_out_between_digits_is_measured_against_a_digit():
    digits = [(0, 0, 30, 50), (40, 0, 30, 50), (120, 0, 30, 50)]
    areas = [600, 600, 600]
    pieces = [(80, 10, 10, 12), (95, 30, 8, 10)]  # a broken digit's pieces in the gap: 90 + 60 pixels
    groups = [[0], [1], [2]]
    assert ink_left_out([*digits, *pieces], np.array([*areas, 90, 60]), 50, groups, []) == pytest.approx(0.25)
    # A piece taken for a separator is not left out; specks under 0.15 of a digit's height across
    # (scanner noise) and marks below the digits (a dotted rule) do not count; nor does ink
    # beyond the first and last digits.
    assert ink_left_out([*digits, *pieces], np.array([*areas, 90, 60]), 50, groups, [(3, "-")]) == pytest.approx(0.1)
    specks = [(80, 10, 5, 5), (95, 30, 6, 6), (100, 52, 10, 10), (160, 10, 12, 12)]
    assert ink_left_out([*digits, *specks], np.array([*areas, 25, 36, 100, 140]), 50, groups, []) == 0.0
    assert ink_left_out(digits[:1], np.array(areas[:1]), 50, [[0]], []) == 0.0


def test_empty_box_gives_no_segments():
    page = blank(300, 600)
    cv2.rectangle(page, (80, 80), (480, 200), 0, 2)
    assert _segments(page) == []


def test_plan_characters_geometry():
    # two digits, a separator low between them, a broken-off bar above the second digit
    boxes = [(0, 0, 30, 50), (40, 0, 30, 50), (33, 44, 4, 4), (45, -8, 20, 6)]
    areas = np.array([600, 600, 16, 80])
    groups, separators = plan_characters(boxes, areas, 50)
    assert groups == [[0], [1, 3]]
    assert separators == [(2, ".")]


def test_split_points_cut_at_the_thinnest_column():
    profile = np.array([5, 6, 7, 6, 1, 6, 7, 6, 5, 5])
    assert split_points(profile, 2) == [4]


@pytest.mark.parametrize("kind", ["box", "line"])
def test_free_field_segments_are_ordered_left_to_right(mnist, kind):
    page = blank(300, 800)
    for i in range(4):
        draw_digit(page, mnist.x_test[i], 100 + i * 85, 100, 80)
    region = FieldRegion(kind, (90, 90, 380, 100), ((92, 92, 376, 96),) if kind == "box" else ())
    segs = _segments(page, region)
    xs = [s.bbox[0] for s in segs]
    assert len(segs) == 4 and xs == sorted(xs)


def test_a_digit_broken_into_faint_pieces_still_fills_its_cell():
    page = blank(300, 500)
    draw_comb(page, 100, 100, 3)
    # A thin "1" in the middle cell that a faint scan broke into dots and dashes.
    for y in range(112, 148, 8):
        cv2.line(page, (175, y), (175, y + 3), 0, 2)
    segs = _segments(page)
    assert [s.cell for s in segs] == [1]


def test_a_dot_alone_leaves_a_cell_empty():
    page = blank(300, 500)
    draw_comb(page, 100, 100, 3)
    cv2.circle(page, (175, 130), 2, 0, -1)
    assert _segments(page) == []


def test_thin_strokes_are_thickened_and_thick_ones_left_alone(mnist):
    thin = np.zeros((60, 40), np.uint8)
    cv2.ellipse(thin, (20, 30), (15, 26), 0, 0, 360, 255, 1)
    assert stroke_width(thin) < 2
    assert stroke_width(thicken_strokes(thin)) >= 0.08 * 60
    thick = np.zeros((60, 40), np.uint8)
    cv2.ellipse(thick, (20, 30), (14, 25), 0, 0, 360, 255, 6)  # a pen as wide as MNIST's
    assert thicken_strokes(thick) is thick


def test_a_stroke_on_the_crop_border_survives_normalisation(mnist):
    # A 5 whose top bar broke off: in a tight crop the bar touches the border and
    # looks like a fragment of a box line unless the crop is framed.
    five = np.where(mnist.x_test[np.flatnonzero(mnist.y_test == 5)[0]] > 80, 255, 0).astype(np.uint8)
    rows = np.flatnonzero(five.any(axis=1))
    cols = np.flatnonzero(five.any(axis=0))
    crop = five[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    crop = cv2.resize(crop, (crop.shape[1] * 3, crop.shape[0] * 3), interpolation=cv2.INTER_NEAREST)
    crop[8:12, :] = 0  # the break under the bar
    crop[:8, :] = 0
    cv2.line(crop, (crop.shape[1] // 3, 2), (crop.shape[1] - 1, 2), 255, 4)  # the bar, across to the border
    widest_top_row = (normalize_digit(frame_crop(crop), bright_ink=True)[:9] > 0.3).sum(axis=1).max()
    assert widest_top_row >= 12  # the bar is there
    assert (normalize_digit(crop, bright_ink=True)[:9] > 0.3).sum(axis=1).max() < 12  # unframed, it is lost


@pytest.mark.parametrize("field_width", [520, 900])  # the rule spans the field, or a template's field is wider
def test_the_bar_of_a_digit_written_on_an_underline_is_kept(field_width):
    page = blank(300, 1000)
    cv2.line(page, (80, 200), (560, 200), 0, 2)  # the printed underline
    # A "2": a curve down to the rule and its bottom bar lying along the rule.
    cv2.ellipse(page, (150, 145), (28, 24), 0, 180, 360, 0, 5)
    cv2.line(page, (178, 145), (122, 198), 0, 5)
    cv2.line(page, (122, 198), (185, 198), 0, 5)
    region = FieldRegion("line", (70, 110, field_width, 100))
    (seg,) = _segments(page, region)
    x, y, w, h = seg.bbox
    assert x + w >= 180  # the bar's right end
    assert y + h <= 205  # and none of the rule beyond it
    assert w <= 75


def test_rule_band_leaves_strokes_along_the_rule():
    rule = np.zeros((20, 200), np.uint8)
    rule[10:12, :] = 255
    rule[6:12, 40:80] = 255  # a digit's bar lying on it
    band = rule_band(rule)
    assert band[10:12].all() and not band[6:9].any()


def test_no_split_leaves_a_piece_far_shorter_than_a_digit():
    # A digit with a comma's tail touching its foot: wide enough to try splits,
    # but a cut that leaves the tail alone is no pair of digits.
    crop = np.zeros((50, 52), np.uint8)
    cv2.ellipse(crop, (18, 25), (14, 22), 0, 0, 360, 255, 5)
    cv2.line(crop, (32, 46), (50, 40), 255, 4)
    cv2.line(crop, (44, 36), (50, 49), 255, 4)
    seg = with_split_alternatives(Segment((0, 0, 52, 50), crop), 50)
    assert all(piece.bbox[3] >= 25 for alternative in seg.alternatives for piece in alternative)


def test_strokes_crossed_counts_separate_runs_of_ink():
    assert strokes_crossed(np.array([0, 255, 255, 0, 0, 255, 0], np.uint8)) == 2
    assert strokes_crossed(np.array([255, 255, 0, 0], np.uint8)) == 1
    assert strokes_crossed(np.zeros(5, np.uint8)) == 0


def test_a_cut_through_overlapping_digits_is_marked():
    # Two rings side by side, touching at one point, against two rings overlapping
    # (an "00" written with the second 0 over the first's right side).
    apart = np.zeros((50, 80), np.uint8)
    cv2.ellipse(apart, (20, 25), (17, 22), 0, 0, 360, 255, 4)
    cv2.ellipse(apart, (58, 25), (17, 22), 0, 0, 360, 255, 4)
    overlapping = np.zeros((50, 70), np.uint8)
    cv2.ellipse(overlapping, (20, 25), (17, 22), 0, 0, 360, 255, 4)
    cv2.ellipse(overlapping, (48, 25), (17, 22), 0, 0, 360, 255, 4)
    touching = split_touching(Segment((0, 0, 80, 50), apart), 2, 50)
    crossed = split_touching(Segment((0, 0, 70, 50), overlapping), 2, 50)
    assert len(touching) == len(crossed) == 2
    assert all(piece.cut_strokes == 1 for piece in touching)
    assert all(piece.cut_strokes >= 2 for piece in crossed)


def test_a_short_mark_hanging_in_the_upper_part_of_a_line_joins_the_digit_beside_it():
    # Digits 0-3 50 px tall on one baseline (y 0-50).  A thin tick beside digit 3's head, 24 px
    # tall and ending 20 px above the baseline (a stray stroke of a 9), was read as a 1 of its own
    # ("28448069" read "284480691"); so was a 5's flag lifted off its body ("0551169427").
    digits = [(0, 0, 30, 50), (40, 0, 30, 50), (80, 0, 30, 50), (120, 0, 30, 50)]
    tick = (153, 6, 5, 24)
    areas = np.array([600, 600, 600, 600, 100])
    assert plan_characters([*digits, tick], areas, 50)[0] == [[0], [1], [2], [3, 4]]
    # As tall, but reaching down to the baseline, it is a digit of its own (a short 1).
    short_one = (160, 20, 5, 30)
    assert plan_characters([*digits, short_one], areas, 50)[0] == [[0], [1], [2], [3], [4]]


def test_a_digit_read_from_the_gray_keeps_its_light_strokes_and_leaves_out_other_ink():
    from ocr.errors import BlankCropError
    from ocr.segment import gray_reading_crop, reading_crop

    # A dark stem (gray 40) with a light bar on its top-left (gray 190): the page's threshold keeps
    # the stem alone, a 1; the writer drew a 7.
    gray = np.full((120, 160), 255, np.uint8)
    gray[20:90, 60:68] = 40
    gray[20:27, 30:60] = 190
    ink = np.where(gray < 128, 255, 0).astype(np.uint8)
    seg = Segment((60, 20, 8, 70), ink[20:90, 60:68].copy(), digit_height=70)

    def ink_width(crop: np.ndarray) -> int:
        cols = np.flatnonzero(crop.max(axis=0) > 0.3)
        return int(cols[-1] - cols[0] + 1)

    from_mask, from_gray = reading_crop(seg.crop), gray_reading_crop(gray, ink, seg)
    assert ink_width(from_gray) >= 2 * ink_width(from_mask)
    # A neighbour's dark stroke within reach is no part of it, nor is what lies beyond reach.
    gray[20:90, 71:77] = 40
    gray[20:27, 0:20] = 190
    ink = np.where(gray < 128, 255, 0).astype(np.uint8)
    np.testing.assert_allclose(gray_reading_crop(gray, ink, seg), from_gray, atol=0.02)
    with pytest.raises(BlankCropError):
        gray_reading_crop(gray, ink, Segment((60, 20, 8, 70), np.zeros((70, 8), np.uint8), digit_height=70))
