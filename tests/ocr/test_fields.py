"""Cleanup and auto-mode field finding on pages drawn in the test."""

import cv2
import numpy as np
import pytest

from ocr.cleanup import (
    blur_sigma,
    clean_page,
    descreen,
    estimate_skew,
    find_sheet,
    fit_segment_angle,
    ink_on_page,
    noise_level,
    normalize_illumination,
    paper_on_ground,
    scanner_streaks,
    sharpen_blur,
    smooth_noise,
    working_scale,
)
from ocr.fields import Rect, drop_false_walls, find_fields, group_rects, hairlines, merge_lines
from ocr.geometry import runs
from tests.ocr.drawing import back_showing_through, blank, draw_comb, draw_digit, fill_comb, rotate


# Up to 15 degrees where the page has rules or boxes (a crooked feed, a photo taken askew).
@pytest.mark.parametrize("degrees", [-12.0, -7.5, -4.0, -1.5, 0.0, 2.0, 4.5, 9.0, 14.0])
def test_skew_is_measured_and_removed(mnist, degrees):
    page = blank()
    draw_comb(page, 100, 100, 8)
    cv2.rectangle(page, (100, 300), (500, 380), 0, 2)
    cv2.putText(page, "Account number", (100, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
    crooked, _ = rotate(page, degrees)
    # The angle is fitted to the ink along each long stroke: far finer than Hough's two-degree bins.
    assert estimate_skew(255 - crooked) == pytest.approx(degrees, abs=0.1)
    clean = clean_page(crooked)
    assert clean.angle == pytest.approx(degrees, abs=0.1)
    fields = find_fields(clean.ink)
    assert [f.kind for f in fields] == ["comb", "box"]


def test_segment_angle_is_fitted_to_the_ink_and_ignores_a_crossing_stroke():
    ink = np.zeros((200, 400), np.uint8)
    slope = np.tan(np.radians(1.3))
    cv2.line(ink, (20, 100), (380, int(round(100 + 360 * slope))), 255, 2)
    cv2.line(ink, (200, 60), (205, 150), 255, 3)  # a pen stroke across the rule
    # End points a pixel or two off, as Hough gives them: 0.95 degrees between them.
    angle, support = fit_segment_angle(ink, np.array([20, 101, 380, 107]))
    assert angle == pytest.approx(1.3, abs=0.05)
    assert 300 < support <= 361
    # The same rule standing upright: the angle is measured from the vertical, clockwise positive.
    angle, _ = fit_segment_angle(np.ascontiguousarray(ink.T[:, ::-1]), np.array([99, 20, 93, 380]))
    assert angle == pytest.approx(1.3, abs=0.05)
    assert fit_segment_angle(np.zeros((50, 50), np.uint8), np.array([5, 25, 45, 25])) == (0.0, 0)


def test_segments_fitted_together_get_what_each_gets_alone():
    from ocr.cleanup import fit_segment_angles

    rng = np.random.default_rng(3)
    ink = np.zeros((300, 500), np.uint8)
    for _ in range(12):  # rules at small angles both ways, and upright ones
        x0, y0 = int(rng.integers(0, 300)), int(rng.integers(10, 290))
        cv2.line(ink, (x0, y0), (x0 + int(rng.integers(60, 200)), y0 + int(rng.integers(-6, 7))), 255, 2)
        cv2.line(ink, (y0, x0 // 2), (y0 + int(rng.integers(-6, 7)), x0 // 2 + int(rng.integers(60, 140))), 255, 2)
    segments = rng.integers(0, 300, size=(40, 4))
    segments[:5, 2] = segments[:5, 0]  # upright
    segments[5:8, 2:] = segments[5:8, :2]  # a single point: no fit
    segments[8:12] = segments[8:12][:, [2, 3, 0, 1]]  # ends given the other way round
    angles, support = fit_segment_angles(ink, segments)
    alone = [fit_segment_angle(ink, s) for s in segments]
    np.testing.assert_allclose(angles, [a for a, _ in alone], rtol=0, atol=1e-9)
    assert support.tolist() == [n for _, n in alone]
    assert support.any() and not support.all()
    empty_angles, empty_support = fit_segment_angles(ink, np.zeros((0, 4), np.int64))
    assert empty_angles.shape == empty_support.shape == (0,)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (2, 3), (1, 4000), (700, 1)])
def test_illumination_of_tiny_and_thin_pages(shape):
    flat = normalize_illumination(np.full(shape, 200, np.uint8))
    assert flat.shape == shape and flat.dtype == np.uint8
    assert flat.min() >= 250  # uniform paper becomes white


def test_illumination_gradient_and_shadow_are_flattened():
    page = blank(400, 600)
    cv2.putText(page, "1234", (200, 250), cv2.FONT_HERSHEY_SIMPLEX, 3, 20, 8)
    lit = page.astype(np.float32) * np.linspace(0.45, 1.0, 600)[None, :]  # dark on the left
    lit[:, :150] *= 0.7  # a shadow
    flat = normalize_illumination(lit.astype(np.uint8))
    paper = flat[20:80, :]
    assert paper.min() > 200  # the paper is paper everywhere
    assert flat[200:250, 200:450].min() < 80  # the ink keeps its contrast


def _printed_page() -> np.ndarray:
    page = blank(1200, 900)
    for i in range(12):
        cv2.putText(page, "Keep each digit inside its box.", (40, 60 + 40 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 30, 2)
    cv2.rectangle(page, (100, 700), (700, 800), 0, 2)
    return (page * 0.8).astype(np.uint8)  # paper at 204: noise added is not clipped at white


@pytest.mark.parametrize("sigma", [4, 10, 25])
def test_noise_level_measures_the_noise_and_not_the_print(sigma):
    page = _printed_page()
    assert noise_level(page) < 0.5  # print and a box on clean paper: no noise
    noisy = np.clip(page + np.random.default_rng(sigma).normal(0, sigma, page.shape), 0, 255).astype(np.uint8)
    assert noise_level(noisy) == pytest.approx(sigma, rel=0.2)
    assert noise_level(np.zeros((2, 900), np.uint8)) == 0.0  # thinner than the estimator's strips


def test_only_noisy_pages_are_smoothed():
    page = _printed_page()
    noisy = np.clip(page + np.random.default_rng(0).normal(0, 20, page.shape), 0, 255).astype(np.uint8)
    assert smooth_noise(page) is page
    smoothed = smooth_noise(noisy)
    paper = (slice(900, 1150), slice(100, 800))
    assert smoothed[paper].std() < 0.5 * noisy[paper].std()
    assert smoothed[700:703, 100:700].mean() < 100  # the box's rule stays dark
    # The same noise on a page shrunk to a quarter of its pixels averages out: left as it is.
    faint = np.clip(page + np.random.default_rng(0).normal(0, 12, page.shape), 0, 255).astype(np.uint8)
    assert smooth_noise(faint, scale=0.5) is faint


@pytest.mark.parametrize("sigma", [1.5, 2.0, 2.5])
def test_blur_is_measured_on_the_sharpest_edges(sigma):
    assert blur_sigma(normalize_illumination(_printed_page())) < 1.0
    blurred = normalize_illumination(cv2.GaussianBlur(_printed_page(), (0, 0), sigma))
    assert 0.75 * sigma < blur_sigma(blurred) < 1.1 * sigma
    assert blur_sigma(np.zeros((2, 2), np.uint8)) == 0.0


@pytest.mark.parametrize("sigma", [2.0, 2.5])
def test_only_a_blurred_page_is_sharpened(sigma):
    sharp = normalize_illumination(_printed_page())
    assert sharpen_blur(sharp) is sharp
    blurred = normalize_illumination(cv2.GaussianBlur(_printed_page(), (0, 0), sigma))
    measured = blur_sigma(blurred)
    sharpened = sharpen_blur(blurred)
    assert blur_sigma(sharpened) < 0.75 * measured
    assert sharpened[700:703, 100:700].mean() < blurred[700:703, 100:700].mean()  # the box's rule darker


@pytest.mark.parametrize(
    ("top", "bottom", "left", "right"), [(0, 90, 0, 40), (25, 0, 180, 0), (0, 0, 0, 14), (60, 60, 60, 60)]
)
def test_a_sheet_scanned_short_of_the_glass_is_found_inside_the_dark_ground(top, bottom, left, right):
    page = _printed_page()  # 1200 x 900, paper at 204
    cv2.rectangle(page, (0, 0), (899, 1199), 0, 2)  # a frame printed to the sheet's very edge
    scan = cv2.copyMakeBorder(page, top, bottom, left, right, cv2.BORDER_CONSTANT, value=35)
    found = paper_on_ground(scan)
    assert found is not None
    # Within a step of the copy it is found on (2 px), the frame's width beside the ground.
    assert np.abs(np.array(found) - [left, top, 900, 1200]).max() <= 4
    assert paper_on_ground(page) is None  # its frame is no ground
    # Dark print inside the sheet, however large, is no ground: a black bar across the page,
    # a filled logo, a bar reaching one edge but not across.
    printed = page.copy()
    printed[500:560, 30:870] = 0
    printed[100:300, 100:300] = 0
    printed[900:960, 0:500] = 0
    assert paper_on_ground(printed) is None
    # A page of nothing but dark ground is left as it is.
    assert paper_on_ground(np.full((1200, 900), 35, np.uint8)) is None


def test_a_cheque_laid_on_a_dark_bed_is_found_inside_it():
    cheque = _printed_page()[:330, :]  # 330 x 900, a third of the bed's height
    bed = np.full((1270, 900), 20, np.uint8)
    bed[150:480, :] = cheque
    assert paper_on_ground(bed) == (0, 150, 900, 330)
    bed = np.full((1270, 900), 20, np.uint8)
    bed[150:480, 200:800] = cheque[:, :600]
    found = paper_on_ground(bed)
    assert found is not None and np.abs(np.array(found) - [200, 150, 600, 330]).max() <= 2


def test_a_page_of_faint_marks_holds_no_ink():
    page = _printed_page()  # print at 30-0, paper at 204
    assert ink_on_page(normalize_illumination(page)) == "ink"
    light = (255 - (255 - page.astype(np.float32)) * 0.35).astype(np.uint8)  # a scanner set light
    assert ink_on_page(normalize_illumination(light)) == "ink"
    # The page showing through the back of a blank sheet: mirrored, blurred, at a quarter of its contrast.
    back = back_showing_through(page, 0.25)
    assert ink_on_page(normalize_illumination(back)) == "faint"
    paper = np.full(page.shape, 235, np.uint8)
    assert ink_on_page(normalize_illumination(paper)) == "blank"
    grainy = np.clip(paper + np.random.default_rng(0).normal(0, 6, paper.shape), 0, 255).astype(np.uint8)
    assert clean_page(grainy).holds == "blank"
    # A few digits on the page are ink, however small a share of it they are.
    note = paper.copy()
    cv2.putText(note, "25", (400, 600), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 60, 3)
    assert clean_page(note).holds == "ink"


@pytest.mark.parametrize("level", [60, 190])  # a streak dark as ink, or light as a hairline
def test_a_streak_the_length_of_the_page_is_cleared_but_strokes_crossing_it_are_kept(level):
    page = _printed_page()  # paper at 204
    cv2.rectangle(page, (20, 20), (879, 1179), 0, 2)  # a printed frame, within the margins
    page[:, 450:452] = np.minimum(page[:, 450:452], round(level * 0.8))  # dust on a feeder's glass
    page[600:602, :] = np.minimum(page[600:602, :], round(level * 0.8))  # a flatbed's lamp, across
    cv2.line(page, (400, 300), (500, 300), 0, 3)  # a stroke crossing the streak
    page = cv2.GaussianBlur(page, (0, 0), 0.7)  # the scanner's blur
    flat = normalize_illumination(page)
    streaks = scanner_streaks(flat)
    assert streaks is not None
    assert streaks[820:1100, 450:452].all() and streaks[600:602, 40:400].all()
    assert not streaks[299:302, 450:452].any()  # the crossing stroke keeps its ink
    assert not streaks[:590, 18:24].any() and not streaks[18:24, :440].any()  # the frame stays
    cleaned = clean_page(page, deskew=False)
    assert not cleaned.ink[820:1100, 450:452].any() and cleaned.ink[299:302, 445:457].all()
    assert not cleaned.fine[820:1100, 448:454].any()
    assert scanner_streaks(normalize_illumination(_printed_page())) is None


def test_a_sheet_photographed_on_a_table_is_found_by_its_corners():
    from ocr.geometry import transform_box

    page = _printed_page()  # 1200 x 900, paper at 204
    table = np.full((1400, 1100), 60, np.uint8)
    table[100:1300, 100:1000] = page
    corners = np.float32([[100, 100], [1000, 100], [1000, 1300], [100, 1300]])
    seen = np.float32([[130, 80], [1010, 140], [980, 1330], [90, 1270]])
    warp = cv2.getPerspectiveTransform(corners, seen)
    photo = cv2.warpPerspective(table, warp, (1100, 1400), borderValue=60)
    found = find_sheet(photo)
    assert found is not None and np.abs(found - seen).max() < 8
    # A shadow over one corner leaves that part of the paper darker than the lit ground: the
    # sheet is found by its edges, sharp in the shadow too.
    shade = np.zeros(photo.shape, np.float32)
    cv2.fillPoly(shade, [np.int32([[0, 0], [700, 0], [550, 500], [0, 650]])], 1.0)
    shaded = (photo * (1 - 0.6 * cv2.GaussianBlur(shade, (0, 0), 40))).astype(np.uint8)
    assert shaded[300, 300] < 100 and shaded[1300, 200] < 70
    found = find_sheet(shaded)
    assert found is not None and np.abs(found - seen).max() < 8
    assert find_sheet(page) is None  # no ground around it: a scan, or a sheet filling the frame
    assert find_sheet(np.full((1400, 1100), 60, np.uint8)) is None
    assert find_sheet(np.zeros((10, 10), np.uint8)) is None
    # A box maps through the homography by its corners.
    x, y, w, h = transform_box((100, 100, 900, 1200), warp)
    assert np.abs(np.array([x, y, x + w, y + h]) - [90, 80, 1010, 1330]).max() <= 1


def test_only_dithered_bilevel_pages_are_averaged_back_into_gray():
    from PIL import Image

    page = _printed_page()
    tinted = (page.astype(np.float32) * 0.9).astype(np.uint8)  # paper at 183
    dithered = np.asarray(Image.fromarray(tinted).convert("1").convert("L"))
    thresholded = np.where(tinted < 128, 0, 255).astype(np.uint8)
    assert descreen(page) is page  # gray
    assert descreen(thresholded) is thresholded  # bilevel, but no dots
    gray = descreen(dithered)
    paper = (slice(900, 1150), slice(100, 800))
    assert dithered[paper].std() > 60 and gray[paper].std() < 0.5 * dithered[paper].std()
    assert abs(float(gray[paper].mean()) - float(tinted[paper].mean())) < 10
    assert gray[700:703, 100:700].mean() < 100  # the box's rule stays dark
    assert descreen(np.zeros((0, 0), np.uint8)).size == 0


def test_comb_with_empty_cells_and_a_box(mnist):
    page = blank()
    draw_comb(page, 100, 100, 8)
    fill_comb(page, [mnist.x_test[i] for i in range(5)] + [None] * 3, 100, 100)
    cv2.rectangle(page, (100, 300), (450, 390), 0, 2)
    for i in range(3):
        draw_digit(page, mnist.x_test[10 + i], 120 + i * 60, 312, 64)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 8), ("box", 1)]
    comb = fields[0]
    assert comb.bbox[0] == pytest.approx(100, abs=3) and comb.bbox[2] == pytest.approx(400, abs=5)
    # cells in order, left to right, each about one box
    assert [c[0] for c in comb.cells] == sorted(c[0] for c in comb.cells)
    assert all(40 <= c[2] <= 50 for c in comb.cells)


def test_separate_boxes_in_a_row_form_one_comb():
    page = blank()
    draw_comb(page, 100, 200, 5, gap=12)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 5)]


@pytest.mark.parametrize("offset", [-8, 0, 8])
def test_a_tall_1_in_a_row_of_separate_boxes_keeps_the_row_whole(offset):
    # A 1 written from border to border looks like a wall; beside it, the slot between two
    # boxes makes narrow "cells" too, and the box's own wall must not be the one dropped.
    # (Boxes this close share their top and bottom rules once scanned, as on the sample forms.)
    page = blank()
    draw_comb(page, 100, 200, 8, cell_w=50, cell_h=56, gap=6)
    for cell in (0, 3):
        x = 100 + cell * 56 + 25 + offset
        cv2.line(page, (x, 202), (x, 254), 0, 1)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 8)]
    assert [c[0] for c in fields[0].cells] == pytest.approx([102 + 56 * i for i in range(8)], abs=3)


def test_false_walls_go_and_box_walls_stay():
    # Separate boxes 30 px wide with 5 px walls and 6 px slots; a 1 px pen stroke in the second box.
    walls = [(0, 5), (35, 40), (46, 51), (60, 61), (81, 86), (92, 97), (127, 132)]
    assert drop_false_walls(walls) == [(0, 5), (35, 40), (46, 51), (81, 86), (92, 97), (127, 132)]
    # A regular comb keeps every wall.
    regular = [(0, 3), (40, 43), (80, 83), (120, 123)]
    assert drop_false_walls(regular) == regular
    # Adjacent boxes: a centred stroke as thick as the walls still goes (both halves narrow).
    assert drop_false_walls([(0, 3), (40, 43), (60, 63), (80, 83), (120, 123)]) == regular
    # A bold 1 against a comb's first wall, a sliver of a cell between (as measured on a dev form
    # that read "12" as "2"), and the same at its last wall: the stroke goes, the comb's walls stay.
    assert drop_false_walls([(426, 430), (439, 446), (479, 483), (530, 535)]) == [(426, 430), (479, 483), (530, 535)]
    assert drop_false_walls([(0, 4), (50, 54), (91, 98), (104, 108)]) == [(0, 4), (50, 54), (104, 108)]
    # A comb of two cells, a stroke of the 2 in its second taken for a wall: the widest cell is the
    # comb's (walls as measured on a form that read "12" as "2").
    two = [(495, 500), (546, 551), (575, 579), (596, 601)]
    assert drop_false_walls(two) == [(495, 500), (546, 551), (596, 601)]
    # Two separate boxes: their slot is no sliver at the comb's end, and a pen as thin as the walls is no bold stroke.
    assert drop_false_walls([(0, 5), (35, 40), (46, 51), (81, 86)]) == [(0, 5), (35, 40), (46, 51), (81, 86)]
    assert drop_false_walls([(0, 4), (9, 13), (50, 54), (100, 104)]) == [(0, 4), (9, 13), (50, 54), (100, 104)]


def test_lines_of_digits_on_a_page_without_boxes(mnist):
    page = blank()
    for line, y in enumerate((150, 420)):
        for i in range(5):
            draw_digit(page, mnist.x_test[line * 5 + i], 150 + i * 70, y, 80)
    fields = find_fields(clean_page(page).ink)
    assert [f.kind for f in fields] == ["line", "line"]
    assert fields[0].bbox[1] < fields[1].bbox[1]


def test_a_stroke_written_apart_from_the_last_digit_stays_in_its_line(mnist):
    # The bar of a 5 or a 7 written as a second stroke, beside the body's top: too short to
    # count as a character of the line, it must not be cut off the line's field.
    page = blank()
    boxes = [draw_digit(page, mnist.x_test[i], 150 + i * 70, 300, 80) for i in range(4)]
    x, y, w, _ = boxes[-1]
    bar = (x + w + 4, y + 4, x + w + 50, y - 8)
    cv2.line(page, bar[:2], bar[2:], 0, 6)
    # A speck well away from the line stays out of it.
    cv2.circle(page, (x + w + 160, y + 30), 4, 0, -1)
    (field,) = find_fields(clean_page(page, deskew=False).ink)
    fx, fy, fw, fh = field.bbox
    assert fx + fw >= bar[2] + 3 and fy <= bar[3] - 3
    assert fx + fw < x + w + 150


def test_ruled_lines_and_a_frame_alone_are_not_fields():
    page = blank()
    for y in range(100, 800, 60):
        cv2.line(page, (50, y), (1150, y), 0, 1)
    fields = find_fields(clean_page(page).ink)
    assert fields == []


def test_runs_and_grouping_geometry():
    assert runs(np.array([0, 1, 1, 0, 1])) == [(1, 3), (4, 5)]
    cell = lambda x: Rect((x, 10, 50, 56), (x + 2, 12, 46, 52))  # noqa: E731
    lone = Rect((600, 10, 300, 80), (602, 12, 296, 76))
    fields = group_rects([cell(100), cell(150), cell(200), lone])
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 3), ("box", 1)]
    # Boxes 56 pixels tall among 8 marks of print 40 pixels tall are a comb; among print 80 tall,
    # none; among 7 marks 80 tall (too few to tell print by) a comb again.
    assert [f.kind for f in group_rects([cell(100), cell(150)], writing=40, marks=8)] == ["comb"]
    assert group_rects([cell(100), cell(150)], writing=80, marks=8) == []
    assert [f.kind for f in group_rects([cell(100), cell(150)], writing=80, marks=7)] == ["comb"]


def test_a_zero_drawn_square_in_a_comb_cell_is_not_a_box(mnist):
    page = blank()
    draw_comb(page, 100, 100, 6)
    fill_comb(page, [mnist.x_test[i] for i in range(6)], 100, 100)
    # A 0 written with flat top and bottom and straight sides, inside the third cell.
    cv2.rectangle(page, (206, 108), (244, 148), 255, -1)
    cv2.rectangle(page, (210, 112), (240, 140), 0, 2)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 6)]


def test_a_zero_drawn_square_in_an_amount_box_keeps_the_box(mnist):
    page = blank()
    cv2.rectangle(page, (100, 300), (500, 390), 0, 3)
    draw_digit(page, mnist.x_test[0], 130, 315, 60)
    cv2.rectangle(page, (220, 322), (252, 356), 0, 2)  # the 0
    fields = find_fields(clean_page(page).ink)
    assert [f.kind for f in fields] == ["box"]
    assert fields[0].bbox[2] == pytest.approx(400, abs=6)


def test_a_zero_drawn_square_among_free_digits_is_not_a_box(mnist):
    page = blank()
    for i in range(5):
        draw_digit(page, mnist.x_test[i], 150 + i * 70, 200, 80)
    cv2.rectangle(page, (150 + 5 * 70 + 10, 222), (150 + 5 * 70 + 50, 248), 0, 2)  # a flat 0
    fields = find_fields(clean_page(page).ink)
    assert [f.kind for f in fields] == ["line"]


def test_boxes_inside_a_taller_handwritten_mark_do_not_hide_the_lines_of_digits(mnist):
    page = blank()
    for line, y in enumerate((150, 420)):
        for i in range(5):
            draw_digit(page, mnist.x_test[line * 5 + i], 150 + i * 70, y, 80)
    # A digit drawn squarely: its loop holds two small boxes side by side (a "comb"),
    # and its stem runs far above and below them.
    x, y = 150 + 5 * 70 + 10, 440
    cv2.rectangle(page, (x, y + 22), (x + 36, y + 50), 0, 2)
    cv2.line(page, (x + 18, y + 22), (x + 18, y + 50), 0, 2)
    cv2.line(page, (x + 36, y), (x + 36, y + 76), 0, 2)
    fields = find_fields(clean_page(page).ink)
    assert [f.kind for f in fields] == ["line", "line"]
    assert fields[1].bbox[0] + fields[1].bbox[2] >= x + 36


def test_a_digit_overflowing_a_small_comb_does_not_take_the_comb_away(mnist):
    page = blank()
    draw_comb(page, 100, 100, 6)
    fill_comb(page, [mnist.x_test[i] for i in range(6)], 100, 100)
    # A two-box comb too short for its borders to count as ruled lines, and a 1 written through
    # it from far above to far below: the comb and the 1 make one mark twice the comb's height.
    draw_comb(page, 100, 400, 2, cell_w=40, cell_h=40)
    cv2.line(page, (160, 370), (160, 470), 0, 4)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 6), ("comb", 2)]


def test_the_paper_edge_in_a_photo_is_no_line_of_digits(mnist):
    page = blank()
    # The sheet's edges: hairlines broken into pieces, each like a "1".
    for y in range(20, 880, 60):
        cv2.line(page, (30, y), (31, y + 48), 0, 2)
        cv2.line(page, (1170, y), (1169, y + 48), 0, 2)
    for line, y in enumerate((150, 420)):
        for i in range(5):
            draw_digit(page, mnist.x_test[line * 5 + i], 400 + i * 70, y, 80)
    fields = find_fields(clean_page(page).ink)
    assert [f.kind for f in fields] == ["line", "line"]
    assert all(f.bbox[0] > 300 for f in fields)


def test_hairlines_are_told_from_pen_strokes():
    widths = np.array([6.0, 7.0, 6.5, 8.0, 2.0, 1.5, 6.0])
    areas = np.array([900, 1000, 950, 1200, 150, 120, 30])
    assert hairlines(widths, areas).tolist() == [False, False, False, False, True, True, False]


def test_pieces_of_one_line_are_joined():
    height = 40.0
    left, right = (100, 100, 150, 40), (330, 110, 80, 40)  # a wide gap, a little lower
    over = (120, 98, 100, 44)  # pieces of broken digits over the first
    below = (100, 200, 300, 40)  # the next line
    lines = merge_lines([left, right, over, below], height)
    assert sorted(lines) == [(100, 98, 310, 52), (100, 200, 300, 40)]


def test_components_outside_used_boxes_match_labelling_the_cleared_mask_again():
    from ocr.fields import hairline_components, stroke_components, stroke_components_outside
    from ocr.geometry import label_components

    rng = np.random.default_rng(5)
    mask = np.zeros((400, 600), np.uint8)
    for _ in range(60):  # strokes of many sizes, some crossing the boxes below
        x0, y0 = int(rng.integers(0, 580)), int(rng.integers(0, 310))
        cv2.line(mask, (x0, y0), (x0 + int(rng.integers(-40, 40)), y0 + int(rng.integers(5, 60))), 255, 7)
    cv2.line(mask, (0, 390), (599, 392), 255, 1)  # a hairline
    used = np.zeros_like(mask)
    # Two boxes side by side cover some strokes only together; one runs off the page.
    used_boxes = [(50, 40, 120, 80), (300, 200, 100, 150), (400, 200, 100, 150), (0, 0, 30, 400), (560, 300, 90, 200)]
    for x, y, w, h in used_boxes:
        used[y : y + h, x : x + w] = 255
    components = label_components(mask)
    cleared = mask.copy()
    cleared[used > 0] = 0
    expected = sorted(stroke_components(cleared))
    assert sorted(stroke_components_outside(components, used_boxes)) == expected
    assert sorted(stroke_components_outside(components, [])) == sorted(stroke_components(mask))

    thin = hairline_components(mask, components)
    assert thin.sum() == 1
    without = cleared.copy()
    without[np.isin(components[1], np.flatnonzero(thin))] = 0
    assert sorted(stroke_components_outside(components, used_boxes, drop=thin)) == sorted(stroke_components(without))
    assert len(stroke_components(without)) < len(stroke_components(cleared))


def _strokes_and_a_framed_stroke(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((500, 700), np.uint8)
    for _ in range(80):  # strokes of many lengths, touching and crossing
        x0, y0 = int(rng.integers(0, 680)), int(rng.integers(0, 480))
        cv2.line(mask, (x0, y0), (x0 + int(rng.integers(-30, 30)), y0 + int(rng.integers(-150, 150))), 255, 3)
    # A tall frame with a long stroke inside it (in its hole) and a short one.
    cv2.rectangle(mask, (300, 20), (420, 470), 0, -1)
    cv2.rectangle(mask, (300, 20), (420, 470), 255, 3)
    cv2.line(mask, (360, 40), (362, 450), 255, 3)
    cv2.line(mask, (330, 60), (331, 90), 255, 3)
    return mask


def test_outlines_give_the_components_of_the_labelling():
    from ocr.geometry import label_components, outline_components

    for mask in (_strokes_and_a_framed_stroke(9), _strokes_and_a_framed_stroke(10).T.copy()):
        count, labels, stats, _ = label_components(mask)
        outlines = outline_components(mask)
        found = sorted((*box, outlines.area(i)) for i, box in enumerate(outlines.boxes.tolist()))
        assert found == sorted(map(tuple, stats[1:].tolist()))
        for i, (x, y, w, h) in enumerate(outlines.boxes.tolist()):
            label = labels[outlines.seeds[i][1], outlines.seeds[i][0]]
            assert np.array_equal(outlines.pixels(i), labels[y : y + h, x : x + w] == label)
    assert outline_components(np.zeros((20, 30), np.uint8)).boxes.shape == (0, 4)


def test_long_components_found_from_borders_match_the_labelling():
    from ocr.fields import long_components
    from ocr.geometry import label_components

    mask = _strokes_and_a_framed_stroke(9)
    _, labels, stats, _ = label_components(mask)
    for stat, length in ((3, 100), (2, 25), (3, 480)):
        expected = np.isin(labels, np.flatnonzero(stats[1:, stat] >= length) + 1) * np.uint8(255)
        assert np.array_equal(long_components(mask, stat, length), expected)
    assert long_components(mask, 3, 100)[250, 361] == 255  # the stroke inside the frame
    assert long_components(mask, 3, 100)[75, 330] == 0  # the short one
    assert not long_components(np.zeros((50, 50), np.uint8), 3, 10).any()


def test_box_pair_matrices_match_the_pairwise_rules():
    from ocr.fields import comb_neighbours, contains_boxes

    rng = np.random.default_rng(3)
    # Rows of boxes of similar and different sizes, gaps and overlaps, plus odd ones.
    boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in rng.integers([0, 0, 5, 5], [400, 60, 70, 70], (150, 4))]
    boxes += [(100, 10, 40, 50), (140, 10, 40, 50), (200, 11, 41, 49), (100, 10, 40, 50)]
    # Pairs on either side of each limit: a gap of half a box, widths 0.7 of each other.
    boxes += [(500, 300, 40, 50), (560, 300, 40, 50), (621, 300, 40, 50)]  # gaps of 20 and 21
    boxes += [(500, 400, 40, 50), (560, 400, 28, 50), (500, 500, 40, 50), (560, 500, 27, 50)]  # 0.7 and 0.675

    def neighbours(a, b):  # the rule, pair by pair, in its own words
        left, right = sorted((a, b), key=lambda box: box[0]) if a[0] != b[0] else (a, b)
        tolerance = max(4, 0.12 * left[3])
        same_row = abs(right[1] - left[1]) <= tolerance and abs(right[3] - left[3]) <= tolerance
        similar = 0.7 <= right[2] / left[2] <= 1.4 and max(right[2], left[2]) <= 2.2 * right[3]
        close = -0.25 * left[2] <= right[0] - (left[0] + left[2]) <= 0.5 * left[2]
        return same_row and similar and close

    def holds(outer, inner, slack):
        x, y, w, h = outer
        ix, iy, iw, ih = inner
        return ix >= x - slack and iy >= y - slack and ix + iw <= x + w + slack and iy + ih <= y + h + slack

    n = comb_neighbours(np.array(boxes))
    assert n.tolist() == [[neighbours(a, b) for b in boxes] for a in boxes]
    assert n.sum() > 20 and not n.diagonal().any()
    c = contains_boxes(np.array(boxes), np.array(boxes), 2)
    assert c.tolist() == [[holds(a, b, 2) for b in boxes] for a in boxes]
    assert c.sum() > len(boxes)


def test_a_page_shrunk_for_reading_maps_back_to_its_own_pixels():
    page = blank()
    draw_comb(page, 100, 100, 8)
    cv2.rectangle(page, (100, 300), (500, 380), 0, 2)
    crooked, turn = rotate(page, 2.0)
    fine = cv2.resize(crooked, (2400, 1800), interpolation=cv2.INTER_CUBIC)  # the same page at twice the resolution
    clean = clean_page(fine, scale=0.5)
    assert clean.ink.shape == (900, 1200)
    assert clean.angle == pytest.approx(2.0, abs=0.15)
    comb, box = find_fields(clean.ink)
    # The box's corners on the fine page land on the box found on the shrunk, deskewed one.
    back = cv2.invertAffineTransform(clean.matrix)
    corners = np.array([[comb.bbox[0], comb.bbox[1], 1], [box.bbox[0] + box.bbox[2], box.bbox[1] + box.bbox[3], 1]])
    on_fine = corners @ back.T
    forward = np.hstack([on_fine, np.ones((2, 1))]) @ clean.matrix.T
    assert np.allclose(forward, corners[:, :2], atol=1e-6)
    # Drawn at (100, 100) and (500, 380) on the coarse page, then turned, then doubled.
    expected = (np.array([[100, 100, 1], [500, 380, 1]]) @ turn.T) * 2
    assert np.abs(on_fine - expected).max() < 12
    with pytest.raises(ValueError, match="scale"):
        clean_page(fine, scale=1.5)


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 500), (500, 1), (3, 3), (60, 2), (7, 600), (600, 7), (3, 4000), (4000, 3), (1, 9000)]
)
def test_tiny_and_sliver_pages_are_cleaned_without_error(shape):
    ruled = np.full(shape, 255, np.uint8)
    ruled[shape[0] // 2, :] = 0  # a rule, with ticks every 40 pixels
    ruled[:, ::40] = 0
    for page in (np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8), ruled):
        clean = clean_page(page)
        assert clean.ink.shape == shape and abs(clean.angle) <= 5.0
        assert isinstance(find_fields(clean.ink, fine=clean.fine), list)


def test_only_pages_known_to_be_much_finer_than_150_dpi_are_shrunk():
    # Unknown, a camera's nominal 72 dpi and a 200-dpi scan are read as they are.
    assert [working_scale(d) for d in (None, 72, 150, 200, 225)] == [1.0] * 5
    assert working_scale(300) == 0.5 and working_scale(600) == 0.25


def test_a_whole_sheet_without_a_stated_resolution_is_read_at_the_one_its_shape_gives():
    from ocr.cleanup import paper_dpi

    a4_300, letter_300, legal_200 = (3508, 2480), (3300, 2550), (2800, 1700)
    assert paper_dpi(a4_300) == pytest.approx(300, abs=1) and paper_dpi(a4_300[::-1]) == paper_dpi(a4_300)
    assert paper_dpi(letter_300) == pytest.approx(300) and paper_dpi(legal_200) == pytest.approx(200)
    # A cheque, a photo (4:3) and a page cropped to its content are no whole sheet; a tabloid one is.
    assert paper_dpi((2550, 1650)) == 150.0
    assert [paper_dpi(s) for s in ((750, 1650), (3024, 4032), (3300, 2480))] == [None] * 3
    assert working_scale(None, a4_300) == pytest.approx(0.5, abs=0.002)
    assert working_scale(72, a4_300) == working_scale(None, a4_300)  # a screen default is no scan's resolution
    # A resolution the file states wins.
    assert working_scale(150, a4_300) == 1.0
    assert working_scale(None, (1754, 1240)) == 1.0 and working_scale(150, (1754, 1240)) == 1.0
    # A whole sheet (a form) at 200 dpi is read at 150; a cheque at 200 dpi as it is.
    assert working_scale(200, (2339, 1654)) == working_scale(None, (2339, 1654)) == 0.75
    assert working_scale(200, (750, 1650)) == 1.0
    # Not a whole sheet and longer than an A4 page at 150 dpi: a camera's photo is shrunk to that.
    assert working_scale(None, (3024, 4032)) == pytest.approx(1754 / 4032)
    assert working_scale(72, (3024, 4032)) == working_scale(None, (3024, 4032))
    assert working_scale(300, (3024, 4032)) == 0.5
    assert working_scale(None, (960, 1280)) == working_scale(None, (750, 1650)) == 1.0


def test_rules_are_long_flat_strokes_with_their_thickness():
    from ocr.fields import Rule, find_rules

    mask = np.zeros((300, 600), np.uint8)
    mask[50:52, 20:500] = 255  # a 2 px rule
    mask[120:125, 100:400] = 255  # a 5 px rule
    mask[200:212, 30:90] = 255  # a short thick bar: 60 wide, 12 thick, no rule
    mask[250:251, 10:30] = 255  # too short
    mask[270:273, 300:560] = 255  # a rule touching a stroke that hangs below it
    mask[273:290, 400:403] = 255  # (its box is 20 rows: the rule is placed at its middle, 280)
    assert find_rules(mask) == [Rule(20, 500, 51, 2), Rule(100, 400, 122, 5), Rule(300, 560, 280, 3)]


def test_a_comb_found_in_part_is_told_by_its_rules_running_on():
    from ocr.fields import rules_run_on
    from ocr.geometry import FieldRegion

    h_mask = np.zeros((300, 800), np.uint8)
    h_mask[100:102, 100:700] = 255  # the rules of a comb of 12 cells of 50 px
    h_mask[156:158, 100:700] = 255
    cells = tuple((100 + 50 * i + 2, 102, 46, 54) for i in range(4))
    part = FieldRegion("comb", (100, 100, 200, 58), cells)  # only its first 4 cells' walls were found
    whole = FieldRegion("comb", (100, 100, 600, 58), tuple((100 + 50 * i + 2, 102, 46, 54) for i in range(12)))
    tail = FieldRegion("comb", (500, 100, 200, 58), tuple((500 + 50 * i + 2, 102, 46, 54) for i in range(4)))
    assert rules_run_on(part, h_mask) and rules_run_on(tail, h_mask)
    assert not rules_run_on(whole, h_mask)
    assert not rules_run_on(FieldRegion("box", (100, 100, 200, 58), ((102, 102, 196, 54),)), h_mask)


def test_a_line_of_digits_ruled_above_and_below_is_told():
    from ocr.fields import between_rules
    from ocr.geometry import FieldRegion

    h_mask = np.zeros((400, 800), np.uint8)
    h_mask[100:102, 100:700] = 255  # a band ruled above and below whose walls were lost
    h_mask[156:158, 100:700] = 255
    h_mask[300:302, 100:700] = 255  # a rule to write on, nothing above it
    assert between_rules(FieldRegion("line", (150, 104, 200, 50)), h_mask)
    assert not between_rules(FieldRegion("line", (150, 250, 200, 48)), h_mask)
    assert not between_rules(FieldRegion("comb", (100, 100, 600, 58), ((102, 102, 46, 54),)), h_mask)


def test_dotted_rules_are_rows_of_like_evenly_spaced_marks():
    from ocr.fields import dotted_rules

    rng = np.random.default_rng(5)
    page = blank(900, 1200)
    for x in range(100, 700, 7):  # a dotted line: dots about 3 pixels across, 7 apart
        cv2.circle(page, (x, 200), 1, 0, -1)
    for x in range(150, 1000, 20):  # a dashed line
        cv2.line(page, (x, 400), (x + 10, 400), 0, 2)
    for x in np.cumsum(rng.integers(3, 30, 40)) + 100:  # specks of all sizes at random steps
        cv2.circle(page, (int(x), 600), int(rng.integers(0, 3)), 0, -1)
    for _ in range(600):  # a background of specks, as a cheque's pattern gives
        x, y = int(rng.integers(100, 900)), int(rng.integers(700, 820))
        cv2.circle(page, (x, y), 1, 0, -1)
    cv2.putText(page, "Write one digit... per box, please.", (100, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    ink = clean_page(page, deskew=False).ink
    rules = dotted_rules(ink)
    assert [(r.y, r.dotted) for r in rules] == [(200, True), (400, True)]
    assert rules[0].x0 == pytest.approx(99, abs=2) and rules[0].x1 == pytest.approx(695, abs=3)
    assert rules[1].x0 == pytest.approx(150, abs=2) and rules[1].x1 == pytest.approx(1000, abs=3)


def test_an_open_comb_is_a_comb_and_a_plain_underline_is_not(mnist):
    """A baseline with short ticks between the cells (no top rule, no full walls) is a comb, its
    cells between the ticks, digits touching them or not; digits on a rule without ticks stay a line."""
    page = blank()
    draw_comb(page, 100, 80, 3)  # a boxed field, so that the page is a form
    base, step, cells = 300, 48, 6
    cv2.line(page, (100, base), (100 + cells * step, base), 0, 2)
    for k in range(cells + 1):
        cv2.line(page, (100 + k * step, base - 16), (100 + k * step, base), 0, 2)
    for i in range(4):
        draw_digit(page, mnist.x_test[i], 100 + i * step + 2, base - 44, 46)  # the digits reach the ticks
    cv2.line(page, (100, 500), (500, 500), 0, 2)
    for i in range(4):
        draw_digit(page, mnist.x_test[10 + i], 120 + i * 60, 500 - 52, 56)
    fields = find_fields(clean_page(page).ink)
    assert [(f.kind, len(f.cells), len(f.ticks)) for f in fields] == [
        ("comb", 3, 0),
        ("comb", cells, cells + 1),
        ("line", 0, 0),
    ]
    comb = fields[1]
    assert [c[0] for c in comb.cells] == pytest.approx([100 + k * step + 2 for k in range(cells)], abs=3)
    assert all(c[1] + c[3] == pytest.approx(base - 1, abs=2) and c[3] >= 1.25 * step - 2 for c in comb.cells)


def test_compact_labels_match_the_full_labelling_and_fall_back_when_too_many():
    from ocr.geometry import label_components

    rng = np.random.default_rng(11)
    page = ((rng.random((300, 400)) < 0.3) * 255).astype(np.uint8)
    full, compact = label_components(page), label_components(page, compact=True)
    assert compact[1].dtype == np.uint16 and full[1].dtype == np.int32
    assert compact[0] == full[0]
    np.testing.assert_array_equal(compact[1], full[1])
    np.testing.assert_array_equal(compact[2], full[2])
    # More components than uint16 labels can number: int32 labels, the same count.
    dots = np.zeros((1000, 1000), np.uint8)
    dots[::3, ::3] = 255
    count, labels, _, _ = label_components(dots, compact=True)
    assert count == 334 * 334 + 1 and labels.dtype == np.int32


@pytest.mark.parametrize("length", [24, 25, 26, 31, 39, 63, 64, 150])
def test_a_split_line_opening_is_the_one_pass_opening(length):
    from ocr.fields import open_along

    rng = np.random.default_rng(length)
    for shape in ((1, 1), (7, 300), (300, 7), (97, 131), (400, 620)):
        mask = ((rng.random(shape) < rng.uniform(0.5, 0.97)) * 255).astype(np.uint8)
        for horizontal, size in ((True, (length, 1)), (False, (1, length))):
            expected = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
            np.testing.assert_array_equal(open_along(mask, length, horizontal), expected)


def _comb_cells(x: int, y: int, cells: range, cell_w: int = 50, cell_h: int = 56) -> tuple:
    """The insides of cells of a comb drawn with ``draw_comb`` (2-px lines), as the box finder gives them."""
    return tuple((x + i * cell_w + 2, y + 2, cell_w - 3, cell_h - 3) for i in cells)


def test_cells_a_comb_was_found_without_are_put_back_where_the_page_outlines_them(mnist):
    from ocr.fields import complete_combs
    from ocr.geometry import FieldRegion

    page = blank()
    draw_comb(page, 100, 100, 10)  # a comb of 10 cells, found in two parts: cells 2-3 and 6-7
    draw_comb(page, 100, 300, 4)  # a comb of 4, a number written on after it without a box
    draw_comb(page, 800, 300, 3)  # and, 2 cells on, another comb of the same cells
    for i in range(3):
        draw_digit(page, mnist.x_test[i], 100 + 4 * 50 + 3 + 50 * i, 303, 44)
    marks = np.where(page < 128, 255, 0).astype(np.uint8)

    def comb(x, y, cells):
        c = _comb_cells(x, y, cells)
        return FieldRegion("comb", (c[0][0] - 2, y, c[-1][0] + c[-1][2] + 4 - c[0][0], 58), c)

    box = FieldRegion("box", (100, 500, 300, 80), ((102, 502, 296, 76),))
    found = [comb(100, 100, range(2, 4)), comb(100, 100, range(6, 8)), comb(100, 300, range(4)), box]
    found.append(comb(800, 300, range(3)))
    completed = complete_combs(found, marks)
    combs = sorted((f for f in completed if f.kind == "comb"), key=lambda f: (f.bbox[1], f.bbox[0]))
    assert [len(f.cells) for f in combs] == [10, 4, 3]
    assert [c[0] for c in combs[0].cells] == pytest.approx([102 + 50 * i for i in range(10)], abs=2)
    assert combs[0].bbox[0] == pytest.approx(100, abs=2) and combs[0].bbox[2] == pytest.approx(501, abs=2)
    # Writing beside a comb is no cell of it, nor is the gap between two combs.
    assert combs[1].cells == _comb_cells(100, 300, range(4)) and combs[2].cells == _comb_cells(800, 300, range(3))
    assert box in completed


def test_a_comb_whose_walls_are_faint_in_places_is_read_whole(mnist):
    # Walls printed lighter than the rest (a worn or pale print): the box finder loses them
    # and the comb comes apart; the page's thin marks still outline those cells.
    page = blank()
    draw_comb(page, 100, 200, 10)
    for wall in (4, 5, 6):
        x = 100 + 50 * wall
        page[203:255, x - 1 : x + 2] = 200
    fill_comb(page, [mnist.x_test[i] for i in range(10)], 100, 200)
    clean = clean_page(page)
    fields = find_fields(clean.ink, fine=clean.fine)
    assert [(f.kind, len(f.cells)) for f in fields] == [("comb", 10)]
    assert [c[0] for c in fields[0].cells] == pytest.approx([102 + 50 * i for i in range(10)], abs=3)


def test_a_dotted_rule_whose_dots_run_together_in_places_is_found_and_fine_print_is_not():
    from ocr.fields import dotted_rules

    page = blank(900, 1200)
    x, k = 100, 0
    while x < 700:  # dots 3 px across, 7 apart; every fifth pair ran together, every seventh dot is lost
        k += 1
        if k % 5 == 0:
            cv2.line(page, (x, 200), (x + 7, 200), 0, 3)
            x += 14
            continue
        if k % 7:
            cv2.circle(page, (x, 200), 1, 0, -1)
        x += 7
    for i, scale in enumerate((0.3, 0.35, 0.4)):  # fine print, its letters as small as the dots
        text = "Please write the amount in figures, one digit per box; sign below."
        cv2.putText(page, text, (100, 400 + 100 * i), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, 1)
    rules = dotted_rules(clean_page(page, deskew=False).ink)
    assert [(r.y, r.dotted) for r in rules] == [(200, True)]
    assert rules[0].x0 == pytest.approx(99, abs=2) and rules[0].x1 == pytest.approx(697, abs=3)


def test_a_digit_that_took_in_the_first_dots_of_a_dotted_rule_is_read_with_the_rest(mnist):
    page = blank(900, 1200)
    draw_comb(page, 100, 100, 6)  # a page with boxes: lines of digits are looked for on rules
    for x in range(112, 700, 7):  # the dotted rule starts under the first digit
        cv2.circle(page, (x, 400), 1, 0, -1)
    first = draw_digit(page, mnist.x_test[0], 94, 359, 48)
    for i in range(1, 5):
        draw_digit(page, mnist.x_test[i], 94 + 50 * i, 359, 48)
    lines = [f for f in find_fields(clean_page(page, deskew=False).ink) if f.kind == "line"]
    assert len(lines) == 1
    assert lines[0].bbox[0] <= first[0] and lines[0].bbox[0] + lines[0].bbox[2] >= 94 + 50 * 4 + 30


@pytest.mark.parametrize("ink_level", [0, 120, 165, 200])
def test_a_page_of_two_levels_keeps_its_ink_however_light(mnist, ink_level):
    # A bilevel scan made lighter, or a two-colour palette: Otsu's threshold is the ink's own level.
    page = blank()
    draw_comb(page, 100, 100, 6)
    fill_comb(page, [mnist.x_test[i] for i in range(6)], 100, 100)
    two_levels = np.where(page < 128, ink_level, 255).astype(np.uint8)
    ink = clean_page(two_levels, deskew=False).ink
    assert np.array_equal(ink > 0, two_levels < 255)


def test_a_small_box_found_in_the_writing_on_a_rule_does_not_hide_the_rule():
    from ocr.fields import Rule, find_underline_fields
    from ocr.geometry import label_components

    # Four digit-sized marks standing on a rule 470 px long (the rule itself is not in the ink).
    ink = np.zeros((300, 800), np.uint8)
    for k in range(4):
        cv2.rectangle(ink, (120 + 60 * k, 140), (150 + 60 * k, 195), 255, 4)
    rule = Rule(x0=100, x1=570, y=200, thickness=4)
    marks = label_components(ink, compact=True)
    alone = find_underline_fields(marks, [rule], [])
    assert len(alone) == 1 and alone[0].kind == "line" and alone[0].on_rule
    # A 23 px box found in the writing, down to the rule (an 8's loop), left the number unread.
    loop = (300, 178, 23, 25)
    assert [f.bbox for f in find_underline_fields(marks, [rule], [loop])] == [f.bbox for f in alone]
    # A box whose bottom the rule is (or boxes covering half of it) makes it no underline.
    assert find_underline_fields(marks, [rule], [(100, 120, 470, 82)]) == []
    assert find_underline_fields(marks, [rule], [(80, 150, 150, 52), (300, 150, 120, 52)]) == []


def test_a_mark_whose_foot_is_in_the_rule_stands_on_it_but_not_a_letter_on_its_own_serif():
    from ocr.fields import Rule, find_underline_fields
    from ocr.geometry import label_components

    # A fresh form's "133": the leaning 1 overshot the rule's top row by a pixel, and was left
    # out of the line, which was accepted as "33".  The rule's own rows are not in the ink.
    rule = Rule(x0=100, x1=570, y=200, thickness=3)
    ink = np.zeros((300, 800), np.uint8)
    cv2.line(ink, (150, 154), (140, 199), 255, 6)  # the 1, its foot in the rule's rows
    for k in range(2):
        cv2.rectangle(ink, (180 + 60 * k, 150), (215 + 60 * k, 197), 255, 4)  # the 3s, above it
    fields = find_underline_fields(label_components(ink, compact=True), [rule], [])
    assert len(fields) == 1 and fields[0].bbox[0] <= 137 and fields[0].bbox[0] + fields[0].bbox[2] >= 275

    # A printed letter's serif is found as a rule hardly longer than the letter: the letter down
    # into it stands on nothing (a title's letters were read as "1131").
    serif = Rule(x0=295, x1=330, y=200, thickness=3)
    letter = np.zeros((300, 800), np.uint8)
    cv2.rectangle(letter, (310, 170), (314, 201), 255, -1)
    assert find_underline_fields(label_components(letter, compact=True), [serif], []) == []


def test_a_bold_flat_digit_written_on_a_rule_is_not_taken_for_the_rule():
    # On a photo of lined paper, a bold, flat 0 sat on the line: its strokes are horizontal runs
    # long enough to pass for rule, joined to the line, and went with it ("300808" read "3" and "808").
    from ocr.fields import _handwriting, line_masks, outline_components

    ink = np.zeros((300, 1200), np.uint8)
    cv2.line(ink, (20, 200), (1180, 200), 255, 4)  # the notebook's line
    cv2.ellipse(ink, (400, 160), (62, 36), 0, 0, 360, 255, 15)  # a flat 0 down to the line
    cv2.line(ink, (700, 120), (700, 199), 255, 6)  # a 1 standing on it
    h_mask, v_mask = line_masks(ink)
    writing = _handwriting(ink, h_mask, v_mask, outline_components(h_mask))
    zero = np.zeros_like(ink)
    cv2.ellipse(zero, (400, 160), (62, 36), 0, 0, 360, 255, 15)
    zero[195:, :] = 0  # its part in the line's rows may go with the line
    assert np.count_nonzero(writing[zero > 0]) >= 0.8 * np.count_nonzero(zero)
    assert not writing[196:205, 20:300].any() and not writing[196:205, 800:1180].any()  # the line is gone
    assert np.count_nonzero(writing[120:190, 695:706]) >= 0.9 * 70 * 6  # the 1 stays


def test_a_run_of_thin_marks_across_printed_words_is_no_hairline():
    from ocr.fields import _light_only

    fine, ink = np.zeros((120, 300), np.uint8), np.zeros((120, 300), np.uint8)
    for y in (20, 60, 100):
        fine[y, 10:210] = 255
        ink[y, 10:210:2] = 255  # half of each run dark enough to be ink
    ink[23:28, 10:210:4] = 255  # letters under the first run: a band 3-7 px below it a quarter ink
    ink[95:98, 10:40] = 255  # a digit's foot over 30 of the last run's 200 px
    kept = _light_only(fine, np.zeros_like(fine), ink, 60)
    assert not kept[20].any()  # across the middle of printed words
    assert kept[60].any() and kept[100].any()  # a hairline part ink, clear beside it, or a digit on it
    # A short piece filling a gap of a line the ink holds keeps it, letters beside it or not.
    short = np.zeros_like(fine)
    short[20, 10:50] = 255
    assert _light_only(short, np.zeros_like(fine), ink, 60)[20].any()


def test_a_photos_paper_grain_does_not_pass_for_the_size_of_its_writing():
    from ocr.fields import _typical_mark_size

    # 60 specks of grain 14 px across (40 px of ink each) and 12 digits 70 px tall (600 each).
    size = np.array([0, *[14] * 60, *[70] * 12])
    area = np.array([0, *[40] * 60, *[600] * 12])
    candidates = size >= 12
    assert float(np.median(size[candidates])) == 14  # the bare median takes the grain for writing
    assert _typical_mark_size(size, area, candidates, 960) == 70
    # A table's edge, as large as a quarter of the page or more, has no say.
    size, area = np.append(size, 900), np.append(area, 50_000)
    assert _typical_mark_size(size, area, size >= 12, 960) == 70
