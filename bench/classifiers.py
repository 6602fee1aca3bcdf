"""Classifier throughput on one core, per batch size, with the accuracy figures of `evaluate`.

    python bench/classifiers.py --data ../shared/data/mnist.npz [--cores 1] [--seconds 3]

Prints a table and then one JSON object.  The process pins itself to
``--cores`` CPUs and sizes TensorFlow's thread pools to match before loading
anything, so the figures are per core as stated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="local mnist.npz (default: Keras's cache)")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per measurement")
    args = parser.parse_args()

    from cli import _limit_to_cores

    _limit_to_cores(args.cores)

    from ocr.classifiers import load_models
    from ocr.evaluation import evaluate_models, measure_throughput
    from ocr.mnist import load_mnist
    from ocr.normalize import normalize_digits

    mnist = load_mnist(args.data)
    models = load_models()
    digits = normalize_digits(mnist.x_test[:1000])
    rows = []
    for batch_size in (1, 10, 100, 1000):
        batch = digits[:batch_size]
        rows.append(
            {
                "batch_size": batch_size,
                "cnn_digits_per_s": round(measure_throughput(models.cnn.predict, batch, args.seconds)),
                "svm_digits_per_s": round(measure_throughput(models.svm.predict, batch, args.seconds)),
            }
        )
    normalize_rate = len(mnist.x_test[:2000]) / _time(lambda: normalize_digits(mnist.x_test[:2000]))
    accuracy = evaluate_models(models, mnist.x_test, mnist.y_test, robustness=True, speed=False)

    print(f"cores: {args.cores}  cpu: {platform.processor() or platform.machine()}  ({os.cpu_count()} visible)")
    print(f"{'batch':>6} {'CNN digits/s':>14} {'HOG-SVM digits/s':>18}")
    for r in rows:
        print(f"{r['batch_size']:>6} {r['cnn_digits_per_s']:>14,} {r['svm_digits_per_s']:>18,}")
    print(f"normaliser: {normalize_rate:,.0f} crops/s")
    print(
        f"MNIST test: CNN {accuracy['cnn_accuracy']:.2%}, HOG-SVM {accuracy['svm_accuracy']:.2%}, "
        f"review {accuracy['decision']['reject_rate']:.2%}, "
        f"error among accepted {accuracy['decision']['error_among_accepted']:.3%}, "
        f"distorted CNN {accuracy['distorted']['cnn_accuracy']:.2%}"
    )
    print(
        json.dumps(
            {
                "cores": args.cores,
                "throughput": rows,
                "normalizer_crops_per_s": round(normalize_rate),
                "evaluate": accuracy,
            }
        )
    )


def _time(fn) -> float:
    import time

    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
