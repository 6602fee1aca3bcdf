"""Synthetic scans: the files, their ground truth, the templates, and what the loader reads back."""

import json
import re

import numpy as np
import pytest

from ocr.load import load_pages
from ocr.samples import FORMATS, generate_samples
from ocr.template import load_template

# Few files per kind keep this fast; forcing formats makes every one appear.
RUNS = {
    "forms": {"n": 6, "formats": FORMATS},
    "cheques": {"n": 3, "formats": ("pdf", "tiff_multipage", "png")},
    "photos": {"n": 3, "formats": None},
}
TOP_KEYS = {"file", "kind", "layout", "template", "dpi", "effects", "pages"}


@pytest.fixture(scope="module")
def samples(mnist, tmp_path_factory):
    """kind -> (out_dir, [(path, truth)])"""
    out = {}
    for kind, run in RUNS.items():
        out_dir = tmp_path_factory.mktemp(kind)
        paths = generate_samples(out_dir, kind, run["n"], 11, mnist.x_test, mnist.y_test, formats=run["formats"])
        out[kind] = (out_dir, [(p, json.loads(p.with_suffix(".json").read_text())) for p in paths])
    return out


def _fields(truth):
    for page in truth["pages"]:
        yield from page["fields"]


def _inside(box, page):
    x, y, w, h = box
    return x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= page["width"] and y + h <= page["height"]


@pytest.mark.parametrize("kind", list(RUNS))
def test_every_sample_is_written_with_its_truth(samples, kind):
    out_dir, items = samples[kind]
    assert len(items) == RUNS[kind]["n"]
    for path, truth in items:
        assert path.is_file() and path.parent == out_dir and path.stat().st_size > 0
        assert set(truth) == TOP_KEYS
        assert truth["file"] == path.name and truth["kind"] == kind
        assert [p["page"] for p in truth["pages"]] == list(range(1, len(truth["pages"]) + 1))
        assert truth["effects"]["format"] in FORMATS
        for field in _fields(truth):
            assert {"name", "kind", "value", "text", "bbox", "digits"} <= set(field)
            assert field["kind"] in ("comb", "box", "line")
            assert ("cells" in field) == (field["kind"] == "comb")
    if kind == "photos":
        assert all(t["layout"] == "photo" and t["template"] is None for _, t in items)
        assert all(p.suffix == ".jpg" for p, _ in items)
    else:
        assert all(t["template"] == f"templates/{t['layout']}.yaml" for _, t in items)


def test_forms_use_two_layouts_and_cheques_one(samples):
    assert {t["layout"] for _, t in samples["forms"][1]} == {"application_form", "survey_form"}
    assert {t["layout"] for _, t in samples["cheques"][1]} == {"cheque"}


@pytest.mark.parametrize("kind", list(RUNS))
def test_values_are_the_labels_of_the_digits_drawn(samples, kind):
    for _, truth in samples[kind][1]:
        for field in _fields(truth):
            assert field["value"] == re.sub(r"[^0-9]", "", field["text"])
            assert field["value"] == "".join(str(d["label"]) for d in field["digits"])
            if field["kind"] == "comb":
                assert len(field["value"]) <= field["cells"]


@pytest.mark.parametrize("kind", list(RUNS))
def test_each_digit_names_the_image_drawn_there(samples, mnist, kind):
    sources = [d["source"] for _, truth in samples[kind][1] for field in _fields(truth) for d in field["digits"]]
    labels = [d["label"] for _, truth in samples[kind][1] for field in _fields(truth) for d in field["digits"]]
    assert sources and all(isinstance(s, int) and 0 <= s < len(mnist.y_test) for s in sources)
    assert mnist.y_test[sources].tolist() == labels
    # Drawn at random: not the first image of each label over and over.
    assert len(set(sources)) > 0.9 * len(sources)


def test_amounts_keep_their_separator_in_text_only(samples):
    amounts = [f for _, t in samples["cheques"][1] for f in _fields(t) if f["name"] == "amount"]
    assert amounts
    for field in amounts:
        assert re.fullmatch(r"[1-9][0-9]*[.,][0-9]{2}", field["text"])
        assert len(field["digits"]) == len(field["text"]) - 1


@pytest.mark.parametrize("kind", list(RUNS))
def test_every_box_is_inside_its_page(samples, kind):
    for _, truth in samples[kind][1]:
        for page in truth["pages"]:
            for field in page["fields"]:
                assert _inside(field["bbox"], page), field
                assert all(_inside(d["bbox"], page) for d in field["digits"]), field


def test_photo_lines_are_named_top_to_bottom(samples):
    for _, truth in samples["photos"][1]:
        fields = truth["pages"][0]["fields"]
        assert 1 <= len(fields) <= 4
        assert [f["name"] for f in fields] == [f"line_{k}" for k in range(1, len(fields) + 1)]
        assert [f["bbox"][1] for f in fields] == sorted(f["bbox"][1] for f in fields)
        assert all(f["kind"] == "line" and 3 <= len(f["value"]) <= 10 for f in fields)


@pytest.mark.parametrize("kind", ["forms", "cheques"])
def test_templates_load_and_describe_the_fields(samples, kind):
    out_dir, items = samples[kind]
    for _, truth in items:
        template = load_template(out_dir / truth["template"])
        assert template.name == truth["layout"]
        for page in truth["pages"]:
            assert template.size == (page["width"], page["height"])
            assert [f.name for f in template.fields] == [f["name"] for f in page["fields"]]
            for field in page["fields"]:
                spec = template.field(field["name"])
                assert spec.kind == field["kind"]
                assert spec.cells == field.get("cells", 0)
                assert spec.validate.problems(field["value"], field["text"]) == [], field


@pytest.mark.parametrize("kind", list(RUNS))
def test_every_file_loads_at_the_size_in_its_truth(samples, kind):
    for path, truth in samples[kind][1]:
        pages = load_pages(path, pdf_dpi=truth["dpi"] or 200)
        assert len(pages) == len(truth["pages"])
        for page, expected in zip(pages, truth["pages"], strict=True):
            assert page.image.shape == (expected["height"], expected["width"])


def test_forced_formats_cover_every_loader_path(samples):
    items = samples["forms"][1]
    assert [t["effects"]["format"] for _, t in items] == list(FORMATS)
    by_format = {t["effects"]["format"]: (p, t) for p, t in items}
    assert by_format["pdf"][1]["dpi"] == 150

    path, truth = by_format["tiff_bilevel"]
    assert set(np.unique(load_pages(path)[0].image)) <= {0, 255}

    path, truth = by_format["tiff_multipage"]
    first, second = truth["pages"]
    assert [f["name"] for f in first["fields"]] == [f["name"] for f in second["fields"]]
    assert [f["value"] for f in first["fields"]] != [f["value"] for f in second["fields"]]


@pytest.mark.parametrize("kind", list(RUNS))
def test_digit_boxes_hold_ink_after_the_scan_effects(samples, kind):
    for path, truth in samples[kind][1]:
        pages = load_pages(path, pdf_dpi=truth["dpi"] or 200)
        for page, expected in zip(pages, truth["pages"], strict=True):
            image = page.image.astype(int)
            for field in expected["fields"]:
                x, y, w, h = field["bbox"]
                paper = np.percentile(image[y : y + h, x : x + w], 75)
                for digit in field["digits"]:
                    x, y, w, h = digit["bbox"]
                    crop = image[y : y + h, x : x + w]
                    # Ink: a real share of the box clearly darker than the paper around it.
                    assert (crop < paper - 70).mean() > 0.05, (path.name, field["name"], digit)


def test_same_seed_same_files_and_another_seed_others(mnist, tmp_path):
    def run(name, seed):
        paths = generate_samples(tmp_path / name, "cheques", 2, seed, mnist.x_test, mnist.y_test)
        return [(p.name, p.read_bytes(), p.with_suffix(".json").read_bytes()) for p in paths]

    first = run("a", 5)
    assert run("b", 5) == first
    assert run("c", 6) != first


def test_bad_arguments_are_refused(mnist, tmp_path):
    x, y = mnist.x_test[:500], mnist.y_test[:500]
    with pytest.raises(ValueError, match="kind"):
        generate_samples(tmp_path, "letters", 1, 0, x, y)
    with pytest.raises(ValueError, match="digits"):
        generate_samples(tmp_path, "forms", 1, 0, x.astype(np.float32), y)
    with pytest.raises(ValueError, match="digit"):
        generate_samples(tmp_path, "forms", 1, 0, x[y != 7], y[y != 7])
    with pytest.raises(ValueError, match="formats"):
        generate_samples(tmp_path, "forms", 1, 0, x, y, formats=["gif"])
