from __future__ import annotations

import pandas as pd
import pytest

from selm_lib.data.corpora.registry import scan
from selm_lib.data.splits import SplitError, check_speaker_disjoint, speaker_splits

from .conftest import corpus_dir


def toy_manifest(speakers: int = 10, per: int = 5) -> pd.DataFrame:
    rows = [
        {"corpus": "toy", "utterance_id": f"s{s}_{u}", "speaker": f"s{s}", "quarantine": ""}
        for s in range(speakers)
        for u in range(per)
    ]
    rows.append({"corpus": "toy", "utterance_id": "anon", "speaker": "", "quarantine": ""})
    rows.append({"corpus": "toy", "utterance_id": "bad", "speaker": "s0", "quarantine": "empty"})
    return pd.DataFrame(rows)


def test_speaker_disjoint_and_deterministic():
    manifest = toy_manifest()
    a = speaker_splits(manifest, seed=1, validation=0.2, test=0.2, folds=5)
    b = speaker_splits(manifest, seed=1, validation=0.2, test=0.2, folds=5)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("speaker")["split"].nunique().max() == 1
    known = a[a["speaker"] != ""]
    assert known.groupby("speaker")["fold"].nunique().max() == 1
    assert set(known["fold"]) == set(range(5))
    assert known.groupby("split")["speaker"].nunique().to_dict() == {
        "test": 2,
        "train": 6,
        "validation": 2,
    }
    assert "bad" not in set(a["utterance_id"])  # quarantined rows are not split
    anon = a.set_index("utterance_id").loc["anon"]
    assert anon["split"] == "train" and anon["fold"] == -1


def test_seed_changes_assignment():
    manifest = toy_manifest(20)
    a = speaker_splits(manifest, seed=1, validation=0.2, test=0.2, folds=5)
    b = speaker_splits(manifest, seed=2, validation=0.2, test=0.2, folds=5)
    assert not a["split"].equals(b["split"])


def test_overlap_is_an_error():
    table = pd.DataFrame(
        {"utterance_id": ["a", "b"], "speaker": ["s1", "s1"], "split": ["train", "test"]}
    )
    with pytest.raises(SplitError, match="s1"):
        check_speaker_disjoint(table, corpus="toy")


def test_meld_official_split_shares_speakers(synthetic_root):
    manifest = scan("meld", corpus_dir(synthetic_root, "meld"))
    with pytest.raises(SplitError, match="curate.split.strategy: speaker"):
        speaker_splits(manifest, seed=0, validation=0.1, test=0.2, folds=3, strategy="official")
    table = speaker_splits(manifest, seed=0, validation=0.1, test=0.2, folds=3)
    assert table.groupby("speaker")["split"].nunique().max() == 1
