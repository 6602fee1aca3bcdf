"""Punctuation drawn as a digit is: a date's slashes and a telephone number's parentheses.

Both are read by the classifiers as 1s, often surely.  Each is told by the digits around it.

**Parentheses** (:func:`phone_parentheses`): a tall arc bowed left, then one bowed right
(:func:`ocr.segment.stroke_bow`), one to four digits between them and at least four after
them, with at most three digits before the first (a country code): (555) 123-4567.  A 1 is
rarely so bowed (6% of MNIST train's 1s by 0.06 of their height either way), and two of them
bowed the two ways around a few digits at a number's start hardly ever.

**Slashes** (:func:`date_slashes`).  A slash is drawn as a 1 often is: one straight
stroke, leaning.  Shape alone cannot tell them apart (a third of MNIST's straight 1s lean
20 degrees or more), so a stroke is taken for a slash only where the digits around it make
a date:

* two strokes that may be slashes (:func:`ocr.segment.slash_lean`) divide the
  field's digits into day, month and year (1-2, 1-2 and 2 or 4 digits, in either
  order of day and month) or year, month and day (4, 1-2, 1-2), and
* those digits, as read, are a day of 1-31, a month of 1-12 and a year (1800-2199
  when written with four digits).

The field's ``value`` is then the digits alone and its ``text`` keeps the slashes
(``25/12/2024``).  The reading is doubted (sent to review) when another way of
taking two strokes for slashes also makes a date, when a stroke read as a digit
leans as far as one taken for a slash (a writer whose 1s lean like slashes), or
when the year has two digits (an amount of 918159 whose 1s lean reads 9/8/59).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from itertools import combinations

from ocr.segment import Segment

# Parentheses: the digits between them and after them, and before the first.
_INSIDE = (1, 4)
_MIN_AFTER = 4
_MAX_BEFORE = 3
# A stroke left a digit must lean this many degrees less than the strokes taken for slashes.
_LEAN_MARGIN = 5.0
# Four-digit years a date may have.
_YEARS = (1800, 2199)


def phone_parentheses(pairs: list[tuple[Segment, object]]) -> list[tuple[Segment, object]]:
    """``pairs`` (segment, reading) of a line or box, left to right, with a telephone number's
    parentheses turned into separators: "(" and ")" in ``text``, left out of ``value``.

    Pairs come back unchanged where no arc bowed left and one bowed right hold an area code.
    """
    digits = [k for k, (seg, reading) in enumerate(pairs) if reading is not None]
    for n, k in enumerate(digits[: _MAX_BEFORE + 1]):
        if (pairs[k][0].bow or 0.0) >= 0:
            continue
        closes = [
            digits[m]
            for m in range(n + 1 + _INSIDE[0], min(n + 1 + _INSIDE[1], len(digits) - _MIN_AFTER - 1) + 1)
            if (pairs[digits[m]][0].bow or 0.0) > 0
        ]
        if closes:
            # Of two marks bowed right, the parenthesis is the taller: a 1 leaning and bowed as much
            # before it ("(8 1 3)") was taken for it, and the number read "(8)31193-5559".
            close = max(closes, key=lambda j: (pairs[j][0].bbox[3], -j))
            return _as_separators(pairs, {k: "(", close: ")"})
    return pairs


def date_slashes(pairs: list[tuple[Segment, object]]) -> tuple[list[tuple[Segment, object]], bool]:
    """``pairs`` (segment, reading) of a line or box, left to right, with the slashes of a date
    turned into separators; and whether that reading is in doubt.

    Readings need only a ``label``.  Pairs come back unchanged (and not in doubt) where no two
    strokes make the field a date, or it holds a separator of its own: a hyphen or a comma, or a
    point with two digits after it (an amount of 9181.59 whose 1s lean would read 9/8/59).  Any
    other point is taken for a speck, as beside slashes it most likely is, where a date with a
    year of four digits comes out; it is dropped, and the field doubted.
    """
    points = [k for k, (seg, _) in enumerate(pairs) if seg.char == "."]
    if any(not seg.is_digit and seg.char != "." for seg, _ in pairs):
        return pairs, False
    if any(sum(seg.is_digit for seg, _ in pairs[k + 1 :]) == 2 for k in points):
        return pairs, False
    digits = [(k, seg, reading) for k, (seg, reading) in enumerate(pairs) if reading is not None]
    strokes = [j for j, (_, seg, _) in enumerate(digits) if seg.lean is not None]
    if len(strokes) < 2:
        return pairs, False
    labels = [str(reading.label) for _, _, reading in digits]

    dates = []  # (a, b, (first, second, third)): the strokes taken for slashes and the runs they leave
    for a, b in combinations(strokes, 2):
        runs = "".join(labels[:a]), "".join(labels[a + 1 : b]), "".join(labels[b + 1 :])
        if is_date(runs) and (not points or 4 in (len(runs[0]), len(runs[2]))):
            dates.append((a, b, runs))
    if not dates:
        return pairs, False
    a, b, runs = max(dates, key=lambda found: min(digits[found[0]][1].lean, digits[found[1]][1].lean))
    least = min(digits[a][1].lean, digits[b][1].lean)
    doubt = (
        len(dates) > 1
        or any(digits[j][1].lean > least - _LEAN_MARGIN for j in strokes if j not in (a, b))
        # Two digits of year leave little to chance: most runs of four to six digits make some date.
        or len(runs[2]) == 2
        or bool(points)
    )
    return _as_separators(pairs, {digits[a][0]: "/", digits[b][0]: "/"}, dropped=points), doubt


def _as_separators(
    pairs: list[tuple[Segment, object]], marks: dict[int, str], dropped: Collection[int] = ()
) -> list[tuple[Segment, object]]:
    """``pairs`` with those at the indices of ``marks`` turned into the separators given there
    (no reading), and those at ``dropped`` left out."""
    return [
        (replace(seg, char=marks[k]), None) if k in marks else (seg, reading)
        for k, (seg, reading) in enumerate(pairs)
        if k not in dropped
    ]


def is_date(parts: tuple[str, str, str]) -> bool:
    """Whether three runs of digits are a date: day/month/year, month/day/year or year/month/day."""
    first, second, third = parts
    if len(first) == 4 and len(second) in (1, 2) and len(third) in (1, 2):
        return _year(first) and _month(second) and _day(third)
    if len(first) in (1, 2) and len(second) in (1, 2) and len(third) in (2, 4):
        return (len(third) == 2 or _year(third)) and (
            (_day(first) and _month(second)) or (_month(first) and _day(second))
        )
    return False


def _day(text: str) -> bool:
    return 1 <= int(text) <= 31


def _month(text: str) -> bool:
    return 1 <= int(text) <= 12


def _year(text: str) -> bool:
    return _YEARS[0] <= int(text) <= _YEARS[1]
