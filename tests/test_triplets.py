from __future__ import annotations

import pandas as pd
import pytest

from selm_lib.config import load_params
from selm_lib.selm.tokenizer import TokenizerError, load_tokenizer, train_bpe
from selm_lib.selm.triplets import (
    TripletError,
    bin_word,
    build_triplets,
    candidates,
    check_training_corpora,
    counts_by_view,
)

from .conftest import PROJECT


@pytest.fixture()
def selm_params() -> dict:
    return load_params(PROJECT / "params.yaml")["selm"]


def manifest(corpus: str, rows: list[dict]) -> pd.DataFrame:
    base = {
        "corpus": corpus,
        "speaker": "s1",
        "quarantine": "",
        "sentiment": "",
        "valence": None,
        "arousal": None,
        "dominance": None,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def test_views_per_corpus(selm_params):
    msp = manifest(
        "msp_podcast",
        [
            {
                "utterance_id": "a",
                "emotion": "angry",
                "sentiment": "negative",
                "valence": 1.5,
                "arousal": 6.5,
                "dominance": 4.0,
            },
            {
                "utterance_id": "b",
                "emotion": "no_agreement",
                "sentiment": "",
                "valence": 4.0,
                "arousal": 4.0,
                "dominance": 4.0,
            },
            {
                "utterance_id": "c",
                "emotion": "happy",
                "sentiment": "positive",
                "valence": 6.0,
                "arousal": 5.0,
                "dominance": 5.0,
                "quarantine": "silent",
            },
        ],
    )
    meld = manifest("meld", [{"utterance_id": "m", "emotion": "happy", "sentiment": "positive"}])
    splits = {
        "msp_podcast": pd.DataFrame({"utterance_id": ["a", "b"], "split": ["train", "validation"]}),
        "meld": pd.DataFrame({"utterance_id": ["m"], "split": ["train"]}),
    }
    params = dict(selm_params, train_corpora=["msp_podcast", "meld"])
    triplets = build_triplets({"msp_podcast": msp, "meld": meld}, splits, params)
    got = set(zip(triplets["utterance_id"], triplets["view"], triplets["answer"], strict=True))
    assert got == {
        ("a", "categorical", "angry"),
        ("a", "sentiment", "negative"),
        ("a", "dimensional", "high low medium"),  # arousal valence dominance on the 1-7 scale
        ("b", "dimensional", "medium medium medium"),
        ("m", "categorical", "happy"),
        ("m", "sentiment", "positive"),  # MELD has no V/A/D: no dimensional triplet
    }
    assert "c" not in set(triplets["utterance_id"])  # quarantined rows never become triplets
    assert counts_by_view(triplets).loc["msp_podcast", "dimensional"] == 2
    assert candidates(triplets)["sentiment"] == ["negative", "positive"]
    weights = triplets.groupby("view")["weight"].first().to_dict()
    assert weights == {v: s["weight"] for v, s in selm_params["views"].items()}


@pytest.mark.parametrize(
    "value, scale, word",
    [
        (1.0, (1, 5), "low"),
        (2.3, (1, 5), "low"),
        (3.0, (1, 5), "medium"),
        (4.0, (1, 5), "high"),
        (7.0, (1, 7), "high"),
        (4.0, (1, 7), "medium"),
    ],
)
def test_bin_word(value, scale, word):
    assert bin_word(value, scale, [0.34, 0.66], ["low", "medium", "high"]) == word


def test_ood_corpora_refused_unless_allowed():
    curated = ["ravdess", "msp_podcast"]
    with pytest.raises(TripletError, match="selm.allow_ood_training"):
        check_training_corpora(["msp_podcast", "ravdess"], curated, allow_ood=False)
    check_training_corpora(["msp_podcast", "ravdess"], curated, allow_ood=True)
    with pytest.raises(TripletError, match="curate stage did not produce"):
        check_training_corpora(["cmu_mosei"], curated, allow_ood=False)
    # a user's own corpus marked role: test in curate.corpora is held out the same way
    with pytest.raises(TripletError, match="role: test"):
        check_training_corpora(["mine"], ["mine"], allow_ood=False, roles={"mine": "test"})
    check_training_corpora(["mine"], ["mine"], allow_ood=False, roles={"mine": "train"})
    with pytest.raises(TripletError, match="is empty"):
        check_training_corpora([], curated, allow_ood=False)


def test_trained_bpe_round_trips_and_knows_class_words(tmp_path):
    tokenizer = train_bpe(
        ["emotion:", " angry", " happy", "sentiment:", " negative"],
        vocab_size=300,
        seed_words=["calm", "surprised"],
    )
    for text in ("emotion:", " angry", " calm", " surprised", " never seen words"):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(tokenizer.encode(" calm")) <= 2
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again.encode(" angry") == tokenizer.encode(" angry")


def test_trained_bpe_is_deterministic():
    texts = ["emotion:", " angry", " happy", " sad"]
    a, b = train_bpe(texts, vocab_size=280), train_bpe(texts, vocab_size=280)
    assert a.get_vocab() == b.get_vocab()


def test_missing_tokenizer_names_key():
    with pytest.raises(TokenizerError, match="selm.tokenizer"):
        load_tokenizer("no-such-org/no-such-tokenizer")


def test_training_corpus_without_usable_rows(selm_params):
    broken = manifest("meld", [{"utterance_id": "m", "emotion": "happy", "quarantine": "silent"}])
    splits = {"meld": pd.DataFrame(columns=["utterance_id", "split"])}
    with pytest.raises(TripletError, match="'selm.train_corpora' lists 'meld'.*no usable rows"):
        build_triplets({"meld": broken}, splits, dict(selm_params, train_corpora=["meld"]))


def test_balanced_weights_equalise_answers(selm_params):
    rows = [
        {"utterance_id": f"n{i}", "emotion": "neutral", "sentiment": "neutral"} for i in range(6)
    ]
    rows += [
        {"utterance_id": f"a{i}", "emotion": "angry", "sentiment": "negative"} for i in range(2)
    ]
    meld = manifest("meld", rows)
    splits = {
        "meld": pd.DataFrame({"utterance_id": [r["utterance_id"] for r in rows], "split": "train"})
    }
    params = dict(selm_params, train_corpora=["meld"], balance_answers=True)
    triplets = build_triplets({"meld": meld}, splits, params)
    categorical = triplets[triplets["view"] == "categorical"]
    mass = categorical.groupby("answer")["weight"].sum()
    assert mass["neutral"] == pytest.approx(mass["angry"])
    view_weight = selm_params["views"]["categorical"]["weight"]
    assert categorical["weight"].mean() == pytest.approx(view_weight)
