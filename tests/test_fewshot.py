from __future__ import annotations

import pandas as pd
import pytest

from selm_lib.fewshot import FewshotError, speaker_partition, support_set


def rows(speakers: int = 6, per_class: int = 4, classes=("angry", "happy", "sad")) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"utterance_id": f"s{s}_{c}_{i}", "speaker": f"s{s}", "eval_class": c}
            for s in range(speakers)
            for c in classes
            for i in range(per_class)
        ]
    )


def test_partition_is_deterministic_and_disjoint():
    table = rows()
    pool = speaker_partition(table, "toy", seed=3, share=0.5)
    assert pool == speaker_partition(table, "toy", seed=3, share=0.5)
    assert len(pool) == 3
    evaluated = set(table["speaker"]) - pool
    assert evaluated and not (pool & evaluated)


def test_partition_needs_two_speakers():
    with pytest.raises(FewshotError, match="at least one for adaptation and one for evaluation"):
        speaker_partition(rows(speakers=1), "toy", seed=0, share=0.5)


def test_support_sets_are_nested_and_balanced():
    pool = rows(speakers=2)
    classes = ["angry", "happy", "sad"]
    small, _ = support_set(pool, "toy", classes, k=2, seed=1, cap=False)
    large, _ = support_set(pool, "toy", classes, k=5, seed=1, cap=False)
    assert small["eval_class"].value_counts().to_dict() == {c: 2 for c in classes}
    assert set(small["utterance_id"]) <= set(large["utterance_id"])
    other, _ = support_set(pool, "toy", classes, k=2, seed=2, cap=False)
    assert set(other["utterance_id"]) != set(small["utterance_id"])
    empty, _ = support_set(pool, "toy", classes, k=0, seed=1, cap=False)
    assert empty.empty


def test_k_above_smallest_class_is_an_error_or_capped():
    pool = pd.concat(
        [
            rows(speakers=1, per_class=4),
            rows(speakers=1, per_class=2, classes=("sad",)).assign(
                speaker="s9", utterance_id=lambda t: "x" + t["utterance_id"]
            ),
        ]
    )
    pool = pool[~((pool["eval_class"] == "sad") & (pool["speaker"] == "s0"))]
    with pytest.raises(FewshotError, match=r"'toy': k=3 but class 'sad' has only 2.*fewshot.cap_k"):
        support_set(pool, "toy", ["angry", "happy", "sad"], k=3, seed=0, cap=False)
    capped_rows, capped = support_set(pool, "toy", ["angry", "happy", "sad"], k=3, seed=0, cap=True)
    assert capped == {"sad": 2}
    assert capped_rows["eval_class"].value_counts().to_dict() == {"angry": 3, "happy": 3, "sad": 2}
