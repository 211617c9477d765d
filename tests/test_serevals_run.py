"""SER-Evals stage logic: clusters, in-domain splits, scoring, the per-backbone run, matrices."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from selm_lib.features.frames import ArrayFrames
from selm_lib.serevals import protocol as sr
from selm_lib.serevals import results as rs
from selm_lib.serevals.results import VARIANTS

CORPUS_ROWS, LOAD_FRAMES, READ_RESULTS = sr.corpus_rows, sr.load_frames, rs.read_results
CLUSTERS = {"a": ["c1", "c2", "missing"], "b": ["c3", "c4"], "c": ["c1", "c2"]}


def test_cluster_pairs_within_clusters_only_and_once():
    pairs = rs.cluster_pairs(CLUSTERS, ["c1", "c2", "c3", "solo"])
    assert [(t, s) for _, t, s in pairs] == [("c1", "c2"), ("c2", "c1")]
    assert {c for c, _, _ in pairs} == {"a"}  # first cluster that holds the pair
    assert rs.unavailable_members(CLUSTERS, ["c1", "c2", "c3"]) == {
        "a": ["missing"],
        "b": ["c4"],
    }


def frame(speakers: int, per_speaker: int, corpus: str = "x") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "corpus": corpus,
            "utterance_id": [f"{s}_{i:03d}" for s in range(speakers) for i in range(per_speaker)],
            "speaker": [f"spk{s}" for s in range(speakers) for _ in range(per_speaker)],
        }
    )


def test_speaker_split_is_disjoint_deterministic_and_labelled():
    rows = frame(10, 6)
    test, label = sr.in_domain_split(rows, "x", "speaker", 0.2, seed=3)
    assert label == rs.SPEAKER_DISJOINT
    assert set(rows["speaker"][test]).isdisjoint(rows["speaker"][~test])
    assert rows["speaker"][test].nunique() == 2
    again, _ = sr.in_domain_split(rows, "x", "speaker", 0.2, seed=3)
    assert np.array_equal(test, again)


def test_random_split_and_one_speaker_are_labelled_overlapping():
    rows = frame(5, 20)
    test, label = sr.in_domain_split(rows, "x", "random", 0.2, seed=0)
    assert label == rs.SPEAKER_OVERLAPPING and test.sum() == 20
    one = frame(1, 30)
    test, label = sr.in_domain_split(one, "thorsten", "speaker", 0.2, seed=0)
    assert label == rs.SPEAKER_OVERLAPPING and test.sum() == 6
    with pytest.raises(rs.SerevalsError, match="serevals.corpora"):
        sr.in_domain_split(frame(1, 1), "tiny", "speaker", 0.2, seed=0)


def test_score_drops_other_and_counts_foreign_predictions_as_errors():
    truth = ["anger", "anger", "sadness", "other", "sadness"]
    pred = ["anger", "fear", "sadness", "anger", "sadness"]
    out = sr.score(truth, pred, drop_other=True)
    assert out["n"] == 4 and out["classes"] == 2
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["unweighted_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["chance_ua"] == pytest.approx(0.5)
    kept = sr.score(truth, pred, drop_other=False)
    assert kept["n"] == 5 and kept["classes"] == 3


# ----------------------------------------------------------------------------- a small project

CLASSES_OF = {
    "c1": ["anger", "happiness", "sadness", "neutral"],
    "c2": ["anger", "happiness", "sadness", "neutral", "other"],
    "c3": ["anger", "sadness", "neutral"],  # in no cluster with a partner: in-domain only
    "c4": ["anger", "happiness", "neutral"],  # no sadness: an absent class when trained on
}
CENTRES = {
    c: np.random.default_rng(i).normal(0, 1, 6)
    for i, c in enumerate(["anger", "happiness", "sadness", "neutral", "other"])
}


def fake_params(tmp_path) -> dict:
    return {
        "common": {"seed": 34, "output_root": str(tmp_path / "artifacts"), "device": "cpu"},
        "features": {
            "backbones": {"b": {"source": "preset:logmel", "layer": "last", "max_seconds": 0.2}}
        },
        "serevals_sweep": {"backbones": ["b"]},
        "serevals": {
            "corpora": ["c1", "c2", "c3", "c4"],
            "clusters": {"main": ["c1", "c2", "c4"], "other": ["c3", "absent"]},
            "split": "speaker",
            "test_share": 0.25,
            "max_seconds": 0.2,
            "normalize": "corpus",
            "mask_absent": True,
            "metric_convention": "present",
            "em_prior_strength": 1.0,
            "probe": {
                "epochs": 12,
                "batch_size": 16,
                "learning_rate": 3e-3,
                "weight_decay": 0.1,
                "label_smoothing": 0.1,
                "grad_clip": 0.5,
                "warmup": 0.1,
                "hidden": 32,
                "dropout": 0.1,
            },
        },
    }


def fake_corpus(corpus: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(zlib.crc32(corpus.encode()))
    shift = np.random.default_rng(len(corpus) + int(corpus[-1])).normal(0, 0.3, 6)
    rows, frames = [], {}
    for s in range(4):
        for i, label in enumerate(CLASSES_OF[corpus] * 4):
            uid = f"{corpus}_s{s}_{i:02d}"
            rows.append(
                {
                    "corpus": corpus,
                    "utterance_id": uid,
                    "speaker": f"{corpus}s{s}",
                    "serevals8": label,
                }
            )
            n = int(rng.integers(8, 20))
            frames[uid] = (CENTRES[label] + shift + rng.normal(0, 0.8, (n, 6))).astype(np.float32)
    return pd.DataFrame(rows).sort_values("utterance_id").reset_index(drop=True), frames


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    data = {c: fake_corpus(c) for c in CLASSES_OF}
    seen_lengths = []

    def rows_of(params, corpus):
        return data[corpus][0]

    def frames_of(params, backbone, corpus, utterances):
        limit = int(params["serevals"]["max_seconds"] * 50)  # as a store cut before encoding
        out = [data[corpus][1][u][:limit] for u in utterances]
        seen_lengths.extend(len(f) for f in out)
        return ArrayFrames(out)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sr, "corpus_rows", rows_of)
        patch.setattr(sr, "load_frames", frames_of)
        params = fake_params(tmp_path_factory.mktemp("serevals"))
        yield params, seen_lengths, sr.run_backbone(params, "b")


def test_run_backbone_scores_in_domain_and_ood_pairs(project):
    params, lengths, (results, predictions, meta) = project
    in_domain = results[results["kind"] == "in_domain"]
    assert list(in_domain["train"]) == ["c1", "c2", "c3", "c4"]
    assert set(in_domain["split"]) == {rs.SPEAKER_DISJOINT}
    assert (in_domain["unweighted_accuracy"] > in_domain["chance_ua"]).all()
    ood = results[results["kind"] == "ood"]
    pairs = {(t, s) for t, s in zip(ood["train"], ood["test"], strict=True)}
    assert pairs == {(a, b) for a in ("c1", "c2", "c4") for b in ("c1", "c2", "c4") if a != b}
    assert len(ood) == 6 * len(VARIANTS)
    # other items of c2 are dropped in OOD scoring, kept in-domain
    c2_ood = ood[(ood["test"] == "c2")]
    assert (c2_ood["n"] == 4 * 16).all()
    assert "other" not in set(predictions[predictions["test"] != predictions["train"]].prediction)
    # trained on c4 (no sadness): with the mask, sadness is never predicted
    from_c4 = predictions[(predictions["train"] == "c4") & (predictions["test"] != "c4")]
    assert "sadness" not in set(from_c4["prediction"])
    assert meta["unavailable_cluster_members"] == {"other": ["absent"]}


def test_run_backbone_is_deterministic(project):
    params, _, (first, _, _) = project
    second, _, _ = sr.run_backbone(params, "b")
    pd.testing.assert_frame_equal(first, second)


def test_paper_flag_gives_absent_classes_the_bonus(project):
    params, _, _ = project
    params = {**params, "serevals": {**params["serevals"], "mask_absent": False}}
    _, predictions, _ = sr.run_backbone(params, "b")
    chosen = predictions[
        (predictions["train"] == "c4")
        & (predictions["test"] == "c1")
        & (predictions["variant"] == "train_prior")
    ]
    # every prediction is a class c4 never had (the collapse of the paper's MESD rows)
    assert set(chosen["prediction"]).isdisjoint(CLASSES_OF["c4"])


def test_matrices_and_summary(project, tmp_path):
    params, _, (results, _, _) = project
    table = rs.matrix(results, "b", "macro_f1", "estimated", params["serevals"]["corpora"])
    assert list(table.index) == list(table.columns) == ["c1", "c2", "c3", "c4"]
    assert np.isnan(table.loc["c3", "c1"]) and np.isnan(table.loc["c1", "c3"])
    diag = results[results["kind"] == "in_domain"].set_index("train")["macro_f1"]
    assert table.loc["c3", "c3"] == pytest.approx(diag["c3"])
    row = results[
        (results.train == "c1") & (results.test == "c2") & (results.variant == "estimated")
    ]
    assert table.loc["c1", "c2"] == pytest.approx(float(row["macro_f1"].iloc[0]))
    all_m = rs.matrices(results, params)
    rs.write_matrices(all_m, tmp_path / "m")
    assert (tmp_path / "m" / "b" / "oracle" / "accuracy.csv").is_file()
    nested = json.loads((tmp_path / "m" / "matrices.json").read_text())
    assert nested["b"]["estimated"]["macro_f1"]["c3"]["c1"] is None
    summary = rs.summary(results, params)
    block = summary["backbones"]["b"]
    assert block["in_domain"]["corpora"] == 4
    assert block["in_domain"]["macro_f1"] == pytest.approx(diag.mean(), abs=1e-6)
    assert block["ood"]["none"]["pairs"] == 6
    est = results[(results["kind"] == "ood") & (results["variant"] == "estimated")]
    above = (est["unweighted_accuracy"] > est["chance_ua"]).mean()
    assert block["ood"]["estimated"]["share_above_chance_ua"] == pytest.approx(above, abs=1e-6)


def test_missing_inputs_name_the_params_key(tmp_path):
    params = fake_params(tmp_path)
    # the unpatched functions (the module fixture patches the loaders while it is alive)
    with pytest.raises(rs.SerevalsError, match="curate.corpora"):
        CORPUS_ROWS(params, "c1")
    with pytest.raises(rs.SerevalsError, match="features.backbones.b.corpora"):
        LOAD_FRAMES(params, "b", "c1", ["u"])
    with pytest.raises(rs.SerevalsError, match="serevals_probe"):
        READ_RESULTS(params)


def test_corpus_normalisation_uses_the_corpus_statistics_only():
    """The probe's standardisation (one streaming pass, applied per batch on the device): every
    valid frame of the corpus ends with mean 0 and std 1, a constant dimension stays zero, and
    padding stays zero."""
    import torch

    from selm_lib.serevals.probe import Normalizer, _device_batch

    rng = np.random.default_rng(0)
    frames = [rng.normal(5.0, 3.0, (n, 4)).astype(np.float32) for n in (7, 12, 30)]
    frames[0][:, 3] = frames[1][:, 3] = frames[2][:, 3] = 2.0  # a constant dimension
    norm = Normalizer.of(ArrayFrames(frames))
    x, mask = _device_batch(ArrayFrames(frames), [0, 1, 2], torch.device("cpu"), norm)
    valid = x[mask].numpy()
    np.testing.assert_allclose(valid[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(valid[:, :3].std(axis=0), 1.0, atol=1e-4)
    assert np.all(valid[:, 3] == 0.0)
    assert x.shape == (3, 30, 4) and (x[~mask] == 0).all()


def test_random_split_is_labelled_in_every_output(project):
    params, _, _ = project
    params = {**params, "serevals": {**params["serevals"], "split": "random"}}
    results, _, meta = sr.run_backbone(params, "b")
    assert set(results["split"]) == {rs.SPEAKER_OVERLAPPING}
    assert set(meta["split"].values()) == {rs.SPEAKER_OVERLAPPING}
    assert rs.summary(results, params)["split_labels"] == [rs.SPEAKER_OVERLAPPING]


def test_outputs_carry_the_split_and_collapses_are_counted(project, tmp_path):
    params, _, (results, predictions, _) = project
    assert set(predictions["split"]) == {rs.SPEAKER_DISJOINT}
    summary = rs.summary(results, params)
    assert summary["split_per_corpus"] == dict.fromkeys(
        ["c1", "c2", "c3", "c4"], rs.SPEAKER_DISJOINT
    )
    # every in-domain probe of the fake corpora beats chance (checked row by row above)
    assert summary["backbones"]["b"]["in_domain"]["share_above_chance_ua"] == 1.0
    rs.write_matrices(rs.matrices(results, params), tmp_path / "m", about={"normalize": "corpus"})
    assert json.loads((tmp_path / "m" / "matrices.json").read_text())["about"] == {
        "normalize": "corpus"
    }
    folder = rs.probe_folder(params, "b")
    folder.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(folder / "predictions.csv", index=False)
    before = rs.single_class_share(params)
    rows = predictions.copy()
    chosen = (rows["train"] == "c1") & (rows["test"] == "c2") & (rows["variant"] == "oracle")
    rows.loc[chosen, "prediction"] = "anger"  # one collapsed cell out of 6 oracle cells
    rows.to_csv(folder / "predictions.csv", index=False)
    share = rs.single_class_share(params)
    assert list(share.index) == list(VARIANTS)
    assert share["oracle"] == pytest.approx(before["oracle"] + 1 / 6)  # the c1 -> c2 cell
    assert share.drop("oracle").equals(before.drop("oracle"))


def test_a_corpus_labelled_only_other_is_an_error(project):
    params, _, _ = project
    original = sr.corpus_rows

    def all_other(params, corpus):
        rows = original(params, corpus).copy()
        if corpus == "c3":
            rows["serevals8"] = "other"
        return rows

    sr.corpus_rows = all_other
    try:
        with pytest.raises(rs.SerevalsError, match="'c3'.*'other'.*serevals.corpora"):
            sr.run_backbone(params, "b")
    finally:
        sr.corpus_rows = original


def test_em_fits_are_recorded_and_aggregated(project):
    params, _, (results, predictions, meta) = project
    fits = meta["em"]
    assert len(fits) == 6 * len(rs.EM_VARIANTS)  # one per OOD pair and EM variant
    assert {f["variant"] for f in fits} == set(rs.EM_VARIANTS)
    for fit in fits:
        assert isinstance(fit["converged"], bool) and fit["iterations"] >= 1
        assert fit["prior"]["other"] == 0.0
        # fitted on the scored items only: c2's 16 other items (of 80) are left out
        scored = [c for c in CLASSES_OF[fit["test"]] if c != "other"]
        assert fit["n_fit"] == 16 * len(scored)
    assert meta["metric_convention"] == "present" and meta["em_prior_strength"] == 1.0
    ood = predictions[predictions["train"] != predictions["test"]]
    summary = rs.summary(results, params, ood, {"b": meta})
    assert summary["metric_convention"] == "present"
    assert summary["em"]["variants"]["estimated"]["fits"] == 6
    failed = sum(not f["converged"] for f in fits)
    assert len(summary["em"]["not_converged"]) == failed
    block = summary["backbones"]["b"]["ood"]
    assert set(block) == set(VARIANTS)
    expected = rs.collapse_share(ood)
    for variant in VARIANTS:
        assert block[variant]["collapse_share"] == pytest.approx(expected[variant], abs=1e-6)
        assert 0.0 <= block[variant]["single_class_share"] <= block[variant]["collapse_share"]
    text = rs.summary_sentence(summary, ["c1", "c2", "c3", "c4"], ["b"], synthetic=True)
    assert "metric convention present" in text and "collapsed to one class" in text
    assert "estimated_map" in text


def test_published_convention_in_the_run(project):
    params, _, (present, _, _) = project
    params = {**params, "serevals": {**params["serevals"], "metric_convention": "published"}}
    published, _, meta = sr.run_backbone(params, "b")
    assert meta["metric_convention"] == "published"
    keys = ["train", "test", "variant"]
    merged = present.merge(published, on=keys, suffixes=("_present", "_published"))
    assert len(merged) == len(present)
    # never higher; lower exactly where a class outside the truth was predicted
    assert (merged["macro_f1_published"] <= merged["macro_f1_present"] + 1e-9).all()
    wider = merged["classes_averaged_published"] > merged["classes_present"]
    lower = merged["macro_f1_published"] < merged["macro_f1_present"] - 1e-9
    assert (lower <= wider).all()
    assert (merged["accuracy_published"] == merged["accuracy_present"]).all()
    assert rs.summary(published, params)["metric_convention"] == "published"


def test_speaker_split_reaches_the_utterance_share_and_official_split_is_kept():
    """With few speakers of very different sizes (MELD's main characters) whole speakers are
    added until the test part holds the share of utterances; ``official`` keeps the corpus's
    own test split where it has one."""
    sizes = {"joey": 60, "ross": 50, "rachel": 40, "a": 5, "b": 5, "c": 5, "d": 5}
    rows = pd.DataFrame(
        {"speaker": [s for s, n in sizes.items() for _ in range(n)], "utterance_id": range(170)}
    )
    shares = []
    for seed in range(8):
        test, label = sr.in_domain_split(rows, "meld", "speaker", 0.2, seed)
        assert label == rs.SPEAKER_DISJOINT
        assert not set(rows.speaker[test]) & set(rows.speaker[~test])  # whole speakers
        assert test.any() and not test.all()
        shares.append(test.mean())
    # reached with whole speakers: at least the share, overshooting by at most one speaker
    assert all(0.2 <= s < 0.2 + 60 / 170 for s in shares)
    official = rows.assign(official_split=["test" if i % 5 == 0 else "train" for i in range(170)])
    test, label = sr.in_domain_split(official, "meld", "official", 0.2, 0)
    assert label == rs.OFFICIAL and test.sum() == 34
    test, label = sr.in_domain_split(rows, "emodb", "official", 0.2, 0)  # no official split
    assert label == rs.SPEAKER_DISJOINT
    with pytest.raises(rs.SerevalsError, match="speaker, random or official"):
        sr.in_domain_split(rows, "meld", "speakers", 0.2, 0)
