"""Agreement with the annotators' label distributions: the manifest's ``votes`` cells, JSD, soft
accuracy and the human ceiling, against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from selm_lib.data.corpora.base import parse_votes, votes_json
from selm_lib.data.labels import class_map
from selm_lib.evaluation.agreement import (
    agreement_items,
    agreement_summary,
    human_distribution,
    js_divergence,
)

# JSD([1, 0], [1/2, 1/2]) by hand: M = [3/4, 1/4];
# KL(P||M) = log2(4/3); KL(Q||M) = 1/2 log2(2/3) + 1/2 log2(2); JSD = the mean of the two.
JSD_ONE_VS_HALF = 0.5 * math.log2(4 / 3) + 0.25 * (math.log2(2 / 3) + 1.0)


def test_votes_cell_is_compact_sorted_and_round_trips():
    cell = votes_json({"sad": 2, "angry": 1.0, "neutral": 0, "happy": 1 / 3})
    assert cell == '{"angry":1,"happy":0.333333,"sad":2}'  # sorted, no zeros, ints as ints
    assert votes_json({"happy": 1 / 3, "sad": 2.0, "angry": 1}) == cell  # order-free
    assert parse_votes(cell) == {"angry": 1.0, "happy": 0.333333, "sad": 2.0}
    assert votes_json(None) == "" and votes_json({"sad": 0}) == "" and votes_json({}) == ""
    assert parse_votes("") == {} and parse_votes(float("nan")) == {} and parse_votes(None) == {}


def test_votes_cell_rejects_bad_input():
    with pytest.raises(ValueError, match="counts are >= 0"):
        votes_json({"sad": -1})
    with pytest.raises(ValueError, match="manifest column 'votes'.*not JSON"):
        parse_votes("{sad: 1")
    with pytest.raises(ValueError, match="manifest column 'votes'"):
        parse_votes('["sad", 1]')
    with pytest.raises(ValueError, match="manifest column 'votes'"):
        parse_votes('{"sad": -2}')
    with pytest.raises(ValueError, match="manifest column 'votes'"):
        parse_votes('{"sad": Infinity}')


def test_jsd_identical_disjoint_and_worked_example():
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert js_divergence(p, p) == pytest.approx([0.0, 0.0], abs=1e-12)
    disjoint = js_divergence(np.array([[1.0, 0.0], [0.5, 0.0]]), np.array([[0.0, 1.0], [0, 0.5]]))
    assert disjoint[0] == pytest.approx(1.0)
    assert js_divergence([[1.0, 0.0]], [[0.5, 0.5]])[0] == pytest.approx(JSD_ONE_VS_HALF)
    assert JSD_ONE_VS_HALF == pytest.approx(0.311278, abs=1e-6)
    # symmetric
    assert js_divergence([[0.5, 0.5]], [[1.0, 0.0]])[0] == pytest.approx(JSD_ONE_VS_HALF)
    with pytest.raises(ValueError, match="shapes"):
        js_divergence([[1.0, 0.0]], [[1.0, 0.0, 0.0]])


def test_human_distribution_drops_out_of_set_votes_and_merges_classes():
    mapping = class_map("iemocap4")  # excited -> happy; frustrated is not in the set
    classes = ["neutral", "happy", "angry", "sad"]
    distribution, mass = human_distribution(
        '{"excited":1,"frustrated":2,"happy":1,"sad":2}', classes, mapping
    )
    assert mass == 4.0
    assert distribution.tolist() == [0.0, 0.5, 0.0, 0.5]
    assert human_distribution({"frustrated": 3}, classes, mapping) == (None, 0.0)


# Five IEMOCAP test items on the 4-class set (excited -> happy, frustrated dropped), by hand:
#   1 neutral 2 (+ frustrated 1)  -> [1, 0, 0, 0]      pred neutral [1, 0, 0, 0]   JSD 0     soft 1
#   2 happy 1, excited 1, angry 2 -> [0, .5, .5, 0]    pred happy   [0, 1, 0, 0]   JSD j     soft .5
#   3 frustrated only             -> excluded (out of set)
#   4 no votes                    -> excluded (no votes)
#   5 sad 1                       -> [0, 0, 0, 1]      pred angry   [0, 0, .5, .5] JSD j     soft 0
# with j = JSD([1, 0], [1/2, 1/2]); ceilings 1, .5, 1; in-set votes 2, 4, 1.
CLASSES = ["neutral", "happy", "angry", "sad"]
VOTES = [
    '{"frustrated":1,"neutral":2}',
    '{"angry":2,"excited":1,"happy":1}',
    '{"frustrated":3}',
    "",
    '{"sad":1}',
]
PROBS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [0.25, 0.25, 0.25, 0.25],
        [0.0, 0.0, 0.5, 0.5],
    ]
)
LABELS = ["neutral", "happy", "sad", "neutral", "angry"]


def test_agreement_summary_worked_example():
    summary = agreement_summary(VOTES, PROBS, LABELS, CLASSES, class_map("iemocap4"))
    assert summary == {
        "items": 5,
        "scored": 3,
        "excluded_no_votes": 1,
        "excluded_out_of_set": 1,
        "mean_votes": round(7 / 3, 6),
        "jsd": round(2 * JSD_ONE_VS_HALF / 3, 6),
        "soft_accuracy": 0.5,
        "human_ceiling": round(2.5 / 3, 6),
        "classes": CLASSES,
    }
    assert summary["jsd"] == pytest.approx(0.207519, abs=1e-6)
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready
    items = agreement_items(VOTES, PROBS, LABELS, CLASSES, class_map("iemocap4"))
    assert items.scored.tolist() == [True, True, False, False, True]
    assert items.soft.tolist() == [1.0, 0.5, 0.0]
    assert items.jsd == pytest.approx([0.0, JSD_ONE_VS_HALF, JSD_ONE_VS_HALF])


def test_agreement_summary_label_indices_unnormalised_scores_and_no_probs():
    mapping = class_map("iemocap4")
    base = agreement_summary(VOTES, PROBS, LABELS, CLASSES, mapping)
    indices = [CLASSES.index(label) for label in LABELS]
    assert agreement_summary(VOTES, PROBS, indices, CLASSES, mapping) == base
    assert agreement_summary(VOTES, 3 * PROBS, LABELS, CLASSES, mapping) == base  # renormalised
    labels_only = agreement_summary(VOTES, None, LABELS, CLASSES, mapping)
    assert labels_only["jsd"] is None
    assert labels_only["soft_accuracy"] == base["soft_accuracy"]
    # an answer outside the class set (an unparsable generation) has human share 0
    off = agreement_summary(VOTES, None, ["", "happy", "sad", "neutral", "angry"], CLASSES, mapping)
    assert off["soft_accuracy"] == 0.166667


def test_agreement_summary_with_nothing_scored():
    summary = agreement_summary(["", '{"frustrated":2}'], None, ["sad", "sad"], CLASSES, {})
    assert summary["scored"] == 0 and summary["excluded_no_votes"] == 1
    assert summary["excluded_out_of_set"] == 1
    assert summary["jsd"] is None and summary["soft_accuracy"] is None
    assert summary["human_ceiling"] is None and summary["mean_votes"] is None


def test_agreement_summary_rejects_bad_input():
    mapping = class_map("iemocap4")
    with pytest.raises(ValueError, match=r"shape \(5, 3\); expected \(5, 4\)"):
        agreement_summary(VOTES, PROBS[:, :3], LABELS, CLASSES, mapping)
    with pytest.raises(ValueError, match="non-negative"):
        agreement_summary(VOTES, -PROBS, LABELS, CLASSES, mapping)
    with pytest.raises(ValueError, match="sums to 0"):
        agreement_summary(VOTES, 0 * PROBS, LABELS, CLASSES, mapping)
    with pytest.raises(ValueError, match="5 vote cells but 4 predicted labels"):
        agreement_summary(VOTES, PROBS, LABELS[:4], CLASSES, mapping)


def test_soft_accuracy_never_exceeds_ceiling_and_jsd_in_unit_interval():
    rng = np.random.default_rng(3)
    emotions = ["neutral", "happy", "excited", "angry", "sad", "frustrated"]
    votes = [
        votes_json({e: int(rng.integers(0, 4)) for e in emotions if rng.random() < 0.6})
        for _ in range(200)
    ]
    probs = rng.dirichlet(np.ones(4), size=200)
    labels = [CLASSES[int(i)] for i in probs.argmax(axis=1)]
    items = agreement_items(votes, probs, labels, CLASSES, class_map("iemocap4"))
    assert (items.soft <= items.ceiling + 1e-12).all()
    assert ((items.jsd >= 0) & (items.jsd <= 1)).all()
    assert np.allclose(items.human.sum(axis=1), 1.0)
    # predicting each item's plurality class reaches the ceiling exactly
    best = [CLASSES[int(np.argmax(h))] for h in items.human]
    scored = [v for v, keep in zip(votes, items.scored, strict=True) if keep]
    top = agreement_summary(scored, None, best, CLASSES, class_map("iemocap4"))
    assert top["soft_accuracy"] == top["human_ceiling"]
