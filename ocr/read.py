"""Read a page: clean it, find its fields, cut them into digits, classify every digit at once.

:func:`read_page` is the one entry point the worker calls.  Coordinates in its
result are in original page pixels (before deskew and registration).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ocr.classifiers import Models
from ocr.cleanup import (
    CleanPage,
    clean_page,
    find_sheet,
    is_scan,
    paper_on_ground,
    sheet_homography,
    working_scale,
)
from ocr.decision import Decisions, decide
from ocr.errors import BlankCropError
from ocr.fields import (
    between_rules,
    digit_sized_marks,
    find_fields,
    line_masks_with_hairlines,
    looks_sideways,
    paper_blocks,
    rules_run_on,
    writing_runs_down,
)
from ocr.geometry import Box, FieldRegion, invert_affine, outline_components, pad_box, transform_box, union_box
from ocr.orientation import marks_lie_on_their_side, text_orientation
from ocr.printed import letter_probability
from ocr.punctuation import date_slashes, phone_parentheses
from ocr.register import register, template_regions
from ocr.segment import (
    Segment,
    gray_reading_crop,
    ink_past_the_ends,
    reading_crop,
    segment_field,
    specks_in_empty_cells,
    stroke_along_border,
    width_penalty,
)
from ocr.stats import median
from ocr.symbols import printed_signs
from ocr.template import Template

# A free line of "digits" most of which the classifiers doubt is text, a
# signature or a drawing, not a number (auto mode only).  So is a box holding
# many such marks, or several and not one clear digit (a box of printed text,
# a name); a few doubtful digits among clear ones in a box are a number to review.
_MIN_ACCEPTED_SHARE_IN_LINES = 0.5
_MAX_DIGITS_IN_LINE = 24
_MIN_MARKS_FOR_TEXT_BOX = 6
# A line on a printed rule of at most this many marks, each read at the layout's clear bar, is a
# short answer kept for review however the line looks (:func:`_short_answer_on_rule`).
_SHORT_ANSWER_MARKS = 2
# Log-odds against reading a run of ink as one more digit (see classify_batch).  At 1.0, 5,929
# of the 6,219 runs with ways of cutting them on the calibration pages were one digit, and
# many were cut (a 0 with a tall left side read "10"); at 3.0 (with the review margin
# below at 2.0 instead of 1.0) 34 more fields read exactly, as many were accepted wrong, and
# fewer went to review (docs/performance.md).
_SPLIT_COST = 3.0
# Log-odds against a digit the two classifiers read differently, when weighing
# ways of cutting touching digits: a fragment or a merged pair often fools one.
_DISAGREE_COST = 1.0
# Weight of the touching-digit detector's log-odds (ocr.touching) when weighing a run of
# ink read whole against the same run cut into digits.
_TOUCHING_WEIGHT = 0.75
# A way of cutting touching digits that beats the next best by less than this
# (log-odds) is a guess: the field goes to review.  At 2.0, of the fields accepted with a way of
# cutting that won by 2.0-2.5 on the dev sets (seeds 7001-7006), their fax and dithered copies,
# unseen layouts and fresh set 20261218, 2 of 11 were wrong: a 1 run into the 9 beside it
# ("9102.00" read "902.00") and a short 1 taken for a point ("0001295" read "000.295").
_MIN_SPLIT_MARGIN = 2.5
# A mark of free writing too narrow to be cut by its width is in doubt where the touching-digit
# detector gives it at least this probability of holding two digits (run_together); so is a
# piece cut from a run.
_RUN_TOGETHER = 0.98
# Auto mode: a field found within this share of the page's width or height of
# its border may be the paper's edge, a shadow or a punch hole.
_EDGE_BAND = 0.03
# A page read upside down (fed the wrong way round) has many of its digits in doubt: when at
# least this share of a page's digits (and this many) is, they are classified again turned by
# 180 degrees, and if that cuts the share in doubt to this part of it, the page is read turned.
# Calibration pages drawn from the validation digits (60 forms, 80 cheques, 80 photos), turned
# upside down: 15-63% of a page's digits in doubt, turned back 0-29%, a part of 0 to 0.88; as
# drawn: no page with 12 digits or more under a part of 1.1.
_TURN_DOUBT = 0.12
_TURN_MIN_DIGITS = 12
_TURN_PART = 0.7
# A page of free writing (no boxes: a photo of digits on paper) has no print to decide by and
# often fewer digits: from this many, it is read turned if turning cuts the share in doubt to
# this part of it.  Calibration photos (seeds 97-100, 200 pages) as drawn: 6 digits or more
# and 12% in doubt, none under a part of 0.86; turned upside down, 160 of 200 read turned
# (106 by the rule for 12 digits or more alone).
_FREE_TURN_MIN_DIGITS = 6
_FREE_TURN_PART = 0.5
# However few and however sure its digits, a page of free writing is also read turned when the
# way they are drawn says it is upside down (:class:`ocr.orientation.DigitOrientation`, from this
# many digits): by a vote of this much or more (summed log-odds, each digit's capped at 4) if they
# read no worse turned, or by any vote if turned this share fewer of them are in doubt.
# Calibration photos (seeds 96-100, 250 pages) turned upside down: 74-84% of fields read exactly
# before, 87-91% after; as drawn (seeds 91-100), no page read differently.
_HAND_TURN_MIN_DIGITS = 3
_HAND_TURN_VOTE = 3.0
_HAND_TURN_GAIN = 0.2
# And a page of free writing whose digits are drawn upright by a vote of this much or more stays as
# it is, however its digits read turned: a few doubtful digits of a short page (2 of 14 upright,
# 1 of 14 turned) can read surer either way by chance.  Calibration photos (seeds 91-100, 500
# pages) turned upside down and read turned back: votes of -73 to 8.0.
_HAND_KEEP_VOTE = 10.0
# A page of free writing read turned a quarter (it lies on its side) with fewer digits than
# :data:`_FREE_TURN_MIN_DIGITS` sends its fields to review: which quarter is a guess.
_FEW_DIGITS_ON_ITS_SIDE = "read turned a quarter, with too few digits to tell which way up"
# A page of faint marks and no ink (:func:`ocr.cleanup.ink_on_page`) is not read but flagged.
_ONLY_FAINT_MARKS = "only marks far lighter than ink (the other side showing through, or too light a scan): not read"
_BLANK_PAGE = "a blank page: nothing to read"
# With fewer digits or less doubt than that, or digits that do not read that much better turned,
# the page's print decides (:mod:`ocr.orientation`): from this many digits and this share of them
# in doubt, a page whose print stands upside down is read turned if its digits read no worse so.
_PRINT_TURN_MIN_DIGITS = 4
_PRINT_TURN_DOUBT = 0.08
# Widest a mark in a line of free writing may be, against its height, and still pass for one
# digit: on calibration pages drawn from the validation digits (150 forms, 100 cheques, 60
# photos) no correctly read line field had a mark over 1.79 (two photos had 1.79); the two
# signatures read as numbers there had marks of 2.0 and 2.3.
_MAX_MARK_ASPECT = 1.8
# A line of free writing found without a template with such a mark and at least this share of
# its marks in doubt is cursive writing, not a number (:func:`_scrawl`).
_MIN_DOUBT_IN_SCRAWL = 1 / 3
# So is a line of at least this many marks, at least this share of them under the review bar,
# with a mark this much wider than tall: a signature cut into arcs, none as wide as a run.
_MIN_MARKS_IN_CUT_SCRAWL = 3
_MIN_REVIEW_IN_CUT_SCRAWL = 0.5
_CUT_SCRAWL_ASPECT = 1.4
# A box found without a template holds writing, not a number, when a mark in it is over this
# much wider than tall and at least :data:`_MIN_DOUBT_IN_SCRAWL` of its marks are in doubt: a
# name written joined-up in an application form's name box.  On calibration pages drawn from the
# validation digits (seeds 91-100: 500 forms, 500 cheques) 57 of the 59 boxes read where the
# truth has no number had it; of the 1,618 numbers read in boxes, the 3 with a mark that wide
# had every digit read clearly, and none with a third in doubt had a mark over 1.75.
_BOX_SCRAWL_ASPECT = 2.0
# Marks left out between two digits of a line or box that hold this share of a digit's ink
# (:func:`ocr.segment.ink_left_out`) send it to review.  A 6 drawn in a broken pen trace came
# apart into pieces: one passed for a hyphen, the rest for specks, and "4620783" was accepted as
# "4-20783" (0.17 of a digit's ink left out).  On the dev sets (seeds 7001-7004, 2,865 fields) and
# forms of seed 7001 as faxes and dithered (750 fields), no field left out more than 0.10.
_LEFT_OUT_REVIEW = 0.12


@dataclass(frozen=True)
class DigitReading:
    """One classified digit; confidences 0-1, bbox (x, y, w, h) in original page pixels."""

    bbox: Box
    label: int
    confidence: float
    cnn_label: int
    cnn_prob: float
    svm_label: int
    svm_prob: float
    disagree: bool
    low_confidence: bool
    cell: int | None = None
    # Log-odds by which this way of cutting its run of ink beat the best other
    # way (one digit against touching digits); None where there was no choice.
    split_margin: float | None = None
    # Cut from digits that overlap (a cut ran through two strokes): each piece may hold some of the other.
    overlapping: bool = False
    # A piece of one run of ink that was read cut into digits (touching digits cut apart).
    cut_from_run: bool = False
    # Read clearly enough to count when judging the page's layout (DecisionRule.for_page_layout),
    # whatever the stricter review bar says; None: not needs_review.
    clear: bool | None = None
    # A mark the touching-digit detector all but takes for two digits, though too narrow to be cut
    # by its width, or cut from a run (a 1 run into its neighbour; read.run_together): read as one, in doubt.
    run_together: bool = False

    @property
    def needs_review(self) -> bool:
        return self.disagree or self.low_confidence

    @property
    def cut_guessed(self) -> bool:
        """Whether the way its run of ink was cut barely beat another (:data:`_MIN_SPLIT_MARGIN`)."""
        return self.split_margin is not None and self.split_margin < _MIN_SPLIT_MARGIN

    @property
    def reads_clearly(self) -> bool:
        """Whether the digit counts as clearly read where reading judges the page's layout."""
        return not self.needs_review if self.clear is None else self.clear


@dataclass(frozen=True)
class FieldReading:
    """A field's reading: ``value`` digits only, ``text`` with separators ("1250.75")."""

    name: str
    kind: str
    value: str
    text: str
    confidence: float
    bbox: Box
    digits: tuple[DigitReading, ...]
    reasons: tuple[str, ...] = ()  # why it needs review; empty when accepted
    cells: int = 0

    @property
    def needs_review(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class PageReading:
    number: int
    width: int
    height: int
    # The rotation that made the page upright, degrees (positive: its content was turned clockwise):
    # the deskew, plus 180 or +-90 for a page read turned.
    angle: float
    fields: tuple[FieldReading, ...]
    registration_score: float | None = None
    problems: tuple[str, ...] = field(default=())
    # Its rules run down the page (:func:`ocr.fields.looks_sideways`): it may lie on its side.
    sideways: bool = False
    # It has no boxes and its writing lies on its side: it runs down the page
    # (:func:`ocr.fields.writing_runs_down`), or its marks are drawn on their side
    # (:func:`ocr.orientation.marks_lie_on_their_side`).
    columns: bool = False


def read_page(
    gray: np.ndarray,
    models: Models,
    template: Template | None = None,
    number: int = 1,
    timings: dict[str, float] | None = None,
    dpi: float | None = None,
    turn_check: bool = True,
) -> PageReading:
    """Read every digit field of one page.

    Parameters
    ----------
    gray : (H, W) uint8 page, 0 black, 255 white.
    models : loaded once per process (:func:`ocr.classifiers.load_models`).
    template : read these named fields (after registering the page onto it)
        instead of finding fields automatically.
    number : the page's 1-based number in its document.
    timings : if given, seconds spent per stage are added to it (cleanup,
        fields, segmentation, normalise, cnn, svm).
    dpi : the page's resolution, when its file says (if not, a whole sheet
        of paper gives it by its shape: :func:`ocr.cleanup.paper_dpi`);
        a page well above :data:`ocr.cleanup.WORKING_DPI` is read shrunk to it.
        Boxes always come back in the page's own pixels.
    turn_check : for pages fed upside down or on their side.  A page whose
        digits are mostly in doubt is read turned by 180 degrees if its digits
        read far surer that way (with a template, if it registers turned).
        With a template, a page that does not register onto it is read turned
        by 180 degrees or a quarter either way, whichever registers first (it
        is still flagged if none does).  In auto mode, a ruled page whose rules run down it
        (:func:`ocr.fields.looks_sideways`) is read turned a quarter too,
        keeping that reading unless a smaller share of its digits is sure.
        Boxes still come back in the page's own pixels.

    A scan (:func:`ocr.cleanup.is_scan`) that shows dark ground past the sheet's edges
    (:func:`ocr.cleanup.paper_on_ground`) is read as the sheet alone, its boxes given back in
    the scan's pixels.
    """
    paper = paper_on_ground(gray) if is_scan(dpi, gray.shape) else None
    if paper is not None:
        x0, y0, w, h = paper
        sheet = read_page(gray[y0 : y0 + h, x0 : x0 + w], models, template, number, timings, dpi, turn_check)

        def back(box: Box) -> Box:
            x, y, bw, bh = box
            return (x + x0, y + y0, bw, bh)

        return replace(sheet, width=gray.shape[1], height=gray.shape[0], fields=_boxes_mapped(sheet, back))
    reading = _read_page(gray, models, template, number, timings, dpi, turn_check)
    if template is not None:
        if turn_check and reading.problems:
            return _registered_turned(gray, models, template, number, timings, dpi) or reading
        return reading
    if not turn_check or not (reading.sideways or reading.columns):
        return reading
    turned = _quarter_turned(
        _read_page(cv2.rotate(gray, cv2.ROTATE_90_CLOCKWISE), models, None, number, timings, dpi, True)
    )
    if reading.columns:
        # Read on its side, free writing gives few marks that pass for numbers, each of them sure
        # or not: of the page as it came and turned a quarter either way, the reading with the
        # most digits read clearly wins (a page of few digits is too short for the check of the
        # digits turned upside down: the quarter the other way is read too).
        other = _quarter_turned(
            _turned(
                _read_page(cv2.rotate(gray, cv2.ROTATE_90_COUNTERCLOCKWISE), models, None, number, timings, dpi, True)
            )
        )
        # As many either way (a page of a few digits, each read clearly on its side too): its
        # columns or its marks say it lies on its side.
        best = max((turned, other, reading), key=_sure_count)
        if best is reading or sum(len(f.digits) for f in best.fields) >= _FREE_TURN_MIN_DIGITS:
            return best
        # Too few digits to tell one quarter turn from the other: 239 read the other way up is 687,
        # every digit clear.
        return replace(best, fields=tuple(_with_reasons(f, [_FEW_DIGITS_ON_ITS_SIDE]) for f in best.fields))
    return turned if _sure_share(turned) >= _sure_share(reading) else reading


def _registered_turned(
    gray: np.ndarray,
    models: Models,
    template: Template,
    number: int,
    timings: dict[str, float] | None,
    dpi: float | None,
) -> PageReading | None:
    """The page read onto ``template`` turned by 180 degrees or a quarter either way: the first turn
    that registers, its boxes mapped back to the page as it was; None if none does."""
    # A page that registers on its side may do so either way up (a cheque's frame): read that way,
    # the digits' own turn check settles it.
    turns = (
        (cv2.ROTATE_180, _turned, False),
        (cv2.ROTATE_90_CLOCKWISE, _quarter_turned, True),
        # A quarter counter-clockwise is a quarter clockwise, then half a turn.
        (cv2.ROTATE_90_COUNTERCLOCKWISE, lambda r: _quarter_turned(_turned(r)), True),
    )
    for turn, back, check in turns:
        reading = _read_page(cv2.rotate(gray, turn), models, template, number, timings, dpi, check)
        if not reading.problems:
            return back(reading)
    return None


def _sure_share(reading: PageReading) -> float:
    """The share of a reading's digits that need no review, counted as if one more digit were sure
    and one more in doubt (a half without digits).

    Read on its side, a form's comb walls and printed labels become many
    marks, most of them doubtful; turned upright it reads as it should.
    The two added digits keep a reading of one or two marks from winning by
    share alone: a photo of four lines on lined paper, its sheet's long edges
    taken for rules running down it, read 23 of its 24 digits clearly as it
    stood and one lone mark, clearly, turned a quarter; by the bare shares
    (0.96 against 1.0) the page was read turned and its four numbers lost.
    """
    digits = sum(len(f.digits) for f in reading.fields)
    return (_sure_count(reading) + 1) / (digits + 2)


def _sure_count(reading: PageReading) -> int:
    """How many of a reading's digits need no review, their cut from a run of ink no guess either
    (digits on their side break into marks that cut into digits as surely as any)."""
    return sum(d.reads_clearly and not d.cut_guessed for f in reading.fields for d in f.digits)


def _quarter_turned(reading: PageReading) -> PageReading:
    """A reading of the page turned a quarter clockwise, its boxes mapped back to the page as it was."""
    height = reading.width  # the page as it was is as tall as the turned one is wide

    def back(box: Box) -> Box:
        x, y, w, h = box
        return (y, height - x - w, h, w)

    return replace(
        reading, width=reading.height, height=height, angle=reading.angle - 90.0, fields=_boxes_mapped(reading, back)
    )


def _boxes_mapped(reading: PageReading, back: Callable[[Box], Box]) -> tuple[FieldReading, ...]:
    """The reading's fields with every field and digit box passed through ``back``."""
    return tuple(
        replace(f, bbox=back(f.bbox), digits=tuple(replace(d, bbox=back(d.bbox)) for d in f.digits))
        for f in reading.fields
    )


def _read_page(
    gray: np.ndarray,
    models: Models,
    template: Template | None,
    number: int,
    timings: dict[str, float] | None,
    dpi: float | None,
    turn_check: bool,
    flattened: tuple[np.ndarray, tuple[int, int]] | None = None,
    free_lines_only: bool = False,
) -> PageReading:
    """:func:`read_page` of the page the way up it came (or, after the upside-down check, turned by
    180 degrees); ``turn_check`` here is that check and the ``sideways`` flag, not the quarter turns.

    ``flattened``: the homography and size that take a photographed sheet to an upright
    rectangle (:func:`ocr.cleanup.sheet_homography`); the page is read through it.
    ``free_lines_only``: in auto mode, look for lines of writing only, as on a page without boxes.
    """
    clock = _Clock(timings)
    scan = is_scan(dpi, gray.shape)
    page = gray  # as it came: turned from, and reported in
    if flattened is None and template is not None and not scan:
        # A photographed form read onto its template: the sheet flattened to the template's page.
        sheet = find_sheet(page)
        if sheet is not None:
            flattened = sheet_homography(sheet, template.size)
    if flattened is not None:
        gray = cv2.warpPerspective(gray, flattened[0], flattened[1], flags=cv2.INTER_LINEAR, borderValue=255)
    clean = clean_page(gray, scale=working_scale(dpi, gray.shape), sharpen=scan)
    clock.lap("cleanup")
    if clean.holds != "ink":
        # Nothing to read.  Faint marks are flagged; a blank page is not (the back of a form), but
        # with a template it is, as a page that does not register.
        flag = clean.holds == "faint" or template is not None
        problems = (_ONLY_FAINT_MARKS if clean.holds == "faint" else _BLANK_PAGE,) if flag else ()
        return PageReading(number, page.shape[1], page.shape[0], clean.angle, (), problems=problems)
    paper = paper_blocks(clean.ink)  # where the page is paper: for the hairlines and, in auto mode, field finding
    h_mask, v_mask = line_masks_with_hairlines(clean.ink, clean.fine, paper)
    # Found once in auto mode, for field finding and the sideways check.
    h_outlines = outline_components(h_mask) if template is None else None
    sideways = template is None and turn_check and looks_sideways(h_mask, v_mask, h_outlines)
    registration_score = None
    if template is not None:
        registration, rects = register(clean.ink, template, (h_mask, v_mask))
        registration_score = round(registration.score, 3)
        if not registration.ok:
            problem = (
                f"page does not register onto template {template.name!r}: "
                f"{registration.matched} of {registration.expected} boxes found (score {registration.score:.2f})"
            )
            return PageReading(number, page.shape[1], page.shape[0], clean.angle, (), registration_score, (problem,))
        regions = template_regions(template, registration, rects)
    else:
        regions = find_fields(clean.ink, (h_mask, v_mask), h_outlines, clean.fine, paper, free_lines_only)
    free_page = all(region.kind == "line" for region in regions)
    clock.lap("fields")
    if flattened is None and not scan and template is None and not free_page:
        # A photographed form (a camera's page with boxes): its boxes and rules run askew with the
        # perspective, and cut digits off.  Read it again flattened.
        # Photos of digits on plain paper are left as they came: flattened, they read worse.
        sheet = find_sheet(page)
        if sheet is not None:
            return _read_page(page, models, template, number, timings, dpi, turn_check, sheet_homography(sheet))
    # Free writing on its side (a photo's grainy table or a shadow can pass for a box on one).
    columns = False
    if template is None and turn_check and not sideways and (free_page or not scan):
        marks = digit_sized_marks(clean.ink)
        columns = writing_runs_down(clean.ink, marks) or (
            # Too few marks to tell by columns (one short number): how they are drawn tells.
            free_page
            and models.orientation is not None
            and marks_lie_on_their_side(clean.ink, models.orientation, marks)
        )
    clock.lap("fields")
    ink, faint = with_faint_writing(clean.gray, clean.ink, regions, h_mask, v_mask)
    segments = [segment_field(ink, h_mask, v_mask, region) for region in regions]
    clock.lap("segmentation")
    batch, index = digit_batch(segments)
    # A camera's page reads no better so: its paper's grain and the table round it come out as
    # doubtful marks read surer from the gray, and a page of free writing is judged by its sure marks.
    as_read = gray_batch(segments, batch, index, clean.gray, ink) if scan else None
    clock.lap("normalise")
    readings, decisions = classify_batch(segments, batch, index, models, clock, as_read)
    printed, beside_print = (set(), set())
    if template is None:
        readings, printed, beside_print = without_printed_text(regions, readings, batch, index)
        # Print read as digits has no say in which way up the page stands; the handwriting beside it has.
        kept = {id(seg) for pairs in readings for seg, _ in pairs}
        segments = [
            [seg for seg in segs if k not in beside_print or id(seg) in kept] if k not in printed else []
            for k, segs in enumerate(segments)
        ]
    if turn_check and reads_better_turned(
        _voting(segments, regions, clean.ink.shape, free_page),
        batch,
        index,
        decisions,
        models,
        clock,
        clean.ink,
        free_page,
        as_read,
    ):
        turned = _read_page(cv2.rotate(page, cv2.ROTATE_180), models, template, number, timings, dpi, False)
        # With a template, a page that registers both ways (a cheque's frame) is read turned only if it
        # registers turned too.
        if not turned.problems:
            return replace(_turned(turned), sideways=sideways, columns=columns)
    readings, sign_doubt = without_printed_signs(regions, readings, batch, index, free_page)
    back = invert_affine(clean.matrix)
    if flattened is not None:  # from the working pixels to the flattened sheet, then to the photo
        back = np.linalg.inv(flattened[0]) @ np.vstack([back, [0.0, 0.0, 1.0]])
    fields = []
    clear_bar = models.rule.for_page_layout().min_confidence
    for index, (region, pairs) in enumerate(zip(regions, readings, strict=True), start=1):
        if index - 1 in printed:
            continue
        if index - 1 in beside_print:
            region = replace(region, bbox=union_box(seg.bbox for seg, _ in pairs))
        edge_stroke = False
        if template is None:
            region, pairs, edge_stroke = without_edge_stroke(region, pairs, clean.ink.shape)
        slash_doubt = False
        if region.kind in ("line", "box"):
            pairs, slash_doubt = date_slashes(phone_parentheses(pairs))
        reading = assemble_field(region, pairs, back, name=region.name or f"field_{index}")
        if slash_doubt:
            reading = _with_reasons(reading, ["a stroke taken for a date's slash may be a 1"])
        if index - 1 in sign_doubt:
            reading = _with_reasons(reading, ["a mark read as a digit was taken for a printed currency sign"])
        if edge_stroke:
            reading = _with_reasons(reading, ["a mark at the page edge left out"])
        if index - 1 in beside_print:
            reading = _with_reasons(reading, ["written beside printed text, which was left out"])
        written = {seg.cell or 0 for seg, digit in pairs if digit is not None}  # a box's one cell: 0
        if region.kind == "line" and (
            ink_past_the_ends(
                ink, [seg for seg, digit in pairs if digit is not None], [seg for seg, _ in pairs if not seg.is_digit]
            )
            >= _LEFT_OUT_REVIEW
        ):
            reading = _with_reasons(
                reading, ["ink past the end of the number left out: a broken or faint digit may be missing"]
            )
        if written and stroke_along_border(ink, h_mask, v_mask, region, written):
            reading = _with_reasons(reading, ["a stroke may run along the box's border, erased with it"])
        if specks_in_empty_cells(ink, h_mask, v_mask, region, written):
            reading = _with_reasons(reading, ["specks left in an empty cell: a broken or faint digit may be missing"])
        if template is None and (
            not (_looks_like_a_number(reading, region.kind) or _short_answer_on_rule(reading, region, clear_bar))
            or is_edge_mark(region.kind, region.bbox, clean.ink.shape, reading.value, free_page)
        ):
            continue
        if template is None:
            doubts = doubts_about_found_field(region.kind, region.bbox, clean.ink.shape, reading.value, free_page)
            if rules_run_on(region, h_mask):
                doubts = [*doubts, "the comb's rules run on past its cells"]
            if between_rules(region, h_mask):
                doubts = [*doubts, "ruled above and below, but no box found"]
            if doubts:
                reading = _with_reasons(reading, doubts)
        if template is not None:
            problems = template.field(reading.name).validate.problems(reading.value, reading.text)
            if problems:
                reading = _with_reasons(reading, problems)
        if index - 1 in faint:
            reading = _with_reasons(reading, ["written much lighter than the print"])
        fields.append(reading)
    if template is None and not free_lines_only and not free_page and all(f.kind == "line" for f in fields):
        # No box-like shape found held a number or was an empty box (a photo's dark, grainy desk
        # can look like one): whatever is written on the page is in lines, as on a page without boxes.
        return _read_page(page, models, None, number, timings, dpi, turn_check, flattened, free_lines_only=True)
    if template is None:
        if free_page:
            fields = without_stacked_ones(fields)
        fields = [_renamed(f, f"field_{i}") for i, f in enumerate(fields, start=1)]
    return PageReading(
        number,
        page.shape[1],
        page.shape[0],
        clean.angle,
        tuple(fields),
        registration_score,
        sideways=sideways,
        columns=columns,
    )


# A field with no ink inside is looked at again for writing much lighter than the page's print
# (pencil on a dark printed form), which the page's threshold leaves out.  Marks there:
# at least this share of its insides (lines left out, smoothed 3x3 against scanner noise) this
# much darker than their median, the paper.
_FAINT_MARKS = (0.003, 25)
# They are read when the insides' own Otsu threshold makes a dark class of this share of their
# pixels, at least this much darker than their paper on average, and no lighter than this.
_FAINT_SHARE = (0.003, 0.35)
_FAINT_CONTRAST = 35
_FAINT_LEVEL = 235
# Ink inside (lines left out) at most this share of the insides: the box or comb is empty, but
# for specks and what is left of its walls.
_EMPTY_INSIDE = 0.01


def with_faint_writing(
    flat: np.ndarray, ink: np.ndarray, regions: list[FieldRegion], h_mask: np.ndarray, v_mask: np.ndarray
) -> tuple[np.ndarray, set[int]]:
    """The page's ``ink`` with the faint writing in its empty fields added, and which fields had it.

    A page filled in pencil on a dark printed form binarises to its print alone: every
    field came out empty, and was accepted so.  An empty field (its boxes' insides, or a
    template line's area) that holds marks clearly darker than their paper
    (:data:`_FAINT_MARKS`) is such a field; its marks are added to the ink where they
    stand out enough to read (:data:`_FAINT_SHARE`), and its index is returned, for the
    field to go to review whatever is read: strokes this light come out broken.
    ``flat`` is the illumination-flattened page that ``ink`` was binarised from
    (:attr:`ocr.cleanup.CleanPage.gray`); ``ink`` itself is returned when nothing is added.
    """
    out, faint_regions = ink, set()
    near_ink = None
    for k, region in enumerate(regions):
        # A template's line field is its writing area (one found without a template holds ink);
        # only the part on the page (a template's field may reach past a shifted scan's edge).
        areas = [pad_box(box, 0, ink.shape) for box in region.cells or (region.bbox,)]
        insides = [(slice(y, y + h), slice(x, x + w)) for x, y, w, h in areas if w > 2 and h > 2]
        # The lines of each inside, made there alone: most fields hold ink, and need no more.
        lines = [cv2.bitwise_or(h_mask[c], v_mask[c]) for c in insides]
        area = sum(m.size for m in lines)
        written = sum(int(np.count_nonzero(ink[c] & ~m)) for c, m in zip(insides, lines, strict=True))
        if not insides or written > _EMPTY_INSIDE * area:
            continue
        if near_ink is None:  # the ink with the gray edge a scanner gives it: no faint marks
            near_ink = cv2.dilate(ink, np.ones((5, 5), np.uint8))
        smooth = np.concatenate(
            [cv2.blur(flat[c], (3, 3))[(near_ink[c] == 0) & (m == 0)] for c, m in zip(insides, lines, strict=True)]
        )
        if smooth.size < 50:
            continue
        paper = float(np.median(smooth))
        if float((smooth <= paper - _FAINT_MARKS[1]).mean()) < _FAINT_MARKS[0]:
            continue
        faint_regions.add(k)
        pixels = np.concatenate([flat[c][m == 0] for c, m in zip(insides, lines, strict=True)])
        threshold, _ = cv2.threshold(pixels.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        dark = pixels <= threshold
        share = float(dark.mean())
        if not _FAINT_SHARE[0] <= share <= _FAINT_SHARE[1] or threshold > _FAINT_LEVEL:
            continue
        if paper - float(pixels[dark].mean()) < _FAINT_CONTRAST:
            continue
        if out is ink:
            out = ink.copy()
        for c, m in zip(insides, lines, strict=True):
            out[c][(flat[c] <= threshold) & (m == 0)] = 255
    return out, faint_regions


def digit_batch(segments: list[list[Segment]]) -> tuple[np.ndarray | None, dict[int, int]]:
    """The normalised crops of every digit of a page and of every piece of its split alternatives.

    Returns the (N, 28, 28) batch (None if there is no digit) and its row for
    each segment, by ``id``; a crop that turned out blank has no row.
    """
    crops: list[np.ndarray] = []
    index: dict[int, int] = {}  # id(segment) -> row in the batch

    def add(seg: Segment) -> None:
        try:
            crops.append(reading_crop(seg.crop, seg.stroke_width))
            index[id(seg)] = len(crops) - 1
        except BlankCropError:
            pass

    for segs in segments:
        for seg in segs:
            if seg.is_digit:
                add(seg)
                for alternative in seg.alternatives:
                    for piece in alternative:
                        add(piece)
    return (np.stack(crops) if crops else None), index


def gray_batch(
    segments: list[list[Segment]], batch: np.ndarray | None, index: dict[int, int], gray: np.ndarray, ink: np.ndarray
) -> np.ndarray | None:
    """The rows of :func:`digit_batch`'s ``batch`` as the classifiers read them: each digit from the page's gray
    (:func:`ocr.segment.gray_reading_crop`), or as in ``batch`` where its gray leaves nothing.

    The mask keeps a stroke only where it is darker than the page's threshold, and the soft,
    light parts of handwriting are lost: a 9 whose head is drawn lighter on the left reads as a
    7, a thin light 0 as a 7.  Read from the gray, the calibration forms (seeds 91-100) came out
    97.60% exact instead of 96.98%, the cheques 96.93% instead of 96.02%, with as many fields in
    review and fewer accepted wrong (docs/performance.md).  The touching-digit, letter, sign and
    orientation models go on reading ``batch``, as they were trained.
    """
    if batch is None:
        return None
    out = batch.copy()
    for segs in segments:
        for seg in segs:
            if not seg.is_digit:
                continue
            for piece in (seg, *(p for alternative in seg.alternatives for p in alternative)):
                row = index.get(id(piece))
                if row is None:
                    continue
                with contextlib.suppress(BlankCropError):  # nothing dark enough there: read the mask
                    out[row] = gray_reading_crop(gray, ink, piece)
    return out


def classify_batch(
    segments: list[list[Segment]],
    batch: np.ndarray | None,
    index: dict[int, int],
    models: Models,
    clock: _Clock,
    reading: np.ndarray | None = None,
) -> tuple[list[list[tuple[Segment, DigitReading | None]]], Decisions | None]:
    """Classify every digit of a page's :func:`digit_batch` in one batch; also the decisions on its rows.

    ``reading``: the batch's rows as the classifiers read them (:func:`gray_batch`); by default ``batch``.

    Each field's segments come back as ``(segment, reading)`` pairs in order;
    separators have no reading, and a crop that turned out blank is dropped.
    Where a segment has split alternatives, every reading of it is in the
    batch, and the one whose digits' confidences multiply to the most wins,
    with the touching-digit detector's view of the whole run weighed in.
    Marks read as one digit that may be two are so marked (:func:`run_together`).
    """
    if batch is None:
        return [[(seg, None) for seg in segs if not seg.is_digit] for segs in segments], None
    d = page_decisions(batch if reading is None else reading, models, clock)
    # The layout's decisions flag by the layout bar; review goes by the page's own bar.
    review_bar = models.rule.for_pages().min_confidence
    touching = _touching_log_odds(segments, index, batch, models)

    def reading(seg: Segment) -> DigitReading | None:
        k = index.get(id(seg))
        if k is None:
            return None
        return DigitReading(
            bbox=seg.bbox,
            label=int(d.label[k]),
            confidence=float(d.confidence[k]),
            cnn_label=int(d.cnn_label[k]),
            cnn_prob=float(d.cnn_prob[k]),
            svm_label=int(d.svm_label[k]),
            svm_prob=float(d.svm_prob[k]),
            disagree=bool(d.disagree[k]),
            low_confidence=bool(d.confidence[k] < review_bar),
            cell=seg.cell,
            clear=not bool(d.disagree[k] or d.low_confidence[k]),
        )

    out = []
    for segs in segments:
        pairs: list[tuple[Segment, DigitReading | None]] = []
        for seg in segs:
            if not seg.is_digit:
                pairs.append((seg, None))
                continue
            options = [[seg], *[list(a) for a in seg.alternatives]]
            scored = []
            # Whole against cut: what the detector thinks of the run itself.
            prior = touching.get(id(seg), 0.0)
            for option in options:
                readings = [reading(piece) for piece in option]
                kept = [(piece, r) for piece, r in zip(option, readings, strict=True) if r is not None]
                if not kept:
                    continue
                # The CNN is often sure of a fragment too, so each extra digit must earn its place.
                score = (
                    (prior if len(kept) > 1 else -prior) / 2
                    - _SPLIT_COST * (len(kept) - 1)
                    + sum(
                        float(np.log(max(r.confidence, 1e-6)))
                        - _DISAGREE_COST * r.disagree
                        + width_penalty(piece.bbox[2], seg.digit_height)
                        for piece, r in kept
                    )
                )
                scored.append((score, kept))
            if scored:
                scored.sort(key=lambda item: -item[0])
                best = scored[0][1]
                labels = [r.label for _, r in best]
                # Cuts that read the same digits are no rival to each other.
                rivals = [score for score, kept in scored[1:] if [r.label for _, r in kept] != labels]
                if rivals:
                    margin = scored[0][0] - rivals[0]
                    best = [(piece, replace(r, split_margin=margin)) for piece, r in best]
                if len(best) > 1:
                    overlapping = any(piece.cut_strokes >= 2 for piece, _ in best)
                    best = [(piece, replace(r, cut_from_run=True, overlapping=overlapping)) for piece, r in best]
                pairs.extend(best)
        out.append(pairs)
    return run_together(out, batch, index, models), d


def without_printed_signs(
    regions: list[FieldRegion],
    readings: list[list[tuple[Segment, DigitReading | None]]],
    batch: np.ndarray | None,
    index: dict[int, int],
    free_page: bool = False,
) -> tuple[list[list[tuple[Segment, DigitReading | None]]], set[int]]:
    """Fields' readings without the currency sign printed at the start or end of a box or line.

    A "$", "EUR" or "GBP" sign printed in an amount box is read as a digit (a "$" as an 8 or a
    5, often sure of it); where a field's first or last mark matches a printed sign's shape
    (:mod:`ocr.symbols`), it is left out of the field as its printed label is.  Returns the
    readings and the positions of the fields where the mark left out was read clearly as a
    digit: a digit written so may pass for a sign, and those fields go to review.

    On a page of free writing (``free_page``: no boxes, as on a photo of digits on paper) nothing is
    printed, and every field that loses a mark so goes to review: a bold 8 with its loops
    filled in matches a "$", and the SVM, unsure of the blot, had sent it to doubt (a dev photo
    of "801" was read "01" and accepted).
    """
    if batch is None:
        return readings, set()
    out, doubted = [], set()
    for k, (region, pairs) in enumerate(zip(regions, readings, strict=True)):
        digits = [i for i, (_, digit) in enumerate(pairs) if digit is not None]
        ends = sorted({digits[0], digits[-1]}) if region.kind in ("box", "line") and len(digits) >= 2 else []
        signs = printed_signs(batch[[index[id(pairs[i][0])] for i in ends]]) if ends else []
        drop = {i for i, sign in zip(ends, signs, strict=True) if sign is not None}
        if drop and (free_page or any(not pairs[i][1].needs_review for i in drop)):
            doubted.add(k)
        out.append([pair for i, pair in enumerate(pairs) if i not in drop] if drop else pairs)
    return out, doubted


# A line of free writing is printed text when at least this many of its marks, and this share of
# them, are printed letters by :func:`ocr.printed.letter_probability` at this probability or more.
# Letters of fonts held out of its fitting reach 0.9 99.0% of the time, MNIST test's digits as
# cut from a page 0.07% (the shipped model; docs/performance.md, ``bench/letters.py``).
_MIN_LETTERS = 3
_MIN_LETTER_SHARE = 0.2
# A box is printed for a number: what it holds is text only where this share of its marks are
# letters (a name in block capitals in a form's name box, "FOR OFFICE USE").
_MIN_LETTER_SHARE_IN_BOX = 0.4
_LETTER = 0.9
# Marks narrower than this share of their height are bars, no letters whatever the model says: the
# 1s of a fine pen were letters to it on a page of unseen layouts (seed 5).
_BAR_ASPECT = 0.4
# A run of marks at a printed line's end (or start) that are no letters, this much taller than
# its tallest letter, and each this much taller than every other mark of the line (its capitals,
# digits and brackets) is handwriting beside the print (a number written after a printed label),
# and is read on.
_TALLER_THAN_PRINT = 1.2
# A short label ("Total", "No.", "Ref") has fewer letters than print is told by: one letter or
# more followed (or led) by a run of at least this many marks that are taller than the label
# by the same measure is a number written beside its label.
_MIN_LABELLED_RUN = 2
# ... and a label of at least this many marks: a lone small mark read as a letter at the end of a
# handwritten number is the number's own last digit written small (an unseen-layout page's "0").
_MIN_LABEL = 2


def without_printed_text(
    regions: list[FieldRegion],
    readings: list[list[tuple[Segment, DigitReading | None]]],
    batch: np.ndarray | None,
    index: dict[int, int],
) -> tuple[list[list[tuple[Segment, DigitReading | None]]], set[int], set[int]]:
    """Lines of free writing, and boxes, with the printed text in them left out.

    A page without boxes may carry print (a letter's heading, an invoice's
    lines); cut into marks, a printed line is read as digits, most of them in
    doubt.  A ``line`` field with at least :data:`_MIN_LETTERS` marks, and
    :data:`_MIN_LETTER_SHARE` of them, taken for printed letters is print.
    What is written by hand beside it (a run of marks at its end, or else at its
    start, that are no letters and well over the print's height, its capitals
    included: :data:`_TALLER_THAN_PRINT`) is kept, with the separators among
    them, as the field; so it is beside a short label (a letter or more, and a
    run of :data:`_MIN_LABELLED_RUN` such marks or more), unless the line is a
    signature.  A printed line without such a run is no field at all.  A box is
    judged so too, but its text needs :data:`_MIN_LETTER_SHARE_IN_BOX` of its
    marks to be letters (a name in capitals in a name box), and a box is left out
    only when it holds nothing but print: it is never cut down.  Combs hold one
    digit a cell and are not judged so.  Returns the readings, the indices of the
    fields that were print through and through, and of those cut down to the
    handwriting beside the print.
    """
    if batch is None:
        return readings, set(), set()
    out, dropped, cut = [], set(), set()
    for k, (region, pairs) in enumerate(zip(regions, readings, strict=True)):
        digits = [i for i, (seg, digit) in enumerate(pairs) if digit is not None and id(seg) in index]
        if region.kind not in ("line", "box") or len(digits) < 1 + _MIN_LABELLED_RUN:
            out.append(pairs)
            continue
        p = letter_probability(batch[[index[id(pairs[i][0])] for i in digits]])
        # A bar is a 1 as well as an l, an I or an i: only broader marks are letters.
        broad = [pairs[i][0].bbox[2] >= _BAR_ASPECT * pairs[i][0].bbox[3] for i in digits]
        letters = [i for i, q, b in zip(digits, p, broad, strict=True) if q >= _LETTER and b]
        if not letters:
            out.append(pairs)
            continue
        share = _MIN_LETTER_SHARE if region.kind == "line" else _MIN_LETTER_SHARE_IN_BOX
        printed = len(letters) >= max(_MIN_LETTERS, share * len(digits))
        tallest = max(pairs[i][0].bbox[3] for i in letters)
        tall = [i not in letters and pairs[i][0].bbox[3] > _TALLER_THAN_PRINT * tallest for i in digits]
        # Handwriting beside the print is a run of such marks at its end (or at its start): tall
        # marks among printed ones are the print's slashes and brackets.
        after = len(tall) - next((n for n, t in enumerate(reversed(tall)) if not t), len(tall))
        before = next((n for n, t in enumerate(tall) if not t), len(tall))
        kept = digits[after:] if after < len(digits) else digits[:before]
        rest = [pairs[i][0].bbox[3] for i in digits if i not in kept]
        if kept and rest and min(pairs[i][0].bbox[3] for i in kept) <= _TALLER_THAN_PRINT * max(rest):
            kept = []  # no taller than the print's capitals, digits or brackets: print too
        if region.kind == "box":
            if not printed or kept:  # a box holding anything but print is read as it is
                out.append(pairs)
                continue
        elif not printed and (
            len(kept) < _MIN_LABELLED_RUN or len(rest) < _MIN_LABEL or _scrawl([pairs[i][1] for i in digits])
        ):
            # A letter or two, and no run of taller marks beside them, or a signature (whose arcs
            # are letters to the model too): read as it is.
            out.append(pairs)
            continue
        if not kept:
            dropped.add(k)
            out.append([])
            continue
        x0 = min(pairs[i][0].bbox[0] for i in kept)
        x1 = max(pairs[i][0].bbox[0] + pairs[i][0].bbox[2] for i in kept)
        out.append(
            [
                (seg, digit)
                for i, (seg, digit) in enumerate(pairs)
                if i in kept or (digit is None and x0 <= seg.bbox[0] and seg.bbox[0] + seg.bbox[2] <= x1)
            ]
        )
        cut.add(k)
    return out, dropped, cut


def run_together(
    readings: list[list[tuple[Segment, DigitReading | None]]],
    batch: np.ndarray,
    index: dict[int, int],
    models: Models,
) -> list[list[tuple[Segment, DigitReading | None]]]:
    """:func:`classify_batch`'s readings, those of free writing that may be two digits run together marked.

    A 1 run into its neighbour makes a mark hardly wider than one digit, which is
    not cut (too narrow by its width, :func:`ocr.segment.with_split_alternatives`),
    or a piece of a run cut in two where three digits touch; the CNN reads it as
    the other digit, sure of it.  Where the touching-digit detector
    (:mod:`ocr.touching`) is all but sure such a mark holds two digits, the field
    goes to review.  The mark is not cut on its word: cut, 4s with an open top
    read as "11" as surely.  Runs read whole against their cuts had the
    detector weighed in already; comb cells hold one digit each; slashes and
    parentheses are no digits.
    """
    if models.touching is None:
        return readings
    marks = [
        seg
        for pairs in readings
        for seg, digit in pairs
        if digit is not None
        and seg.cell is None
        and not seg.alternatives
        and seg.lean is None
        and seg.bow is None
        and seg.digit_height > 0
    ]
    if not marks:
        return readings
    p = models.touching.probability(
        batch[[index[id(s)] for s in marks]],
        np.array([(s.bbox[2], s.bbox[3]) for s in marks], np.float64),
        np.array([s.digit_height for s in marks], np.float64),
    )
    doubted = {id(s) for s, q in zip(marks, p, strict=True) if q >= _RUN_TOGETHER}
    if not doubted:
        return readings
    return [
        [(seg, replace(digit, run_together=True) if id(seg) in doubted else digit) for seg, digit in pairs]
        for pairs in readings
    ]


def page_decisions(batch: np.ndarray, models: Models, clock: _Clock) -> Decisions:
    """Both classifiers on a page's normalised digits, and the decision rule on their votes as the
    page's layout is judged by it (:meth:`ocr.decision.DecisionRule.for_page_layout`); digits are
    sent to review by the page's own bar (:meth:`ocr.decision.DecisionRule.for_pages`)."""
    _, cnn_probs = models.cnn.predict(batch)
    clock.lap("cnn")
    _, svm_probs = models.svm.predict(batch)
    clock.lap("svm")
    return decide(cnn_probs, svm_probs, models.rule.for_page_layout())


def reads_better_turned(
    segments: list[list[Segment]],
    batch: np.ndarray | None,
    index: dict[int, int],
    decisions: Decisions | None,
    models: Models,
    clock: _Clock,
    ink: np.ndarray,
    free_page: bool = False,
    reading: np.ndarray | None = None,
) -> bool:
    """Whether the page is upside down, by its digits and by its print (``ink``, the page's ink mask).

    ``reading``: the batch's rows as the classifiers read them (:func:`gray_batch`), which ``decisions``
    were made on; by default ``batch``.  The digit orientation model reads ``batch``.

    The digits' own vote: many of them in doubt, and far surer turned by 180
    degrees.  Only the digits as segmented count (not the pieces of split
    alternatives); their normalised crops are turned as they are.  The
    turned crops are first read without the CNN's second look: where no
    more of them are sure than of the page as it stands, the page is
    upright, and the second look is spared.  On the calibration pages
    that came this far, that share in doubt was 1.1-3.8 times the page's
    when upright (24 forms, 66 cheques; 58 of the 200 benchmark forms:
    1.6 times or more), 0-0.67 times when upside down (120 pages), and the
    second look never moved a page across :data:`_TURN_PART`.

    The print's say (:func:`ocr.orientation.text_orientation`): print standing
    upright overrules the digits' vote, since a page of a few hard-to-read
    digits can read surer turned by chance; print standing upside down turns
    a page whose digits are too few or too sure to vote, or not sure enough
    turned, as long as they read no worse turned.  It is measured only on pages
    whose digits are in some doubt, once they have not refused the turn.

    A page of free writing has no print, and its digits may be few and read
    as sure either way up: the way they are drawn votes first
    (:class:`ocr.orientation.DigitOrientation`, see :data:`_HAND_TURN_VOTE`); drawn upright by a
    wide margin, it stays as it is (:data:`_HAND_KEEP_VOTE`).
    """
    if batch is None or decisions is None:
        return False
    rows = [index[id(seg)] for segs in segments for seg in segs if seg.is_digit and id(seg) in index]
    doubt = _share_in_doubt(decisions, rows) if rows else 0.0
    rule = models.rule.for_page_layout()
    crops = batch[rows]
    as_read = crops if reading is None else reading[rows]
    votes = None  # the digits turned, and the CNN's and the SVM's probabilities for them, once read
    if models.orientation is not None and free_page and len(rows) >= _HAND_TURN_MIN_DIGITS:
        # A page of free writing (a photo of digits on paper) has no print to go by: how its digits
        # are drawn says which way up it stands.
        hand = models.orientation.page_vote(crops)
        if hand < 0:
            votes = _turned_votes(as_read, models, clock)
            turned_doubt = _share_in_doubt(decide(votes[1], votes[2], rule))
            if (hand <= -_HAND_TURN_VOTE and turned_doubt <= doubt) or turned_doubt <= doubt - _HAND_TURN_GAIN:
                return True
        elif hand >= _HAND_KEEP_VOTE:
            return False
    if len(rows) < _PRINT_TURN_MIN_DIGITS or doubt < _PRINT_TURN_DOUBT:
        return False
    # A page of free writing often holds few digits too.
    few = free_page and _FREE_TURN_MIN_DIGITS <= len(rows) < _TURN_MIN_DIGITS
    digits_vote = (len(rows) >= _TURN_MIN_DIGITS or few) and doubt >= _TURN_DOUBT
    turned, cnn_probs, svm_probs = votes or _turned_votes(as_read, models, clock)
    if _share_in_doubt(decide(cnn_probs, svm_probs, rule)) > doubt:
        return False
    digits_turn = False
    if digits_vote:
        _, cnn_probs = models.cnn.look_again(turned, cnn_probs)
        clock.lap("cnn")
        part = _FREE_TURN_PART if few else _TURN_PART
        digits_turn = _share_in_doubt(decide(cnn_probs, svm_probs, rule)) <= part * doubt
    text = text_orientation(ink)
    clock.lap("fields")  # the print is a part of the page's layout
    return not text.upright if digits_turn else text.upside_down


def _voting(
    segments: list[list[Segment]], regions: list[FieldRegion], page_shape: tuple[int, int], free_page: bool
) -> list[list[Segment]]:
    """The fields' segments that vote on which way up a page stands.

    On a page of free writing, lines found in the band along the page's border (:func:`at_page_edge`)
    are the table or the paper's edge more often than writing: on a calibration photo of "850" on
    pink paper, 50 such lines held 156 marks, mostly in doubt and drawn upside down to the digit
    orientation model, and turned the page.  They are left out of the vote where any digit stands
    off the border; the fields themselves are judged later, as before.
    """
    if not free_page:
        return segments
    inner = [
        [] if at_page_edge(region.bbox, page_shape) else segs for region, segs in zip(regions, segments, strict=True)
    ]
    return inner if any(seg.is_digit for segs in inner for seg in segs) else segments


def _turned_votes(crops: np.ndarray, models: Models, clock: _Clock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A page's normalised digit crops turned by 180 degrees (as they are), and the CNN's (without its
    second look) and the SVM's probabilities for them."""
    turned = np.ascontiguousarray(crops[:, ::-1, ::-1])
    _, cnn_probs = models.cnn.predict_single_look(turned)
    clock.lap("cnn")
    _, svm_probs = models.svm.predict(turned)
    clock.lap("svm")
    return turned, cnn_probs, svm_probs


def _share_in_doubt(decisions: Decisions, rows: list[int] | None = None) -> float:
    """Share of the digits (of ``rows`` of them, or all) that the decision rule sends to review."""
    doubtful = decisions.disagree | decisions.low_confidence
    return float(np.mean(doubtful if rows is None else doubtful[rows]))


def _turned(reading: PageReading) -> PageReading:
    """A reading of the page turned by 180 degrees, its boxes mapped back to the page as it was."""

    def back(box: Box) -> Box:
        x, y, w, h = box
        return (reading.width - x - w, reading.height - y - h, w, h)

    return replace(reading, angle=reading.angle + 180.0, fields=_boxes_mapped(reading, back))


class _Clock:
    """Adds the seconds since the previous lap to ``timings[stage]`` (does nothing without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now


def assemble_field(
    region: FieldRegion, pairs: list[tuple[Segment, DigitReading | None]], back: np.ndarray, name: str
) -> FieldReading:
    """Value, text, confidence and review reasons of one field; boxes mapped back through ``back``."""
    text, value, kept = [], [], []
    for seg, digit in pairs:
        if not seg.is_digit:
            if value or seg.char == "(":  # a separator only counts between digits; "(" opens a number
                text.append(seg.char)
            continue
        if digit is None:
            continue
        mapped = DigitReading(**{**digit.__dict__, "bbox": transform_box(digit.bbox, back)})
        kept.append(mapped)
        text.append(str(digit.label))
        value.append(str(digit.label))
    text_str = "".join(text).rstrip(".,-/")
    reasons = []
    doubtful = [d for d in kept if d.needs_review]
    if doubtful:
        reasons.append(f"{len(doubtful)} doubtful digit(s)")
    reasons += doubts_about_cuts(kept, len(region.cells) if region.kind == "comb" else 0)
    read = [seg for seg, digit in pairs if seg.is_digit and digit is not None]
    if max((seg.ink_left_out for seg, _ in pairs), default=0.0) >= _LEFT_OUT_REVIEW:
        reasons.append("ink between digits left out: a broken or faint digit may be missing")
    if any(seg.char == ":" for seg, _ in pairs):
        reasons.append("two marks between digits where one separator stands: a broken digit may be missing")
    if any(seg.from_loose_specks for seg in read):
        reasons.append("specks read as a broken digit: it may be a digit or not")
    if odd_pen([seg.stroke_width for seg in read]):
        reasons.append("a mark drawn much finer than the other digits")
    cell_height = median([c[3] for c in region.cells]) if region.cells else None
    if too_tall([seg.bbox[3] for seg in read], cell_height):
        reasons.append("a mark far taller than a digit here")
    if region.kind == "line":
        marks = [seg.bbox for seg in read]
        if too_wide(marks):
            reasons.append("a mark far wider than tall")
        if wide_gap(marks):
            reasons.append("a wide gap in the line: two numbers, or a stray mark beside one")
    confidence = min((d.confidence for d in kept), default=1.0)
    return FieldReading(
        name=name,
        kind=region.kind,
        value="".join(value),
        text=text_str,
        # Rounded down: a field is never surer than its weakest digit.
        confidence=math.floor(float(confidence) * 1e4) / 1e4,
        bbox=transform_box(region.bbox, back),
        digits=tuple(kept),
        reasons=tuple(reasons),
        cells=len(region.cells) if region.kind == "comb" else 0,
    )


def _touching_log_odds(
    segments: list[list[Segment]], index: dict[int, int], batch: np.ndarray, models: Models
) -> dict[int, float]:
    """id(segment) -> weighted log-odds that the run holds touching digits, for runs with ways to cut them."""
    if models.touching is None:
        return {}
    runs = [s for segs in segments for s in segs if s.alternatives and id(s) in index]
    if not runs:
        return {}
    p = models.touching.probability(
        batch[[index[id(s)] for s in runs]],
        np.array([(s.bbox[2], s.bbox[3]) for s in runs], np.float64),
        np.array([s.digit_height for s in runs], np.float64),
    )
    p = np.clip(p, 1e-4, 1 - 1e-4)
    odds = _TOUCHING_WEIGHT * np.log(p / (1 - p))
    return {id(s): float(o) for s, o in zip(runs, odds, strict=True)}


def doubts_about_cuts(digits: list[DigitReading], cells: int = 0) -> list[str]:
    """Reasons to doubt how a field was cut into digits, whatever each digit reads.

    * touching digits cut one way barely beat another way (fewer or more digits);
    * touching digits were cut where they overlap (:attr:`DigitReading.overlapping`);
    * a mark read as one digit may be two run together (:attr:`DigitReading.run_together`);
    * a comb (``cells`` > 0) has an empty cell between written ones: a faint or
      broken digit was taken for a speck, or the comb is misread.
    """
    reasons = []
    if any(d.cut_guessed for d in digits):
        reasons.append("unsure where touching digits divide")
    if any(d.overlapping for d in digits):
        reasons.append("digits overlap where they were cut apart")
    if any(d.run_together for d in digits):
        reasons.append("a mark may be two digits run together")
    filled = sorted({d.cell for d in digits if d.cell is not None})
    if cells and filled and len(filled) < filled[-1] - filled[0] + 1:
        reasons.append("empty cell between written cells")
    return reasons


def odd_pen(widths: list[float], share: float = 0.5) -> bool:
    """Whether one of three or more digits' stroke widths (pixels) is under ``share`` of their median.

    One hand writes a field with one pen; a mark far finer than its digits is
    a stray stroke, a crease or part of the printed form.
    """
    if len(widths) < 3:
        return False
    return min(widths) < share * median(widths)


def too_tall(heights: list[int], cell_height: float | None = None) -> bool:
    """Whether a digit is far taller (pixels) than the others, or than the box it is in.

    A box wall or a rule that segmentation left in a field is read as a
    confident 1; a digit is never half again as tall as its neighbours, and
    never overflows its box by a quarter of the box's height.
    """
    if len(heights) >= 2 and max(heights) > 1.5 * median(heights):
        return True
    return cell_height is not None and bool(heights) and max(heights) > 1.25 * cell_height


def too_wide(boxes: list[Box], ratio: float = _MAX_MARK_ASPECT) -> bool:
    """Whether a mark (x, y, w, h) read as a digit in free writing is far wider than tall.

    Handwritten digits, a wide 0 or a flat 2 included, stay under about 1.8
    times as wide as tall; the arcs of a signature, a flourish or two digits
    run together under a line are not.
    """
    return any(w > ratio * h for _, _, w, h in boxes)


# Digits of one number stand under this many digit heights apart (generated lines: at most 0.73);
# a line's marks join across up to 3 (ocr.fields.group_lines), as a number written in groups may.
_WIDE_GAP = 1.5


def wide_gap(boxes: list[Box]) -> bool:
    """Whether a line's marks (x, y, w, h, left to right) leave a gap wider than :data:`_WIDE_GAP`
    times their median height between two of them.

    The line finder joins marks across wider gaps, as numbers written in groups need; such a gap
    also joins a stray mark to a number: on a dev photo, the edge of the sheet 2.5 digit heights
    after "8277" was read as a 1 and "82771" accepted.
    """
    if len(boxes) < 2:
        return False
    height = median([b[3] for b in boxes])
    ordered = sorted(boxes)
    return any(b[0] - (a[0] + a[2]) > _WIDE_GAP * height for a, b in zip(ordered, ordered[1:], strict=False))


def doubts_about_found_field(
    kind: str, bbox: Box, page_shape: tuple[int, int], value: str, free_page: bool
) -> list[str]:
    """Reasons to doubt that a field found without a template is a field at all.

    Pure geometry: ``kind`` of field, ``bbox`` (x, y, w, h) and ``page_shape``
    (H, W) in the same pixels; ``value``: the digits read in it; ``free_page``:
    the page has no boxes, so every field is a line of free handwriting (as on
    a photo of a note).  Printed boxes and combs are fields wherever they are;
    free writing at the page's border may be its edge, a shadow or a punch
    hole.  A lone digit outside any box is a single mark, which is also what a
    tick, an initial, a short signature on its line, the wall of a frame the
    field finder did not take for a number box or a stray pen stroke look like.
    """
    reasons = []
    if kind == "line" and at_page_edge(bbox, page_shape):
        reasons.append("at the page edge")
    if free_page and len(value) == 1:
        reasons.append("a lone digit on a page of free writing")
    elif kind == "line" and len(value) == 1:
        reasons.append("a lone digit outside any box")
    return reasons


def at_page_edge(bbox: Box, page_shape: tuple[int, int]) -> bool:
    """Whether ``bbox`` (x, y, w, h) reaches into the band along the border of a page of ``page_shape`` (H, W)."""
    x, y, w, h = bbox
    height, width = page_shape
    band_x, band_y = _EDGE_BAND * width, _EDGE_BAND * height
    return x < band_x or y < band_y or x + w > width - band_x or y + h > height - band_y


def is_edge_mark(kind: str, bbox: Box, page_shape: tuple[int, int], value: str, free_page: bool) -> bool:
    """Whether a field found without a template is a lone mark at the border of a page of free writing.

    On a photo the paper's edge, the border of a shadow or a punch hole
    breaks into short strokes along the page's border, each read as a lone
    1 (20 of them on one calibration photo).  A single digit there is such
    a mark far more often than a number, so it is left out rather than
    queued for review; a longer line at the edge is still reported, flagged.
    """
    return free_page and kind == "line" and len(value) == 1 and at_page_edge(bbox, page_shape)


def without_edge_stroke(
    region: FieldRegion, pairs: list[tuple[Segment, DigitReading | None]], page_shape: tuple[int, int]
) -> tuple[FieldRegion, list[tuple[Segment, DigitReading | None]], bool]:
    """A line of free writing without a mark at either end that is the page's edge rather than a digit.

    On a photo the paper's edge, or the shadow along it, can run on from the end of a line
    of digits as a stroke far taller than they are, read as a 1 (three lines of 250
    calibration and held-out photos, each read right without it; no other line of those
    photos, of the seed-91 calibration forms and cheques or of 40 pages of other layouts
    had such a mark).  Such a mark (half again as tall as the median of at least three other
    digits of the line, as :func:`too_tall` has it, inside the border band of
    :func:`at_page_edge`) is left out, the field narrowed to what is left, and whether one
    was is returned: the field goes to review all the same.  With fewer digits beside it the
    mark is kept, and the line is judged whole: two doubtful marks and a stroke at a photo's
    corner are no number.  ``pairs``, ``region`` and ``page_shape`` (H, W) are in the same
    (working) pixels.
    """
    if region.kind != "line":
        return region, pairs, False
    dropped = False
    for end in (0, -1):
        digits = [i for i, (seg, reading) in enumerate(pairs) if seg.is_digit and reading is not None]
        if len(digits) < 4:  # far taller than what: three digits at least
            break
        k = digits[end]
        others = [pairs[i][0].bbox[3] for i in digits if i != k]
        seg = pairs[k][0]
        if seg.bbox[3] > 1.5 * median(others) and at_page_edge(seg.bbox, page_shape):
            pairs = pairs[:k] + pairs[k + 1 :]
            dropped = True
    if not dropped:
        return region, pairs, False
    return replace(region, bbox=union_box(seg.bbox for seg, _ in pairs)), pairs, True


def without_stacked_ones(fields: list[FieldReading]) -> list[FieldReading]:
    """Fields of a page of free writing without the lone 1s that stand one above another.

    On a photo the paper's edge, or a shadow's border, a little way in from the
    photo's own border breaks into short strokes one under another, each read as
    a lone 1 (five on one calibration photo, 12 of the 18 fields read where the
    truth has none on the calibration photos).  A number of one digit is a lone
    mark anywhere; two or more of them read 1 that overlap across (a column) are
    such an edge, and are left out.
    """
    ones = [f for f in fields if f.kind == "line" and f.value == "1"]
    column = set()
    for i, a in enumerate(ones):
        for b in ones[i + 1 :]:
            if min(a.bbox[0] + a.bbox[2], b.bbox[0] + b.bbox[2]) - max(a.bbox[0], b.bbox[0]) > 0:
                column |= {id(a), id(b)}
    return [f for f in fields if id(f) not in column]


def _looks_like_a_number(reading: FieldReading, kind: str) -> bool:
    """Whether a field found without a template holds a number rather than text or a drawing."""
    accepted = sum(d.reads_clearly for d in reading.digits)
    if kind == "comb":
        return True
    if kind == "box":
        if len(reading.digits) >= 2 and accepted == 0 and not _one_run_cut_in_two(reading.digits):
            return False
        if _written_in_box(reading):
            return False
        if len(reading.digits) < _MIN_MARKS_FOR_TEXT_BOX:
            return True
    if not reading.digits or len(reading.digits) > _MAX_DIGITS_IN_LINE:
        return False
    if _scrawl(reading.digits):
        return False
    return accepted >= _MIN_ACCEPTED_SHARE_IN_LINES * len(reading.digits)


def _short_answer_on_rule(reading: FieldReading, region: FieldRegion, clear_bar: float) -> bool:
    """Whether a line left out as no number is a short answer on a form's printed rule, read surely.

    ``clear_bar``: the confidence at which a digit counts as read clearly where the page's
    layout is judged (``page_clear_confidence``).  A form's underline holds a short answer
    ("9" visits, "12" children) as often as a signature.  Where the decision is that sure of
    each digit but the HOG-SVM disagrees (a 9 drawn like an "a"), a lone digit or a 2 with a
    long tail passed for writing, and the number was lost without a trace.  A signature or a
    word cut into marks leaves one of them less sure: on the dev forms and cheques (seeds
    7001-7004), of the 441 lines left out, those of one or two marks each read at 0.9 or more
    were the three answers lost so, and nothing else.  Kept, such a field goes to review on
    its own doubts.  A scribbled signature (``bench/unseen_layouts.py``, seeds 35 and 36) can
    break into marks read at 0.90-0.96, so the bar is the clear one, 0.975: 1 such field in
    60 pages, in review.
    """
    return (
        region.on_rule
        and 0 < len(reading.digits) <= _SHORT_ANSWER_MARKS
        and all(d.confidence >= clear_bar for d in reading.digits)
    )


def _one_run_cut_in_two(digits: Sequence[DigitReading]) -> bool:
    """Whether a field's marks are the two pieces of one run of ink, cut apart by reading.

    Two digits run together in a box ("90" on a dev form, cut into a 9 and a 5, both in doubt)
    are a number gone wrong, not writing: the box goes to review rather than being lost.  A name
    breaks into more marks than that, and a word cut into two arcs reads as a number in doubt.
    A run is cut into two pieces or more, so two pieces and nothing else are one run's.
    """
    return len(digits) == 2 and all(d.cut_from_run for d in digits)


def _written_in_box(reading: FieldReading) -> bool:
    """Whether a box holds joined-up writing: a mark far wider than any digit, and a third of its marks in doubt.

    A name written in a form's name box breaks into runs of letters no digit is as wide as
    (:data:`_BOX_SCRAWL_ASPECT`), most of them read doubtfully.  A number in a box keeps its
    digits clear though one of them is broad, and goes on being read; two of its digits run
    together are cut apart before this is asked, and a run left whole is one doubtful mark
    among clear ones.
    """
    return _wide_and_doubted(reading.digits, _BOX_SCRAWL_ASPECT)


def _wide_and_doubted(digits: Sequence[DigitReading], ratio: float) -> bool:
    """Whether a mark is over ``ratio`` times as wide as tall, and :data:`_MIN_DOUBT_IN_SCRAWL` of
    the marks (one at least) are in doubt."""
    doubtful = sum(not d.reads_clearly for d in digits)
    return doubtful > 0 and doubtful >= _MIN_DOUBT_IN_SCRAWL * len(digits) and too_wide([d.bbox for d in digits], ratio)


def _scrawl(digits: Sequence[DigitReading]) -> bool:
    """Whether a line of free writing has a mark far wider than any digit and a good share of its marks in doubt.

    Cursive writing (a payee's name on a cheque, a signature on its line) breaks into
    loops and arcs that the classifiers read as digits, half of them doubtfully, and
    into runs no digit is as wide as.  On calibration pages drawn from the validation
    digits (140 forms, 140 cheques, 140 photos, 120 pages of other layouts) 36 line
    fields read from such writing had both, with 1/3 to 1/2 of their marks in doubt;
    none of the 567 numbers found on lines had: the two with a mark that wide had every
    digit read clearly.  A number with a flourish after it keeps most of its digits
    clear, and goes to review instead (:func:`too_wide`).  Boxes are judged by a wider
    mark (:func:`_written_in_box`): a box is printed for a number, and one holding a name
    cut into arcs goes to review rather than a number in it, two of its digits run
    together, being lost.

    Cut into arcs of a digit's width, a signature leaves no mark that wide: then a line of
    three marks or more, half of them or more under the review bar and one over 1.4 times as
    wide as tall, is taken for writing too.  On sample pages drawn from validation and test
    digits (forms and cheques of seeds 91, 92 and 8080, photos of 91, 92, 4242, 6001 and 8080,
    120 pages of other layouts) that left out 18 of the 77 fields read where the truth has
    none, most of them signatures on a cheque's line, and no field of the truth: every set
    read as many fields exactly as before.
    """
    if _wide_and_doubted(digits, _MAX_MARK_ASPECT):
        return True
    boxes = [d.bbox for d in digits]
    in_review = sum(d.needs_review for d in digits)
    return (
        len(boxes) >= _MIN_MARKS_IN_CUT_SCRAWL
        and in_review >= _MIN_REVIEW_IN_CUT_SCRAWL * len(boxes)
        and too_wide(boxes, _CUT_SCRAWL_ASPECT)
    )


def _with_reasons(reading: FieldReading, extra: list[str]) -> FieldReading:
    return FieldReading(**{**reading.__dict__, "reasons": (*reading.reasons, *extra)})


def _renamed(reading: FieldReading, name: str) -> FieldReading:
    return FieldReading(**{**reading.__dict__, "name": name})


__all__ = ["CleanPage", "DigitReading", "FieldReading", "PageReading", "read_page"]
