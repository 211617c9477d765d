from __future__ import annotations

import pytest

from selm_lib.data.labels import (
    SEREVALS_CLASSES,
    class_map,
    classes_of,
    corpus_labels,
    label_table,
    sentiment_of,
)


def test_every_row_maps_to_valid_views():
    table = label_table()
    assert set(table["serevals8"]) <= set(SEREVALS_CLASSES)
    assert set(table["sentiment"]) <= {"positive", "neutral", "negative", ""}
    assert not table.duplicated(["corpus", "label"]).any()


def test_sentiment_is_a_function_of_emotion():
    # one sentiment per package emotion across corpora (MELD's own column overrides at scan time)
    table = label_table()
    per_emotion = table[table["emotion"] != ""].groupby("emotion")["sentiment"].nunique()
    assert (per_emotion <= 1).all(), per_emotion[per_emotion > 1]


@pytest.mark.parametrize(
    "emotion, sentiment",
    [
        ("happy", "positive"),
        ("surprised", "positive"),
        ("excited", "positive"),
        ("angry", "negative"),
        ("frustrated", "negative"),
        ("neutral", "neutral"),
        ("other", ""),
    ],
)
def test_sentiment_view(emotion, sentiment):
    assert sentiment_of(emotion) == sentiment


def test_iemocap_four_class_merges_excited_into_happy():
    mapping = class_map("iemocap4")
    assert mapping["excited"] == "happy"
    assert set(mapping.values()) == {"neutral", "happy", "angry", "sad"}
    assert "frustrated" not in mapping


@pytest.mark.parametrize(
    "calm, expected", [("own_class", "calm"), ("neutral", "neutral"), ("drop", None)]
)
def test_ravdess_calm_treatment(calm, expected):
    mapping = class_map("ravdess", calm=calm)
    assert mapping.get("calm") == expected
    assert len(classes_of("ravdess", calm)) == (8 if calm == "own_class" else 7)


def test_serevals_rules_from_reference():
    assert corpus_labels("emodb")["L"]["serevals8"] == "sadness"  # boredom -> sadness
    assert corpus_labels("emodb")["W"]["serevals8"] == "anger"
    assert corpus_labels("meld")["joy"]["serevals8"] == "happiness"
    assert corpus_labels("msp_podcast")["C"]["serevals8"] == "disgust"


def test_unknown_class_set():
    with pytest.raises(KeyError, match="curate.class_sets"):
        class_map("iemocap5")
