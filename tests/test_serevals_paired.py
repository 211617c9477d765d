"""SER-Evals paired comparisons (backbone vs backbone, adjustment vs none) and contaminated
cells in the aggregate, the report text and the figures."""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from selm_lib.evaluation import metrics as M  # noqa: E402
from selm_lib.evaluation.paired import compare  # noqa: E402
from selm_lib.serevals import figures as sf  # noqa: E402
from selm_lib.serevals import paired as sp  # noqa: E402
from selm_lib.serevals import results as rs  # noqa: E402
from selm_lib.stages import serevals as stage  # noqa: E402

EMOTIONS = ["anger", "happiness", "sadness", "neutral"]
QUALITY = {"strong": 0.9, "weak": 0.35, "tied": 0.9}  # share of items each backbone gets right
VARIANT_QUALITY = {"none": 0.0, "train_prior": 0.3, "oracle": 0.0}  # added to OOD quality


def predictions_of(backbone: str, speakers: int = 24, per_speaker: int = 10) -> pd.DataFrame:
    """One probe item's predictions: in-domain c1, c2 and OOD c1 <-> c2 under three variants.
    The truth and the draws of which items are right are shared by every backbone; ``tied``
    predicts exactly as ``strong``."""
    frames = []
    cells = [("c1", "c1", "none"), ("c2", "c2", "none")] + [
        (a, b, v) for a, b in (("c1", "c2"), ("c2", "c1")) for v in VARIANT_QUALITY
    ]
    for train, test, variant in cells:
        rng = np.random.default_rng(ord(test[-1]))  # an utterance has one truth in every cell
        n = speakers * per_speaker
        truth = np.asarray(EMOTIONS, dtype=object)[rng.integers(0, 4, n)]
        draw = np.random.default_rng([ord(train[-1]), ord(test[-1]), len(variant)]).random(n)
        quality = QUALITY[backbone] - (0.4 if train != test else 0.0)
        quality += VARIANT_QUALITY[variant] if train != test else 0.0
        right = draw < min(quality, 1.0)
        shift = rng.integers(1, 4, n) + np.asarray([EMOTIONS.index(t) for t in truth])
        wrong = np.asarray(EMOTIONS, dtype=object)[shift % 4]
        frames.append(
            pd.DataFrame(
                {
                    "backbone": backbone,
                    "train": train,
                    "test": test,
                    "variant": variant,
                    "split": "speaker_disjoint",
                    "utterance_id": [f"{test}_{i:04d}" for i in range(n)],
                    "speaker": [f"{test}s{i // per_speaker}" for i in range(n)],
                    "truth": truth,
                    "prediction": np.where(right, truth, wrong),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def results_of(predictions: pd.DataFrame) -> pd.DataFrame:
    """results.csv rows scored from the predictions (the ``present`` convention)."""
    rows = []
    for (backbone, train, test, variant), cell in predictions.groupby(
        ["backbone", "train", "test", "variant"], sort=False
    ):
        classes = [c for c in EMOTIONS if c in set(cell["truth"])]
        out = M.summary(list(cell["truth"]), list(cell["prediction"]), classes)
        rows.append(
            {
                "backbone": backbone,
                "train": train,
                "test": test,
                "kind": "in_domain" if train == test else "ood",
                "cluster": "" if train == test else "main",
                "split": "speaker_disjoint",
                "variant": variant,
                **{m: round(float(out[m]), 6) for m in rs.METRICS},
                "n": len(cell),
                "classes": len(classes),
                "classes_averaged": len(classes),
                "chance_ua": round(1 / len(classes), 6),
                "majority_accuracy": 0.3,
            }
        )
    return pd.DataFrame(rows, columns=rs.RESULT_COLUMNS)


def params_of(tmp_path, backbones=("strong", "weak"), reference="best", sources=None) -> dict:
    sources = sources or {}
    return {
        "common": {"seed": 7, "output_root": str(tmp_path / "artifacts"), "device": "cpu"},
        "features": {
            "backbones": {
                b: {"source": sources.get(b, "preset:logmel"), "layer": "last"} for b in backbones
            }
        },
        "serevals_sweep": {"backbones": list(backbones)},
        "serevals": {
            "corpora": ["c1", "c2"],
            "clusters": {"main": ["c1", "c2"]},
            "split": "speaker",
            "normalize": "corpus",
            "mask_absent": True,
            "metric_convention": "present",
            "em_prior_strength": 1.0,
            "exclude_contaminated": True,
            "paired": {
                "reference": reference,
                "variant": "none",
                "metrics": ["macro_f1", "unweighted_accuracy"],
                "bootstrap": 300,
            },
        },
    }


@pytest.fixture(scope="module")
def data():
    predictions = {b: predictions_of(b) for b in QUALITY}
    results = results_of(pd.concat(predictions.values(), ignore_index=True))
    return predictions, results


def block(tmp_path, data, backbones=("strong", "weak"), contaminated=None, **kw):
    predictions, results = data
    params = params_of(tmp_path, backbones, **kw)
    chosen = results[results["backbone"].isin(backbones)]
    return sp.paired_block(params, chosen, contaminated, read=predictions.__getitem__), params


def test_a_paired_row_equals_compare_called_directly(tmp_path, data):
    out, params = block(tmp_path, data)
    predictions = data[0]
    assert out["reference"] == {"in_domain": "strong", "ood": "strong"}  # best mean macro-F1
    row = next(r for r in out["backbones"] if (r["train"], r["test"]) == ("c1", "c2"))
    assert (row["a"], row["b"], row["kind"]) == ("weak", "strong", "ood")
    a, b = (
        predictions[x].query("train == 'c1' and test == 'c2' and variant == 'none'")
        for x in ("weak", "strong")
    )
    direct = compare(
        a["truth"].to_numpy(object),
        a["prediction"].to_numpy(object),
        b["prediction"].to_numpy(object),
        a["speaker"].to_numpy(object),
        [c for c in sp.CLASSES if c in set(a["truth"])],
        metrics=("macro_f1", "unweighted_accuracy"),
        n_boot=300,
        seed=7,
    )
    assert {k: row[k] for k in direct} == direct
    assert row["n"] == len(a) and row["cluster_unit"] == "speaker" and row["clusters"] == 24
    # the point difference is the difference of the cells' scores in results.csv
    results = data[1]
    scores = results.set_index(["backbone", "train", "test", "variant"])["macro_f1"]
    expected = scores["weak", "c1", "c2", "none"] - scores["strong", "c1", "c2", "none"]
    assert row["macro_f1"]["difference"] == pytest.approx(expected, abs=2e-6)
    adjusted = next(
        r
        for r in out["adjustment"]
        if (r["backbone"], r["train"], r["test"], r["a"]) == ("weak", "c2", "c1", "train_prior")
    )
    assert adjusted["b"] == "none"
    base = predictions["weak"].query("train == 'c2' and test == 'c1' and variant == 'none'")
    alt = predictions["weak"].query("train == 'c2' and test == 'c1' and variant == 'train_prior'")
    direct = compare(
        base["truth"].to_numpy(object),
        alt["prediction"].to_numpy(object),
        base["prediction"].to_numpy(object),
        base["speaker"].to_numpy(object),
        [c for c in sp.CLASSES if c in set(base["truth"])],
        metrics=("macro_f1", "unweighted_accuracy"),
        n_boot=300,
        seed=7,
    )
    assert {k: adjusted[k] for k in direct} == direct


def test_verdicts_follow_the_interval(tmp_path, data):
    out, _ = block(tmp_path, data, backbones=("strong", "weak", "tied"))
    rows = out["backbones"] + out["adjustment"]
    for row in rows:
        lo, hi = row["macro_f1"]["ci95"]
        expected = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable"
        assert row["verdict"] == expected
    verdicts = {(r["a"], r["train"], r["test"]): r["verdict"] for r in out["backbones"]}
    # weak (0.35 right in-domain) against strong (0.9): worse; tied predicts as strong does
    assert verdicts["weak", "c1", "c1"] == "worse"
    assert verdicts["tied", "c1", "c1"] == "not distinguishable"
    tied = next(r for r in out["backbones"] if r["a"] == "tied")
    assert tied["macro_f1"]["difference"] == 0 and tied["mcnemar"]["p_value"] == 1.0
    gains = {(r["backbone"], r["a"]) for r in out["adjustment"] if r["verdict"] == "better"}
    assert ("weak", "train_prior") in gains  # +0.3 of the items right
    assert out["tally"]["backbones"]["in_domain"]["weak"]["worse"] == 2
    assert out["tally"]["backbones"]["in_domain"]["tied"]["not distinguishable"] == 2
    assert out["tally"]["adjustment"]["weak"]["oracle"]["not distinguishable"] == 2


def test_reference_by_name_and_a_bad_reference(tmp_path, data):
    out, _ = block(tmp_path, data, reference="weak")
    assert out["reference"] == {"in_domain": "weak", "ood": "weak"}
    assert {r["a"] for r in out["backbones"]} == {"strong"}
    with pytest.raises(rs.SerevalsError, match=r"serevals\.paired\.reference"):
        block(tmp_path, data, reference="nobody")


def test_single_speaker_cells_resample_utterances_and_few_clusters_are_said(tmp_path):
    a = predictions_of("strong", speakers=1, per_speaker=60)
    b = predictions_of("weak", speakers=1, per_speaker=60)
    a, b = (x.query("train == 'c1' and test == 'c1'") for x in (a, b))
    result = sp.compare_cell(a, b, metrics=["macro_f1"], n_boot=200, seed=0)
    assert result["cluster_unit"] == "utterance" and result["clusters"] == 60
    few = sp.compare_cell(
        predictions_of("strong", speakers=4).query("train == 'c1' and test == 'c1'"),
        predictions_of("weak", speakers=4).query("train == 'c1' and test == 'c1'"),
        metrics=["macro_f1"],
        n_boot=200,
        seed=0,
    )
    assert few["cluster_unit"] == "speaker" and few["clusters"] == 4 and few["few_clusters"]
    text = rs.paired_text({"paired": sp_block_like(few)})
    assert "Few clusters" in text and "c1 (in-domain)" in text and "by utterance" not in text
    text = rs.paired_text({"paired": sp_block_like(result)})
    assert "Resampled by utterance" in text and "Few clusters" not in text


def sp_block_like(result):
    row = {"kind": "in_domain", "train": "c1", "test": "c1", "a": "weak", "b": "strong"}
    return {
        "verdict_metric": "macro_f1",
        "reference": {"in_domain": "strong", "ood": "strong"},
        "reference_setting": "best",
        "verdict_rule": "rule",
        "bootstrap": 200,
        "seed": 0,
        "metric_convention": "present",
        "variant": "none",
        "few_clusters_below": 20,
        "exclude_contaminated": True,
        "backbones": [{**row, "contaminated": False, **result}],
        "adjustment": [],
    }


def test_seeds_are_pooled_with_speakers_as_clusters(data):
    one = data[0]["strong"].query("train == 'c1' and test == 'c1'")
    other = data[0]["weak"].query("train == 'c1' and test == 'c1'")
    two_a = pd.concat([one.assign(seed=0), one.assign(seed=1)])
    two_b = pd.concat([other.assign(seed=0), other.assign(seed=1)])
    result = sp.compare_cell(two_a, two_b, metrics=["macro_f1"], n_boot=100, seed=0)
    assert result["n"] == 2 * len(one) and result["clusters"] == 24


def test_contaminated_cell_is_flagged_left_out_and_named(tmp_path, data):
    predictions, results = data
    # 'strong' runs a checkpoint the ledger says was trained on every SER-Evals corpus; here its
    # cells on test corpus c2 are the contaminated ones
    cells = {"strong": ["c2"]}
    out, params = block(tmp_path, data, contaminated=cells)
    flagged = [r for r in out["backbones"] if r["contaminated"]]
    assert {(r["train"], r["test"]) for r in flagged} == {("c2", "c2"), ("c1", "c2")}
    assert out["tally"]["backbones"]["ood"]["weak"]["contaminated"] == 1
    assert sum(out["tally"]["backbones"]["ood"]["weak"][v] for v in sp.VERDICTS) == 1
    contamination = rs.contamination_summary(
        cells, {"strong": "x/emotionwhisper", "weak": "preset:logmel"}, {}, True
    )
    chosen = results[results["backbone"].isin(["strong", "weak"])]
    params["serevals"]["split"] = "speaker"
    scores = rs.summary(chosen, params, contamination=contamination, paired=out)
    ood = chosen[(chosen.kind == "ood") & (chosen.variant == "none")]
    clean = ood[~((ood.backbone == "strong") & (ood.test == "c2"))]
    assert scores["backbones"]["strong"]["ood"]["none"]["macro_f1"] == pytest.approx(
        clean[clean.backbone == "strong"]["macro_f1"].mean(), abs=1e-6
    )
    assert scores["backbones"]["strong"]["ood"]["none"]["contaminated_excluded"] == 1
    assert scores["mean_over_backbones"]["ood"]["none"]["macro_f1"] == pytest.approx(
        clean["macro_f1"].mean(), abs=1e-6
    )
    assert scores["backbones"]["strong"]["in_domain"]["contaminated_cells"] == 1
    text = rs.contamination_text(scores, chosen)
    assert "strong: c1 -> c2" in text and "strong: c2 (in-domain)" in text
    assert "left out of the OOD averages" in text and "weak: " not in text
    sentence = rs.summary_sentence(scores, ["c1", "c2"], ["strong", "weak"], synthetic=True)
    assert "contaminated (backbone, test corpus) cells flagged: 1" in sentence
    table, _ = rs.in_domain_table(chosen, ["c1", "c2"], ["strong", "weak"], "present", cells)
    assert list(table["contaminated"]) == ["", "strong"]
    pairs = rs.pair_table(chosen, "none", cells, exclude=True)
    weak = chosen[(chosen.backbone == "weak") & (chosen.train == "c1") & (chosen.variant == "none")]
    assert pairs.loc[("c1", "c2"), "macro_f1"] == pytest.approx(
        float(weak[weak.test == "c2"]["macro_f1"].iloc[0])
    )
    assert pairs.loc[("c1", "c2"), "contaminated"] == 1
    # kept in the averages when exclude_contaminated is false
    kept = rs.summary(
        chosen, params, contamination={**contamination, "exclude_contaminated": False}
    )
    assert kept["mean_over_backbones"]["ood"]["none"]["macro_f1"] == pytest.approx(
        ood["macro_f1"].mean(), abs=1e-6
    )


def test_the_stage_writes_paired_and_contamination_deterministically(tmp_path, data, monkeypatch):
    predictions, results = data
    sources = {"strong": "someone/emotionwhisper-large", "weak": "preset:logmel"}
    params = params_of(tmp_path, sources=sources)
    params["serevals"]["test_share"] = 0.2
    params["serevals"]["max_seconds"] = 30
    monkeypatch.setattr(stage, "project_root", lambda: tmp_path)
    for backbone in ("strong", "weak"):
        folder = rs.probe_folder(params, backbone)
        folder.mkdir(parents=True)
        results[results.backbone == backbone].to_csv(folder / "results.csv", index=False)
        predictions[backbone].to_csv(folder / "predictions.csv", index=False)
    # an item's meta without the source (an older item) is refused, naming the item to rerun
    (rs.probe_folder(params, "strong") / "meta.json").write_text("{}")
    with pytest.raises(rs.SerevalsError, match=r"rerun dvc repro serevals_probe@strong"):
        stage.serevals(params, argparse.Namespace())
    # the sources come from the items' meta, not from features.backbones (the stage reads none)
    for backbone, source in sources.items():
        meta = rs.probe_folder(params, backbone) / "meta.json"
        meta.write_text(json.dumps({"source": source}))
    del params["features"]
    stage.serevals(params, argparse.Namespace())
    path = tmp_path / "reports" / "metrics" / "serevals.json"
    first = path.read_bytes()
    stage.serevals(params, argparse.Namespace())
    assert path.read_bytes() == first
    scores = json.loads(first)
    # emotionwhisper (the ledger: every SER-Evals corpus) is not trained on c1 or c2 here
    assert scores["contamination"]["cells"] == {}
    assert scores["paired"]["reference"]["ood"] == "strong"
    assert len(scores["paired"]["backbones"]) == 4 and len(scores["paired"]["adjustment"]) == 8
    about = json.loads((tmp_path / "artifacts/serevals/matrices/matrices.json").read_text())
    assert about["about"]["contaminated"] == {} and about["about"]["exclude_contaminated"]
    params["serevals"]["corpora"] = ["c1", "c2", "emodb"]  # a ledger corpus among them
    flags = stage.contamination(params, rs.read_meta(params))
    assert flags["cells"]["strong"]["test_corpora"] == ["emodb"]


def test_figures_leave_contaminated_cells_out_of_the_averages_and_mark_them():
    corpora = ["c1", "c2", "c3"]
    dirty = pd.DataFrame(
        [[0.8, 0.9, 0.3], [0.5, 0.7, 0.1], [0.2, 0.9, 0.6]], index=corpora, columns=corpora
    )
    clean = dirty * 0.5
    matrices = {"dirty": dirty, "clean": clean}
    cells = {"dirty": ["c2"]}
    masked = sf.mask_contaminated(matrices, cells)
    assert np.isnan(masked["dirty"].loc["c1", "c2"]) and masked["dirty"].loc["c2", "c2"] == 0.7
    rows = sf.means_table(masked, 0)
    assert rows.loc["c1", "dirty"] == pytest.approx(0.3)  # (c1 -> c3) only
    assert rows.loc["c1", sf.AVERAGE] == pytest.approx((0.3 + (0.45 + 0.15) / 2) / 2)
    ranking = sf.ranking_table(masked)
    assert ranking.loc["dirty", "in_domain"] == pytest.approx((0.8 + 0.7 + 0.6) / 3)
    assert ranking.loc["dirty", "ood"] == pytest.approx((0.3 + 0.5 + 0.1 + 0.2) / 4)
    labels = sf.flagged_labels(masked, cells, exclude=True)
    assert list(labels) == ["dirty (contaminated cells excluded)", "clean"]
    figures = dict(sf.heatmaps(matrices, "macro F1", "none", cells, exclude=True))
    texts = [t.get_text() for t in figures["heatmap_dirty"].axes[0].texts]
    assert "0.90 (c)" in texts and "0.30" in texts
    assert "(c) contaminated" in figures["heatmap_dirty"].axes[0].get_title()
    assert not any("(c)" in t.get_text() for t in figures["heatmap_clean"].axes[0].texts)
    note = sf.own_contamination_note({"contaminated": cells, "exclude_contaminated": True})
    assert "`dirty` on c2" in note and "left out of every OOD average" in note
    assert "no cell is flagged" in sf.own_contamination_note({"contaminated": {"x": []}})
    plt.close("all")
