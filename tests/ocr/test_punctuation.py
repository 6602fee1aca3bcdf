"""Punctuation drawn as digits are: a date's slashes and hyphens, a telephone number's parentheses."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ocr.punctuation import date_slashes, is_date, phone_parentheses
from ocr.read import read_page
from ocr.segment import Segment, arc_bow, hyphen_marks, plan_characters, slash_lean, stroke_bow, stroke_lean
from tests.ocr.drawing import blank, draw_digit


def _line(
    text: str, leans: dict[int, float] | None = None, bows: dict[int, float] | None = None
) -> list[tuple[Segment, SimpleNamespace | None]]:
    """(segment, reading) pairs of a field reading ``text``: "." a separator, any digit read as itself;
    ``leans`` gives the straight strokes among them (index -> degrees), ``bows`` the arcs."""
    leans, bows = leans or {}, bows or {}
    pairs = []
    for k, ch in enumerate(text):
        char = "" if ch.isdigit() else ch
        seg = Segment((40 * k, 0, 30, 50), np.zeros((50, 30), np.uint8), char=char, lean=leans.get(k), bow=bows.get(k))
        pairs.append((seg, SimpleNamespace(label=int(ch)) if ch.isdigit() else None))
    return pairs


def _text(pairs) -> str:
    return "".join(seg.char or str(reading.label) for seg, reading in pairs)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("25", "12", "2024"), True),  # day/month/year
        (("12", "25", "2024"), True),  # month/day/year
        (("3", "7", "25"), True),
        (("2024", "12", "25"), True),  # year/month/day
        (("32", "12", "2024"), False),  # no day 32
        (("25", "13", "2024"), False),  # nor month 13, either way round
        (("25", "12", "3024"), False),  # a year no form is dated
        (("25", "12", "202"), False),
        (("0", "12", "2024"), False),
        (("123", "1", "20"), False),
    ],
)
def test_is_date(parts, expected):
    assert is_date(parts) is expected


def test_two_leaning_strokes_that_make_a_date_are_slashes():
    # 25/12/2024 with the slashes read as 1s; the 1 of 12 stands upright.
    pairs = _line("2511212024", {2: 30.0, 5: 28.0})
    out, doubt = date_slashes(pairs)
    assert _text(out) == "25/12/2024" and not doubt
    assert [seg.bbox for seg, _ in out] == [seg.bbox for seg, _ in pairs]  # where they were written


def test_leaning_ones_that_make_no_date_stay_digits():
    pairs = _line("4711931560", {1: 30.0, 3: 28.0})
    assert date_slashes(pairs) == (pairs, False)
    one = _line("2511202", {2: 30.0})  # one stroke alone is no date's pair of slashes
    assert date_slashes(one) == (one, False)


def test_a_date_of_strokes_that_lean_alike_is_doubted():
    # 11/11/2011 by a writer whose 1s lean as far as the slashes: read as a date, for review.
    pairs = _line("1111112011", {0: 24.0, 1: 25.0, 2: 27.0, 3: 22.0, 4: 26.0, 5: 26.0, 8: 23.0, 9: 24.0})
    out, doubt = date_slashes(pairs)
    assert _text(out) == "11/11/2011" and doubt
    # Upright 1s beside slashes leave no doubt.
    out, doubt = date_slashes(_line("1111112011", {2: 30.0, 5: 29.0}))
    assert _text(out) == "11/11/2011" and not doubt


def test_a_field_with_separators_of_its_own_is_left_alone():
    # An amount whose leaning 1s would make a date of it: 9181.59 as 9/8/59.
    pairs = _line("9181.59", {1: 30.0, 3: 28.0})
    assert date_slashes(pairs) == (pairs, False)
    for text in ("2511-212024", "2511,212024"):
        pairs = _line(text, {2: 30.0, 6: 28.0})
        assert date_slashes(pairs) == (pairs, False)


def test_a_point_beside_slashes_is_dropped_as_a_speck_where_a_four_digit_year_comes_out():
    out, doubt = date_slashes(_line("1.711211989", {3: 30.0, 6: 28.0}))
    assert _text(out) == "17/12/1989" and doubt
    pairs = _line("9.18159", {2: 30.0, 4: 28.0})  # 9/8/59: two digits of year are no evidence for it
    assert date_slashes(pairs) == (pairs, False)


def test_a_date_with_two_digits_of_year_is_doubted():
    out, doubt = date_slashes(_line("918159", {1: 30.0, 3: 28.0}))
    assert _text(out) == "9/8/59" and doubt


def test_stroke_lean_of_a_slash_a_one_and_a_zero():
    slash = np.zeros((80, 60), np.uint8)
    cv2.line(slash, (45, 2), (5, 77), 255, 6)
    lean, spread = stroke_lean(slash)
    assert lean == pytest.approx(np.degrees(np.arctan2(40, 75)), abs=2) and spread < 0.15
    upright = np.zeros((80, 20), np.uint8)
    cv2.line(upright, (10, 2), (10, 77), 255, 6)
    assert stroke_lean(upright)[0] == pytest.approx(0, abs=1)
    assert slash_lean(upright, 80) is None  # straight but upright: a 1
    assert slash_lean(slash, 80) == pytest.approx(lean)
    assert slash_lean(slash, 120) is None  # far shorter than the digits
    zero = np.zeros((80, 60), np.uint8)
    cv2.ellipse(zero, (30, 40), (22, 36), 0, 0, 360, 255, 6)
    assert stroke_lean(zero)[1] > 0.5 and slash_lean(zero, 80) is None


def test_hyphen_marks_are_flat_strokes_at_mid_height_between_digits():
    digits = [(0, 0, 30, 50), (40, 0, 30, 50), (100, 0, 30, 50)]
    hyphen = (75, 22, 20, 5)
    assert hyphen_marks([*digits, hyphen], 50) == [3]
    assert hyphen_marks([*digits, (45, -4, 20, 5)], 50) == []  # a 5's bar, over its digit
    assert hyphen_marks([*digits, (75, 44, 20, 5)], 50) == []  # on the baseline: an underscore
    assert hyphen_marks([*digits, (-30, 22, 20, 5)], 50) == []  # before the number: a minus
    assert hyphen_marks([*digits, (75, 20, 12, 12)], 50) == []  # a round mark
    groups, separators = plan_characters([*digits, hyphen], np.array([600, 600, 600, 80]), 50)
    assert groups == [[0], [1], [2]] and separators == [(3, "-")]
    # A hyphen longer than a third of a digit is no longer joined to the digit beside it.
    long = (73, 22, 25, 6)
    groups, separators = plan_characters([*digits, long], np.array([600, 600, 600, 130]), 50)
    assert groups == [[0], [1], [2]] and separators == [(3, "-")]


def test_two_arcs_bowed_apart_around_an_area_code_are_parentheses():
    # (555) 123-4567 with the parentheses read as 1s.
    out = phone_parentheses(_line("155511234567", bows={0: -0.12, 4: 0.1}))
    assert _text(out) == "(555)1234567"
    out = phone_parentheses(_line("44155511234567", bows={2: -0.12, 6: 0.1}))  # after a country code
    assert _text(out) == "44(555)1234567"

    # (813) 193-5559 with a 1 in the area code leaning and bowed as the closing arc is: the taller
    # mark is the parenthesis (the first one was taken, and the number read "(8)31193-5559").
    from dataclasses import replace

    pairs = _line("181311935559", bows={0: -0.12, 2: 0.07, 4: 0.07})
    pairs = [
        (replace(seg, bbox=(*seg.bbox[:3], 40 if k == 2 else 60 if k in (0, 4) else 50)), r)
        for k, (seg, r) in enumerate(pairs)
    ]
    assert _text(phone_parentheses(pairs)) == "(813)1935559"


@pytest.mark.parametrize(
    ("text", "bows"),
    [
        ("155511234567", {0: 0.12, 4: -0.1}),  # bowed towards each other: ")555(" is no area code
        ("155511234567", {0: -0.12}),  # no closing arc
        ("15551123", {0: -0.12, 4: 0.1}),  # three digits after it: no telephone number
        ("1555551123456", {0: -0.12, 6: 0.1}),  # five digits inside
        ("12345155511234567", {5: -0.12, 9: 0.1}),  # five digits before it
    ],
)
def test_bowed_ones_that_hold_no_area_code_stay_digits(text, bows):
    pairs = _line(text, bows=bows)
    assert phone_parentheses(pairs) == pairs


def test_stroke_bow_of_parentheses_a_one_and_a_zero():
    t = np.linspace(0, 1, 12)
    arcs = {}
    for ch, curve in (("(", (2 * t - 1) ** 2), (")", 1 - (2 * t - 1) ** 2)):
        mask = np.zeros((110, 40), np.uint8)
        points = np.stack([8 + 18 * curve, 5 + 100 * t], axis=1).round().astype(np.int32)
        cv2.polylines(mask, [points], False, 255, 6)
        arcs[ch] = mask
    assert stroke_bow(arcs["("])[0] < -0.1 and stroke_bow(arcs[")"])[0] > 0.1
    assert arc_bow(arcs["("], 100) < 0 < arc_bow(arcs[")"], 100)
    assert arc_bow(arcs["("], 150) is None  # far shorter than the digits
    upright = np.zeros((110, 20), np.uint8)
    cv2.line(upright, (10, 5), (10, 105), 255, 6)
    assert abs(stroke_bow(upright)[0]) < 0.01 and arc_bow(upright, 100) is None
    zero = np.zeros((110, 50), np.uint8)
    cv2.ellipse(zero, (25, 55), (20, 50), 0, 0, 360, 255, 6)
    assert stroke_bow(zero)[1] < 0.5 and arc_bow(zero, 100) is None


def _written(mnist, text: str) -> np.ndarray:
    """A box holding ``text`` written with MNIST test digits (the first of each label), "/" as a
    leaning stroke past the digits' height, "-" as a short stroke at mid-height, "(" and ")" as
    arcs a little taller than the digits."""
    first = {d: int(np.flatnonzero(mnist.y_test == d)[0]) for d in range(10)}
    page = blank(300, 1600)
    cv2.rectangle(page, (40, 60), (1560, 220), 0, 2)
    x = 60
    for ch in text:
        if ch == "/":
            cv2.line(page, (x + 48, 88), (x + 10, 192), 0, 7)
            x += 66
        elif ch == "-":
            cv2.line(page, (x + 8, 142), (x + 36, 140), 0, 7)
            x += 50
        elif ch in "()":
            t = np.linspace(0, 1, 12)
            curve = (2 * t - 1) ** 2 if ch == "(" else 1 - (2 * t - 1) ** 2
            points = np.stack([x + 18 * curve, 84 + 108 * t], axis=1).round().astype(np.int32)
            cv2.polylines(page, [points], False, 0, 7)
            x += 40
        else:
            draw_digit(page, mnist.x_test[first[int(ch)]], x - 14, 82, 100)
            x += 76
    return page


@pytest.mark.parametrize("text", ["25/12/2024", "03-07-2025", "(555)123-4567"])
def test_a_date_or_telephone_number_written_with_its_punctuation_is_read_as_its_digits(models, mnist, text):
    (field,) = read_page(_written(mnist, text), models).fields
    assert field.value == "".join(ch for ch in text if ch.isdigit())
    assert field.text == text


def test_a_number_written_with_leaning_ones_keeps_them(models, mnist):
    # The same strokes between digits that make no date (47/93/1560) are read as 1s.
    (field,) = read_page(_written(mnist, "47/93/1560"), models).fields
    assert field.value == "4719311560"
