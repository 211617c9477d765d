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


# ----------------------------------------------------------------------------- restricted logits


def test_restricted_logits_are_log_probabilities_consistent_with_the_predictions():
    from selm_lib.evaluation.baseline import PooledClassifier, restricted_logits

    torch.manual_seed(0)
    model = PooledClassifier(4, 4, 8, 0.0, np.zeros(4, np.float32), np.ones(4, np.float32)).eval()
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    train = ["angry", "excited", "happy", "contempt"]
    one_to_one = {"angry": "angry", "happy": "happy"}
    z = restricted_logits(model, x, train, one_to_one, ["angry", "happy"])
    np.testing.assert_allclose(np.exp(z).sum(axis=1), 1.0)
    names = np.array(["angry", "happy"], dtype=object)
    predicted = restricted_predictions(model, x, train, one_to_one, ["angry", "happy"])
    assert list(names[z.argmax(axis=1)]) == list(predicted)
    # excited merges into happy: happy's probability is the sum of both emotions'
    merged = restricted_logits(model, x, train, {**one_to_one, "excited": "happy"}, list(names))
    with torch.no_grad():
        raw = model(torch.from_numpy(x)).double().numpy()[:, :3]
    p = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(merged), np.stack([p[:, 0], p[:, 1] + p[:, 2]], 1))
    # a test class nothing maps to has probability 0
    absent = restricted_logits(model, x, train, one_to_one, ["angry", "happy", "sad"])
    assert np.isneginf(absent[:, 2]).all()


# ----------------------------------------------------------------------------- stage wiring

OOD_CLASSES = ["neutral", "happy", "sad", "angry", "fearful", "disgusted"]  # crema_d6's order
TRAIN_COUNTS = {"neutral": 8, "happy": 8, "sad": 8, "angry": 60, "fearful": 8, "disgusted": 8}


def _stage_fixture(monkeypatch, tmp_path):
    """run_eval_ood with its data and models replaced. SELM's fake class log-likelihoods are
    a signal for the true class plus noise; on the training corpus's validation split they also
    carry the training answer prior (angry is 60 % of the training answers), on the OOD corpus
    and the in-domain test split they do not. So removing the training prior helps on the
    validation split and hurts on the test sets: a headline chosen on test data would differ."""
    import json

    from selm_lib.data.corpora.base import MANIFEST_COLUMNS
    from selm_lib.evaluation.baseline import PooledClassifier
    from selm_lib.evaluation.ood import SELMPrediction
    from selm_lib.features.frames import ArrayFrames
    from selm_lib.stages import eval_ood as stage

    ood_rows = [
        {
            "utterance_id": f"o{s}_{c}_{i}",
            "speaker": f"o{s}",
            "eval_class": c,
            "quarantine": "",
            # annotators: 3 votes for the label, 1 for neutral (none on speaker o5's clips)
            "votes": ""
            if s == 5
            else json.dumps({c: 3, "neutral": 1} if c != "neutral" else {c: 4}),
        }
        for s in range(6)
        for c in OOD_CLASSES
        for i in range(4)
    ]
    ood = pd.DataFrame(ood_rows)
    train_rows, split_rows = [], []
    for split, speakers, per in (("train", 2, 1), ("validation", 6, 6), ("test", 4, 3)):
        for s in range(speakers):
            for c in OOD_CLASSES:
                for i in range(per):
                    row = {k: "" for k in MANIFEST_COLUMNS}
                    uid = f"t_{split}{s}_{c}_{i}"
                    row.update(corpus="emodb", utterance_id=uid, speaker=f"{split}{s}", emotion=c)
                    train_rows.append(row)
                    split_rows.append({"utterance_id": uid, "split": split})
    manifests = {"crema_d": ood, "emodb": pd.DataFrame(train_rows)}
    splits = {"emodb": pd.DataFrame(split_rows)}
    ids = list(ood["utterance_id"]) + [r["utterance_id"] for r in train_rows]

    (tmp_path / "selm").mkdir()
    (tmp_path / "selm" / "candidates.json").write_text(json.dumps({"categorical": OOD_CLASSES}))
    triplets = pd.DataFrame(
        [
            {"view": "categorical", "split": "train", "answer": c, "weight": 1.0}
            for c, n in TRAIN_COUNTS.items()
            for _ in range(n)
        ]
        + [{"view": "categorical", "split": "validation", "answer": "sad", "weight": 1.0}] * 50
        + [{"view": "sentiment", "split": "train", "answer": "negative", "weight": 1.0}] * 9
    )
    triplets.to_csv(tmp_path / "selm" / "triplets.csv", index=False)

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        return ArrayFrames(
            [np.full((2, 3), ids.index(u), np.float32) for u in rows["utterance_id"]]
        )

    def predict(model, tokenizer, feats, classes, to_class, selm, eval_ood, device, **kw):
        assert kw.get("return_scores") is True
        names = [ids[int(f[0, 0])] for f in feats]
        truth = np.array([classes.index(n.split("_")[-2]) for n in names])
        rng = np.random.default_rng(len(names))
        matrix = 1.5 * np.eye(len(classes))[truth] + rng.normal(0, 1, (len(names), len(classes)))
        validation = np.array(["_validation" in n for n in names])
        matrix[validation] += np.log(
            [TRAIN_COUNTS[c] / sum(TRAIN_COUNTS.values()) for c in classes]
        )
        scored = [classes[i] for i in matrix.argmax(axis=1)]
        texts = ["hmm"] * len(names) if kw.get("generate_answers", True) else [""] * len(names)
        return SELMPrediction(texts, [UNMAPPED] * len(names), scored, matrix, np.zeros(3))

    baseline = PooledClassifier(
        6, len(OOD_CLASSES), 4, 0.0, np.zeros(6, np.float32), np.ones(6, np.float32)
    )
    monkeypatch.setattr(stage, "read_curated", lambda common: (manifests, splits))
    monkeypatch.setattr(stage, "load_trained", lambda common, device: (_Model(), None))
    monkeypatch.setattr(
        stage, "train_baseline", lambda *a, device: (baseline, list(OOD_CLASSES), None)
    )
    monkeypatch.setattr(stage, "open_frames", frames)
    monkeypatch.setattr(stage, "selm_predict", predict)
    monkeypatch.setattr(
        stage, "content_free_scores", lambda m, t, frame, classes, *a: np.zeros(len(classes))
    )
    params = {
        "common": {"device": "cpu", "seed": 34, "output_root": str(tmp_path)},
        "features": {"backbones": {"b": {"source": "emotion2vec/emotion2vec_plus_base"}}},
        "selm": {
            "backbone": "b",
            "train_corpora": ["emodb"],
            "views": {"categorical": {"prompt": "emotion:", "answer": "{emotion}"}},
        },
        "curate": {"class_sets": {"crema_d": "crema_d6"}, "ravdess_calm": "neutral"},
        "eval_ood": {
            "test_corpora": ["crema_d"],
            "batch_size": 4,
            "num_beams": 1,
            "max_new_tokens": 2,
            "bootstrap": 40,
            "headline": "validation",
            "em_prior_strength": 1.0,
            "content_free": "mean_frame",
            "temperature_scaling": True,
            "calibration_bins": 15,
        },
    }
    return stage, params


class _Model:
    def to(self, device):
        return self

    def eval(self):
        return self


def _run(stage, params):
    p = params
    return stage.run_eval_ood(p["common"], p["features"], p["selm"], p["curate"], p["eval_ood"])


def test_stage_writes_every_variant_calibration_and_a_validation_headline(monkeypatch, tmp_path):
    import json

    from selm_lib.evaluation.results import CALIBRATED, METHODS, SCORE_VARIANTS

    stage, params = _stage_fixture(monkeypatch, tmp_path)
    result = _run(stage, params)
    m = result.metrics
    n = len(result.predictions) // len(METHODS)
    for method in METHODS:  # every method scored on every evaluated row
        assert m[method]["crema_d"]["n"] == n, method
    assert set(result.predictions["method"]) == set(METHODS)
    paired = m["paired"]["crema_d"]
    for v in SCORE_VARIANTS:
        assert f"{v}_vs_selm_score" in paired and f"{v}_vs_classifier_baseline" in paired
    record = m["prior_matching"]["crema_d"]
    assert result.classes["crema_d"] == OOD_CLASSES
    assert record["priors"]["train"] == pytest.approx(
        [TRAIN_COUNTS[c] / sum(TRAIN_COUNTS.values()) for c in OOD_CLASSES], abs=1e-6
    )  # the train split's categorical answers only, over the test classes
    assert record["em"]["n_fit"] == n and record["content_free_input"] == "mean_frame"
    # the headline: chosen on the validation split, never the oracle
    selection = m["headline_selection"]
    val = selection["validation_unweighted_accuracy"]
    assert selection["rule"] == "validation" and "selm_score_oracle" not in val
    assert m["headline"] == max(selection["candidates"], key=lambda v: val[v]["mean"])
    assert m["headline"] != "selm_score"  # the prior matters on the validation split
    test_ua = {v: m[v]["crema_d"]["unweighted_accuracy"] for v in selection["candidates"]}
    assert max(test_ua, key=test_ua.get) != m["headline"]  # the test set would pick another
    # calibration: every calibrated method, OOD and in domain, raw and temperature-scaled
    calibration = m["calibration"]
    assert set(calibration["temperatures"]) == set(CALIBRATED)
    for scope, corpus in (("ood", "crema_d"), ("in_domain", "emodb")):
        for method in CALIBRATED:
            entry = calibration[scope][corpus][method]
            assert set(entry) == {"raw", "scaled"}
            assert len(entry["raw"]["reliability"]["count"]) == 15
    assert set(m["in_domain"]["emodb"]) >= {"classes", "selm_score", *SCORE_VARIANTS}
    assert result.calibration_table("ood").shape[0] == len(CALIBRATED)
    assert "selm_score_oracle (oracle" in " ".join(result.prior_effects().index)
    assert len(result.comparisons()) == 1 + len(SCORE_VARIANTS)
    assert "validation split" in result.headline_note()
    # agreement with the annotators' votes: speaker o5 has none; a method that predicts the
    # label gets the label's vote share, the human ceiling is the plurality share
    agreement = m["agreement"]["crema_d"]
    assert (
        agreement["majority"]["excluded_no_votes"] == 24
        and agreement["majority"]["scored"] == n - 24
    )
    assert agreement["selm_score"]["jsd"] is not None and agreement["majority"]["jsd"] is None
    share = {c: (1.0 if c == "neutral" else 0.75) for c in OOD_CLASSES}
    assert agreement["majority"]["human_ceiling"] == pytest.approx(np.mean(list(share.values())))
    # the encoder checkpoint (emotion2vec+) saw CREMA-D: the cell is flagged
    assert m["contaminated"] == ["crema_d"]
    # ood.json: strict JSON, byte-identical on a rerun
    first = tmp_path / "a.json"
    stage.write_outputs(result, first, tmp_path / "a.csv")
    json.loads(first.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in ood.json"))
    second = tmp_path / "b.json"
    stage.write_outputs(_run(stage, params), second, tmp_path / "b.csv")
    assert first.read_text() == second.read_text()


def test_headline_choice_reads_validation_data_only(monkeypatch, tmp_path):
    """With the validation split's prior bias removed from the fake scores, plain selm_score is
    best there, so a validation headline is selm_score; the test sets are unchanged."""
    stage, params = _stage_fixture(monkeypatch, tmp_path)
    first = _run(stage, params).metrics
    original = stage.selm_predict

    def unbiased(model, tokenizer, feats, classes, *a, **kw):
        out = original(model, tokenizer, feats, classes, *a, **kw)
        matrix = out.log_likelihood.copy()
        is_validation = np.array([s == "validation" for s in _splits_of(feats)])
        prior = np.log(np.array([TRAIN_COUNTS[c] for c in classes]) / sum(TRAIN_COUNTS.values()))
        matrix[is_validation] -= prior
        scored = [classes[i] for i in matrix.argmax(axis=1)]
        return out._replace(log_likelihood=matrix, scored=scored)

    split_of: dict[int, str] = {}

    def _splits_of(feats):
        return [split_of.get(int(f[0, 0]), "other") for f in feats]

    manifests, splits = stage.read_curated({})
    ids = list(manifests["crema_d"]["utterance_id"]) + list(manifests["emodb"]["utterance_id"])
    for uid, split in zip(splits["emodb"]["utterance_id"], splits["emodb"]["split"], strict=True):
        split_of[ids.index(uid)] = split
    monkeypatch.setattr(stage, "selm_predict", unbiased)
    second = _run(stage, params).metrics
    for method in ("selm_score", "selm_score_uniform", "classifier_baseline"):
        assert second[method]["crema_d"] == first[method]["crema_d"]  # test sets unchanged
    assert first["headline"] != "selm_score" and second["headline"] == "selm_score"


def test_headline_rules():
    from selm_lib.stages.eval_ood import choose_headline

    assert choose_headline("selm_generate", {}) == (
        "selm_generate",
        {"rule": "fixed", "chosen": "selm_generate"},
    )
    with pytest.raises(EvalError, match="an oracle"):
        choose_headline("selm_score_oracle", {})
    with pytest.raises(EvalError, match="eval_ood.headline: validation"):
        choose_headline("validation", {})


def test_selm_predict_returns_the_score_matrix_and_content_free_scores_a_constant_clip():
    from selm_lib.evaluation.ood import content_free_frame, content_free_scores, selm_predict
    from selm_lib.selm.batching import Encoded, collate
    from selm_lib.selm.decode import score_classes

    from .test_model import AUDIO_DIM, make_tokenizer, tiny_model

    torch.manual_seed(0)
    model, tokenizer = tiny_model().eval(), make_tokenizer()
    rng = np.random.default_rng(0)
    feats = [
        rng.normal(size=(int(rng.integers(3, 9)), AUDIO_DIM)).astype(np.float32) for _ in range(5)
    ]
    classes = ["angry", "happy", "sad"]
    selm = {"views": {"categorical": {"prompt": "emotion:", "answer": "{emotion}"}}}
    eval_ood = {"batch_size": 2, "max_new_tokens": 2, "num_beams": 1, "score_chunk": 3}
    device = torch.device("cpu")
    out = selm_predict(
        model,
        tokenizer,
        feats,
        classes,
        {c: c for c in classes},
        selm,
        eval_ood,
        device,
        generate_answers=False,
        return_scores=True,
    )
    assert out.log_likelihood.shape == (5, 3) and out.log_likelihood.dtype == np.float64
    assert [classes[i] for i in out.log_likelihood.argmax(axis=1)] == out.scored
    np.testing.assert_allclose(out.frame_mean, np.concatenate(feats).mean(axis=0), atol=1e-5)
    # the content-free clip: the chosen frame repeated, scored like any clip
    frame = content_free_frame("mean_frame", out)
    cf = content_free_scores(model, tokenizer, frame, classes, selm, eval_ood, device)
    eos = tokenizer.eos_token_id
    prompt = tokenizer.encode("emotion:")
    candidates = [tokenizer.encode(" " + c) + [eos] for c in classes]
    for length in (1, 13):  # a constant clip pools to the same prefix whatever its length
        clip = [np.repeat(frame[None].astype(np.float32), length, axis=0)]
        data = Encoded(clip, [prompt], [[eos]], np.ones(1, np.float32), [""], [""])
        batch = collate(data, np.arange(1), eos, device)
        args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
        np.testing.assert_allclose(
            cf, score_classes(model, *args, candidates)[0].numpy(), atol=1e-4
        )
    zeros = content_free_frame("zeros", out)
    assert zeros.shape == frame.shape and not zeros.any()
    with pytest.raises(EvalError, match="eval_ood.content_free"):
        content_free_frame("silence", out)


def test_training_answer_prior_reads_the_train_split_categorical_answers(tmp_path):
    from selm_lib.evaluation.ood import answer_weights, trained_answers, training_answer_prior

    (tmp_path / "selm").mkdir()
    pd.DataFrame(
        {
            "view": ["categorical"] * 5 + ["sentiment", "categorical"],
            "split": ["train", "train", "train", "train", "validation", "train", "test"],
            "answer": ["sad", "sad", "angry", "neutral", "happy", "sad", "happy"],
            "weight": [1.0, 1.0, 2.0, 1.0, 1.0, 5.0, 1.0],
        }
    ).to_csv(tmp_path / "selm" / "triplets.csv", index=False)
    weights = answer_weights({"output_root": str(tmp_path)})
    selm = {"views": {"categorical": {"answer": "{emotion}"}}}
    prior = training_answer_prior(weights, selm, ["angry", "sad"], "x")
    np.testing.assert_allclose(prior, [0.5, 0.5])  # loss weights: angry 2, sad 1 + 1
    assert trained_answers(weights, selm, ["happy", "neutral", "sad"]) == ["neutral", "sad"]
    with pytest.raises(EvalError, match=r"'x'.*\['happy'\].*curate.class_sets.x"):
        training_answer_prior(weights, selm, ["angry", "happy"], "x")  # happy: validation only
    with pytest.raises(EvalError, match="dvc repro train_selm"):
        answer_weights({"output_root": str(tmp_path / "missing")})
