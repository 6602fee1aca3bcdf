"""Combine the CNN and the HOG-SVM into one label, a confidence and review flags.

The rule
--------
For each digit the two probability vectors are pooled geometrically::

    log p = (1 - w) * log p_cnn + w * log p_svm     (then renormalised)

The final label is the argmax of ``p`` and the confidence is ``p[label]``, in
[0, 1].  Two flags send a digit to review:

* ``disagree``: the CNN's and the SVM's own top labels differ.  The two models
  see the digit through different features (learned convolutions against
  gradient histograms), so their disagreement marks the ambiguous shapes.
* ``low_confidence``: the pooled confidence is below ``min_confidence``.

``w`` and ``min_confidence`` are chosen by :func:`fit_decision_rule` on
validation digits held out of training: among the candidate weights, the
threshold that keeps the error among accepted digits at or below the target
(0.1 % by default) while rejecting the fewest digits wins.

Digits cut from pages are not MNIST's clean digits: segmentation leaves them
rotated, loosely cropped, with thicker or thinner strokes and bits of box
lines, and at a given confidence they are wrong more often.  So pages are read
with a second threshold, ``page_min_confidence``, fitted by
:func:`fit_page_threshold` at the same weight on distorted copies of the same
validation digits (:meth:`DecisionRule.for_pages`), for a target of its own,
``page_target_error``.  A page's unit of work is a field, not a digit: a field
is accepted only if every digit in it is, and it is wrong if any one is, so a
field of ``n`` digits errs up to ``n`` times as often as its digits.  Fields
run to 10 digits (phone and account numbers), and fields also go wrong where
segmentation cuts them wrongly, so the page target is a fraction of the digit
target (:class:`ocr.training.TrainConfig`, docs/performance.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

_EPS = 1e-7
_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class DecisionRule:
    svm_weight: float
    min_confidence: float
    target_error: float
    # The threshold for digits cut from pages (None: rules fitted before it existed; pages use min_confidence).
    page_min_confidence: float | None = None
    # The error among accepted distorted digits that page_min_confidence was fitted for (None: target_error).
    page_target_error: float | None = None
    # The bar for a page digit to count as clearly read where reading judges a page's layout
    # (is this line a number or a name, is the page upside down), fitted at target_error on the
    # same distorted digits; None: page_min_confidence is that bar too (rules fitted before it existed).
    page_clear_confidence: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DecisionRule:
        data = json.loads(text)
        return cls(
            **{k: data[k] for k in ("svm_weight", "min_confidence", "target_error")},
            page_min_confidence=data.get("page_min_confidence"),
            page_target_error=data.get("page_target_error"),
            page_clear_confidence=data.get("page_clear_confidence"),
        )

    def for_pages(self) -> DecisionRule:
        """The rule for digits cut from pages: the higher of the two thresholds."""
        if self.page_min_confidence is None:
            return self
        return replace(self, min_confidence=max(self.min_confidence, self.page_min_confidence))

    def for_page_layout(self) -> DecisionRule:
        """The rule by which a page digit counts as clearly read when judging the page's layout.

        Reading decides from its digits whether a line holds a number or a
        name and whether a page is upside down; those judgements were set on
        digits held to the digit target (``target_error``), and a stricter
        review bar for fields must not move them.
        """
        if self.page_clear_confidence is None:
            return self.for_pages()
        return replace(self, min_confidence=max(self.min_confidence, self.page_clear_confidence))


@dataclass(frozen=True)
class Decisions:
    """Per-digit outcome, each array of length N."""

    label: np.ndarray  # int64 final label
    confidence: np.ndarray  # float32 in [0, 1]
    disagree: np.ndarray  # bool
    low_confidence: np.ndarray  # bool
    cnn_label: np.ndarray
    cnn_prob: np.ndarray  # CNN probability of its own label
    svm_label: np.ndarray
    svm_prob: np.ndarray  # SVM probability of its own label

    @property
    def review(self) -> np.ndarray:
        """Digits a person should look at."""
        return self.disagree | self.low_confidence


def pool_probabilities(cnn_probs: np.ndarray, svm_probs: np.ndarray, svm_weight: float) -> np.ndarray:
    """Weighted geometric pooling of two (N, 10) probability arrays; rows sum to 1."""
    log_p = (1 - svm_weight) * np.log(cnn_probs + _EPS) + svm_weight * np.log(svm_probs + _EPS)
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def decide(cnn_probs: np.ndarray, svm_probs: np.ndarray, rule: DecisionRule) -> Decisions:
    """Apply ``rule`` to the two classifiers' (N, 10) probabilities."""
    cnn_probs = np.asarray(cnn_probs, np.float32)
    svm_probs = np.asarray(svm_probs, np.float32)
    if cnn_probs.shape != svm_probs.shape or cnn_probs.ndim != 2:
        raise ValueError(f"probabilities must be two equal (N, 10) arrays, got {cnn_probs.shape} and {svm_probs.shape}")
    pooled = pool_probabilities(cnn_probs, svm_probs, rule.svm_weight)
    label = pooled.argmax(axis=1)
    confidence = pooled[np.arange(len(label)), label]
    cnn_label, svm_label = cnn_probs.argmax(axis=1), svm_probs.argmax(axis=1)
    rows = np.arange(len(label))
    return Decisions(
        label=label,
        confidence=confidence,
        disagree=cnn_label != svm_label,
        low_confidence=confidence < rule.min_confidence,
        cnn_label=cnn_label,
        cnn_prob=cnn_probs[rows, cnn_label],
        svm_label=svm_label,
        svm_prob=svm_probs[rows, svm_label],
    )


def fit_decision_rule(
    cnn_probs: np.ndarray, svm_probs: np.ndarray, labels: np.ndarray, target_error: float = 0.001
) -> DecisionRule:
    """Choose the SVM weight and confidence threshold on held-out digits.

    For each candidate weight, :func:`threshold_for_error` finds the lowest
    threshold whose accepted digits err at most ``target_error``; the weight
    rejecting the fewest digits wins (ties: the smaller weight).
    """
    best: tuple[float, DecisionRule] | None = None
    for w in _WEIGHTS:
        d, threshold = _threshold_at(cnn_probs, svm_probs, labels, w, target_error)
        rejected = float(np.mean(d.disagree | (d.confidence < threshold)))
        if best is None or rejected < best[0] - 1e-12:
            best = (rejected, DecisionRule(svm_weight=w, min_confidence=threshold, target_error=target_error))
    assert best is not None
    return best[1]


def fit_page_threshold(
    cnn_probs: np.ndarray,
    svm_probs: np.ndarray,
    labels: np.ndarray,
    rule: DecisionRule,
    target_error: float | None = None,
) -> DecisionRule:
    """``rule`` with its page thresholds fitted on distorted validation digits.

    The SVM weight stays the rule's own; only the confidence thresholds are
    chosen again, on digits like those cut from pages: the review bar for
    ``target_error`` (default: the rule's own target), the bar for a clearly
    read digit (:meth:`DecisionRule.for_page_layout`) for the rule's own target.
    """
    target = rule.target_error if target_error is None else target_error
    d, clear = _threshold_at(cnn_probs, svm_probs, labels, rule.svm_weight, rule.target_error)
    threshold = threshold_for_error(d.confidence, d.label == np.asarray(labels), ~d.disagree, target)
    return replace(rule, page_min_confidence=threshold, page_target_error=target, page_clear_confidence=clear)


def _threshold_at(
    cnn_probs: np.ndarray, svm_probs: np.ndarray, labels: np.ndarray, svm_weight: float, target_error: float
) -> tuple[Decisions, float]:
    """The decisions at ``svm_weight`` with no threshold, and the lowest threshold meeting ``target_error``."""
    d = decide(cnn_probs, svm_probs, DecisionRule(svm_weight=svm_weight, min_confidence=0.0, target_error=target_error))
    return d, threshold_for_error(d.confidence, d.label == np.asarray(labels), ~d.disagree, target_error)


def threshold_for_error(
    confidence: np.ndarray, correct: np.ndarray, eligible: np.ndarray, target_error: float
) -> float:
    """Lowest confidence threshold at which eligible digits at or above it err at most ``target_error``.

    Pure arithmetic on arrays; digits not ``eligible`` (already flagged) are ignored.
    """
    conf = np.asarray(confidence, np.float64)[eligible]
    ok = np.asarray(correct, bool)[eligible]
    if conf.size == 0:
        return 1.0
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    errors = np.cumsum(~ok)
    kept = np.arange(1, conf.size + 1)
    # Only cut between distinct confidence values: equal scores are accepted together.
    last_of_run = np.append(conf[1:] != conf[:-1], True)
    feasible = (errors <= target_error * kept) & last_of_run
    if not feasible.any():
        return float(np.nextafter(conf[0], np.inf))
    return float(conf[np.flatnonzero(feasible)[-1]])


def reject_curve(
    confidence: np.ndarray, disagree: np.ndarray, correct: np.ndarray, reject_rates: tuple[float, ...]
) -> list[tuple[float, float]]:
    """Error among kept digits when the most doubtful ``rate`` share is rejected.

    Disagreements count as more doubtful than any agreement; within each group
    lower confidence is more doubtful.

    Returns
    -------
    list of (reject_rate, error_rate) pairs, rates as 0-1 fractions.
    """
    doubt = np.asarray(confidence, np.float64) - np.asarray(disagree, np.float64)
    order = np.argsort(doubt, kind="stable")
    wrong = ~np.asarray(correct, bool)[order]
    n = len(order)
    curve = []
    for rate in reject_rates:
        k = int(round(rate * n))
        kept = wrong[k:]
        curve.append((rate, float(kept.mean()) if kept.size else 0.0))
    return curve
