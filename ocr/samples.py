"""Synthetic scans with ground truth: forms, cheques and camera photos of handwritten digits.

Every sample is drawn from fixed printed layouts (two forms and a cheque) or,
for photos, from plain paper, with MNIST *test* digits as the handwriting.
Scans then go through the distortions of a flatbed scanner (shift, rotation,
scale, blur, noise, brightness and contrast, a file format), photos through
those of a phone camera (perspective, uneven light, shadow, colour, noise,
blur, JPEG).  Beside each file lies a JSON of what was written where, in
pixels of the saved page, and the fixed layouts are written out as templates
(:mod:`ocr.template`) so the reader can be run against them.

Each digit of the truth has its ``label``, its ``bbox`` and its ``source``: the index, in the
digits the samples were drawn from, of the image written there (so that a digit read wrong on a
page can be told from one the classifiers read wrong by itself: ``bench/digit_loss.py``).

Units: boxes are ``(x, y, w, h)`` in pixels; forms are A4 at 150 dpi
(1240x1754), the cheque 1650x750 at 200 dpi.  A PDF sample must be
rasterised at the ``dpi`` recorded in its JSON to get the same pixel grid.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocr.geometry import Box, pad_box, transform_box, union_box
from ocr.template import Template, TemplateField, Validation

KINDS = ("forms", "cheques", "photos")
# tiff_bilevel is one 1-bit page with group4 compression; tiff_multipage is two gray pages.
FORMATS = ("png", "jpeg", "tiff_bilevel", "tiff_multipage", "bmp", "pdf")
FORMS_DPI = 150
CHEQUE_DPI = 200

_FORMAT_WEIGHTS = {"png": 0.45, "jpeg": 0.15, "tiff_bilevel": 0.1, "tiff_multipage": 0.1, "bmp": 0.08, "pdf": 0.12}
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "tiff_bilevel": "tif", "tiff_multipage": "tif", "bmp": "bmp", "pdf": "pdf"}
_STEMS = {"forms": "form", "cheques": "cheque", "photos": "photo"}
_KIND_SEEDS = {"forms": 1, "cheques": 2, "photos": 3}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_BOLD = cv2.FONT_HERSHEY_DUPLEX
_FONT_TITLE = cv2.FONT_HERSHEY_TRIPLEX
_AMOUNT_PATTERN = r"^[0-9]+([.,][0-9]{2})?$"

Colour = tuple[int, int, int]  # BGR


def generate_samples(
    out_dir: Path,
    kind: str,
    n: int,
    seed: int,
    digits: np.ndarray,
    labels: np.ndarray,
    formats: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``n`` synthetic samples of ``kind`` into ``out_dir``, each with a ground-truth JSON beside it.

    Parameters
    ----------
    out_dir : Path
        Created if missing.  Files are named ``form_0000.png``, ``cheque_0001.pdf``,
        ``photo_0002.jpg``...; the truth has the same stem and ``.json``.
    kind : str
        "forms" (alternating between the application and survey layouts),
        "cheques" or "photos".
    n : int
        Number of files.
    seed : int
        Non-negative; the same seed writes byte-identical files.  File ``i``
        depends only on ``seed``, ``kind`` and ``i``, not on ``n``.
    digits : (N, 28, 28) uint8 ndarray
        MNIST test digits, ink 255, to draw the handwriting from.
    labels : (N,) int ndarray
        Their labels; every digit 0-9 must occur.
    formats : sequence of str, optional
        Forms and cheques only: file ``i`` is saved as ``formats[i % len(formats)]``
        (names from :data:`FORMATS`) instead of a random format.  Photos are always JPEG.

    Returns
    -------
    list of Path
        The scan files, in order.  ``out_dir/templates/<layout>.yaml`` is also
        written for every layout used.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be non-negative, got n={n}, seed={seed}")
    digits = np.asarray(digits)
    labels = np.asarray(labels)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28) or digits.dtype != np.uint8:
        raise ValueError(f"digits must be (N, 28, 28) uint8, got {digits.shape} {digits.dtype}")
    if labels.shape != (len(digits),):
        raise ValueError(f"labels must be ({len(digits)},), got {labels.shape}")
    if formats is not None and (not formats or set(formats) - set(FORMATS)):
        raise ValueError(f"formats must be a non-empty selection of {FORMATS}, got {formats!r}")
    pool = _DigitPool.from_mnist(digits, labels)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layouts = _LAYOUTS.get(kind, ())
    paths = []
    for i in range(n):
        rng = np.random.default_rng([seed, _KIND_SEEDS[kind], i])
        stem = f"{_STEMS[kind]}_{i:04d}"
        if kind == "photos":
            path, truth = _write_photo(out_dir, stem, rng, pool)
        else:
            layout = layouts[i % len(layouts)]
            fmt = formats[i % len(formats)] if formats else _choose_format(rng)
            path, truth = _write_scan(out_dir, stem, kind, layout, fmt, rng, pool)
            _write_template(out_dir, layout)
        path.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class _FieldSpec:
    """A digit field of a layout: where it is printed and what gets written into it."""

    name: str
    kind: str  # comb, box or line
    bbox: Box  # for a line field, the writing area above and including the underline
    make_text: Callable[[np.random.Generator], str]
    label: str
    label_at: tuple[int, int]  # left end of the printed label's baseline
    cells: int = 0
    gap: int = 0  # pixels between the boxes of a separated comb; 0 = shared walls
    align: str = "fill"  # comb: fill every cell, or left/right-aligned with empty cells
    hint: str = ""  # one small printed letter over each comb cell, e.g. DDMMYYYY
    empty_share: float = 0.0
    validate: Validation = field(default_factory=Validation)


@dataclass(frozen=True)
class _Layout:
    name: str
    size: tuple[int, int]  # width, height in pixels
    dpi: int
    fields: tuple[_FieldSpec, ...]
    draw_printed: Callable[[np.ndarray, np.random.Generator, Colour], None]  # everything but the fields
    paper: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]


def _date_text(rng: np.random.Generator, first_year: int, last_year: int) -> str:
    first = dt.date(first_year, 1, 1).toordinal()
    last = dt.date(last_year, 12, 31).toordinal()
    return dt.date.fromordinal(int(rng.integers(first, last + 1))).strftime("%d%m%Y")


def _digits_text(rng: np.random.Generator, lengths: tuple[int, int], first: str = "0123456789") -> str:
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    return str(rng.choice(list(first))) + "".join(str(d) for d in rng.integers(0, 10, length - 1))


def _number_text(rng: np.random.Generator, lo: int, hi: int) -> str:
    return str(int(rng.integers(lo, hi + 1)))


def _amount_text(rng: np.random.Generator, whole_digits: tuple[int, int], cents_share: float) -> str:
    whole = _digits_text(rng, whole_digits, first="123456789")
    if rng.random() >= cents_share:
        return whole
    separator = "." if rng.random() < 0.7 else ","
    cents = "00" if rng.random() < 0.25 else f"{int(rng.integers(0, 100)):02d}"
    return f"{whole}{separator}{cents}"


def _age_text(rng: np.random.Generator) -> str:
    return _number_text(rng, 100, 104) if rng.random() < 0.03 else _number_text(rng, 18, 99)


def _white_paper(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    tone = rng.integers(246, 256, 3)
    return np.broadcast_to(tone.astype(np.uint8), (height, width, 3)).copy()


def _cheque_paper(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Tinted gradient with guilloche-like bands of sine waves, light enough to drop out in bilevel scans."""
    width, height = size
    tint = np.array(_pick(rng, [(236, 242, 232), (242, 236, 230), (232, 238, 244), (238, 238, 236)]), np.float32)
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    paper = tint[None, None, :] + ramp * rng.uniform(-8, 8, 3).astype(np.float32)
    paper = np.broadcast_to(np.clip(paper, 0, 255), (height, width, 3)).astype(np.uint8).copy()
    line_colour = tuple(int(c) for c in np.clip(tint - rng.uniform(18, 30, 3), 0, 255))
    xs = np.arange(0, width + 8, 4, dtype=np.float64)
    for band in range(2):
        centre = height * (0.3 + 0.4 * band) + rng.uniform(-40, 40)
        period = rng.uniform(140, 260)
        amplitude = rng.uniform(40, 90)
        for k in range(int(rng.integers(10, 16))):
            phase = k * 0.42 + band
            ys = centre + amplitude * np.sin(2 * np.pi * xs / period + phase) * np.cos(np.pi * xs / (3.1 * period))
            points = np.stack([xs, ys], axis=1).round().astype(np.int32)
            cv2.polylines(paper, [points], False, line_colour, 1, cv2.LINE_AA)
    return paper


def _draw_application_form(page: np.ndarray, rng: np.random.Generator, ink: Colour) -> None:
    logo = (100, 80, 96, 96)
    cv2.rectangle(page, logo[:2], (logo[0] + logo[2], logo[1] + logo[3]), ink, 3)
    _put_text(page, "DRS", (111, 143), 1.0, ink, 2, _FONT_BOLD)
    _put_text(page, "APPLICATION FORM", (230, 130), 1.5, ink, 2, _FONT_TITLE)
    _put_text(page, "Department of Residential Services - Form AF-12", (232, 168), 0.65, ink, 1)
    cv2.line(page, (100, 210), (1140, 210), ink, 2)
    instructions = (
        "Please complete this form in black or blue ink, one digit per box.",
        "Keep each digit inside its box and do not write on the box borders.",
        "Dates are written as day, month and year (DD MM YYYY). Amounts may",
        "include cents after a decimal point. Return the form within 30 days.",
    )
    for k, line in enumerate(instructions):
        _put_text(page, line, (100, 250 + 28 * k), 0.6, ink, 1)
    _section_bar(page, "Section 1 - Personal details", 380, ink)
    _put_text(page, "Full name", (100, 462), 0.7, ink, 1)
    cv2.rectangle(page, (460, 425), (1140, 485), ink, 2)
    _draw_scribble(page, (480, 440, int(rng.uniform(260, 560)), 36), rng, _ink_colour(rng))
    _section_bar(page, "Section 2 - Household and income", 805, ink)
    _put_text(page, "(leave blank if none)", (100, 908), 0.5, ink, 1)
    _put_text(page, "(as on your last tax statement)", (100, 1078), 0.5, ink, 1)
    _section_bar(page, "Section 3 - Declaration", 1230, ink)
    declaration = (
        "I declare that the information given on this form is true and complete.",
        "I understand that false statements may lead to refusal of the application.",
    )
    for k, line in enumerate(declaration):
        _put_text(page, line, (100, 1300 + 28 * k), 0.6, ink, 1)
    cv2.line(page, (100, 1450), (560, 1450), ink, 1)
    _put_text(page, "Signature of applicant", (100, 1478), 0.55, ink, 1)
    _draw_scribble(page, (130, 1385, int(rng.uniform(220, 380)), 55), rng, _ink_colour(rng), max_words=2)
    cv2.rectangle(page, (760, 1390), (1140, 1560), ink, 1)
    _put_text(page, "For office use only", (775, 1420), 0.55, ink, 1)
    _put_text(page, "Batch 0042   Clerk 17", (775, 1455), 0.55, ink, 1)
    cv2.line(page, (100, 1640), (1140, 1640), ink, 1)
    _put_text(page, "AF-12 (rev. 03/2024)", (100, 1675), 0.5, ink, 1)
    _put_text(page, "Page 1 of 1", (1030, 1675), 0.5, ink, 1)


def _draw_survey_form(page: np.ndarray, rng: np.random.Generator, ink: Colour) -> None:
    cv2.rectangle(page, (70, 70), (1170, 1680), ink, 3)
    _put_text(page, "CUSTOMER SATISFACTION SURVEY", (200, 150), 1.3, ink, 2, _FONT_TITLE)
    _put_text(page, "Survey 2024, wave 3 - thank you for taking part", (330, 190), 0.6, ink, 1)
    intro = (
        "Your answers are confidential and help us improve our service.",
        "Write numbers clearly, one digit per box where boxes are given.",
        "It takes about 5 minutes to complete the 10 questions below.",
    )
    for k, line in enumerate(intro):
        _put_text(page, line, (110, 250 + 28 * k), 0.6, ink, 1)
    cv2.line(page, (110, 350), (1130, 350), ink, 1)
    _put_text(page, "Q9. How did you hear about us?", (110, 1180), 0.65, ink, 1)
    options = ("Radio", "Friend", "Web", "Other")
    ticked = int(rng.integers(0, len(options)))
    pen = _ink_colour(rng)
    for k, option in enumerate(options):
        x = 130 + 240 * k
        cv2.rectangle(page, (x, 1205), (x + 30, 1235), ink, 2)
        _put_text(page, option, (x + 45, 1230), 0.6, ink, 1)
        if k == ticked:
            jitter = rng.integers(-4, 5, 4)
            cv2.line(page, (x + 4 + jitter[0], 1208), (x + 27, 1232 + jitter[1]), pen, 3, cv2.LINE_AA)
            cv2.line(page, (x + 27 + jitter[2], 1207), (x + 3, 1233 + jitter[3]), pen, 3, cv2.LINE_AA)
    _put_text(page, "Q10. Any other comments?", (110, 1300), 0.65, ink, 1)
    cv2.rectangle(page, (110, 1320), (1130, 1520), ink, 2)
    for k in range(int(rng.integers(0, 4))):
        _draw_scribble(page, (130, 1340 + 55 * k, int(rng.uniform(300, 900)), 30), rng, pen)
    _put_text(page, "SV-3  2024", (110, 1650), 0.5, ink, 1)
    _put_text(page, "Page 1 of 1", (1020, 1650), 0.5, ink, 1)


def _draw_cheque(page: np.ndarray, rng: np.random.Generator, ink: Colour) -> None:
    height, width = page.shape[:2]
    cv2.rectangle(page, (12, 12), (width - 13, height - 13), ink, 2)
    _put_text(page, "NORTHBRIDGE SAVINGS BANK", (60, 85), 1.25, ink, 2, _FONT_TITLE)
    _put_text(page, "12 Harbour Street, Port Ellis", (62, 120), 0.6, ink, 1)
    _put_text(page, "No. 004127", (1420, 60), 0.7, ink, 1, _FONT_BOLD)
    _put_text(page, "Pay", (60, 262), 0.9, ink, 2, _FONT_BOLD)
    cv2.line(page, (130, 270), (1180, 270), ink, 1)
    pen = _ink_colour(rng)
    _draw_scribble(page, (160, 222, int(rng.uniform(300, 700)), 40), rng, pen)
    _put_text(page, "the sum of", (60, 352), 0.7, ink, 1)
    cv2.line(page, (200, 360), (1180, 360), ink, 1)
    cv2.line(page, (60, 420), (1180, 420), ink, 1)
    _draw_scribble(page, (220, 312, int(rng.uniform(400, 900)), 40), rng, pen)
    _put_text(page, "EUR", (1175, 312), 0.8, ink, 2, _FONT_BOLD)
    cv2.line(page, (1080, 560), (1580, 560), ink, 1)
    _put_text(page, "Signature", (1270, 590), 0.6, ink, 1)
    _draw_scribble(page, (1120, 485, int(rng.uniform(250, 400)), 70), rng, pen, max_words=2)
    _put_text(page, "C004127C  A210045678A  0123456789C", (300, 705), 1.1, ink, 2, _FONT_BOLD)


_APPLICATION_FORM = _Layout(
    name="application_form",
    size=(1240, 1754),
    dpi=FORMS_DPI,
    draw_printed=_draw_application_form,
    paper=_white_paper,
    fields=(
        _FieldSpec(
            "date_of_birth",
            "comb",
            (460, 525, 384, 56),
            partial(_date_text, first_year=1940, last_year=2006),
            "Date of birth",
            (100, 562),
            cells=8,
            hint="DDMMYYYY",
            validate=Validation(length=(8, 8), date="DDMMYYYY", required=True),
        ),
        _FieldSpec(
            "phone",
            "comb",
            (460, 615, 460, 54),
            partial(_digits_text, lengths=(10, 10), first="0"),
            "Telephone",
            (100, 650),
            cells=10,
            empty_share=0.05,
            validate=Validation(length=(10, 10), pattern=r"^0[0-9]{9}$"),
        ),
        _FieldSpec(
            "postcode",
            "comb",
            (460, 700, 250, 50),
            partial(_digits_text, lengths=(5, 5), first="123456789"),
            "Postcode",
            (100, 733),
            cells=5,
            validate=Validation(length=(5, 5), required=True),
        ),
        _FieldSpec(
            "children",
            "comb",
            (460, 850, 104, 52),
            partial(_number_text, lo=0, hi=12),
            "Number of children",
            (100, 883),
            cells=2,
            align="right",
            empty_share=0.15,
            validate=Validation(length=(1, 2), min=0, max=20),
        ),
        _FieldSpec(
            "age",
            "box",
            (460, 930, 150, 66),
            _age_text,
            "Age (years)",
            (100, 970),
            validate=Validation(length=(2, 3), min=16, max=120, required=True),
        ),
        _FieldSpec(
            "income",
            "box",
            (460, 1025, 330, 70),
            partial(_amount_text, whole_digits=(2, 5), cents_share=0.4),
            "Annual income (EUR)",
            (100, 1058),
            validate=Validation(length=(2, 7), pattern=_AMOUNT_PATTERN, min=0, max=99999.99),
        ),
        _FieldSpec(
            "reference_number",
            "comb",
            (460, 1125, 352, 50),
            partial(_digits_text, lengths=(4, 7), first="123456789"),
            "Reference number",
            (100, 1160),
            cells=8,
            align="left",
            empty_share=0.1,
            validate=Validation(length=(4, 8)),
        ),
    ),
)

_SURVEY_FORM = _Layout(
    name="survey_form",
    size=(1240, 1754),
    dpi=FORMS_DPI,
    draw_printed=_draw_survey_form,
    paper=_white_paper,
    fields=(
        _FieldSpec(
            "respondent_id",
            "comb",
            (110, 440, 300, 58),
            partial(_digits_text, lengths=(6, 6)),
            "Q1. Respondent number",
            (110, 418),
            cells=6,
            validate=Validation(length=(6, 6), required=True),
        ),
        _FieldSpec(
            "survey_date",
            "comb",
            (660, 440, 400, 50),
            partial(_date_text, first_year=2023, last_year=2025),
            "Q2. Date of visit (DD MM YYYY)",
            (660, 405),
            cells=8,
            gap=8,
            validate=Validation(length=(8, 8), date="DDMMYYYY", required=True),
        ),
        _FieldSpec(
            "postcode",
            "comb",
            (110, 610, 214, 52),
            partial(_digits_text, lengths=(4, 4), first="123456789"),
            "Q3. Postcode",
            (110, 590),
            cells=4,
            gap=10,
            empty_share=0.05,
            validate=Validation(length=(4, 4)),
        ),
        _FieldSpec(
            "household_size",
            "box",
            (660, 600, 130, 72),
            partial(_number_text, lo=1, hi=14),
            "Q4. People in your household",
            (660, 585),
            validate=Validation(length=(1, 2), min=1, max=20),
        ),
        _FieldSpec(
            "visits_per_month",
            "line",
            (110, 800, 400, 80),
            partial(_number_text, lo=0, hi=45),
            "Q5. Visits last month",
            (110, 780),
            validate=Validation(length=(1, 2), max=60),
        ),
        _FieldSpec(
            "monthly_spend",
            "line",
            (660, 800, 470, 80),
            partial(_amount_text, whole_digits=(1, 4), cents_share=0.5),
            "Q6. Average monthly spend (EUR)",
            (660, 780),
            validate=Validation(length=(1, 6), pattern=_AMOUNT_PATTERN),
        ),
        _FieldSpec(
            "satisfaction",
            "comb",
            (110, 1010, 108, 56),
            partial(_number_text, lo=0, hi=10),
            "Q7. Satisfaction (0-10)",
            (110, 990),
            cells=2,
            align="right",
            validate=Validation(length=(1, 2), min=0, max=10, required=True),
        ),
        _FieldSpec(
            "year_of_birth",
            "box",
            (760, 1000, 200, 70),
            partial(_number_text, lo=1935, hi=2006),
            "Q8. Year of birth",
            (760, 985),
            empty_share=0.1,
            validate=Validation(length=(4, 4), min=1900, max=2010),
        ),
    ),
)

_CHEQUE = _Layout(
    name="cheque",
    size=(1650, 750),
    dpi=CHEQUE_DPI,
    draw_printed=_draw_cheque,
    paper=_cheque_paper,
    fields=(
        _FieldSpec(
            "date",
            "comb",
            (1150, 130, 368, 52),
            partial(_date_text, first_year=2023, last_year=2026),
            "Date",
            (1060, 168),
            cells=8,
            hint="DDMMYYYY",
            validate=Validation(length=(8, 8), date="DDMMYYYY", required=True),
        ),
        _FieldSpec(
            "amount",
            "box",
            (1240, 270, 360, 80),
            partial(_amount_text, whole_digits=(1, 5), cents_share=1.0),
            "Amount",
            (1245, 256),
            validate=Validation(length=(3, 7), pattern=r"^[0-9]+[.,][0-9]{2}$", min=0.01, required=True),
        ),
        _FieldSpec(
            "account_number",
            "comb",
            (250, 470, 460, 54),
            partial(_digits_text, lengths=(10, 10)),
            "Account no.",
            (60, 505),
            cells=10,
            validate=Validation(length=(10, 10), required=True),
        ),
    ),
)

_LAYOUTS: dict[str, tuple[_Layout, ...]] = {
    "forms": (_APPLICATION_FORM, _SURVEY_FORM),
    "cheques": (_CHEQUE,),
}


def _layout_template(layout: _Layout) -> Template:
    """The :class:`ocr.template.Template` a layout is read with."""
    fields = tuple(TemplateField(f.name, f.kind, f.bbox, f.cells, f.validate) for f in layout.fields)
    return Template(name=layout.name, size=layout.size, fields=fields)


def _write_template(out_dir: Path, layout: _Layout) -> None:
    path = out_dir / "templates" / f"{layout.name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(_layout_template(layout).to_yaml(), encoding="utf-8")


# --------------------------------------------------------------------------- handwriting


@dataclass(frozen=True)
class _DigitPool:
    images: np.ndarray
    labels: np.ndarray
    by_label: tuple[np.ndarray, ...]

    @classmethod
    def from_mnist(cls, images: np.ndarray, labels: np.ndarray) -> _DigitPool:
        by_label = tuple(np.flatnonzero(labels == d) for d in range(10))
        missing = [d for d, found in enumerate(by_label) if found.size == 0]
        if missing:
            raise ValueError(f"labels hold no example of digit(s) {missing}; every digit 0-9 is needed")
        return cls(images, labels, by_label)

    def draw(self, digit: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """A random MNIST image of ``digit``, its recorded label and its index in the split."""
        index = int(rng.choice(self.by_label[digit]))
        return self.images[index], int(self.labels[index]), index


@dataclass(frozen=True)
class _Writer:
    """One person's hand: ink colour and habits shared by every digit on a page."""

    ink: Colour
    pressure: float  # 0-1 opacity of the darkest ink
    weight: float  # stroke width bias: <0 thin pen, >0 thick
    slant: float  # mean rotation, degrees
    size: float  # share of the available height the digits take


@dataclass(frozen=True)
class _Glyph:
    alpha: np.ndarray  # (h, w) float32 0-1, cropped tight to the ink
    label: int | None  # None for a decimal separator
    drop: int = 0  # pixels the glyph reaches below the baseline
    source: int | None = None  # index of the MNIST image drawn (digits only)


def _draw_writer(rng: np.random.Generator) -> _Writer:
    return _Writer(
        ink=_ink_colour(rng),
        pressure=float(rng.uniform(0.85, 1.0)),
        weight=float(rng.uniform(-0.8, 0.6)),
        slant=float(rng.uniform(-3, 3)),
        size=float(rng.uniform(0.6, 0.78)),
    )


def _ink_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.5:  # blue-black ballpoint
        return int(rng.integers(60, 81)), int(rng.integers(25, 45)), int(rng.integers(20, 35))
    gray = int(rng.integers(20, 50))
    return gray, gray, gray


def _render_digit(
    image: np.ndarray, label: int, height: float, rng: np.random.Generator, writer: _Writer, source: int | None = None
) -> _Glyph:
    """An MNIST digit as an ink mask about ``height`` pixels tall, rotated and with the writer's stroke."""
    rows, cols = np.nonzero(image > 40)
    crop = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = max(height, 8.0) / crop.shape[0]
    pad = 3
    crop = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    angle = float(np.clip(writer.slant + rng.normal(0, 3), -8, 8))
    big = _rotate_expand(big, angle)
    stroke = writer.weight + rng.normal(0, 0.3)
    kernel = round(abs(stroke) * scale * 0.5)
    if kernel >= 2:
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
        if stroke > 0:
            big = cv2.dilate(big, element)
        else:
            thinned = cv2.erode(big, element)
            # A thin pen must not wipe out a faint stroke: keep most of the ink.
            big = thinned if (thinned > 0.5).sum() >= 0.45 * (big > 0.5).sum() else big
    # Upscaled MNIST is soft; a steeper ramp gives the sharper edge of pen ink.
    alpha = np.clip((big - 0.15) / 0.55, 0.0, 1.0) * writer.pressure
    return _Glyph(_crop_to_ink(alpha), label, source=source)


def _render_separator(char: str, height: float, rng: np.random.Generator, writer: _Writer) -> _Glyph:
    radius = max(2.0, height * rng.uniform(0.045, 0.07))
    side = int(np.ceil(radius * 6))
    canvas = np.zeros((side * 2, side), np.uint8)
    centre = (side // 2, side)
    cv2.circle(canvas, centre, round(radius), 255, -1, cv2.LINE_AA)
    drop = 0
    if char == ",":
        tail = (centre[0] - round(radius * 1.2), centre[1] + round(radius * 3.2))
        cv2.line(canvas, centre, tail, 255, max(2, round(radius * 0.9)), cv2.LINE_AA)
        drop = round(radius * 2.4)
    alpha = canvas.astype(np.float32) / 255.0 * writer.pressure
    return _Glyph(_crop_to_ink(alpha), None, drop)


def _rotate_expand(image: np.ndarray, angle: float) -> np.ndarray:
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    matrix[:, 2] += ((new_w - w) / 2, (new_h - h) / 2)
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=0)


def _crop_to_ink(alpha: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(alpha > 0.1)
    if rows.size == 0:
        return alpha
    return np.ascontiguousarray(alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


def _stamp(page: np.ndarray, alpha: np.ndarray, x: int, y: int, ink: Colour) -> Box:
    """Lay ink ``alpha`` onto ``page`` (H, W, 3 uint8) with its top-left at (x, y); the inked box."""
    h, w = alpha.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(page.shape[1], x + w), min(page.shape[0], y + h)
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    region = page[y0:y1, x0:x1].astype(np.float32)
    page[y0:y1, x0:x1] = np.round(region * (1 - a) + np.asarray(ink, np.float32) * a).astype(np.uint8)
    return x0, y0, x1 - x0, y1 - y0


def _write_in_cells(
    page: np.ndarray, text: str, cells: list[Box], rng: np.random.Generator, pool: _DigitPool, writer: _Writer
) -> list[dict]:
    """One digit per cell interior, with random size and position inside it."""
    written = []
    for char, (cx, cy, cw, ch) in zip(text, cells, strict=True):
        image, label, source = pool.draw(int(char), rng)
        height = ch * float(np.clip(writer.size + rng.normal(0, 0.05), 0.55, 0.8))
        glyph = _render_digit(image, label, height, rng, writer, source)
        alpha = glyph.alpha
        if alpha.shape[1] > 0.9 * cw or alpha.shape[0] > 0.92 * ch:
            shrink = min(0.9 * cw / alpha.shape[1], 0.92 * ch / alpha.shape[0])
            size = (max(1, int(alpha.shape[1] * shrink)), max(1, int(alpha.shape[0] * shrink)))
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        h, w = alpha.shape
        x = cx + _jitter(rng, cw - w)
        y = cy + _jitter(rng, ch - h)
        written.append({"label": label, "bbox": _stamp(page, alpha, x, y, writer.ink), "source": source})
    return written


def _jitter(rng: np.random.Generator, slack: int) -> int:
    """Offset in [0, slack], centred with a spread of a quarter of it."""
    if slack <= 0:
        return 0
    return int(np.clip(round(slack / 2 + rng.normal(0, slack / 4)), 0, slack))


def _write_sequence(
    page: np.ndarray,
    text: str,
    area: Box,
    baseline: int,
    height: float,
    rng: np.random.Generator,
    pool: _DigitPool,
    writer: _Writer,
) -> list[dict]:
    """Digits (and separators) left to right on a wobbly ``baseline``, inside ``area``'s width.

    The left margin is random; if the number would not fit, it is written smaller.
    """
    ax, _, aw, _ = area
    drawn = [pool.draw(int(c), rng) if c.isdigit() else None for c in text]
    for _ in range(4):
        glyphs = [
            _render_digit(d[0], d[1], height * rng.uniform(0.92, 1.08), rng, writer, d[2])
            if d is not None
            else _render_separator(c, height, rng, writer)
            for c, d in zip(text, drawn, strict=True)
        ]
        gaps = [_letter_gap(rng, height) for _ in glyphs[1:]]
        width = sum(g.alpha.shape[1] for g in glyphs) + sum(gaps)
        if width <= aw * 0.94:
            break
        height *= aw * 0.9 / width
    slack = max(0, aw - width)
    x = ax + round(min(slack, 12) + rng.uniform(0, 0.6) * max(0, slack - 12))
    written = []
    for k, glyph in enumerate(glyphs):
        h, w = glyph.alpha.shape
        wobble = round(rng.normal(0, height * 0.04))
        box = _stamp(page, glyph.alpha, x, baseline - h + glyph.drop + wobble, writer.ink)
        if glyph.label is not None:
            written.append({"label": glyph.label, "bbox": box, "source": glyph.source})
        x += w + (gaps[k] if k < len(gaps) else 0)
    return written


def _letter_gap(rng: np.random.Generator, height: float) -> int:
    if rng.random() < 0.08:  # digits that run into each other a little
        return round(-height * rng.uniform(0.0, 0.08))
    return round(height * rng.uniform(0.02, 0.3))


def _draw_scribble(page: np.ndarray, area: Box, rng: np.random.Generator, ink: Colour, max_words: int = 3) -> None:
    """Cursive-looking loops across ``area`` (names, words, signatures): ink that is not a digit.

    Each word is a pen path that rises from the baseline and comes back once per
    letter; letters differ in height (some rise to ascender height, a few dip
    below the line) and in width, and wide swings of the pen make the loops.
    """
    x, y, w, h = area
    words = int(rng.integers(1, max_words + 1))
    space = h * rng.uniform(0.4, 0.8) / w
    shares = rng.uniform(0.5, 1.5, words)
    lengths = shares / shares.sum() * max(0.0, 1 - space * (words - 1))
    starts = np.concatenate([[0.0], np.cumsum(lengths + space)[:-1]])
    ends = starts + lengths
    thickness = int(rng.integers(2, 4)) if h >= 45 else 2
    baseline = y + 0.75 * h
    for start, end in zip(starts, ends, strict=True):
        length = (end - start) * w
        letters = int(length / (h * rng.uniform(0.4, 0.65)))
        if letters < 2:
            continue
        kind = rng.random(letters)
        rise = np.where(kind < 0.25, rng.uniform(0.8, 1.0, letters), rng.uniform(0.3, 0.45, letters))
        rise = np.where(kind > 0.92, -rng.uniform(0.2, 0.35, letters), rise)
        swing = rng.uniform(0.02, 0.3, letters) * h
        t = np.linspace(0, letters, letters * 24)
        index = np.minimum(t.astype(int), letters - 1)
        theta = 2 * np.pi * t
        px = x + start * w + t * (length / letters) - swing[index] * np.sin(theta)
        py = baseline - rise[index] * h * (0.5 - 0.5 * np.cos(theta))
        points = np.stack([px, py], axis=1).round().astype(np.int32)
        cv2.polylines(page, [points], False, ink, thickness, cv2.LINE_AA)


# --------------------------------------------------------------------------- printed matter


def _put_text(
    page: np.ndarray, text: str, origin: tuple[int, int], scale: float, ink: Colour, thickness: int, font: int = _FONT
) -> None:
    cv2.putText(page, text, origin, font, scale, ink, thickness, cv2.LINE_AA)


def _section_bar(page: np.ndarray, title: str, y: int, ink: Colour) -> None:
    cv2.rectangle(page, (100, y - 30), (1140, y + 8), (225, 225, 225), -1)
    _put_text(page, title, (112, y), 0.75, ink, 2, _FONT_BOLD)


def _comb_cells(bbox: Box, cells: int, gap: int) -> list[Box]:
    """The outer rectangles of a comb's boxes, left to right."""
    x, y, w, h = bbox
    pitch = (w + gap) / cells
    return [
        (round(x + i * pitch), y, round(x + i * pitch + pitch - gap) - round(x + i * pitch), h) for i in range(cells)
    ]


def _inset(box: Box, by: int) -> Box:
    x, y, w, h = box
    return x + by, y + by, w - 2 * by, h - 2 * by


def _draw_field_frame(page: np.ndarray, spec: _FieldSpec, printed: Colour, ink: Colour, thickness: int) -> None:
    """The printed part of a field: its label, and its boxes or underline (in ``ink``) inside its bbox."""
    _put_text(page, spec.label, spec.label_at, 0.65, printed, 1)
    x, y, w, h = spec.bbox
    half = thickness // 2
    if spec.kind == "line":
        cv2.line(page, (x, y + h - 6), (x + w - 1, y + h - 6), ink, thickness)
        return
    boxes = _comb_cells(spec.bbox, spec.cells, spec.gap) if spec.kind == "comb" else [spec.bbox]
    if spec.gap == 0:
        # Adjacent boxes share their walls: one outline and the walls between cells.
        cv2.rectangle(page, (x + half, y + half), (x + w - 1 - half, y + h - 1 - half), ink, thickness)
        for bx, by, _, bh in boxes[1:]:
            cv2.line(page, (bx, by), (bx, by + bh - 1), ink, thickness)
    else:
        for bx, by, bw, bh in boxes:
            cv2.rectangle(page, (bx + half, by + half), (bx + bw - 1 - half, by + bh - 1 - half), ink, thickness)
    for letter, (bx, by, bw, _) in zip(spec.hint, boxes, strict=False):
        _put_text(page, letter, (bx + bw // 2 - 6, by - 6), 0.45, (150, 150, 150), 1)


# --------------------------------------------------------------------------- pages


def _render_layout_page(layout: _Layout, rng: np.random.Generator, pool: _DigitPool) -> tuple[np.ndarray, list[dict]]:
    """A clean filled-in page (H, W, 3 uint8) in template pixels and its fields' truth."""
    page = layout.paper(rng, layout.size)
    printed = (int(rng.integers(0, 40)),) * 3
    layout.draw_printed(page, rng, printed)
    frame_ink = (int(rng.integers(0, 90)),) * 3
    thickness = int(rng.integers(2, 4))
    writer = _draw_writer(rng)
    fields = []
    for spec in layout.fields:
        _draw_field_frame(page, spec, printed, frame_ink, thickness)
        text = "" if rng.random() < spec.empty_share else spec.make_text(rng)
        written = _write_field(page, spec, text, thickness, rng, pool, writer) if text else []
        bbox = spec.bbox
        if spec.kind == "line" and written:
            bbox = pad_box(union_box(d["bbox"] for d in written), 10, layout.size[::-1])
        value = "".join(c for c in text if c.isdigit())
        entry = {"name": spec.name, "kind": spec.kind}
        if spec.kind == "comb":
            entry["cells"] = spec.cells
        fields.append(entry | {"value": value, "text": text, "bbox": list(bbox), "digits": written})
    return page, fields


def _write_field(
    page: np.ndarray,
    spec: _FieldSpec,
    text: str,
    thickness: int,
    rng: np.random.Generator,
    pool: _DigitPool,
    writer: _Writer,
) -> list[dict]:
    x, y, w, h = spec.bbox
    if spec.kind == "comb":
        cells = [_inset(c, thickness + 2) for c in _comb_cells(spec.bbox, spec.cells, spec.gap)]
        if len(text) > spec.cells:
            raise ValueError(f"{spec.name}: {text!r} does not fit {spec.cells} cells")
        start = spec.cells - len(text) if spec.align == "right" else 0
        return _write_in_cells(page, text, cells[start : start + len(text)], rng, pool, writer)
    if spec.kind == "box":
        inner = _inset(spec.bbox, thickness + 4)
        height = inner[3] * writer.size * rng.uniform(0.9, 1.0)
        baseline = inner[1] + inner[3] - round((inner[3] - height) * rng.uniform(0.3, 0.7))
        return _write_sequence(page, text, inner, baseline, height, rng, pool, writer)
    area = (x, y, w, h - 10)
    baseline = y + h - 6 - int(rng.integers(4, 10))
    return _write_sequence(page, text, area, baseline, area[3] * writer.size, rng, pool, writer)


def _clip_box(box: Box, size: tuple[int, int]) -> Box:
    x, y, w, h = (int(v) for v in box)
    x0, y0 = min(max(0, x), size[0] - 1), min(max(0, y), size[1] - 1)
    x1, y1 = max(x0 + 1, min(size[0], x + w)), max(y0 + 1, min(size[1], y + h))
    return x0, y0, x1 - x0, y1 - y0


def _map_fields(fields: list[dict], move: Callable[[Box], Box], size: tuple[int, int]) -> list[dict]:
    """Field truth with every box moved to where the distortion put it, clipped to the page."""
    out = []
    for f in fields:
        digits = [{**d, "bbox": list(_clip_box(move(tuple(d["bbox"])), size))} for d in f["digits"]]
        out.append(f | {"bbox": list(_clip_box(move(tuple(f["bbox"])), size)), "digits": digits})
    return out


# --------------------------------------------------------------------------- scans


def _choose_format(rng: np.random.Generator) -> str:
    names = list(_FORMAT_WEIGHTS)
    weights = np.array([_FORMAT_WEIGHTS[k] for k in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _draw_scan_effects(rng: np.random.Generator, layout: _Layout, fmt: str) -> dict:
    """A random subset of scanner distortions, shrunk until every field stays on the page."""
    shift = rng.integers(-40, 41, 2) if rng.random() < 0.7 else np.zeros(2, int)
    rotation = rng.uniform(-3, 3) if rng.random() < 0.6 else 0.0
    scale = rng.uniform(0.96, 1.04) if rng.random() < 0.4 else 1.0
    fields = [pad_box(f.bbox, 12, (10**6, 10**6)) for f in layout.fields]
    width, height = layout.size
    for _ in range(6):
        matrix = _scan_matrix(layout.size, shift, rotation, scale)
        moved = [transform_box(b, matrix) for b in fields]
        if all(x >= 2 and y >= 2 and x + w <= width - 2 and y + h <= height - 2 for x, y, w, h in moved):
            break
        shift, rotation, scale = np.round(shift / 2).astype(int), rotation / 2, 1 + (scale - 1) / 2
    else:
        shift, rotation, scale = np.zeros(2, int), 0.0, 1.0
    contrast, brightness = (rng.uniform(0.85, 1.08), rng.uniform(-18, 12)) if rng.random() < 0.4 else (1.0, 0.0)
    effects = {
        "shift": [int(shift[0]), int(shift[1])],
        "rotation": round(float(rotation), 3),
        "scale": round(float(scale), 4),
        "blur": round(float(rng.uniform(0.4, 1.1)), 2) if rng.random() < 0.35 else 0.0,
        "noise": round(float(rng.uniform(2, 8)), 2) if rng.random() < 0.5 else 0.0,
        "brightness": round(float(brightness), 2),
        "contrast": round(float(contrast), 3),
        "color": bool(fmt not in ("tiff_bilevel", "tiff_multipage") and rng.random() < 0.4),
        "format": fmt,
    }
    if fmt == "jpeg" or fmt == "pdf":  # Pillow stores PDF page images as JPEG too
        effects["jpeg_quality"] = int(rng.integers(70, 93))
    if fmt == "tiff_bilevel":
        effects["threshold"] = int(rng.integers(140, 171))
    return effects


def _scan_matrix(size: tuple[int, int], shift, rotation: float, scale: float) -> np.ndarray:
    """2x3 affine: rotate (degrees, counter-clockwise on screen) and scale about the page centre, then shift."""
    matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), float(rotation), float(scale))
    matrix[:, 2] += (float(shift[0]), float(shift[1]))
    return matrix


def _apply_scan_effects(page: np.ndarray, effects: dict, rng: np.random.Generator) -> np.ndarray:
    """The scanned page: (H, W, 3) BGR or (H, W) gray uint8, same size as ``page``."""
    height, width = page.shape[:2]
    matrix = _scan_matrix((width, height), effects["shift"], effects["rotation"], effects["scale"])
    out = cv2.warpAffine(page, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(252, 252, 252))
    out = out.astype(np.float32) * effects["contrast"] + effects["brightness"]
    if effects["blur"] > 0:
        out = cv2.GaussianBlur(out, (0, 0), effects["blur"])
    if not effects["color"]:
        out = cv2.cvtColor(np.clip(out, 0, 255), cv2.COLOR_BGR2GRAY)
    if effects["noise"] > 0:
        out = out + rng.normal(0, effects["noise"], out.shape).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _write_scan(
    out_dir: Path,
    stem: str,
    kind: str,
    layout: _Layout,
    fmt: str,
    rng: np.random.Generator,
    pool: _DigitPool,
) -> tuple[Path, dict]:
    effects = _draw_scan_effects(rng, layout, fmt)
    matrix = _scan_matrix(layout.size, effects["shift"], effects["rotation"], effects["scale"])
    images, pages = [], []
    for number in range(1, 3 if fmt == "tiff_multipage" else 2):
        clean, fields = _render_layout_page(layout, rng, pool)
        images.append(_apply_scan_effects(clean, effects, rng))
        width, height = layout.size
        moved = _map_fields(fields, partial(transform_box, matrix=matrix), layout.size)
        pages.append({"page": number, "width": width, "height": height, "fields": moved})
    path = out_dir / f"{stem}.{_EXTENSIONS[fmt]}"
    _save_images(path, images, fmt, layout.dpi, effects)
    truth = {
        "file": path.name,
        "kind": kind,
        "layout": layout.name,
        "template": f"templates/{layout.name}.yaml",
        "dpi": layout.dpi,
        "effects": effects,
        "pages": pages,
    }
    return path, truth


def _save_images(path: Path, images: list[np.ndarray], fmt: str, dpi: int | None, effects: dict) -> None:
    """Encode pages (gray or BGR uint8) in ``fmt``; written through memory so a failure leaves no half file."""
    frames = [Image.fromarray(im if im.ndim == 2 else np.ascontiguousarray(im[..., ::-1])) for im in images]
    resolution = {"dpi": (dpi, dpi)} if dpi else {}
    buf = io.BytesIO()
    if fmt == "png":
        frames[0].save(buf, "PNG", **resolution)
    elif fmt == "jpeg":
        frames[0].save(buf, "JPEG", quality=effects["jpeg_quality"], **resolution)
    elif fmt == "bmp":
        frames[0].save(buf, "BMP", **resolution)
    elif fmt == "tiff_bilevel":
        threshold = effects["threshold"]
        bilevel = (
            frames[0].convert("L").point(lambda v: 255 if v >= threshold else 0).convert("1", dither=Image.Dither.NONE)
        )
        bilevel.save(buf, "TIFF", compression="group4", **resolution)
    elif fmt == "tiff_multipage":
        frames[0].save(buf, "TIFF", compression="tiff_lzw", save_all=True, append_images=frames[1:], **resolution)
    elif fmt == "pdf":
        # PDFium keeps page sizes as float32 and rounds the rendered size up, so
        # 1240 px at 150 dpi (595.2 pt, stored as 595.2000122) renders 1241 wide.
        # A page a hair smaller renders to exactly the saved grid at ``dpi``.
        # No creation dates, so that the same seed gives the same bytes.
        resolution = float(dpi) * (1 + 1e-6)
        frames[0].save(
            buf, "PDF", resolution=resolution, quality=effects["jpeg_quality"], creationDate=None, modDate=None
        )
    else:
        raise ValueError(f"unknown format {fmt!r}")
    path.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- photos


def _write_photo(out_dir: Path, stem: str, rng: np.random.Generator, pool: _DigitPool) -> tuple[Path, dict]:
    image, fields, effects = _render_photo(rng, pool)
    height, width = image.shape[:2]
    path = out_dir / f"{stem}.jpg"
    _save_images(path, [image], "jpeg", None, effects)
    truth = {
        "file": path.name,
        "kind": "photos",
        "layout": "photo",
        "template": None,
        "dpi": None,
        "effects": effects,
        "pages": [{"page": 1, "width": width, "height": height, "fields": fields}],
    }
    return path, truth


def _render_photo(rng: np.random.Generator, pool: _DigitPool) -> tuple[np.ndarray, list[dict], dict]:
    """A phone photo of digits written on a sheet: BGR uint8, the line fields, the effects drawn."""
    width, height = (1280, 960) if rng.random() < 0.5 else (960, 1280)
    tint = np.array([rng.uniform(215, 245), rng.uniform(225, 250), rng.uniform(232, 255)], np.float32)
    sheet = np.broadcast_to(tint.round().astype(np.uint8), (height, width, 3)).copy()
    writer = _draw_writer(rng)
    lines = int(rng.integers(1, 5))
    digit_height = float(rng.uniform(55, 100))
    pitch = digit_height * float(rng.uniform(1.6, 2.3))
    crowded = lines * pitch / (0.75 * height)
    if crowded > 1:
        digit_height, pitch = digit_height / crowded, pitch / crowded
    top = rng.uniform(0.12, 0.5) * max(0.0, height * 0.85 - lines * pitch) + height * 0.1
    ruled = bool(rng.random() < 0.2)
    if ruled:
        # Writing sits on the rules, every rule or every other one.
        spacing = pitch / (2 if pitch > 140 else 1)
        first = top + digit_height + 2
        for y in np.arange(first - spacing * (first // spacing), height - 20, spacing):
            cv2.line(sheet, (0, round(y)), (width - 1, round(y)), (215, 190, 170), 1, cv2.LINE_AA)
    fields = []
    for k in range(lines):
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 11))))
        left = round(width * rng.uniform(0.08, 0.25))
        area = (left, 0, round(width * 0.9) - left, height)
        baseline = round(top + pitch * k + digit_height)
        written = _write_sequence(sheet, text, area, baseline, digit_height, rng, pool, writer)
        bbox = pad_box(union_box(d["bbox"] for d in written), 10, (height, width))
        fields.append(
            {
                "name": f"line_{k + 1}",
                "kind": "line",
                "value": text,
                "text": text,
                "bbox": list(bbox),
                "digits": written,
            }
        )

    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    offsets = inward * rng.uniform(0.0, 0.06, (4, 2)) * (width, height)
    offsets += rng.uniform(-0.02, 0.02, (4, 2)) * (width, height)
    homography = cv2.getPerspectiveTransform(corners, (corners + offsets).astype(np.float32))
    desk = tuple(int(v) for v in _pick(rng, [(45, 70, 105), (90, 90, 95), (150, 160, 170), (30, 30, 35)]))
    photo = cv2.warpPerspective(sheet, homography, (width, height), flags=cv2.INTER_LINEAR, borderValue=desk)
    fields = _map_fields(fields, partial(_warp_box, homography=homography), (width, height))

    light = _illumination(rng, width, height)
    illumination = [round(float(light.min()), 3), round(float(light.max()), 3)]
    shadow = float(rng.uniform(0.15, 0.4)) if rng.random() < 0.7 else 0.0
    if shadow:
        light *= 1 - shadow * shadow_mask(rng, width, height)
    balance = rng.uniform(0.94, 1.04, 3).astype(np.float32)
    out = photo.astype(np.float32) * light[..., None] * balance
    blur = float(rng.uniform(0.5, 1.4))
    noise = float(rng.uniform(3, 9))
    quality = int(rng.integers(70, 93))
    out = cv2.GaussianBlur(out, (0, 0), blur)
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    effects = {
        "perspective": [[round(float(dx), 1), round(float(dy), 1)] for dx, dy in offsets],
        "illumination": illumination,
        "shadow": round(shadow, 3),
        "color_balance": [round(float(v), 3) for v in balance],
        "paper": [round(float(v)) for v in tint],
        "ruled": ruled,
        "blur": round(blur, 2),
        "noise": round(noise, 2),
        "jpeg_quality": quality,
        "format": "jpeg",
    }
    return np.clip(np.round(out), 0, 255).astype(np.uint8), fields, effects


def _warp_box(box: Box, homography: np.ndarray) -> Box:
    """Bounding box of ``box``'s corners mapped through a 3x3 ``homography``."""
    x, y, w, h = box
    corners = np.array([[[x, y], [x + w, y], [x, y + h], [x + w, y + h]]], np.float64)
    mapped = cv2.perspectiveTransform(corners, homography)[0]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int)
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _illumination(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W) float32 gain: a linear ramp in a random direction plus a soft vignette."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs / width - 0.5) * np.cos(angle) + (ys / height - 0.5) * np.sin(angle)
    low, high = rng.uniform(0.7, 0.9), rng.uniform(1.0, 1.1)
    gain = low + (high - low) * (ramp - ramp.min()) / (ramp.max() - ramp.min())
    radius = ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2) * 2
    return (gain * (1 - rng.uniform(0.0, 0.15) * radius)).astype(np.float32)


def shadow_mask(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W) float32 0-1: a blurred polygon entering from one edge, as a hand or phone would cast."""
    mask = np.zeros((height, width), np.float32)
    depth = rng.uniform(0.15, 0.45)
    a, b = sorted(rng.uniform(0, 1, 2))
    # (along the edge, into the page) in 0-1, then turned onto one of the four edges.
    unit = [(a, 0.0), (b, 0.0), (b * 0.9, depth), (a * 1.1, depth)]
    edge = int(rng.integers(4))
    u, v = np.array(unit).T
    fx, fy = ((u, v), (1 - v, u), (u, 1 - v), (v, u))[edge]
    pts = np.stack([fx * width, fy * height], axis=1)
    cv2.fillPoly(mask, [pts.round().astype(np.int32)], 1.0)
    return cv2.GaussianBlur(mask, (0, 0), rng.uniform(25, 60))


def in_shadow(page: np.ndarray, darkness: float, rng: np.random.Generator) -> np.ndarray:
    """A gray uint8 ``page`` with a soft shadow (:func:`shadow_mask`) darkening what it covers by ``darkness``."""
    mask = shadow_mask(rng, page.shape[1], page.shape[0])
    return np.clip(page * (1 - darkness * mask), 0, 255).astype(np.uint8)


def _pick(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


def photograph_sheet(page: np.ndarray, rng: np.random.Generator, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """A page (H, W) uint8 laid on a table and photographed from the side, and the 3x3 homography
    taking the page's pixels to the photo's.

    The table is gray 90 with a margin of 8% of the page's width; the photo's four corners
    move at random by up to ``amount`` of its size (perspective), and the light falls off
    across it.
    """
    h, w = page.shape
    margin = int(0.08 * w)
    table = np.full((h + 2 * margin, w + 2 * margin), 90, np.uint8)
    table[margin : margin + h, margin : margin + w] = page
    height, width = table.shape
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = (corners + rng.uniform(-amount, amount, (4, 2)) * [width, height]).astype(np.float32)
    view = cv2.getPerspectiveTransform(corners, moved)
    photo = cv2.warpPerspective(table, view, (width, height), borderValue=90)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.75 + 0.25 * (xs / width) * (1 - 0.3 * ys / height)
    photo = np.clip(photo * light, 0, 255).astype(np.uint8)
    return photo, view @ np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1]], np.float64)
