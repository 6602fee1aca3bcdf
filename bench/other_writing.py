"""Digits written otherwise than MNIST's writers wrote them: how often they are read, flagged, or accepted wrong.

    python bench/other_writing.py --data ../shared/data/mnist.npz [--models DIR] [--per-digit 30]

Four sets, none trained on:

* the digits of OpenCV's seven Hershey fonts, upright and italic, drawn with
  pens 3-9 px wide, turned by up to 8 degrees and sheared, thresholded into an
  ink mask and cut as reading cuts a segment (``--per-digit`` of each digit per
  font);
* MNIST test's 1s with the flag at the top that much of the world writes
  (:func:`ocr.augment.flagged_ones`, the seeded copy ``evaluate`` reports);
* MNIST test's 1s standing on a foot, without a flag;
* MNIST test's 7s crossed in the middle, as 7s are written where 1s are flagged.

For each: the CNN's accuracy, the combined label's, and with the page review
bar (as pages are read) the share accepted and the digits accepted wrong,
with the most frequent confusions.  Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Seed of the crossed 7s and footed 1s of MNIST test (the HOG-SVM trains on MNIST train digits drawn so with
# TrainConfig.seed).
CROSSED_SEED = 20261205

FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "plain": cv2.FONT_HERSHEY_PLAIN,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "script simplex": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    "script complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
}


def font_digit(label: int, font: int, pen: int, angle: float, shear: float) -> np.ndarray:
    """One digit in a Hershey font as an ink mask (255 ink) cut to its ink."""
    canvas = np.zeros((160, 160), np.uint8)
    cv2.putText(canvas, str(label), (40, 120), font, 3.0, 255, pen, cv2.LINE_AA)
    sheared = cv2.warpAffine(canvas, np.float32([[1, shear, -shear * 80], [0, 1, 0]]), (160, 160))
    turned = cv2.warpAffine(sheared, cv2.getRotationMatrix2D((80, 80), angle, 1.0), (160, 160))
    mask = np.where(turned > 110, 255, 0).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def score(models, digits: np.ndarray, labels: np.ndarray) -> dict:
    from ocr.decision import decide
    from ocr.evaluation import decision_figures, top_confusions

    cnn_label, cnn_probs = models.cnn.predict(digits)
    _, svm_probs = models.svm.predict(digits)
    d = decide(cnn_probs, svm_probs, models.rule.for_pages())
    figures = decision_figures(d, labels)
    return {
        "digits": int(len(labels)),
        "cnn_accuracy": float(np.mean(cnn_label == labels)),
        "combined_accuracy": float(np.mean(d.label == labels)),
        "accepted": 1.0 - figures["reject_rate"],
        "errors_accepted": figures["errors_accepted"],
        "confusions": [f"{c['true']}->{c['predicted']} x{c['count']}" for c in top_confusions(labels, d.label, 4)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="local mnist.npz (default: Keras's cache)")
    parser.add_argument("--models", type=Path, default=None, help="model directory (default: the shipped models)")
    parser.add_argument("--per-digit", type=int, default=30, help="drawings of each digit per font and slant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from ocr.augment import crossed_sevens, flagged_ones, footed_ones
    from ocr.classifiers import MODEL_DIR, load_models
    from ocr.mnist import load_mnist
    from ocr.segment import reading_crop

    models = load_models(args.models or MODEL_DIR)
    mnist = load_mnist(args.data)
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, font in FONTS.items():
        for italic in (False, True):
            crops, labels = [], []
            for _ in range(args.per_digit):
                for label in range(10):
                    pen, angle, shear = int(rng.integers(3, 10)), rng.uniform(-8, 8), rng.uniform(-0.15, 0.25)
                    drawn = font_digit(label, font | (cv2.FONT_ITALIC if italic else 0), pen, angle, shear)
                    crops.append(reading_crop(drawn))
                    labels.append(label)
            results[f"{name}{' italic' if italic else ''}"] = score(models, np.stack(crops), np.array(labels))
    ones = mnist.x_test[mnist.y_test == 1]
    results["MNIST 1s, flagged"] = score(models, flagged_ones(ones), np.ones(len(ones), np.int64))
    results["MNIST 1s, on a foot"] = score(models, footed_ones(ones, CROSSED_SEED), np.ones(len(ones), np.int64))
    sevens = mnist.x_test[mnist.y_test == 7]
    results["MNIST 7s, crossed"] = score(models, crossed_sevens(sevens, CROSSED_SEED), np.full(len(sevens), 7))

    header = f"{'set':22s} {'digits':>6s} {'CNN':>7s} {'combined':>8s} {'accepted':>8s} {'wrong accepted':>14s}"
    print(f"{header}  confusions")
    for name, r in results.items():
        print(
            f"{name:22s} {r['digits']:6d} {r['cnn_accuracy']:7.2%} {r['combined_accuracy']:8.2%} "
            f"{r['accepted']:8.1%} {r['errors_accepted']:14d}  {', '.join(r['confusions'])}"
        )
    print(json.dumps({"models": str(args.models or MODEL_DIR), "sets": results}))


if __name__ == "__main__":
    main()
