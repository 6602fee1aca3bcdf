"""bench/variants.py: turned and rescaled copies of sample scans keep their ground truth on the digits."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_a_turned_box_is_where_the_turned_page_has_it(turn):
    sys.path.insert(0, str(ROOT / "bench"))
    from variants import _TURNS, turned_box

    page = np.zeros((300, 200), np.uint8)
    box = [30, 50, 40, 70]
    page[50:120, 30:70] = 255
    turned = cv2.rotate(page, _TURNS[turn])
    assert turned_box(box, turn, *page.shape) == list(cv2.boundingRect(turned))


def test_variants_of_samples_hold_their_digits_where_the_truth_says(tmp_path, mnist):
    from ocr.samples import generate_samples

    generate_samples(tmp_path / "src", "forms", 2, seed=3, digits=mnist.x_test, labels=mnist.y_test, formats=["png"])
    from ocr.load import load_pages

    changes = (["--turn", "90"], ["--scale", "2", "--dpi", "300"], ["--fax"], ["--dither"], ["--fax", "--dither"])
    for args in (*changes, ["--blur", "1.5"], ["--photo", "0.04"], ["--bed", "side"], ["--bed", "askew"]):
        out = tmp_path / "".join(args).strip("-")
        run = subprocess.run(
            [sys.executable, "bench/variants.py", str(tmp_path / "src"), str(out), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        assert (out / "templates").is_dir()
        for truth_path in sorted(out.glob("form_*.json")):
            truth = json.loads(truth_path.read_text())
            image = load_pages(out / truth["file"])[0].image  # a fax's pixels made square, as reading sees them
            for field in truth["pages"][0]["fields"]:
                for digit in field["digits"]:
                    x, y, w, h = digit["bbox"]
                    # The digit's ink is inside its box (blurred, a faint digit's darkest pixel is lighter),
                    # on its paper (not on a dark bed).
                    assert image[y : y + h, x : x + w].min() < (160 if "--blur" in args else 100)
                    assert image[y : y + h, x : x + w].max() > 150


def test_unseen_layout_pages_hold_their_digits_where_the_truth_says(tmp_path):
    from tests.conftest import MNIST_PATH

    command = [sys.executable, str(ROOT / "bench" / "unseen_layouts.py"), str(tmp_path), "--pages", "2"]
    subprocess.run([*command, "--seed", "3", "--data", str(MNIST_PATH)], check=True, capture_output=True)
    pages = sorted(p for p in tmp_path.iterdir() if p.suffix != ".json")
    assert len(pages) == 2
    for page in pages:
        truth = json.loads(page.with_suffix(".json").read_text())
        image = cv2.imread(str(page), cv2.IMREAD_GRAYSCALE)
        fields = truth["pages"][0]["fields"]
        assert 4 <= len(fields) <= 6
        for field in fields:
            assert field["value"] == "".join(str(d["label"]) for d in field["digits"])
            for d in field["digits"]:
                x, y, w, h = d["bbox"]
                assert image[y : y + h, x : x + w].min() < 120  # pen ink inside each digit's box
