"""The synthetic CREMA-D, IEMOCAP and MSP-Podcast write their annotators' votes in the real
layouts, and the scanners read them back: plausible disagreement, consistent with the labels,
deterministic from the seed."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.data.corpora.base import parse_votes, usable
from selm_lib.data.corpora.registry import scan
from selm_lib.data.labels import corpus_labels
from selm_lib.data.synth.registry import write_corpus

from .conftest import corpus_dir, smoke_plan

VOTED = ("crema_d", "iemocap", "msp_podcast")


def shares(manifest):
    votes = [parse_votes(cell) for cell in manifest["votes"]]
    return np.array([max(v.values()) / sum(v.values()) for v in votes])


@pytest.mark.parametrize("name", VOTED)
def test_synthetic_votes_read_back_and_disagree_sometimes(synthetic_root, name):
    manifest = usable(scan(name, corpus_dir(synthetic_root, name)))
    assert manifest["votes"].ne("").all()
    share = shares(manifest)
    assert 0.6 <= share.mean() <= 0.9  # the plurality's mean share: raters mostly agree
    assert (share < 1).mean() >= 0.2 and (share == 1).any()  # ... but not always
    emotions = {entry["emotion"] for entry in corpus_labels(name).values()}
    for cell in manifest["votes"]:
        assert set(parse_votes(cell)) <= emotions


def plurality(cell: str) -> set[str]:
    votes = parse_votes(cell)
    top = max(votes.values())
    return {e for e, n in votes.items() if abs(n - top) < 1e-9}


def test_synthetic_crema_d_votes_match_perceived_and_intended(synthetic_root):
    manifest = usable(scan("crema_d", corpus_dir(synthetic_root, "crema_d")))
    letters = {"angry": "A", "disgusted": "D", "fearful": "F", "happy": "H", "neutral": "N"}
    letters["sad"] = "S"
    for _, row in manifest.iterrows():
        assert ":".join(sorted(letters[e] for e in plurality(row["votes"]))) == row["perceived"]
        # smoke plans have no label noise: the voice shows the intended emotion
        assert row["emotion"] in plurality(row["votes"])
        votes = parse_votes(row["votes"])
        assert float(row["agreement"]) == pytest.approx(max(votes.values()) / sum(votes.values()))


def test_synthetic_iemocap_and_msp_votes_match_the_summary_label(synthetic_root):
    iemocap = usable(scan("iemocap", corpus_dir(synthetic_root, "iemocap")))
    for _, row in iemocap.iterrows():
        if row["label"] == "xxx":  # no majority: three evaluators, three categories
            assert len(plurality(row["votes"])) == 3
        else:
            assert plurality(row["votes"]) == {row["emotion"]}, row["utterance_id"]
        assert sum(parse_votes(row["votes"]).values()) == pytest.approx(3.0)  # 3 evaluators
    msp = usable(scan("msp_podcast", corpus_dir(synthetic_root, "msp_podcast")))
    for _, row in msp.iterrows():
        if row["label"] == "X":  # no agreement: a tie
            assert len(plurality(row["votes"])) >= 2
        else:
            assert plurality(row["votes"]) == {row["emotion"]}, row["utterance_id"]
        assert 5 <= sum(parse_votes(row["votes"]).values()) <= 7


@pytest.mark.parametrize(
    ("name", "vote_file"),
    [
        ("crema_d", "processedResults/tabulatedVotes.csv"),
        ("iemocap", "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt"),
        ("msp_podcast", "Labels/labels_detailed.csv"),
    ],
)
def test_synthetic_votes_are_deterministic_from_the_seed(tmp_path, name, vote_file):
    plan = smoke_plan(name)
    first = write_corpus(name, tmp_path / "a", plan)
    again = write_corpus(name, tmp_path / "b", plan)
    other = write_corpus(name, tmp_path / "c", smoke_plan(name, seed=plan.seed + 1))
    assert (first / vote_file).read_bytes() == (again / vote_file).read_bytes()
    assert (first / vote_file).read_bytes() != (other / vote_file).read_bytes()
