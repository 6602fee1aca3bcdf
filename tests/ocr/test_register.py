"""Template registration under shift, rotation and scale; drafting templates from blank forms."""

import cv2
import numpy as np
import pytest

from ocr.cleanup import clean_page
from ocr.fields import Rect
from ocr.geometry import box_iou, transform_box
from ocr.register import draft_template, expected_boxes, register, register_rects, template_regions
from ocr.template import Template, TemplateField
from tests.ocr.drawing import blank, draw_comb

FORM = Template(
    name="test_form",
    size=(1200, 900),
    fields=(
        TemplateField("date", "comb", (100, 100, 400, 56), cells=8),
        TemplateField("amount", "box", (100, 300, 350, 90)),
        TemplateField("phone", "comb", (600, 500, 500, 56), cells=10),
        TemplateField("note", "line", (600, 700, 400, 60)),
    ),
)


def _draw_form(template: Template) -> np.ndarray:
    page = blank(template.size[1], template.size[0])
    for f in template.fields:
        x, y, w, h = f.bbox
        if f.kind == "comb":
            draw_comb(page, x, y, f.cells, cell_w=w // f.cells, cell_h=h)
        elif f.kind == "box":
            cv2.rectangle(page, (x, y), (x + w, y + h), 0, 2)
        else:
            cv2.line(page, (x, y + h), (x + w, y + h), 0, 2)
    cv2.putText(page, "Application form", (100, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    return page


@pytest.mark.parametrize(
    ("degrees", "shift", "scale"),
    [(0.0, (0, 0), 1.0), (0.0, (55, -40), 1.0), (2.5, (-30, 25), 1.0), (-3.0, (60, 60), 1.0), (1.0, (20, 10), 1.04)],
)
def test_registration_finds_the_transform(degrees, shift, scale):
    page = _draw_form(FORM)
    h, w = page.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, scale)
    matrix[:, 2] += shift
    scan = cv2.warpAffine(page, matrix, (w, h), borderValue=255)
    clean = clean_page(scan)
    registration, rects = register(clean.ink, FORM)
    assert registration.ok and registration.score >= 0.9
    regions = {r.name: r for r in template_regions(FORM, registration, rects)}
    # Each field lands where the scan put it (compare in cleaned-page pixels).
    to_clean = np.vstack([clean.matrix, [0, 0, 1]]) @ np.vstack([matrix, [0, 0, 1]])
    for f in FORM.fields:
        expected = transform_box(f.bbox, to_clean[:2])
        assert box_iou(regions[f.name].bbox, expected) > 0.8, f.name
    assert len(regions["date"].cells) == 8 and len(regions["phone"].cells) == 10


SURVEY = Template(
    name="survey",
    size=(1240, 1754),
    fields=(
        TemplateField("respondent_id", "comb", (110, 440, 300, 58), cells=6),
        TemplateField("survey_date", "comb", (660, 440, 400, 50), cells=8),
        TemplateField("postcode", "comb", (110, 610, 214, 52), cells=4),
        TemplateField("household_size", "box", (660, 600, 130, 72)),
        TemplateField("satisfaction", "comb", (110, 1010, 108, 56), cells=2),
        TemplateField("year_of_birth", "box", (760, 1000, 200, 70)),
    ),
)


def _assert_registers_as_scanned(template: Template, degrees: float, shift, scale: float, border: int) -> None:
    """Its boxes turned and scaled about the page's middle, then shifted, are found (each ``border``
    px wider on every side, as found with their lines), and registration puts every box on them."""
    matrix = cv2.getRotationMatrix2D((template.size[0] / 2, template.size[1] / 2), degrees, scale)
    matrix[:, 2] += shift
    placed = [transform_box(box, matrix) for _, _, box in expected_boxes(template)]
    grown = [(x - border, y - border, w + 2 * border, h + 2 * border) for x, y, w, h in placed]
    rects = [Rect(outer, (x + 2, y + 2, w - 4, h - 4)) for outer, (x, y, w, h) in zip(grown, placed, strict=True)]
    registration = register_rects(rects, template, template.size)
    assert registration.score == 1.0
    for (_, _, box), where in zip(expected_boxes(template), placed, strict=True):
        assert box_iou(transform_box(box, registration.matrix), where) > 0.8


@pytest.mark.parametrize(("degrees", "shift", "scale"), [(-2, (0, 0), 1.05), (2, (40, -40), 1.05), (2, (1, 40), 1.05)])
def test_combs_are_not_registered_a_cell_out(degrees, shift, scale):
    # Scaled by 5%, rows of combs line up about as well one cell to the side as where they are,
    # and the translation vote alone picked the wrong one (a score of 0.77, every comb read a cell out).
    _assert_registers_as_scanned(SURVEY, degrees, shift, scale, border=0)


APPLICATION = Template(
    name="application",
    size=(1240, 1754),
    fields=(
        TemplateField("date_of_birth", "comb", (460, 525, 384, 56), cells=8),
        TemplateField("phone", "comb", (460, 615, 460, 54), cells=10),
        TemplateField("postcode", "comb", (460, 700, 250, 50), cells=5),
        TemplateField("children", "comb", (460, 850, 104, 52), cells=2),
        TemplateField("age", "box", (460, 930, 150, 66)),
        TemplateField("income", "box", (460, 1025, 330, 70)),
        TemplateField("reference", "comb", (460, 1125, 352, 50), cells=8),
    ),
)


@pytest.mark.parametrize(
    ("degrees", "shift", "scale"),
    [(0, (19, -35), 1.039), (0, (0, 0), 1.03), (0, (-40, 50), 0.955), (0.5, (30, -20), 1.045)],
)
def test_a_wide_form_scanned_a_few_percent_larger_or_smaller_registers(degrees, shift, scale):
    # Scaled by 4%, boxes 150 px apart move 6 px apart: the pairs of a wide form's combs no longer
    # agreed on one shift, the vote went to shifts a cell or a row out, and the page did not
    # register (11 of 35 boxes).  Each box is found with its lines, 3 px wider on each side.
    _assert_registers_as_scanned(APPLICATION, degrees, shift, scale, border=3)


def test_a_page_of_another_form_does_not_register():
    other = Template(
        "other",
        (1200, 900),
        (
            TemplateField("a", "box", (700, 120, 300, 200)),
            TemplateField("b", "comb", (150, 650, 210, 70), cells=3),
        ),
    )
    clean = clean_page(_draw_form(other))
    registration, _ = register(clean.ink, FORM)
    assert not registration.ok


def test_a_blank_page_does_not_register():
    registration, _ = register(clean_page(blank()).ink, FORM)
    assert not registration.ok and registration.score == 0.0


def test_draft_template_from_a_blank_form():
    draft = draft_template(clean_page(_draw_form(FORM)).ink, "draft")
    assert [(f.name, f.kind, f.cells) for f in draft.fields] == [
        ("field_1", "comb", 8),
        ("field_2", "box", 0),
        ("field_3", "comb", 10),
    ]
    for drafted, original in zip(draft.fields, [f for f in FORM.fields if f.kind != "line"], strict=True):
        assert box_iou(drafted.bbox, original.bbox) > 0.9


def test_a_template_drafted_from_a_fine_scan_is_in_its_own_pixels():
    page = _draw_form(FORM)
    fine = cv2.resize(page, (page.shape[1] * 2, page.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    draft = draft_template(clean_page(fine, scale=0.5).ink, "draft", 0.5)
    assert draft.size == (2400, 1800)
    originals = [f for f in FORM.fields if f.kind != "line"]
    assert [(f.kind, f.cells) for f in draft.fields] == [(f.kind, f.cells) for f in originals]
    for drafted, original in zip(draft.fields, originals, strict=True):
        assert box_iou(drafted.bbox, tuple(2 * v for v in original.bbox)) > 0.9
    # The fine template registers the page scanned at the coarse resolution.
    registration, _ = register(clean_page(page).ink, draft)
    assert registration.ok and registration.score >= 0.9


def test_a_template_is_drafted_from_a_blank_printed_in_light_hairlines(tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from ocr.template import load_template

    page = blank(1800, 2400)
    for i in range(8):  # a comb of 1-pixel light gray cells at 300 dpi, and a box like it
        cv2.rectangle(page, (200 + 100 * i, 200), (300 + 100 * i, 312), 175, 1)
    cv2.rectangle(page, (200, 600), (1000, 780), 175, 1)
    cv2.putText(page, "Date of birth", (200, 180), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    path = tmp_path / "blank.png"
    cv2.imwrite(str(path), page)
    result = CliRunner().invoke(app, ["template", "init", str(path)], env={"DIGITFLOW_PDF_DPI": ""})
    assert result.exit_code == 0, result.output
    (tmp_path / "form.yaml").write_text(result.stdout)
    drafted = load_template(tmp_path / "form.yaml").fields
    assert [(f.kind, f.cells) for f in drafted] == [("comb", 8), ("box", 0)]
    assert box_iou(drafted[0].bbox, (200, 200, 801, 113)) > 0.8
