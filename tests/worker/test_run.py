"""End to end: `digitflow run` over generated scans into SQLite and PostgreSQL, then results, review, export."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from ocr.samples import generate_samples

runner = CliRunner()


@pytest.fixture(scope="module")
def scans(tmp_path_factory, mnist) -> Path:
    """Four generated application/survey forms (PNG) with ground truth, and one corrupt file."""
    root = tmp_path_factory.mktemp("scans")
    generate_samples(root, "forms", 4, seed=7, digits=mnist.x_test, labels=mnist.y_test, formats=["png"])
    data = (root / "form_0000.png").read_bytes()
    (root / "broken.png").write_bytes(data[: len(data) // 3])
    return root


def _truth(scans: Path) -> dict[str, dict[str, str]]:
    out = {}
    for path in sorted(scans.glob("form_*.json")):
        truth = json.loads(path.read_text())
        out[str(scans / truth["file"])] = {f["name"]: f["value"] for f in truth["pages"][0]["fields"]}
    return out


def _jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_run_results_review_export(scans, engine_url, tmp_path):
    db = ["--db", engine_url]
    first = runner.invoke(app, ["run", str(scans), *db])
    assert first.exit_code == 10, first.output  # one document failed
    assert "documents done 4, failed 1" in first.output
    assert "truncated" in first.output

    records = _jsonl(runner.invoke(app, ["results", "--format", "jsonl", *db]))
    assert {r["document"] for r in records} == set(_truth(scans))
    keys = {"document", "sha256", "page", "field", "kind", "value", "text", "confidence", "status", "bbox", "digits"}
    assert keys <= set(records[0])
    truth = _truth(scans)
    assert sum(r["value"] in truth[r["document"]].values() for r in records) >= 0.8 * len(records)

    again = runner.invoke(app, ["run", str(scans), *db])
    assert "4 already processed" in again.output, again.output
    assert len(_jsonl(runner.invoke(app, ["results", "--format", "jsonl", *db]))) == len(records)

    queue = _jsonl(runner.invoke(app, ["review", "list", "--json", *db]))
    assert len(queue) == min(20, sum(r["status"] == "review" for r in records))
    assert [q["confidence"] for q in queue] == sorted(q["confidence"] for q in queue)
    if queue:
        field_id = queue[0]["id"]
        shown = runner.invoke(app, ["review", "show", str(field_id), "--out", str(tmp_path / "f.png"), *db])
        assert shown.exit_code == 0 and (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")
        fixed = runner.invoke(app, ["review", "correct", str(field_id), "1234", "--who", "tester", *db])
        assert fixed.exit_code == 0, fixed.output
        corrected = _jsonl(runner.invoke(app, ["results", "--status", "corrected", "--format", "jsonl", *db]))
        assert [r["value"] for r in corrected] == ["1234"]

    exported = runner.invoke(app, ["export", "--format", "csv", *db])
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert len(rows) == len(records)


@pytest.mark.slow
def test_accepted_values_match_the_truth(scans, tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'acc.db'}"]
    runner.invoke(app, ["run", str(scans), *db])
    records = _jsonl(runner.invoke(app, ["results", "--status", "accepted", "--format", "jsonl", *db]))
    truth = _truth(scans)
    # Auto mode names fields field_1..N; an accepted value must be one of its page's true values.
    wrong = [
        (r["document"], r["value"]) for r in records if r["value"] and r["value"] not in truth[r["document"]].values()
    ]
    assert wrong == []


def test_a_run_with_one_worker_sizes_its_own_thread_pools(scans, tmp_path, monkeypatch):
    # With one worker the command's own process reads the scans: DIGITFLOW_THREADS applies to it
    # as to each pool process (OpenCV's default pool only contends with the caller's thread).
    import ocr.classifiers

    sized = []
    monkeypatch.setattr(ocr.classifiers, "limit_threads", sized.append)
    small = tmp_path / "one"
    small.mkdir()
    shutil.copy(scans / "form_0001.png", small)
    db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"]
    result = runner.invoke(app, ["run", str(small), *db], env={"DIGITFLOW_THREADS": "3"})
    assert result.exit_code == 0, result.output
    assert sized == [3]


@pytest.mark.slow
def test_bad_arguments_give_clear_messages(scans, tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"]
    small = tmp_path / "one"
    small.mkdir()
    shutil.copy(scans / "form_0001.png", small)
    assert runner.invoke(app, ["run", str(small), *db]).exit_code == 0
    unknown = runner.invoke(app, ["results", "--field", "no_such_field", *db])
    assert unknown.exit_code == 2 and "no field named 'no_such_field'" in unknown.output
    status = runner.invoke(app, ["results", "--status", "maybe", *db])
    assert status.exit_code == 2 and "accepted, review, corrected" in status.output
    missing = runner.invoke(app, ["run", str(tmp_path / "nope"), *db])
    assert missing.exit_code == 2 and "no such file" in missing.output
    no_field = runner.invoke(app, ["review", "accept", "99999", *db])
    assert no_field.exit_code == 2 and "no field with id 99999" in no_field.output
