"""Open-vocabulary class scoring: verbalisations from params, synonym ensembles, an unseen class,
CREMA-D's perceived labels, and the stage's pairing with the reference variant."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.evaluation.results import EvalError
from selm_lib.evaluation.vocabulary import (
    Verbalisation,
    class_scores,
    combine,
    label_rows,
    score_texts,
    verbalisations,
)
from selm_lib.features.frames import ArrayFrames
from selm_lib.stages import eval_vocab as stage

from .test_model import AUDIO_DIM, make_tokenizer, tiny_model

SYNONYMS = {"angry": ["mad", "annoyed"], "calm": ["relaxed"]}


def test_texts_put_the_class_name_first_and_fill_the_template():
    v = Verbalisation("s", "the speaker sounds {emotion}", "synonyms", "mean", "sum")
    assert v.texts(["angry", "sad"], SYNONYMS) == [
        ["the speaker sounds angry", "the speaker sounds mad", "the speaker sounds annoyed"],
        ["the speaker sounds sad"],
    ]
    names = Verbalisation("n", "{emotion}", "names", "mean", "sum")
    assert names.texts(["angry"], SYNONYMS) == [["angry"]]


def test_combine_mean_is_the_log_mean_probability_and_max_the_best_text():
    scores = np.log(np.array([[0.2, 0.4, 0.1]]))
    owner = np.array([0, 0, 1])
    mean = combine(scores, owner, 2, "mean")
    np.testing.assert_allclose(np.exp(mean), [[0.3, 0.1]])
    best = combine(scores, owner, 2, "max")
    np.testing.assert_allclose(np.exp(best), [[0.4, 0.1]])


def test_a_synonym_ensemble_can_change_the_decision():
    # "angry" alone loses to "sad"; with its synonyms' mass best-of wins, the mean does not
    raw = {
        ("sum", "angry"): np.log([0.1]),
        ("sum", "mad"): np.log([0.5]),
        ("sum", "annoyed"): np.log([0.05]),
        ("sum", "sad"): np.log([0.3]),
    }
    classes = ["angry", "sad"]
    names = Verbalisation("n", "{emotion}", "names", "mean", "sum")
    best = Verbalisation("b", "{emotion}", "synonyms", "max", "sum")
    mean = Verbalisation("m", "{emotion}", "synonyms", "mean", "sum")
    assert class_scores(raw, names, classes, SYNONYMS).argmax() == 1
    assert class_scores(raw, best, classes, SYNONYMS).argmax() == 0
    np.testing.assert_allclose(
        np.exp(class_scores(raw, mean, classes, SYNONYMS)), [[(0.1 + 0.5 + 0.05) / 3, 0.3]]
    )


def vocab_params(**variants) -> dict:
    return {
        "reference": "trained",
        "variants": {
            "trained": {
                "template": "{emotion}",
                "words": "names",
                "combine": "mean",
                "normalize": "sum",
            },
            **variants,
        },
        "synonyms": SYNONYMS,
        "label_sets": {
            "ravdess_calm": {
                "corpus": "ravdess",
                "class_set": "ravdess",
                "calm": "own_class",
                "truth": "emotion",
            }
        },
    }


def test_variants_are_checked_and_the_reference_comes_first():
    p = vocab_params(
        z={"template": "x {emotion}", "words": "names", "combine": "max", "normalize": "mean"}
    )
    p["variants"] = dict(reversed(list(p["variants"].items())))
    assert [v.name for v in verbalisations(p)] == ["trained", "z"]
    p["reference"] = "missing"
    with pytest.raises(EvalError, match="'eval_vocab.reference' is 'missing'"):
        verbalisations(p)
    bad = vocab_params(
        z={"template": "no slot", "words": "names", "combine": "max", "normalize": "sum"}
    )
    with pytest.raises(EvalError, match=r"'eval_vocab.variants.z.template' must contain"):
        verbalisations(bad)


def test_a_typo_in_a_class_set_or_a_synonym_class_names_the_key():
    p = vocab_params()
    p["label_sets"] = {
        "r": {"corpus": "ravdess", "class_set": "ravdes", "calm": "neutral", "truth": "emotion"}
    }
    with pytest.raises(EvalError, match=r"'eval_vocab.label_sets.r.class_set' is 'ravdes'"):
        verbalisations(p)
    p["label_sets"]["r"]["class_set"] = "ravdess"
    p["synonyms"] = {"angy": ["mad"]}
    with pytest.raises(EvalError, match=r"'eval_vocab.synonyms.angy' names no class"):
        verbalisations(p)
    p["synonyms"] = {"angry": ["mad"]}
    assert [v.name for v in verbalisations(p)] == ["trained"]


def crema_manifest() -> pd.DataFrame:
    rows = []
    for i, (label, emotion, vote) in enumerate(
        [
            ("ANG", "angry", "A"),
            ("HAP", "happy", "N"),
            ("SAD", "sad", "N:S"),
            ("NEU", "neutral", ""),
        ]
        * 2
    ):
        rows.append(
            {
                "utterance_id": f"10{i:02d}_IEO_{label}_XX",
                "speaker": f"crema_d_10{i % 2}",
                "corpus": "crema_d",
                "label": label,
                "emotion": emotion,
                "perceived": vote,
                "quarantine": "",
            }
        )
    rows.append({**rows[0], "utterance_id": "1076_MTI_SAD_XX", "quarantine": "empty file"})
    return pd.DataFrame(rows)


def test_perceived_truth_maps_crowd_votes_and_leaves_ties_out():
    spec = {"corpus": "crema_d", "class_set": "crema_d6", "calm": "neutral", "truth": "perceived"}
    rows, classes, dropped = label_rows(crema_manifest(), "crema_d_perceived", spec)
    assert "neutral" in classes and "angry" in classes
    # ANG voted A -> angry; HAP voted N -> neutral (the crowd's label, not the actor's)
    assert rows["truth"].tolist() == ["angry", "neutral"] * 2
    assert dropped == {"tied_or_missing_vote": 4, "outside_class_set": 0, "quarantined": 1}
    spec["truth"] = "emotion"
    rows, _, dropped = label_rows(crema_manifest(), "crema_d", spec)
    assert rows["truth"].tolist() == ["angry", "happy", "sad", "neutral"] * 2


def test_perceived_needs_the_vote_column():
    spec = {"corpus": "x", "class_set": "crema_d6", "calm": "neutral", "truth": "perceived"}
    with pytest.raises(EvalError, match="no perceived column"):
        label_rows(crema_manifest().drop(columns="perceived"), "x", spec)


def test_score_texts_equals_one_text_at_a_time():
    torch.manual_seed(0)
    model, tokenizer = tiny_model().eval(), make_tokenizer()
    rng = np.random.default_rng(1)
    frames = ArrayFrames(
        [rng.normal(size=(int(rng.integers(3, 8)), AUDIO_DIM)).astype(np.float32) for _ in range(5)]
    )
    texts = ["angry", "calm", "the speaker sounds sad"]
    device = torch.device("cpu")
    together = score_texts(model, tokenizer, frames, "emotion:", texts, "sum", 2, 4096, device)
    assert together.shape == (5, 3)
    for i, text in enumerate(texts):
        alone = score_texts(model, tokenizer, frames, "emotion:", [text], "sum", 5, 4096, device)
        np.testing.assert_allclose(together[:, i], alone[:, 0], atol=1e-4)


def ravdess_manifest() -> pd.DataFrame:
    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
    return pd.DataFrame(
        [
            {
                "utterance_id": f"r{s}_{e}_{i}",
                "speaker": f"ravdess_{s:02d}",
                "corpus": "ravdess",
                "emotion": e,
                "quarantine": "",
            }
            for s in range(4)
            for e in emotions
            for i in range(2)
        ]
    )


def test_stage_scores_an_unseen_class_and_pairs_variants_with_the_reference(monkeypatch, tmp_path):
    """calm is no training answer: it is scored, listed as unseen, and its recall reported. The
    fake scorer prefers each clip's true class only through the synonym "relaxed" for calm."""
    table = ravdess_manifest()
    ids = list(table["utterance_id"])
    (tmp_path / "selm").mkdir()
    trained = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
    (tmp_path / "selm" / "candidates.json").write_text(json.dumps({"categorical": trained}))

    class Model:
        def to(self, device):
            return self

        def eval(self):
            return self

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        return ArrayFrames(
            [np.full((2, 3), ids.index(u), np.float32) for u in rows["utterance_id"]]
        )

    def scorer(model, tokenizer, frames, prompt, texts, normalize, batch, chunk, device):
        emotion = [ids[int(f[0, 0])].split("_")[1] for f in frames]
        out = np.full((len(frames), len(texts)), -5.0)
        for i, e in enumerate(emotion):
            for j, t in enumerate(texts):
                word = t.split()[-1]
                if word == e and e != "calm":
                    out[i, j] = -1.0
                if e == "calm" and word == "relaxed":
                    out[i, j] = -0.5
                if e == "calm" and word == "neutral":
                    out[i, j] = -2.0
        return out

    monkeypatch.setattr(stage, "read_curated", lambda common: ({"ravdess": table}, {}))
    monkeypatch.setattr(stage, "load_trained", lambda common, device: (Model(), None))
    monkeypatch.setattr(stage, "open_frames", frames)
    monkeypatch.setattr(stage, "score_texts", scorer)
    p = {
        "common": {"device": "cpu", "seed": 0, "output_root": str(tmp_path)},
        "features": {},
        "selm": {"backbone": "b", "views": {"categorical": {"prompt": "emotion:"}}},
        "eval_ood": {"batch_size": 4, "score_chunk": 64, "bootstrap": 100},
        "eval_vocab": vocab_params(
            synonyms_best={
                "template": "{emotion}",
                "words": "synonyms",
                "combine": "max",
                "normalize": "sum",
            }
        ),
    }
    p["eval_vocab"]["label_sets"] = {
        "ravdess_calm": {
            "corpus": "ravdess",
            "class_set": "ravdess",
            "calm": "own_class",
            "truth": "emotion",
        }
    }
    metrics, predictions = stage.run_eval_vocab(p)
    entry = metrics["label_sets"]["ravdess_calm"]
    assert entry["unseen"] == ["calm"] and "calm" in entry["classes"]
    names, best = entry["variants"]["trained"], entry["variants"]["synonyms_best"]
    assert names["recall_unseen"] == {"calm": 0.0}  # calm scored by its name loses to neutral
    assert best["recall_unseen"] == {"calm": 1.0}  # "relaxed" carries it
    assert best["accuracy"] == 1.0 and names["accuracy"] == pytest.approx(7 / 8)
    pair = best["paired_vs_reference"]
    assert pair["accuracy"]["difference"] == pytest.approx(1 / 8)
    assert "paired_vs_reference" not in names
    assert set(predictions["variant"]) == {"trained", "synonyms_best"}
    assert len(predictions) == 2 * len(table)
    from selm_lib.evaluation import vocab_results

    table = vocab_results.variant_table(metrics)
    assert table.loc[("ravdess_calm", "trained"), "vs reference"] == "(reference)"
    assert table.loc[("ravdess_calm", "synonyms_best"), "vs reference"].startswith("+0.125")
    (line,) = vocab_results.unseen_sentences(metrics)
    assert "calm" in line and "synonyms_best: calm 1.000" in line
