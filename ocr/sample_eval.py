"""Score page reading against the ground truth written beside sample scans.

Each scan ``X.ext`` in a directory has ``X.json`` (see :mod:`ocr.samples`).
Reading is compared field by field:

* detection: a ground-truth field counts as found when a read field overlaps
  it (IoU >= 0.3; with templates, the field of the same name);
* exact field accuracy: found, and the value equals the truth (unfound fields
  count as wrong);
* exact text: found, and the text equals the truth's, separators included
  ("1250,75" read "1250.75" is wrong there, right in the value);
* digit accuracy: truth digits whose box is matched by a read digit of the
  same label;
* review rate: found fields flagged for review;
* error among accepted: fields not flagged whose value is wrong, including
  fields read where the truth has none.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ocr.classifiers import Models
from ocr.geometry import box_iou
from ocr.load import DEFAULT_PDF_DPI, load_pages
from ocr.read import DigitReading, FieldReading, PageReading, read_page
from ocr.template import Template, load_template

SCAN_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pdf"}
_MIN_IOU = 0.3


def find_samples(directory: Path) -> list[tuple[Path, Path]]:
    """(scan, truth) pairs in ``directory``, sorted by name."""
    pairs = []
    for scan in sorted(directory.iterdir()):
        truth = scan.with_suffix(".json")
        if scan.suffix.lower() in SCAN_SUFFIXES and truth.is_file():
            pairs.append((scan, truth))
    return pairs


@dataclass(frozen=True)
class SampleScan:
    """One sample scan read: its truth, and each page's truth beside its reading."""

    scan: Path
    truth: dict
    pages: list[tuple[dict, PageReading]]
    by_name: bool  # read onto its layout's template: fields match by name, not by position


def read_samples(directory: Path, models: Models, use_templates: bool = False) -> Iterator[SampleScan]:
    """Read every sample in ``directory`` as ``digitflow evaluate --samples`` does, one scan at a time.

    With ``use_templates``, each page is read onto the template its truth names (each template
    loaded once).
    """
    templates: dict[str, Template] = {}
    for scan, truth_path in find_samples(directory):
        truth = json.loads(truth_path.read_text())
        template = None
        if use_templates and truth.get("template"):
            key = truth["template"]
            if key not in templates:
                templates[key] = load_template(directory / key)
            template = templates[key]
        pages = load_pages(scan, pdf_dpi=int(truth.get("dpi") or DEFAULT_PDF_DPI))
        read = [
            (page_truth, read_page(page.image, models, template, number=page.number, dpi=page.dpi))
            for page, page_truth in zip(pages, truth["pages"], strict=False)
        ]
        yield SampleScan(scan, truth, read, by_name=template is not None)


def evaluate_samples(
    directory: Path,
    models: Models,
    use_templates: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Figures per layout and overall for every sample in ``directory``."""
    counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures = []
    for sample in read_samples(directory, models, use_templates):
        layout = sample.truth.get("layout", "unknown")
        for page_truth, reading in sample.pages:
            c = counters[layout]
            c["pages"] += 1
            c["unregistered_pages"] += bool(reading.problems)
            for kind, n in score_page(reading.fields, page_truth["fields"], by_name=sample.by_name).items():
                c[kind] += n
            if reading.problems:
                failures.append(f"{sample.scan.name} p{reading.number}: {'; '.join(reading.problems)}")
        if progress:
            progress(sample.scan.name)
    per_layout = {layout: _rates(c) for layout, c in sorted(counters.items())}
    total: dict[str, int] = defaultdict(int)
    for c in counters.values():
        for k, v in c.items():
            total[k] += v
    return {
        "mode": "templates" if use_templates else "auto",
        "layouts": per_layout,
        "overall": _rates(total),
        "problems": failures,
    }


def match_fields(
    read: tuple[FieldReading, ...] | list[FieldReading], truth: list[dict], by_name: bool
) -> tuple[list[tuple[dict, FieldReading | None]], list[FieldReading]]:
    """Each truth field with the read field matched to it (None: not found), and the read fields
    left unmatched (read where the truth has none)."""
    unmatched = list(read)
    pairs = []
    for t in truth:
        match = _match_field(t, unmatched, by_name)
        if match is not None:
            unmatched.remove(match)
        pairs.append((t, match))
    return pairs, unmatched


def score_page(read: tuple[FieldReading, ...] | list[FieldReading], truth: list[dict], by_name: bool) -> dict[str, int]:
    """Raw counts for one page (see the module docstring)."""
    counts: dict[str, int] = defaultdict(int)
    pairs, unmatched = match_fields(read, truth, by_name)
    for t, match in pairs:
        counts["fields"] += 1
        counts["digits"] += len(t["digits"])
        if match is None:
            continue
        counts["found"] += 1
        correct = match.value == t["value"]
        counts["exact"] += correct
        counts["exact_text"] += match.text == t["text"]
        counts["review"] += match.needs_review
        if not match.needs_review:
            counts["accepted"] += 1
            counts["accepted_wrong"] += not correct
        counts["digits_right"] += _digits_right(t["digits"], match)
    for extra in unmatched:
        counts["spurious"] += 1
        if extra.value and not extra.needs_review:
            counts["accepted"] += 1
            counts["accepted_wrong"] += 1
    return counts


def _match_field(t: dict, candidates: list[FieldReading], by_name: bool) -> FieldReading | None:
    if by_name:
        return next((c for c in candidates if c.name == t["name"]), None)
    best, best_iou = None, _MIN_IOU
    for c in candidates:
        iou = box_iou(tuple(t["bbox"]), c.bbox)
        if iou >= best_iou:
            best, best_iou = c, iou
    return best


def digit_at(field: FieldReading, bbox: list[int] | tuple[int, ...]) -> DigitReading | None:
    """The read digit of ``field`` whose box holds the centre of a truth digit's ``bbox``."""
    tx, ty, tw, th = bbox
    cx, cy = tx + tw / 2, ty + th / 2
    for digit in field.digits:
        x, y, w, h = digit.bbox
        if x <= cx <= x + w and y <= cy <= y + h:
            return digit
    return None


def _digits_right(truth_digits: list[dict], field: FieldReading) -> int:
    right = 0
    for d in truth_digits:
        read = digit_at(field, d["bbox"])
        right += read is not None and read.label == d["label"]
    return right


def _rates(c: dict[str, int]) -> dict:
    def share(num: str, den: str) -> float:
        return round(c[num] / c[den], 4) if c[den] else 0.0

    return {
        "pages": c["pages"],
        "fields": c["fields"],
        "field_detection_rate": share("found", "fields"),
        "exact_field_accuracy": share("exact", "fields"),
        "exact_text_accuracy": share("exact_text", "fields"),
        "digit_accuracy": share("digits_right", "digits"),
        "review_rate": share("review", "found"),
        "error_among_accepted": share("accepted_wrong", "accepted"),
        "spurious_fields": c["spurious"],
        "unregistered_pages": c["unregistered_pages"],
    }
