"""bench/digit_loss.py: every truth digit of sample pages is counted once, by where it was lost."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import MNIST_PATH

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/digit_loss.py", *args, "--data", str(MNIST_PATH)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_digit_is_counted_once_by_where_it_was_lost(tmp_path, mnist):
    from ocr.samples import generate_samples

    generate_samples(tmp_path / "photos", "photos", 2, seed=5, digits=mnist.x_test, labels=mnist.y_test)
    truth = [json.loads(p.read_text()) for p in sorted((tmp_path / "photos").glob("*.json"))]
    digits = sum(len(f["digits"]) for t in truth for page in t["pages"] for f in page["fields"])
    run = _run(str(tmp_path / "photos"))
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])[str(tmp_path / "photos")]
    assert figures["digits"] == digits > 0
    kinds = ("right", "lost_in_reading", "lost_to_classifiers", "page_only")
    assert sum(figures.get(k, 0) for k in kinds) == digits
    assert figures.get("not_found", 0) + figures.get("read_wrong", 0) == figures.get("lost_in_reading", 0)
    # Clean photos of MNIST test digits: most are read right on the page and by themselves.
    assert figures["right"] >= 0.8 * digits


def test_truth_without_digit_sources_is_refused_with_a_clear_message():
    run = _run("examples/forms")
    assert run.returncode != 0
    assert "no digit sources" in run.stderr
