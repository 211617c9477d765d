"""selm_lib.evaluation.metrics against scikit-learn, unmapped answers and the speaker bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
)

from selm_lib.evaluation import metrics as M

CLASSES = ["anger", "happiness", "neutral", "sadness", "fear"]
DUMMY = "__wrong__"  # stands in for an unmapped answer on the scikit-learn side


def random_case(seed: int, n: int = 200) -> tuple[list[str], list[str]]:
    """Labels with gaps: one class never true, another never predicted (varies with the seed)."""
    rng = np.random.default_rng(seed)
    missing_true = CLASSES[seed % len(CLASSES)]
    missing_pred = CLASSES[(seed + 2) % len(CLASSES)]
    true_pool = [c for c in CLASSES if c != missing_true]
    pred_pool = [c for c in CLASSES if c != missing_pred]
    y_true = list(rng.choice(true_pool, size=n))
    # about half correct, so scores are neither trivial nor chance
    y_pred = [
        t if (t in pred_pool and rng.random() < 0.5) else str(rng.choice(pred_pool)) for t in y_true
    ]
    return [str(v) for v in y_true], y_pred


def seen_labels(y_true: list[str], y_pred: list[str]) -> list[str]:
    seen = set(y_true) | set(y_pred)
    return [c for c in CLASSES if c in seen]


SEEDS = list(range(6))

# scikit-learn warns when a class is predicted but never true; that case is tested on purpose
pytestmark = pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")


@pytest.mark.parametrize("seed", SEEDS)
def test_against_sklearn(seed: int) -> None:
    y_true, y_pred = random_case(seed)
    labels = seen_labels(y_true, y_pred)
    assert M.accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred))
    assert M.accuracy(y_true, y_pred, CLASSES) == pytest.approx(accuracy_score(y_true, y_pred))
    assert M.unweighted_accuracy(y_true, y_pred, CLASSES) == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert M.macro_f1(y_true, y_pred, CLASSES) == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    assert M.weighted_f1(y_true, y_pred, CLASSES) == pytest.approx(
        f1_score(y_true, y_pred, labels=CLASSES, average="weighted", zero_division=0)
    )
    assert M.macro_precision(y_true, y_pred, CLASSES) == pytest.approx(
        precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    recalls = M.per_class_recall(y_true, y_pred, CLASSES)
    assert list(recalls) == CLASSES
    reference = recall_score(y_true, y_pred, labels=CLASSES, average=None, zero_division=0)
    for c, ref in zip(CLASSES, reference, strict=True):
        if c in y_true:
            assert recalls[c] == pytest.approx(ref)
        else:
            assert math.isnan(recalls[c])  # undefined, not 0


def test_macro_f1_skips_classes_neither_true_nor_predicted() -> None:
    y_true = ["anger", "anger", "sadness"]
    y_pred = ["anger", "sadness", "sadness"]
    # fear, happiness, neutral never occur: F1 of anger 2/3 and sadness 2/3 only
    assert M.macro_f1(y_true, y_pred, CLASSES) == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_unmapped_predictions_are_errors(seed: int) -> None:
    y_true, y_pred = random_case(seed)
    rng = np.random.default_rng(100 + seed)
    hit = rng.random(len(y_pred)) < 0.2
    answers = ["", "<unmapped>", None]
    y_gen = [answers[i % 3] if h else p for i, (p, h) in enumerate(zip(y_pred, hit, strict=True))]
    y_sk = [DUMMY if h else p for p, h in zip(y_pred, hit, strict=True)]
    labels = seen_labels(y_true, [p for p in y_sk if p != DUMMY])

    lost = sum(t == p for t, p, h in zip(y_true, y_pred, hit, strict=True) if h)
    assert lost > 0
    assert M.accuracy(y_true, y_gen) == pytest.approx(M.accuracy(y_true, y_pred) - lost / 200)
    assert M.accuracy(y_true, y_gen, CLASSES) == pytest.approx(accuracy_score(y_true, y_sk))
    assert M.unweighted_accuracy(y_true, y_gen, CLASSES) == pytest.approx(
        balanced_accuracy_score(y_true, y_sk)
    )
    # false negatives for the true class, false positives for nobody (DUMMY not in labels)
    assert M.macro_f1(y_true, y_gen, CLASSES) == pytest.approx(
        f1_score(y_true, y_sk, labels=labels, average="macro", zero_division=0)
    )
    assert M.weighted_f1(y_true, y_gen, CLASSES) == pytest.approx(
        f1_score(y_true, y_sk, labels=CLASSES, average="weighted", zero_division=0)
    )


def test_confusion_layout_and_unmapped_column() -> None:
    y_true = ["anger", "anger", "fear", "fear", "fear"]
    y_pred = ["anger", "fear", "fear", "", "anger"]
    with pytest.raises(ValueError, match="include_unmapped=True"):
        M.confusion(y_true, y_pred, ["anger", "fear"])
    matrix = M.confusion(y_true, y_pred, ["anger", "fear"], include_unmapped=True)
    assert matrix.tolist() == [[1, 1, 0], [1, 1, 1]]
    clean = M.confusion(y_true[:3], y_pred[:3], ["anger", "fear"])
    assert clean.shape == (2, 2)
    assert clean.tolist() == [[1, 1], [0, 1]]
    # an all-zero unmapped column is still returned, so shapes do not depend on the data
    assert M.confusion(y_true[:3], y_pred[:3], ["anger", "fear"], include_unmapped=True).shape == (
        2,
        3,
    )


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("unmapped", [False, True])
def test_metrics_from_confusion_matches_direct(seed: int, unmapped: bool) -> None:
    y_true, y_pred = random_case(seed)
    if unmapped:
        y_pred = ["" if i % 7 == 0 else p for i, p in enumerate(y_pred)]
    matrix = M.confusion(y_true, y_pred, CLASSES, include_unmapped=unmapped)
    got = M.metrics_from_confusion(matrix)
    assert got["n"] == len(y_true)
    assert got["accuracy"] == pytest.approx(M.accuracy(y_true, y_pred))
    assert got["unweighted_accuracy"] == pytest.approx(
        M.unweighted_accuracy(y_true, y_pred, CLASSES)
    )
    assert got["macro_f1"] == pytest.approx(M.macro_f1(y_true, y_pred, CLASSES))
    assert got["weighted_f1"] == pytest.approx(M.weighted_f1(y_true, y_pred, CLASSES))
    assert got["macro_precision"] == pytest.approx(M.macro_precision(y_true, y_pred, CLASSES))
    assert M.summary(y_true, y_pred, CLASSES) == got


def test_metrics_from_confusion_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        M.metrics_from_confusion(np.ones((2, 4)))
    with pytest.raises(ValueError, match="empty"):
        M.metrics_from_confusion(np.zeros((2, 2)))


def test_summary_keys() -> None:
    y_true, y_pred = random_case(0)
    out = M.summary(y_true, y_pred, CLASSES)
    assert {"accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "n"} <= set(out)
    assert out["n"] == 200


# ----------------------------------------------------------------------------- bootstrap


def speaker_data(
    n_speakers: int, per_speaker: int, seed: int = 0, spread: float = 0.25
) -> tuple[list[str], list[str], list[str]]:
    """Speakers whose accuracy differs (the reason to resample speakers, not items)."""
    rng = np.random.default_rng(seed)
    y_true: list[str] = []
    y_pred: list[str] = []
    groups: list[str] = []
    for s in range(n_speakers):
        skill = float(np.clip(0.6 + spread * rng.standard_normal(), 0.05, 0.95))
        for _ in range(per_speaker):
            t = str(rng.choice(CLASSES))
            p = t if rng.random() < skill else str(rng.choice(CLASSES))
            y_true.append(t)
            y_pred.append(p)
            groups.append(f"spk{s:02d}")
    return y_true, y_pred, groups


def width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


def test_bootstrap_deterministic_and_contains_estimate() -> None:
    y_true, y_pred, groups = speaker_data(20, 75)
    names = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
    a = M.bootstrap_ci(y_true, y_pred, groups, CLASSES, metrics=names, seed=3)
    b = M.bootstrap_ci(y_true, y_pred, groups, CLASSES, metrics=names, seed=3)
    c = M.bootstrap_ci(y_true, y_pred, groups, CLASSES, metrics=names, seed=4)
    assert a == b
    assert a != c
    point = M.summary(y_true, y_pred, CLASSES)
    for name in names:
        lo, hi = a[name]
        assert lo < point[name] < hi, name


def test_bootstrap_single_speaker_is_degenerate() -> None:
    y_true, y_pred, _ = speaker_data(1, 60)
    y_pred[0] = "<unmapped>"
    out = M.bootstrap_ci(y_true, y_pred, ["only"] * 60, CLASSES, n_boot=50)
    point = M.summary(y_true, y_pred, CLASSES)
    for name, (lo, hi) in out.items():
        assert lo == hi == pytest.approx(point[name], abs=1e-12)


def test_bootstrap_wider_with_fewer_speakers() -> None:
    # same item count, heterogeneous speakers: fewer clusters -> more uncertainty
    few = speaker_data(4, 300, seed=1)
    many = speaker_data(40, 30, seed=1)
    ci_few = M.bootstrap_ci(*few, CLASSES)
    ci_many = M.bootstrap_ci(*many, CLASSES)
    for name in ci_few:
        assert width(ci_few[name]) > width(ci_many[name]), name


def test_bootstrap_level_respected() -> None:
    data = speaker_data(20, 50)
    narrow = M.bootstrap_ci(*data, CLASSES, level=0.5)
    wide = M.bootstrap_ci(*data, CLASSES, level=0.95)
    for name in narrow:
        assert wide[name][0] <= narrow[name][0] <= narrow[name][1] <= wide[name][1]
        assert width(narrow[name]) < width(wide[name])


def test_bootstrap_equals_a_brute_force_resampling_of_speakers() -> None:
    """The vectorised bootstrap against the plain loop: draw speakers with replacement (the same
    draws), stack their items, score; take percentiles."""
    y_true, y_pred, groups = speaker_data(5, 12, seed=4)
    y_pred[3] = "<unmapped>"
    metrics = ("accuracy", "unweighted_accuracy", "macro_f1")
    fast = M.bootstrap_ci(y_true, y_pred, groups, CLASSES, metrics=metrics, n_boot=200, seed=9)
    speakers = list(dict.fromkeys(groups))  # the order the draws index (first appearance)
    items = {s: [i for i, g in enumerate(groups) if g == s] for s in speakers}
    draws = np.random.default_rng(9).integers(0, len(speakers), size=(200, len(speakers)))
    values = {m: [] for m in metrics}
    for draw in draws:
        chosen = [i for d in draw for i in items[speakers[d]]]
        point = M.summary([y_true[i] for i in chosen], [y_pred[i] for i in chosen], CLASSES)
        for m in metrics:
            values[m].append(point[m])
    for m in metrics:
        low, high = np.nanquantile(values[m], [0.025, 0.975])
        assert fast[m] == pytest.approx((low, high), abs=1e-12), m


def test_bootstrap_validates_arguments() -> None:
    y_true, y_pred, groups = speaker_data(3, 5)
    with pytest.raises(ValueError, match="unknown metric"):
        M.bootstrap_ci(y_true, y_pred, groups, CLASSES, metrics=("auc",))
    with pytest.raises(ValueError, match="level"):
        M.bootstrap_ci(y_true, y_pred, groups, CLASSES, level=95)
    with pytest.raises(ValueError, match="groups has 14"):
        M.bootstrap_ci(y_true, y_pred, groups[:-1], CLASSES)
    with pytest.raises(ValueError, match="missing"):
        M.bootstrap_ci(y_true, y_pred, [None] + groups[1:], CLASSES)


# ----------------------------------------------------------------------------- reference points


def test_relative_gain_and_baselines() -> None:
    assert M.relative_gain(0.59, 0.5) == pytest.approx(0.18)
    assert M.relative_gain(0.4, 0.5) == pytest.approx(-0.2)
    assert math.isnan(M.relative_gain(0.3, 0.0))
    assert M.chance_accuracy(CLASSES) == pytest.approx(0.2)
    assert M.majority_accuracy(["a", "b", "a", "a"]) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "func",
    [M.unweighted_accuracy, M.macro_f1, M.weighted_f1, M.per_class_recall, M.summary],
)
def test_input_errors(func) -> None:
    with pytest.raises(ValueError, match="empty"):
        func([], [], CLASSES)
    with pytest.raises(ValueError, match="length"):
        func(["anger"], ["anger", "fear"], CLASSES)
    with pytest.raises(ValueError, match=r"'joy'.*classes are \['anger'"):
        func(["anger", "joy"], ["anger", "anger"], CLASSES)
    with pytest.raises(ValueError, match="classes is empty"):
        func(["anger"], ["anger"], [])


def test_accuracy_and_baseline_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        M.accuracy([], [])
    with pytest.raises(ValueError, match="length"):
        M.accuracy(["a"], [])
    with pytest.raises(ValueError, match="'joy'"):
        M.accuracy(["joy"], ["joy"], CLASSES)
    with pytest.raises(ValueError, match="empty"):
        M.majority_accuracy([])
    with pytest.raises(ValueError, match="duplicates"):
        M.chance_accuracy(["a", "a"])
