"""Where the digits of sample pages are lost: in reading the page, or in the classifiers themselves.

    python bench/digit_loss.py DIR [DIR ...] --data ../shared/data/mnist.npz [--templates] [--show 20]

Each digit of a sample's truth records the MNIST test image written there (``source``, see
:mod:`ocr.samples`).  The page is read as ``digitflow evaluate --samples`` reads it, and each truth
digit is matched to the read digit whose box holds its centre.  The same MNIST image, normalised
as training normalised it, goes through both classifiers and the decision rule as a page's digits
do.  Every digit then falls in one of:

* right on the page and by itself;
* **lost in reading**: read right by itself, but wrong on the page or not found there (cleanup,
  field finding, segmentation, the crop the classifiers see: what page reading can still win);
* **lost to the classifiers**: wrong by itself as well (what only better models win back);
* right on the page only.

Prints a table per directory, the reading's losses one by one (up to ``--show`` of them), then one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr.classifiers import load_models  # noqa: E402
from ocr.decision import decide  # noqa: E402
from ocr.mnist import load_mnist  # noqa: E402
from ocr.normalize import normalize_digits  # noqa: E402
from ocr.sample_eval import digit_at, match_fields, read_samples  # noqa: E402


def classify_sources(models, images: np.ndarray) -> np.ndarray:
    """The decision rule's labels for MNIST images, read as a page's digits are."""
    batch = normalize_digits(images, bright_ink=True)
    _, cnn = models.cnn.predict(batch)
    _, svm = models.svm.predict(batch)
    return decide(cnn, svm, models.rule.for_page_layout()).label


def read_directory(directory: Path, models, use_templates: bool) -> list[dict]:
    """One record per truth digit: its label, the page's label (None: not found) and its source."""
    records = []
    for sample in read_samples(directory, models, use_templates):
        for page_truth, reading in sample.pages:
            pairs, _ = match_fields(reading.fields, page_truth["fields"], sample.by_name)
            for t, field in pairs:
                for digit in t["digits"]:
                    if "source" not in digit:
                        truth_path = sample.scan.with_suffix(".json")
                        raise SystemExit(f"{truth_path}: no digit sources; draw the samples again (digitflow samples)")
                    read = None if field is None else digit_at(field, digit["bbox"])
                    records.append(
                        {
                            "scan": sample.scan.name,
                            "field": t["value"],
                            "read": None if field is None else field.value,
                            "label": digit["label"],
                            "page": None if read is None else read.label,
                            "source": digit["source"],
                        }
                    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mnist.npz")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--templates", action="store_true", help="read onto the layouts' templates")
    parser.add_argument("--show", type=int, default=20, help="list this many of the digits lost in reading")
    args = parser.parse_args()

    models = load_models(args.models) if args.models else load_models()
    mnist = load_mnist(args.data)
    by_itself = classify_sources(models, mnist.x_test)
    report = {}
    heads = f"{'digits':>7} {'page':>8} {'itself':>8} {'lost reading':>13} {'lost models':>12} {'page only':>10}"
    print(f"{'set':<40} {heads}")
    for directory in args.dirs:
        records = read_directory(directory, models, args.templates)
        counts: Counter[str] = Counter()
        lost = []
        for r in records:
            on_page = r["page"] == r["label"]
            alone = int(by_itself[r["source"]]) == r["label"]
            if int(mnist.y_test[r["source"]]) != r["label"]:
                raise SystemExit(f"{directory}: digit sources do not match {args.data}'s test labels")
            if on_page and alone:
                counts["right"] += 1
            elif alone:
                counts["lost_in_reading"] += 1
                counts["not_found" if r["page"] is None else "read_wrong"] += 1
                lost.append(r)
            elif on_page:
                counts["page_only"] += 1
            else:
                counts["lost_to_classifiers"] += 1
        n = len(records)
        share = {k: round(v / n, 5) if n else 0.0 for k, v in counts.items()}
        report[str(directory)] = {"digits": n, **counts, "shares": share}
        page_right = counts["right"] + counts["page_only"]
        alone_right = counts["right"] + counts["lost_in_reading"]
        print(
            f"{str(directory):<40} {n:>7} {page_right / max(n, 1):>8.2%} {alone_right / max(n, 1):>8.2%} "
            f"{counts['lost_in_reading'] / max(n, 1):>13.2%} {counts['lost_to_classifiers'] / max(n, 1):>12.2%} "
            f"{counts['page_only'] / max(n, 1):>10.2%}"
        )
        for r in lost[: args.show]:
            found = "not found" if r["page"] is None else f"read {r['page']}"
            source = f"MNIST test #{r['source']}"
            print(f"    {r['scan']}: {r['label']} of {r['field']} {found} (field read {r['read']}; {source})")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
