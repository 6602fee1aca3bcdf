import numpy as np
import pytest

from ocr.decision import (
    DecisionRule,
    decide,
    fit_decision_rule,
    fit_page_threshold,
    reject_curve,
    threshold_for_error,
)


def _onehotish(labels, p):
    probs = np.full((len(labels), 10), (1 - p) / 9, np.float32)
    probs[np.arange(len(labels)), labels] = p
    return probs


def test_disagreement_is_flagged_even_when_both_are_confident():
    cnn = _onehotish([3], 0.99)
    svm = _onehotish([8], 0.99)
    d = decide(cnn, svm, DecisionRule(svm_weight=0.3, min_confidence=0.5, target_error=0.001))
    assert d.disagree.tolist() == [True]
    assert d.review.tolist() == [True]
    assert d.label[0] == 3  # the CNN carries more weight


def test_low_confidence_is_flagged_when_both_agree_weakly():
    cnn = _onehotish([7, 7], 0.4)
    cnn[1] = _onehotish([7], 0.999)[0]
    svm = _onehotish([7, 7], 0.5)
    svm[1] = _onehotish([7], 0.99)[0]
    d = decide(cnn, svm, DecisionRule(svm_weight=0.3, min_confidence=0.9, target_error=0.001))
    assert d.disagree.tolist() == [False, False]
    assert d.low_confidence.tolist() == [True, False]
    assert d.label.tolist() == [7, 7]
    assert d.confidence.min() >= 0.0 and d.confidence.max() <= 1.0


def test_decide_checks_shapes():
    with pytest.raises(ValueError):
        decide(np.ones((3, 10)), np.ones((2, 10)), DecisionRule(0.3, 0.5, 0.001))


def test_threshold_for_error_keeps_accepted_error_under_target():
    conf = np.array([0.99, 0.98, 0.97, 0.96, 0.5, 0.4])
    correct = np.array([True, True, True, True, False, True])
    eligible = np.ones(6, bool)
    assert threshold_for_error(conf, correct, eligible, 0.0) == pytest.approx(0.96)
    # allowing one error in six accepts everything
    assert threshold_for_error(conf, correct, eligible, 1 / 6) == pytest.approx(0.4)


def test_fitted_rule_meets_its_target_on_the_data_it_was_fitted_on():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 5000)
    cnn_conf = rng.uniform(0.5, 1.0, 5000)
    wrong = rng.random(5000) < (1 - cnn_conf) * 0.05  # errors concentrate at low confidence
    cnn_labels = np.where(wrong, (labels + 1) % 10, labels)
    cnn = _onehotish(cnn_labels, 0.5)
    cnn[np.arange(5000), cnn_labels] = cnn_conf
    svm = _onehotish(np.where(rng.random(5000) < 0.02, (labels + 2) % 10, labels), 0.8)
    rule = fit_decision_rule(cnn, svm, labels, target_error=0.001)
    d = decide(cnn, svm, rule)
    accepted = ~d.review
    assert np.mean(d.label[accepted] != labels[accepted]) <= 0.001
    assert accepted.mean() > 0.5


def test_reject_curve_drops_disagreements_first():
    conf = np.array([0.9, 0.99, 0.95, 0.6])
    disagree = np.array([True, False, False, False])
    correct = np.array([False, True, True, False])
    curve = reject_curve(conf, disagree, correct, (0.0, 0.25, 0.5))
    assert curve == [(0.0, 0.5), (0.25, pytest.approx(1 / 3)), (0.5, 0.0)]


def test_pages_are_judged_by_the_stricter_page_threshold():
    rule = DecisionRule(svm_weight=0.0, min_confidence=0.9, target_error=0.001, page_min_confidence=0.99)
    cnn = _onehotish([4, 4], 0.95)
    cnn[1] = _onehotish([4], 0.995)[0]
    svm = _onehotish([4, 4], 0.9)
    assert decide(cnn, svm, rule).low_confidence.tolist() == [False, False]
    assert decide(cnn, svm, rule.for_pages()).low_confidence.tolist() == [True, False]
    # A page threshold under the clean one never loosens the rule.
    assert DecisionRule(0.0, 0.9, 0.001, page_min_confidence=0.5).for_pages().min_confidence == 0.9
    # Rules written before page thresholds existed load and read pages with their one threshold.
    old = DecisionRule.from_json('{"svm_weight": 0.1, "min_confidence": 0.9, "target_error": 0.001}')
    assert old.page_min_confidence is None and old.for_pages() == old
    # Without a bar of its own, a page's layout is judged by the page threshold.
    assert rule.for_page_layout() == rule.for_pages()
    assert DecisionRule.from_json(rule.to_json()) == rule


def test_page_threshold_is_fitted_on_the_distorted_digits_at_the_rules_weight():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 4000)
    # Distorted digits: wrong answers up to confidence 0.97, where clean digits had none above 0.9.
    conf = rng.uniform(0.6, 1.0, 4000)
    wrong = (conf < 0.97) & (rng.random(4000) < 0.2)
    cnn_labels = np.where(wrong, (labels + 1) % 10, labels)
    cnn = np.repeat(((1 - conf) / 9)[:, None], 10, axis=1).astype(np.float32)
    cnn[np.arange(4000), cnn_labels] = conf
    svm = _onehotish(cnn_labels, 0.9)  # agreeing with the CNN: only the threshold can catch these
    rule = DecisionRule(svm_weight=0.0, min_confidence=0.9, target_error=0.001)
    fitted = fit_page_threshold(cnn, svm, labels, rule)
    assert (fitted.svm_weight, fitted.min_confidence, fitted.target_error) == (0.0, 0.9, 0.001)
    assert fitted.page_min_confidence > 0.96
    d = decide(cnn, svm, fitted.for_pages())
    accepted = ~d.review
    assert accepted.any() and np.mean(d.label[accepted] != labels[accepted]) <= 0.001
    assert fitted.page_target_error == 0.001  # the rule's own target when none is given


def test_page_threshold_can_aim_at_a_stricter_target_than_the_digits():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 20000)
    # Confidences spread over decades toward 1; the surer, the rarer the mistakes.
    doubt = 10 ** rng.uniform(-5, -0.5, 20000)
    conf = 1 - doubt
    wrong = rng.random(20000) < np.select([doubt > 1e-2, doubt > 1e-3], [0.02, 0.002], 0.0001)
    cnn_labels = np.where(wrong, (labels + 1) % 10, labels)
    cnn = np.repeat(((1 - conf) / 9)[:, None], 10, axis=1).astype(np.float32)
    cnn[np.arange(20000), cnn_labels] = conf
    svm = _onehotish(cnn_labels, 0.9)
    rule = DecisionRule(svm_weight=0.0, min_confidence=0.9, target_error=0.001)
    loose = fit_page_threshold(cnn, svm, labels, rule)
    strict = fit_page_threshold(cnn, svm, labels, rule, target_error=0.0003)
    assert strict.page_target_error == 0.0003 and strict.target_error == 0.001
    assert strict.page_min_confidence > loose.page_min_confidence
    # The bar for judging a page's layout stays where the digit target puts it.
    assert strict.page_clear_confidence == loose.page_clear_confidence == loose.page_min_confidence
    assert strict.for_page_layout().min_confidence == loose.page_min_confidence
    assert strict.for_pages().min_confidence == strict.page_min_confidence
    for fitted, target in ((loose, 0.001), (strict, 0.0003)):
        d = decide(cnn, svm, fitted.for_pages())
        accepted = ~d.review
        assert accepted.sum() > 1000 and np.mean(d.label[accepted] != labels[accepted]) <= target
    assert DecisionRule.from_json(strict.to_json()) == strict
