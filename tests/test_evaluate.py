"""OOD evaluation helpers: answer mapping, class-set checks, prediction-file checks, baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.data.labels import class_map
from selm_lib.evaluation.baseline import (
    BaselineConfig,
    pool_frames,
    restricted_predictions,
    train_classifier,
)
from selm_lib.evaluation.ood import (
    check_predictions,
    check_vocabulary,
    evaluation_rows,
    map_answer,
    relative_gains,
    synonyms,
)
from selm_lib.evaluation.results import UNMAPPED, EvalError


def test_synonym_table_maps_to_package_emotions():
    table = synonyms()
    assert table["joy"] == "happy" and table["mad"] == "angry" and table["afraid"] == "fearful"


@pytest.mark.parametrize(
    "text, class_set, expected",
    [
        ("angry", "crema_d6", "angry"),
        ("Anger.", "crema_d6", "angry"),
        ("joy", "iemocap4", "happy"),
        ("excited", "iemocap4", "happy"),  # the 4-class merge applies to generated words too
        ("surprised", "crema_d6", UNMAPPED),  # not a CREMA-D class: an error, not a guess
        ("bored", "iemocap4", UNMAPPED),
        ("", "iemocap4", UNMAPPED),
        ("calm", "ravdess", "neutral"),  # default curate.ravdess_calm is neutral below
    ],
)
def test_map_answer(text, class_set, expected):
    calm = "neutral" if class_set == "ravdess" else "own_class"
    assert map_answer(text, class_map(class_set, calm)) == expected


def manifest(rows: list[dict]) -> pd.DataFrame:
    base = {"speaker": "s1", "quarantine": "", "eval_class": "angry"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_test_rows_excludes_and_counts():
    table = manifest(
        [
            {"utterance_id": "a"},
            {"utterance_id": "b", "quarantine": "silent"},
            {"utterance_id": "c", "eval_class": ""},  # outside the class set (e.g. frustrated)
        ]
    )
    rows, excluded = evaluation_rows(table, "iemocap")
    assert list(rows["utterance_id"]) == ["a"]
    assert excluded == {"quarantined": 1, "outside_class_set": 1}


def test_empty_test_set_is_an_error():
    table = manifest([{"utterance_id": "b", "quarantine": "empty file (0 bytes)"}])
    with pytest.raises(EvalError, match=r"'crema_d' has no usable rows.*curate.class_sets.crema_d"):
        evaluation_rows(table, "crema_d")


def test_class_missing_from_training_answers():
    with pytest.raises(EvalError, match=r"'ravdess'.*\['calm'\].*curate.ravdess_calm"):
        check_vocabulary("ravdess", ["neutral", "calm", "angry"], ["angry", "neutral", "sad"])
    check_vocabulary("crema_d", ["angry", "sad"], ["angry", "neutral", "sad"])


def test_prediction_file_must_match_manifest():
    rows = pd.DataFrame({"utterance_id": ["a", "b", "c"]})
    good = pd.DataFrame({"corpus": "x", "method": "m", "utterance_id": ["a", "b", "c"]})
    check_predictions(good, rows, "x")
    for bad in (
        good.iloc[:2],
        pd.concat([good, good.iloc[:1]]),
        good.assign(utterance_id=["a", "b", "z"]),
    ):
        with pytest.raises(EvalError, match="does not match the manifest"):
            check_predictions(bad, rows, "x")


def test_relative_gain_against_best_baseline():
    def entry(acc: float) -> dict:
        return {"x": {"accuracy": acc}}

    result = {
        "selm_generate": entry(0.59),
        "selm_score": entry(0.45),
        "classifier_baseline": entry(0.5),
        "majority": entry(0.3),
        "chance": entry(0.2),
    }
    gains = relative_gains(result, ["x"])["x"]
    assert gains["best_baseline"] == "classifier_baseline"
    assert gains["selm_generate"] == pytest.approx(0.18)
    assert gains["selm_score"] == pytest.approx(-0.1)


def test_baseline_learns_and_restricts_to_test_classes():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 2, (3, 8)).astype(np.float32)
    frames = [centres[i % 3] + rng.normal(0, 0.5, (10, 8)).astype(np.float32) for i in range(90)]
    x, y = pool_frames(frames), np.arange(90) % 3
    model, history = train_classifier(
        x[:60],
        y[:60],
        x[60:],
        y[60:],
        3,
        BaselineConfig(
            hidden=32,
            dropout=0.2,
            epochs=40,
            batch_size=64,
            learning_rate=1e-3,
            weight_decay=0.01,
            patience=8,
            seed=1,
            balanced=True,
        ),
    )
    assert history[-1]["val_accuracy"] > 0.9
    classes = ["angry", "happy", "contempt"]
    # contempt maps to nothing in this test set: it can never be predicted
    predicted = restricted_predictions(
        model, x[60:], classes, {"angry": "angry", "happy": "happy"}, ["angry", "happy"]
    )
    assert set(predicted) <= {"angry", "happy"}
    truth = np.array(classes)[y[60:]]
    keep = truth != "contempt"
    assert (predicted[keep] == truth[keep]).mean() > 0.9


def test_baseline_class_weights_follow_selm_or_the_stated_policy():
    from selm_lib.evaluation.baseline import baseline_balanced

    assert baseline_balanced("same_as_selm", {"balance_answers": False}) is False
    assert baseline_balanced("same_as_selm", {"balance_answers": True}) is True
    assert baseline_balanced("balanced", {"balance_answers": False}) is True
    assert baseline_balanced("natural", {"balance_answers": True}) is False
    # on data that is 90 % one class, the balanced loss predicts the rare class far more often
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.1).astype(int)
    x = (rng.normal(0, 1, (600, 4)) + 0.8 * y[:, None]).astype(np.float32)
    shares = {}
    for balanced in (False, True):
        config = BaselineConfig(
            hidden=16,
            dropout=0.0,
            epochs=30,
            batch_size=64,
            learning_rate=3e-3,
            weight_decay=0.0,
            patience=30,
            seed=0,
            balanced=balanced,
        )
        model, _ = train_classifier(x, y, x, y, 2, config)
        with torch.no_grad():
            shares[balanced] = float(model(torch.from_numpy(x)).argmax(1).float().mean())
    assert shares[True] > 2 * shares[False] + 0.05
