"""Combine the CNN and the HOG-SVM into one label, a confidence and review flags.

The rule
--------
For each digit the two probability vectors are pooled geometrically::

    log p = (1 - w) * log p_cnn + w * log p_svm     (then renormalised)

The final label is the argmax of ``p`` and the confidence is ``p[label]``, in
[0, 1].  Two flags describe a digit:

* ``disagree``: the CNN's and the SVM's own top labels differ.  The two models
  see the digit through different features (learned convolutions against
  gradient histograms), so their disagreement marks the ambiguous shapes and
  raises the bar the digit must clear.
* ``low_confidence``: the pooled confidence is below the digit's bar:
  ``min_confidence`` where the models agree, ``overrule_confidence`` where they
  disagree (``None``: a disagreement is never overruled).

A digit goes to review exactly when ``low_confidence`` is set, so a
disagreement is reviewed unless the pooled confidence clears the higher bar.

``w``, ``min_confidence`` and ``overrule_confidence`` are chosen by
:func:`fit_decision_rule` on validation digits held out of training: among the
candidate weights and overrule bars, the ``min_confidence`` that keeps the
error among all accepted digits at or below the target (0.1 % by default)
while rejecting the fewest digits wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-7
_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
# A validation set of a few thousand digits holds only a handful of the errors
# a 0.1 % target allows, and the bars that exactly meet it there overshoot on
# new digits.  The fit therefore counts one error more than it saw.
_MARGIN = 1
_MAX_BARS = 200  # candidate overrule bars tried per weight


@dataclass(frozen=True)
class DecisionRule:
    svm_weight: float
    min_confidence: float
    target_error: float
    overrule_confidence: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DecisionRule:
        data = json.loads(text)
        return cls(
            **{k: data[k] for k in ("svm_weight", "min_confidence", "target_error")},
            overrule_confidence=data.get("overrule_confidence"),
        )

    def bar(self, disagree: np.ndarray) -> np.ndarray:
        """The confidence each digit must reach to be accepted."""
        overrule = np.inf if self.overrule_confidence is None else max(self.overrule_confidence, self.min_confidence)
        return np.where(disagree, overrule, self.min_confidence)


@dataclass(frozen=True)
class Decisions:
    """Per-digit outcome, each array of length N."""

    label: np.ndarray  # int64 final label
    confidence: np.ndarray  # float32 in [0, 1]
    disagree: np.ndarray  # bool: the two models' labels differ
    low_confidence: np.ndarray  # bool: confidence below the digit's bar (review)
    cnn_label: np.ndarray
    cnn_prob: np.ndarray  # CNN probability of its own label
    svm_label: np.ndarray
    svm_prob: np.ndarray  # SVM probability of its own label

    @property
    def review(self) -> np.ndarray:
        """Digits a person should look at."""
        return self.low_confidence


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
    disagree = cnn_label != svm_label
    return Decisions(
        label=label,
        confidence=confidence,
        disagree=disagree,
        low_confidence=confidence < rule.bar(disagree),
        cnn_label=cnn_label,
        cnn_prob=cnn_probs[rows, cnn_label],
        svm_label=svm_label,
        svm_prob=svm_probs[rows, svm_label],
    )


def fit_decision_rule(
    cnn_probs: np.ndarray, svm_probs: np.ndarray, labels: np.ndarray, target_error: float = 0.001
) -> DecisionRule:
    """Choose the SVM weight and both confidence bars on held-out digits.

    For each candidate weight and each candidate overrule bar (never, or the
    confidence of one of the disagreeing digits, at most ``_MAX_BARS`` of them), :func:`threshold_for_error`
    finds the lowest ``min_confidence`` at which all accepted digits err at
    most ``target_error``, counting one error more than were seen.  The
    combination rejecting the fewest digits wins; ties go to the smaller
    weight and the higher overrule bar.
    """
    labels = np.asarray(labels)
    best: tuple[float, DecisionRule] | None = None
    for w in _WEIGHTS:
        d = decide(cnn_probs, svm_probs, DecisionRule(svm_weight=w, min_confidence=0.0, target_error=target_error))
        correct = d.label == labels
        conf_dis = np.unique(d.confidence[d.disagree])[::-1]
        if conf_dis.size > _MAX_BARS:  # evenly spaced ranks keep the fit quick on large sets
            conf_dis = conf_dis[np.linspace(0, conf_dis.size - 1, _MAX_BARS).round().astype(int)]
        bars: list[float | None] = [None, *conf_dis.tolist()]
        for overrule in bars:
            taken = np.zeros(len(labels), bool) if overrule is None else d.disagree & (d.confidence >= overrule)
            extra = (int(taken.sum()), int(np.sum(taken & ~correct)))
            threshold = threshold_for_error(d.confidence, correct, ~d.disagree, target_error, extra, _MARGIN)
            if threshold is None:
                continue
            rule = DecisionRule(
                svm_weight=w, min_confidence=threshold, target_error=target_error, overrule_confidence=overrule
            )
            review = decide(cnn_probs, svm_probs, rule).review
            # The applied bar is never below min_confidence: check the rule as applied.
            if np.sum(~review & ~correct) + _MARGIN > target_error * np.sum(~review):
                continue
            rejected = float(np.mean(review))
            if best is None or rejected < best[0] - 1e-12:
                best = (rejected, rule)
    if best is None:  # not even rejecting every disagreement and every agreement meets the target
        return DecisionRule(svm_weight=0.0, min_confidence=1.0, target_error=target_error)
    return best[1]


def threshold_for_error(
    confidence: np.ndarray,
    correct: np.ndarray,
    eligible: np.ndarray,
    target_error: float,
    extra: tuple[int, int] = (0, 0),
    margin: int = 0,
) -> float | None:
    """Lowest confidence threshold at which eligible digits at or above it err at most ``target_error``.

    Pure arithmetic on arrays; digits not ``eligible`` are ignored, except
    that ``extra`` = (digits, errors) already accepted by another rule count
    towards the error rate.  ``margin`` errors more than were seen must still
    fit under the target (a small-sample guard).  Returns a threshold above every confidence when
    only accepting no eligible digit meets the target, and None when not even
    that does.
    """
    n_extra, err_extra = extra
    conf = np.asarray(confidence, np.float64)[eligible]
    ok = np.asarray(correct, bool)[eligible]
    none_accepted = float(np.nextafter(conf.max(), np.inf)) if conf.size else 1.0
    none_feasible = err_extra + margin <= target_error * n_extra
    if conf.size == 0:
        return none_accepted if none_feasible else None
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    errors = np.cumsum(~ok) + err_extra
    kept = np.arange(1, conf.size + 1) + n_extra
    # Only cut between distinct confidence values: equal scores are accepted together.
    last_of_run = np.append(conf[1:] != conf[:-1], True)
    feasible = (errors + margin <= target_error * kept) & last_of_run
    if not feasible.any():
        return none_accepted if none_feasible else None
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
