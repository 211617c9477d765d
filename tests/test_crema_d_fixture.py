"""The real CREMA-D file list, demographics and votes from ../shared/fixtures/crema_d."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import parse_votes, usable
from selm_lib.data.corpora.registry import scan
from selm_lib.data.labels import class_map, classes_of
from selm_lib.evaluation.agreement import agreement_summary


@pytest.fixture(scope="module")
def crema_root(shared_dir, tmp_path_factory):
    fixture = shared_dir / "fixtures" / "crema_d"
    root = tmp_path_factory.mktemp("crema_d")
    names = [
        n.strip() for n in (fixture / "AudioWAV_files.txt").read_text().splitlines() if n.strip()
    ]
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(2400)).astype(np.float32)  # 0.3 s at 8 kHz
    (root / "AudioWAV").mkdir()
    for name in names:
        path = root / name
        if path.name == "1076_MTI_SAD_XX.wav":
            path.write_bytes(b"")  # empty in the real corpus
        else:
            sf.write(path, clip, 8000)
    shutil.copy(fixture / "VideoDemographics.csv", root / "VideoDemographics.csv")
    (root / "processedResults").mkdir()
    shutil.copy(fixture / "tabulatedVotes.csv", root / "processedResults" / "tabulatedVotes.csv")
    return root, names


def test_published_counts(crema_root):
    root, names = crema_root
    assert len(names) == 7442
    manifest = scan("crema_d", root)
    assert len(manifest) == 7442
    counts = manifest.groupby("label").size().to_dict()
    assert counts == {"NEU": 1087, "ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "SAD": 1271}
    bad = manifest[manifest["quarantine"] != ""]
    assert list(bad["utterance_id"]) == ["1076_MTI_SAD_XX"]
    assert bad.iloc[0]["quarantine"] == "empty file (0 bytes)"
    good = usable(manifest)
    assert good["speaker"].nunique() == 91
    assert set(good["gender"]) == {"M", "F"}
    assert good["perceived"].ne("").mean() > 0.99  # crowd votes joined for nearly every file
    assert set(good["level"]) == {"low", "medium", "high", "unspecified"}


def test_votes_are_the_voice_only_ratings(crema_root):
    """The real table has three rows per clip (id 100000*queryType + clip: 1 voice, 2 face,
    3 audio-visual); ``votes``, ``perceived`` and ``agreement`` come from the voice row."""
    root, _ = crema_root
    manifest = usable(scan("crema_d", root)).set_index("utterance_id")
    assert manifest["votes"].ne("").all()
    # voice row 100059 of the real table: A D F H N S = 1 1 1 0 5 1 (face: 1 0 0 0 9 0)
    assert manifest.loc["1001_DFA_NEU_XX", "votes"] == (
        '{"angry":1,"disgusted":1,"fearful":1,"neutral":5,"sad":1}'
    )
    assert manifest.loc["1001_IEO_HAP_HI", "votes"] == '{"angry":2,"happy":6,"neutral":2}'
    assert float(manifest.loc["1001_IEO_HAP_HI", "agreement"]) == 0.6  # voice, not face (0.8)
    table = pd.read_csv(root / "processedResults" / "tabulatedVotes.csv", dtype=str)
    voice = table[table.iloc[:, 0].str.startswith("1")].set_index("fileName")
    letters = {"angry": "A", "disgusted": "D", "fearful": "F", "happy": "H", "neutral": "N"}
    letters["sad"] = "S"
    for uid, cell in manifest["votes"].items():
        votes = parse_votes(cell)
        assert sum(votes.values()) == int(voice.loc[uid, "numResponses"]), uid
        top = max(votes.values())
        plurality = ":".join(sorted((letters[e] for e, n in votes.items() if n == top)))
        assert plurality == manifest.loc[uid, "perceived"], uid
    # the human ceiling of the voice-only ratings is their mean agreement (about 0.64)
    summary = agreement_summary(
        list(manifest["votes"]),
        None,
        list(manifest["emotion"]),
        classes_of("crema_d6"),
        class_map("crema_d6"),
    )
    assert summary["scored"] == len(manifest)
    assert summary["human_ceiling"] == pytest.approx(
        manifest["agreement"].astype(float).mean(), abs=1e-6
    )
    assert 0.6 < summary["human_ceiling"] < 0.7
    # the acted emotion as the prediction: the voice raters named it about 4 times in 10
    assert 0.35 < summary["soft_accuracy"] < summary["human_ceiling"]


def test_synthetic_vote_table_has_the_real_header(shared_dir, tmp_path):
    from selm_lib.data.synth.registry import write_corpus

    from .conftest import smoke_plan

    real = (shared_dir / "fixtures" / "crema_d" / "tabulatedVotes.csv").open().readline()
    root = write_corpus("crema_d", tmp_path, smoke_plan("crema_d"))
    synthetic = (root / "processedResults" / "tabulatedVotes.csv").open().readline()
    assert synthetic == real
