"""Calibration (selm_lib.evaluation.calibration): ECE, NLL and Brier against a hand-computed
example, the reliability table, labels outside the class set refused, and temperature scaling
recovering a known temperature."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.evaluation import calibration as cal

# Four items, two classes; top probabilities 0.85 (right), 0.75 (wrong), 0.65 and 0.55 (right).
PROBS = np.array([[0.85, 0.15], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]])
LABELS = np.array([0, 1, 1, 1])


def test_ece_against_a_hand_computed_example():
    # 5 bins of width 0.2: (0.8, 1] holds 0.85 (accuracy 1: gap 0.15); (0.6, 0.8] holds 0.75
    # and 0.65 (mean 0.70, accuracy 0.5: gap 0.20); (0.4, 0.6] holds 0.55 (accuracy 1: gap
    # 0.45). ECE = 1/4 * 0.15 + 2/4 * 0.20 + 1/4 * 0.45 = 0.25
    assert cal.ece(PROBS, LABELS, bins=5) == pytest.approx(0.25)
    # 15 bins (the default) put every item in its own bin: mean of |1 - 0.85|, |0 - 0.75|,
    # |1 - 0.65|, |1 - 0.55|
    assert cal.ece(PROBS, LABELS) == pytest.approx((0.15 + 0.75 + 0.35 + 0.45) / 4)
    table = cal.reliability(PROBS, LABELS, bins=5)
    assert table["count"] == [0, 0, 1, 2, 1]
    assert table["confidence"][:2] == [None, None]  # empty bins
    assert table["confidence"][3] == pytest.approx(0.70)
    assert table["accuracy"][2:] == [1.0, 0.5, 1.0]
    assert table["lower"][3] == pytest.approx(0.6) and table["upper"][3] == pytest.approx(0.8)


def test_nll_and_brier_against_hand_computed_values():
    expected_nll = -(np.log(0.85) + np.log(0.25) + np.log(0.65) + np.log(0.55)) / 4
    assert cal.nll(PROBS, LABELS) == pytest.approx(expected_nll)
    # per item: 2 * 0.15^2, 2 * 0.75^2, 2 * 0.35^2, 2 * 0.45^2
    assert cal.brier(PROBS, LABELS) == pytest.approx((0.045 + 1.125 + 0.245 + 0.405) / 4)
    perfect = np.eye(2)[LABELS]
    assert cal.brier(perfect, LABELS) == 0.0 and cal.ece(perfect, LABELS) == 0.0


def test_a_confidence_of_one_and_of_zero_fall_in_the_end_bins():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    table = cal.reliability(probs, np.array([0, 1]), bins=2)
    assert table["count"] == [1, 1]  # 0.5 is in (0, 0.5], 1.0 in (0.5, 1]


def test_truth_outside_the_scored_class_set_is_refused():
    with pytest.raises(ValueError, match=r"\['calm'\] are outside the scored class set"):
        cal.label_indices(["angry", "calm"], ["angry", "sad"])
    assert list(cal.label_indices(["sad", "angry"], ["angry", "sad"])) == [1, 0]
    with pytest.raises(ValueError, match="outside the scored class set"):
        cal.ece(PROBS, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="sum to 1"):
        cal.nll(PROBS * 2, LABELS)
    with pytest.raises(ValueError, match="class indices"):
        cal.brier(PROBS, np.array([0.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(7)
    logits = rng.normal(0.0, 3.0, size=(20000, 4))
    # labels drawn from softmax(logits / T): the model's logits are off by exactly T
    p = cal.probabilities(logits, true_t)
    labels = (rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)
    fit = cal.fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.05)
    assert fit.nll_after < fit.nll_before and not fit.at_bound and fit.n_fit == 20000
    assert cal.fit_temperature(logits, labels) == fit  # deterministic
    # scaling improves calibration on fresh items drawn the same way
    fresh = rng.normal(0.0, 3.0, size=(20000, 4))
    q = cal.probabilities(fresh, true_t)
    fresh_labels = (rng.random((len(q), 1)) > q.cumsum(axis=1)).sum(axis=1)
    raw = cal.ece(cal.probabilities(fresh), fresh_labels)
    scaled = cal.ece(cal.probabilities(fresh, fit.temperature), fresh_labels)
    assert scaled < raw / 2


def test_temperature_is_fitted_on_pooled_blocks_with_their_own_class_sets():
    rng = np.random.default_rng(1)
    blocks, labels = [], []
    for n_classes in (3, 6):
        z = rng.normal(0.0, 2.0, size=(8000, n_classes))
        p = cal.probabilities(z, 1.8)
        blocks.append(z)
        labels.append((rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1))
    fit = cal.fit_temperature(blocks, labels)
    assert fit.temperature == pytest.approx(1.8, rel=0.06) and fit.n_fit == 16000
    record = cal.calibration_record(blocks[0], labels[0], temperature=fit.temperature, bins=10)
    assert set(record) == {"ece", "nll", "brier", "n", "reliability"}
    assert len(record["reliability"]["count"]) == 10 and record["n"] == 8000
    with pytest.raises(ValueError, match="temperature must be > 0"):
        cal.probabilities(blocks[0], 0.0)
