"""Dates written freely: slashes and hyphens between day, month and year are separators, not 1s."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ocr.dates import date_slashes, is_date
from ocr.read import read_page
from ocr.segment import Segment, hyphen_marks, plan_characters, slash_lean, stroke_lean
from tests.ocr.drawing import blank, draw_digit


def _line(text: str, leans: dict[int, float] | None = None) -> list[tuple[Segment, SimpleNamespace | None]]:
    """(segment, reading) pairs of a field reading ``text``: "." a separator, any digit read as itself;
    ``leans`` gives the straight strokes among them (index -> degrees)."""
    leans = leans or {}
    pairs = []
    for k, ch in enumerate(text):
        seg = Segment((40 * k, 0, 30, 50), np.zeros((50, 30), np.uint8), char="" if ch.isdigit() else ch)
        reading = SimpleNamespace(label=int(ch)) if ch.isdigit() else None
        pairs.append((Segment(seg.bbox, seg.crop, seg.char, lean=leans.get(k)), reading))
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


def _written(mnist, text: str) -> np.ndarray:
    """A box holding ``text`` written with MNIST test digits (the first of each label), "/" as a
    leaning stroke past the digits' height, "-" as a short stroke at mid-height."""
    first = {d: int(np.flatnonzero(mnist.y_test == d)[0]) for d in range(10)}
    page = blank(300, 1400)
    cv2.rectangle(page, (40, 60), (1360, 220), 0, 2)
    x = 60
    for ch in text:
        if ch == "/":
            cv2.line(page, (x + 48, 88), (x + 10, 192), 0, 7)
            x += 66
        elif ch == "-":
            cv2.line(page, (x + 8, 142), (x + 36, 140), 0, 7)
            x += 50
        else:
            draw_digit(page, mnist.x_test[first[int(ch)]], x - 14, 82, 100)
            x += 76
    return page


@pytest.mark.parametrize("text", ["25/12/2024", "03-07-2025"])
def test_a_date_written_with_slashes_or_hyphens_is_read_as_its_digits(models, mnist, text):
    (field,) = read_page(_written(mnist, text), models).fields
    assert field.value == text.replace("/", "").replace("-", "")
    assert field.text == text


def test_a_number_written_with_leaning_ones_keeps_them(models, mnist):
    # The same strokes between digits that make no date (47/93/1560) are read as 1s.
    (field,) = read_page(_written(mnist, "47/93/1560"), models).fields
    assert field.value == "4719311560"
