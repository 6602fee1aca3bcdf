"""Measure the recognition engine on labelled digits (MNIST test by default)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ocr.augment import FLAGGED_SEED, ROBUSTNESS_SEED, SCANNED_SEED, distort_test_digits, flagged_ones, scanned_digits
from ocr.classifiers import Models
from ocr.decision import Decisions, decide, reject_curve
from ocr.normalize import normalize_digits

REJECT_RATES = (0.0, 0.005, 0.01, 0.02, 0.05)


def evaluate_models(
    models: Models,
    x: np.ndarray,
    y: np.ndarray,
    *,
    robustness: bool = True,
    speed: bool = False,
) -> dict:
    """Accuracy, agreement, error-vs-reject and confusions on raw digits ``x`` with labels ``y``.

    Parameters
    ----------
    x : (N, 28, 28) uint8 ndarray
        MNIST-format digits; they go through the normaliser as scans do.
    robustness : bool
        Also score the fixed distorted copy of ``x`` (:func:`ocr.augment.distort_test_digits`),
        the fixed scanned copy, cut as pages' ink masks (:func:`ocr.augment.scanned_digits`),
        and its 1s written with a flag (:func:`ocr.augment.flagged_ones`).
    speed : bool
        Also time each classifier on batches of 100 (digits/s with the
        process's current thread settings).

    Returns
    -------
    dict of JSON-serialisable figures; rates are 0-1 fractions.
    """
    y = np.asarray(y)
    result = {"digits": int(len(y)), **score_digits(models, normalize_digits(x, bright_ink=True), y)}
    if robustness:
        result["distorted"] = {"seed": ROBUSTNESS_SEED, **score_digits(models, distort_test_digits(x), y, pages=True)}
        result["scanned"] = {"seed": SCANNED_SEED, **score_digits(models, scanned_digits(x), y, pages=True)}
        ones = y == 1
        if ones.any():
            result["flagged_ones"] = {
                "seed": FLAGGED_SEED,
                **score_digits(models, flagged_ones(x[ones]), y[ones], pages=True),
            }
    if speed:
        batch = normalize_digits(x[:100], bright_ink=True)
        result["speed"] = {
            "batch_size": len(batch),
            "cnn_digits_per_s": measure_throughput(models.cnn.predict, batch),
            "svm_digits_per_s": measure_throughput(models.svm.predict, batch),
        }
    return result


def score_digits(models: Models, digits: np.ndarray, y: np.ndarray, pages: bool = False) -> dict:
    """Figures for normalised ``digits`` (N, 28, 28) with labels ``y``.

    ``pages``: also the decision with the rule's page threshold (``page_decision``), as pages are read.
    """
    # The network runs once; its second look reuses the single-look probabilities.
    single_label, single_probs = models.cnn.predict_single_look(digits)
    cnn_label, cnn_probs = models.cnn.look_again(digits, single_probs)
    svm_label, svm_probs = models.svm.predict(digits)
    d = decide(cnn_probs, svm_probs, models.rule)
    agree = ~d.disagree
    correct = d.label == y
    figures = {
        "cnn_accuracy": float(np.mean(cnn_label == y)),
        "cnn_single_look_accuracy": float(np.mean(single_label == y)),
        "svm_accuracy": float(np.mean(svm_label == y)),
        "combined_accuracy": float(np.mean(correct)),
        "agreement_rate": float(np.mean(agree)),
        "accuracy_where_agree": float(np.mean(correct[agree])) if agree.any() else 0.0,
        "decision": decision_figures(d, y),
        "reject_curve": [
            {"reject_rate": r, "error_rate": e}
            for r, e in reject_curve(d.confidence, d.disagree, correct, REJECT_RATES)
        ],
        "confusions": top_confusions(y, d.label),
    }
    if pages and models.rule.page_min_confidence is not None:
        page_rule = models.rule.for_pages()
        figures["page_decision"] = {
            "min_confidence": page_rule.min_confidence,
            **decision_figures(decide(cnn_probs, svm_probs, page_rule), y),
        }
    return figures


def decision_figures(d: Decisions, y: np.ndarray) -> dict:
    """How many digits a decision flags, and how many it accepts wrongly."""
    correct = d.label == y
    accepted = ~d.review
    return {
        "reject_rate": float(np.mean(d.review)),
        "disagree_rate": float(np.mean(d.disagree)),
        "low_confidence_rate": float(np.mean(d.low_confidence & ~d.disagree)),
        "error_among_accepted": float(np.mean(~correct[accepted])) if accepted.any() else 0.0,
        "errors_accepted": int(np.sum(~correct & accepted)),
    }


def top_confusions(truth: np.ndarray, predicted: np.ndarray, k: int = 10) -> list[dict]:
    """The ``k`` most frequent (true, predicted) mistakes, most frequent first."""
    wrong = truth != predicted
    pairs, counts = np.unique(np.stack([truth[wrong], predicted[wrong]], axis=1), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:k]
    return [{"true": int(pairs[i][0]), "predicted": int(pairs[i][1]), "count": int(counts[i])} for i in order]


def measure_throughput(predict: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float = 2.0) -> float:
    """Digits per second of ``predict`` called repeatedly on ``batch`` (after two warm-up calls)."""
    predict(batch)
    predict(batch)
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        predict(batch)
        calls += 1
    return calls * len(batch) / elapsed
