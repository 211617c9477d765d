"""Unit tests of the stage functions and the loss: run_item never scores a support clip and never
adapts on an evaluated speaker's clip; selm_predict is class scoring batched; run_eval_ood scores
every evaluated row once per method; the weighted loss weights triplets, not tokens."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.data.labels import classes_of
from selm_lib.evaluation.baseline import PooledClassifier
from selm_lib.evaluation.ood import SELMPrediction, selm_predict
from selm_lib.evaluation.results import METHODS, UNMAPPED
from selm_lib.features.frames import ArrayFrames
from selm_lib.selm.batching import Encoded, collate
from selm_lib.selm.decode import score_classes
from selm_lib.selm.train import weighted_loss
from selm_lib.stages import eval_ood as eval_stage
from selm_lib.stages import fewshot_item

from .test_model import AUDIO_DIM, make_tokenizer, tiny_model

CLASSES = classes_of("crema_d6")
FEATURES = {"backbones": {"b": {"source": "preset:tiny-wav2vec2"}}}


def manifest(speakers: int = 6, per_class: int = 3) -> pd.DataFrame:
    rows = [
        {"utterance_id": f"s{s}_{c}_{i}", "speaker": f"s{s}", "eval_class": c, "quarantine": ""}
        for s in range(speakers)
        for c in CLASSES
        for i in range(per_class)
    ]
    rows.append(
        {
            "utterance_id": "broken",
            "speaker": "s0",
            "eval_class": "angry",
            "quarantine": "empty file",
        }
    )
    return pd.DataFrame(rows)


class Model:
    def to(self, device):
        return self

    def eval(self):
        return self


def params(methods=("selm_mappers", "selm_full", "classifier_baseline")) -> dict:
    return {
        "common": {"device": "cpu", "seed": 34, "output_root": "unused"},
        "features": {},
        "selm": {"backbone": "b"},
        "curate": {"class_sets": {"crema_d": "crema_d6"}, "ravdess_calm": "neutral"},
        "eval_ood": {"batch_size": 4, "num_beams": 3, "max_new_tokens": 5},
        "fewshot": {
            "corpora": ["crema_d"],
            "methods": list(methods),
            "support_share": 0.5,
            "partition_per_seed": False,
            "cap_k": False,
        },
    }


@pytest.fixture()
def recorded(monkeypatch):
    """run_item with its data and models replaced; records which clips each call received (every
    clip's frames carry its row number, so the arrays name the clips)."""
    table = manifest()
    ids = list(table["utterance_id"])
    calls: dict[str, list] = {"adapt_selm": [], "adapt_baseline": [], "scored": [], "baseline": []}

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        return ArrayFrames(
            [np.full((3, 4), ids.index(u), np.float32) for u in rows["utterance_id"]]
        )

    def names(frame_list):
        return [ids[int(f[0, 0])] for f in frame_list]

    def adapt_selm(model, tokenizer, support_frames, labels, selm, fewshot, *, full, seed, device):
        calls["adapt_selm"].append((full, names(support_frames), list(labels)))
        return Model()

    def predict(
        model,
        tokenizer,
        eval_frames,
        classes,
        to_class,
        selm,
        eval_ood,
        device,
        generate_answers=True,
    ):
        calls["scored"].append(names(eval_frames))
        return (
            [""] * len(eval_frames),
            [UNMAPPED] * len(eval_frames),
            [classes[0]] * len(eval_frames),
        )

    def adapt_baseline(baseline, train_classes, x, labels, to_class, fewshot, seed, device):
        calls["adapt_baseline"].append([ids[int(v)] for v in x[:, 0]])
        return baseline

    def restricted(model, x, train_classes, train_to_test, classes):
        calls["baseline"].append([ids[int(v)] for v in x[:, 0]])
        return np.asarray([classes[0]] * len(x), dtype=object)

    monkeypatch.setattr(fewshot_item, "read_curated", lambda common: ({"crema_d": table}, {}))
    monkeypatch.setattr(fewshot_item, "load_trained", lambda common, device: (Model(), None))
    monkeypatch.setattr(fewshot_item, "load_baseline", lambda common: ("base", list(CLASSES)))
    monkeypatch.setattr(fewshot_item, "open_frames", frames)
    monkeypatch.setattr(fewshot_item, "_adapt_selm", adapt_selm)
    monkeypatch.setattr(fewshot_item, "_adapt_baseline", adapt_baseline)
    monkeypatch.setattr(fewshot_item, "selm_predict", predict)
    monkeypatch.setattr(fewshot_item, "restricted_predictions", restricted)
    return table, calls


def speaker(uid: str) -> str:
    return uid.split("_")[0]


def test_run_item_adapts_on_pool_speakers_and_scores_only_the_others(recorded):
    table, calls = recorded
    result = fewshot_item.run_item(params(), k=2, seed=1)
    support = {u for _, used, _ in calls["adapt_selm"] for u in used} | {
        u for used in calls["adapt_baseline"] for u in used
    }
    scored = {u for used in calls["scored"] + calls["baseline"] for u in used}
    assert support and scored and not support & scored  # a support clip is never scored
    assert not {speaker(u) for u in support} & {speaker(u) for u in scored}  # nor its speaker
    assert "broken" not in support | scored  # quarantined rows are neither
    usable = set(table.loc[table["quarantine"] == "", "utterance_id"])
    evaluated = {u for u in usable if speaker(u) not in {speaker(s) for s in support}}
    assert all(set(used) == evaluated for used in calls["scored"] + calls["baseline"])
    assert [full for full, _, _ in calls["adapt_selm"]] == [False, True]  # mappers, then full
    for _, used, labels in calls["adapt_selm"]:
        assert sorted(labels) == sorted(CLASSES * 2)  # k = 2 per class
        assert labels == [u.split("_")[1] for u in used]  # each clip with its own label
    assert set(result["results"]["crema_d"]) == {"selm_mappers", "selm_full", "classifier_baseline"}
    assert result["results"]["crema_d"]["selm_full"]["n"] == len(evaluated)
    assert set(result["predictions"]["utterance_id"]) == evaluated


def test_run_item_at_k0_adapts_nothing_and_scores_the_unadapted_model_once(recorded):
    _, calls = recorded
    result = fewshot_item.run_item(params(), k=0, seed=0)
    assert calls["adapt_selm"] == [] and calls["adapt_baseline"] == []
    assert len(calls["scored"]) == 1  # selm_mappers and selm_full share the unadapted model
    methods = result["results"]["crema_d"]
    assert methods["selm_mappers"] == methods["selm_full"]


def test_selm_predict_is_class_scoring_in_batches():
    torch.manual_seed(0)
    model, tokenizer = tiny_model().eval(), make_tokenizer()
    rng = np.random.default_rng(0)
    feats = [
        rng.normal(size=(int(rng.integers(3, 9)), AUDIO_DIM)).astype(np.float32) for _ in range(7)
    ]
    classes = ["angry", "happy", "sad"]
    selm = {"views": {"categorical": {"prompt": "emotion:", "answer": "{emotion}"}}}
    to_class = {c: c for c in classes}
    device = torch.device("cpu")
    small = {"batch_size": 2, "max_new_tokens": 3, "num_beams": 1, "score_chunk": 3}
    texts, mapped, scored = selm_predict(
        model, tokenizer, feats, classes, to_class, selm, small, device
    )
    assert len(texts) == len(mapped) == len(scored) == 7
    assert all(m in classes or m == UNMAPPED for m in mapped)
    _, _, whole = selm_predict(
        model,
        tokenizer,
        feats,
        classes,
        to_class,
        selm,
        dict(small, batch_size=64),
        device,
        generate_answers=False,
    )
    assert whole == scored  # batching does not change class scoring
    # the same decision as scoring each clip's candidates directly
    eos = tokenizer.eos_token_id
    prompt = tokenizer.encode("emotion:")
    candidates = [tokenizer.encode(" " + c) + [eos] for c in classes]
    data = Encoded(feats, [prompt] * 7, [[eos]] * 7, np.ones(7, np.float32), [""] * 7, [""] * 7)
    batch = collate(data, np.arange(7), eos, device)
    args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
    direct = [classes[i] for i in score_classes(model, *args, candidates).argmax(dim=1).tolist()]
    assert scored == direct
    no_text, no_map, _ = selm_predict(
        model, tokenizer, feats, classes, to_class, selm, small, device, generate_answers=False
    )
    assert no_text == [""] * 7 and no_map == [UNMAPPED] * 7


def test_run_eval_ood_scores_every_row_once_per_method(monkeypatch, tmp_path):
    table = manifest(speakers=4, per_class=2)
    (tmp_path / "selm").mkdir()
    (tmp_path / "selm" / "candidates.json").write_text(json.dumps({"categorical": list(CLASSES)}))
    ids = list(table["utterance_id"])

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        return ArrayFrames(
            [np.full((2, 3), ids.index(u), np.float32) for u in rows["utterance_id"]]
        )

    pd.DataFrame(
        {"view": "categorical", "split": "train", "answer": list(CLASSES), "weight": 1.0}
    ).to_csv(tmp_path / "selm" / "triplets.csv", index=False)

    def predict(model, tokenizer, feats, classes, to_class, selm, eval_ood, device, **kw):
        # class scoring says the truth; generation names nothing
        truth = [ids[int(f[0, 0])].split("_")[1] for f in feats]
        scores = np.eye(len(classes))[[classes.index(t) for t in truth]]
        n = len(feats)
        return SELMPrediction(["hmm"] * n, [UNMAPPED] * n, truth, scores, np.zeros(3))

    monkeypatch.setattr(eval_stage, "read_curated", lambda common: ({"crema_d": table}, {}))
    monkeypatch.setattr(eval_stage, "load_trained", lambda common, device: (Model(), None))
    baseline = PooledClassifier(
        6, len(CLASSES), 4, 0.0, np.zeros(6, np.float32), np.ones(6, np.float32)
    )
    monkeypatch.setattr(
        eval_stage, "train_baseline", lambda *a, device: (baseline, list(CLASSES), None)
    )
    monkeypatch.setattr(eval_stage, "open_frames", frames)
    monkeypatch.setattr(eval_stage, "selm_predict", predict)
    monkeypatch.setattr(eval_stage, "content_free_scores", lambda *a: np.zeros(len(CLASSES)))
    monkeypatch.setattr(
        eval_stage,
        "restricted_predictions",
        lambda m, x, tc, tt, classes: np.asarray(["sad"] * len(x), dtype=object),
    )

    common = {"device": "cpu", "seed": 34, "output_root": str(tmp_path)}
    eval_ood = {
        "test_corpora": ["crema_d"],
        "batch_size": 4,
        "num_beams": 1,
        "max_new_tokens": 2,
        "bootstrap": 50,
        "headline": "selm_score",
        "em_prior_strength": 1.0,
        "content_free": "mean_frame",
        "temperature_scaling": False,
        "calibration_bins": 15,
    }
    curate = {"class_sets": {"crema_d": "crema_d6"}, "ravdess_calm": "neutral"}
    selm = {"backbone": "b", "train_corpora": [], "views": {"categorical": {"answer": "{emotion}"}}}
    result = eval_stage.run_eval_ood(common, FEATURES, selm, curate, eval_ood)
    assert result.metrics["in_domain"] == {}  # no training corpus given here
    # class scoring is always right here and the baseline never: paired, SELM is better
    paired = result.metrics["paired"]["crema_d"]["selm_score_vs_classifier_baseline"]
    assert paired["verdict"] == "better" and paired["accuracy"]["ci95"][0] > 0
    assert paired["mcnemar"]["b_only"] == 0 and result.metrics["headline"] == "selm_score"
    n = len(table) - 1  # the quarantined row is not evaluated
    counts = result.predictions.groupby("method")["utterance_id"].nunique().to_dict()
    assert counts == {m: n for m in METHODS} and len(result.predictions) == n * len(METHODS)
    assert result.metrics["selm_score"]["crema_d"]["accuracy"] == 1.0
    assert result.metrics["selm_generate"]["crema_d"]["accuracy"] == 0.0  # unmapped is an error
    assert result.unmapped_rate["crema_d"] == 1.0
    assert result.excluded["crema_d"] == {"quarantined": 1, "outside_class_set": 0}
    assert (tmp_path / "eval_ood" / "predictions.csv").is_file()
    assert (tmp_path / "eval_ood" / "baseline.pt").is_file()
    gains = result.metrics["relative_gain_over_best_baseline"]["crema_d"]
    assert gains["selm_score"] > 0
    with pytest.raises(ValueError, match="never occur as a categorical answer"):
        (tmp_path / "selm" / "candidates.json").write_text(json.dumps({"categorical": ["angry"]}))
        eval_stage.run_eval_ood(common, FEATURES, selm, curate, eval_ood)


def test_weighted_loss_weights_triplets_and_averages_over_answer_tokens():
    output = {"log_likelihood": torch.tensor([-2.0, -9.0])}  # summed over each answer's tokens
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])  # 1 and 3 answer tokens
    batch = {"answer_mask": mask, "weights": torch.tensor([1.0, 0.5])}
    # -(1 * -2 + 0.5 * -9) / (1 * 1 + 0.5 * 3); unweighted would be 11 / 4, a mean of per-triplet
    # token means (1 * 2 + 0.5 * 3) / 1.5
    assert float(weighted_loss(output, batch)) == pytest.approx(6.5 / 2.5)
    batch["weights"] = torch.tensor([1.0, 0.0])  # a weight of 0 drops the triplet
    assert float(weighted_loss(output, batch)) == pytest.approx(2.0)


def test_train_selm_checkpoints_persist_outside_the_outputs_and_are_fingerprinted(tmp_path):
    import pandas as pd

    from selm_lib.stages import train_selm as stage

    common = {"output_root": str(tmp_path), "seed": 34}
    folder = stage.checkpoint_dir(common)
    assert folder == tmp_path / "checkpoints" / "train_selm"  # not under selm/, which DVC deletes
    triplets = pd.DataFrame(
        {
            "corpus": ["a"],
            "utterance_id": ["u"],
            "view": ["categorical"],
            "answer": ["sad"],
            "split": ["train"],
            "weight": [1.0],
        }
    )
    backbone = {"name": "w2v", "source": "preset:tiny-wav2vec2", "layer": 4}
    base = stage.run_fingerprint(common, backbone, {"dropout": 0.1}, {"epochs": 3}, triplets)
    assert base == stage.run_fingerprint(
        common, backbone, {"dropout": 0.1}, {"epochs": 3}, triplets
    )
    assert base != stage.run_fingerprint(
        common, backbone, {"dropout": 0.2}, {"epochs": 3}, triplets
    )
    assert base != stage.run_fingerprint(
        common, backbone, {"dropout": 0.1}, {"epochs": 3}, triplets.assign(answer="happy")
    )
    args = (common, backbone, {"dropout": 0.1}, {"epochs": 3}, triplets)
    assert stage.run_fingerprint(*args, ["store-key-a"]) != stage.run_fingerprint(
        *args, ["store-key-b"]
    )  # other features (weights, precision, audio) behind the same utterance ids
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"x")
    (folder / "best.pt").write_bytes(b"x")
    stage.finish_checkpoints(folder, best_epoch=2)
    assert sorted(p.name for p in folder.iterdir()) == ["status.json"]
    assert json.loads((folder / "status.json").read_text()) == {"best_epoch": 2, "completed": True}


def test_in_domain_scores_read_only_the_training_corpora_test_speakers(monkeypatch, tmp_path):
    import pandas as pd

    from selm_lib.data.corpora.base import MANIFEST_COLUMNS

    rows = []
    for s in range(4):
        for i, emotion in enumerate(["angry", "sad", "neutral", "neutral"]):
            row = {c: "" for c in MANIFEST_COLUMNS}
            row.update(corpus="emodb", utterance_id=f"s{s}_{i}", speaker=f"s{s}", emotion=emotion)
            rows.append(row)
    manifest = pd.DataFrame(rows)
    manifest.loc[0, "quarantine"] = "silent"
    splits = pd.DataFrame(
        {"utterance_id": manifest["utterance_id"], "split": ["test"] * 8 + ["train"] * 8}
    )
    seen = {}

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        seen["ids"] = list(rows["utterance_id"])
        return ArrayFrames([np.zeros((2, 3), np.float32)] * len(rows))

    def predict(model, tokenizer, feats, classes, to_class, selm, eval_ood, device, **kw):
        seen["classes"] = classes
        n, scores = len(feats), np.zeros((len(feats), len(classes)))
        return SELMPrediction([""] * n, [""] * n, ["neutral"] * n, scores, np.zeros(3))

    monkeypatch.setattr(eval_stage, "open_frames", frames)
    monkeypatch.setattr(eval_stage, "selm_predict", predict)
    monkeypatch.setattr(eval_stage, "content_free_scores", lambda m, t, f, c, *a: np.zeros(len(c)))
    monkeypatch.setattr(
        eval_stage,
        "restricted_predictions",
        lambda m, x, tc, tt, classes: np.asarray(["sad"] * len(x), dtype=object),
    )
    monkeypatch.setattr(
        eval_stage,
        "restricted_logits",
        lambda m, x, tc, tt, classes: np.zeros((len(x), len(classes))),
    )
    (tmp_path / "selm").mkdir()
    pd.DataFrame(  # SELM's training answers: happy too, which this corpus's test split lacks
        {"view": "categorical", "split": "train", "answer": ["angry", "happy", "neutral", "sad"]}
    ).assign(weight=1.0).to_csv(tmp_path / "selm" / "triplets.csv", index=False)
    scores = eval_stage.in_domain_scores(
        None,
        None,
        None,
        ["angry", "happy", "neutral", "sad"],
        {"output_root": str(tmp_path)},
        {},
        {
            "backbone": "b",
            "train_corpora": ["emodb"],
            "views": {"categorical": {"answer": "{emotion}"}},
        },
        {"emodb": manifest},
        {"emodb": splits},
        {"em_prior_strength": 1.0, "content_free": "zeros"},
        torch.device("cpu"),
    )
    assert seen["ids"] == [f"s{s}_{i}" for s in (0, 1) for i in range(4)][1:]  # test, usable
    assert seen["classes"] == ["angry", "neutral", "sad"]  # the trained emotions present
    assert scores["emodb"]["selm_score"]["n"] == 7
    assert scores["emodb"]["selm_score"]["accuracy"] == pytest.approx(4 / 7)
    assert scores["emodb"]["classifier_baseline"]["accuracy"] == pytest.approx(2 / 7)
