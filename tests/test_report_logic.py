"""The logic that used to live in the report notebooks, now in the library: verdicts, crossings,
tables and sentences built from stage outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from selm_lib.evaluation.compare import crossing, fewshot_sentences, fewshot_table
from selm_lib.evaluation.results import EvalError, OODResult
from selm_lib.report.notebook import synthetic_corpora, with_interval
from selm_lib.serevals import figures as sf
from selm_lib.serevals import results as sr


def curve(values: dict[int, float], half: float = 0.01) -> dict:
    return {
        str(k): {"accuracy": {"mean": v, "ci95": [v - half, v + half]}} for k, v in values.items()
    }


SUMMARY = {
    "ravdess": {
        "selm_mappers": curve({0: 0.30, 2: 0.40, 4: 0.45}),
        "classifier_baseline": curve({0: 0.35, 2: 0.38, 4: 0.50}),
    },
    "crema_d": {
        "selm_mappers": curve({0: 0.5, 2: 0.6, 4: 0.7}),
        "classifier_baseline": curve({0: 0.1, 2: 0.2, 4: 0.3}),
    },
}


def test_crossing_names_the_ks_where_the_order_changes():
    text = crossing(SUMMARY, "ravdess", "selm_mappers")
    assert text.startswith("selm_mappers is above classifier_baseline at k = [2]")
    assert "cross at k = [2, 4]" in text
    assert crossing(SUMMARY, "crema_d", "selm_mappers").endswith(
        "stays above classifier_baseline for every k."
    )
    assert crossing(SUMMARY, "crema_d", "classifier_baseline", "selm_mappers").endswith(
        "stays below selm_mappers for every k."
    )


def test_fewshot_sentences_and_table():
    lines = fewshot_sentences(
        SUMMARY, ["ravdess", "crema_d"], ["selm_mappers", "classifier_baseline"], [0, 2, 4]
    )
    assert len(lines) == 2  # one per corpus for the one SELM method
    assert (
        lines[0].startswith("**ravdess**")
        and "goes from 0.300 at k = 0 to 0.450 at k = 4" in lines[0]
    )
    assert fewshot_sentences(SUMMARY, ["ravdess"], ["selm_mappers"], [0, 4]) == []  # no baseline
    for corpus in SUMMARY:  # the table needs the other metrics too
        for method in SUMMARY[corpus]:
            for k in SUMMARY[corpus][method].values():
                k["macro_f1"] = k["accuracy"]
    table = fewshot_table(SUMMARY, ["ravdess"], ["selm_mappers"], [0, 4], "macro_f1")
    assert table.loc[("ravdess", "selm_mappers"), 4] == "0.450 [0.440, 0.460]"
    assert with_interval(0.4125, 0.38, 0.445) == "0.412 [0.380, 0.445]"


def paired_entry(verdict: str, ci: tuple[float, float], clusters: int = 12) -> dict:
    return {
        "accuracy": {"difference": sum(ci) / 2, "ci95": list(ci), "p_value": 0.01},
        "unweighted_accuracy": {"difference": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0},
        "mcnemar": {"a_only": 9, "b_only": 2, "statistic": 2.0, "p_value": 0.065, "exact": True},
        "verdict": verdict,
        "clusters": clusters,
        "few_clusters": clusters < 20,
    }


def ood_result(
    accuracy: dict[str, float], interval: tuple[float, float], paired: dict | None = None
) -> OODResult:
    metrics = {
        m: {"ravdess": {"accuracy": a, "n": 40, "ci95": {"accuracy": list(interval)}}}
        for m, a in accuracy.items()
    }
    metrics["headline"] = "selm_score"
    metrics["paired"] = {
        "ravdess": paired
        or {
            f"{a}_vs_{b}": paired_entry("not distinguishable", (-0.05, 0.05))
            for a in ("selm_score", "selm_generate")
            for b in ("classifier_baseline", "majority")
        }
    }
    metrics["relative_gain_over_best_baseline"] = {
        "ravdess": {"best_baseline": "majority", "selm_generate": 0.5, "selm_score": -0.25}
    }
    return OODResult(
        pd.DataFrame(),
        metrics,
        {"ravdess": ["a", "b", "c", "d"]},
        {"ravdess": {"quarantined": 1, "outside_class_set": 2}},
        {"ravdess": 0.125},
    )


@pytest.mark.parametrize(
    ("verdict", "ci", "text"),
    [
        ("better", (0.02, 0.09), "better than classifier_baseline"),
        ("not distinguishable", (-0.03, 0.06), "not distinguishable from classifier_baseline"),
        ("worse", (-0.2, -0.1), "worse than classifier_baseline"),
    ],
)
def test_verdict_comes_from_the_paired_comparison_of_the_headline_variant(verdict, ci, text):
    """The verdict is about eval_ood.headline (never the variant that did better on the test
    set: selm_generate scores higher here) and comes from the paired bootstrap of the
    difference, not from one method's interval against the other's point estimate."""
    accuracy = {
        "selm_generate": 0.6,
        "selm_score": 0.5,
        "classifier_baseline": 0.45,
        "majority": 0.4,
        "chance": 0.25,
    }
    paired = {
        "selm_score_vs_classifier_baseline": paired_entry(verdict, ci, clusters=10),
        "selm_score_vs_majority": paired_entry("better", (0.05, 0.15), clusters=10),
    }
    line = ood_result(accuracy, (0.3, 0.7), paired).verdict("ravdess")
    assert line.startswith("**ravdess** (40 items, 4 classes, chance 0.25): selm_score reaches")
    assert text in line and f"95 % CI {ci[0]:+.3f} to {ci[1]:+.3f}" in line
    assert "better than majority" in line and "McNemar p 0.065" in line
    assert "With 10 speakers the intervals are coarse." in line
    assert "selm_generate" not in line and "12.5 % of generated" in line


def test_ood_result_tables_and_load(tmp_path):
    result = ood_result(
        {
            m: 0.4
            for m in ("selm_generate", "selm_score", "classifier_baseline", "majority", "chance")
        },
        (0.3, 0.5),
    )
    sets = result.test_sets({"ravdess": "ravdess"})
    assert (
        sets.loc["ravdess", "classes"] == "a, b, c, d" and sets.loc["ravdess", "quarantined"] == 1
    )
    gains = result.gains()
    assert gains.loc["selm_generate gain", "ravdess"] == "+50.0 %"
    assert gains.loc["unmapped answers", "ravdess"] == "12.5 %"
    with pytest.raises(EvalError, match="dvc repro eval_ood"):
        OODResult.load({"output_root": str(tmp_path)}, tmp_path / "ood.json")


def results_frame() -> pd.DataFrame:
    rows = []
    for backbone, shift in (("b1", 0.0), ("b2", 0.1)):
        for corpus in ("x", "y"):
            rows.append(
                dict(
                    backbone=backbone,
                    train=corpus,
                    test=corpus,
                    kind="in_domain",
                    split="speaker_disjoint",
                    variant="none",
                    macro_f1=0.5 + shift,
                    unweighted_accuracy=0.3 + shift,
                    chance_ua=0.25,
                    classes=4,
                    n=10,
                )
            )
        rows.append(
            dict(
                backbone=backbone,
                train="x",
                test="y",
                kind="ood",
                split="",
                variant="none",
                macro_f1=0.2 + shift,
                unweighted_accuracy=0.2,
                chance_ua=0.25,
                classes=4,
                n=8,
            )
        )
    return pd.DataFrame(rows)


def test_in_domain_table_and_pairs():
    table, text = sr.in_domain_table(results_frame(), ["y", "x"], ["b2", "b1"])
    assert list(table.index) == ["y", "x"] and list(table.columns[:2]) == ["b2", "b1"]
    assert (
        table.loc["x", "b2"] == pytest.approx(0.6) and table.loc["x", "split"] == "speaker_disjoint"
    )
    assert "above chance in 100% of the 4" in text and "b2 0.600, b1 0.500" in text
    pairs = sr.pair_table(results_frame())
    assert pairs.loc[("x", "y"), "macro_f1"] == pytest.approx(0.25)  # mean over backbones


def test_summary_sentence_with_and_without_ood_pairs():
    block = {
        "in_domain": {"macro_f1": 0.5},
        "ood": {"none": {"macro_f1": 0.2, "pairs": 3, "share_above_chance_ua": 0.5}},
    }
    scores = {"mean_over_backbones": block, "split_labels": ["speaker_disjoint"]}
    text = sr.summary_sentence(scores, ["x", "y"], ["b1"], synthetic=True)
    assert "(synthetic data)" in text and "over 3 pairs none 0.200" in text and "50% of" in text
    block["ood"] = {}
    assert sr.summary_sentence(scores, ["x"], ["b1"], synthetic=False).endswith("; no OOD pair.")


def test_matrix_reader_ranking_and_adjustment_effect(tmp_path):
    corpora = ["x", "y"]
    for backbone, ood, diagonal in (("b1", 0.2, 0.9), ("b2", 0.4, 0.7)):
        for variant, bonus in (("none", 0.0), ("oracle", 0.1)):
            folder = tmp_path / backbone / variant
            folder.mkdir(parents=True)
            table = pd.DataFrame(
                [[diagonal, ood + bonus], [np.nan, diagonal]], index=corpora, columns=corpora
            )
            table.to_csv(folder / "macro_f1.csv")
    read = sf.read_matrix(tmp_path, "b1", "none", "macro_f1", ["y", "x"])
    assert list(read.index) == ["y", "x"] and read.loc["x", "y"] == pytest.approx(0.2)
    with pytest.raises(FileNotFoundError, match="dvc repro serevals"):
        sf.read_matrix(tmp_path, "b3", "none", "macro_f1", corpora)
    matrices = {b: sf.read_matrix(tmp_path, b, "none", "macro_f1", corpora) for b in ("b1", "b2")}
    ranking = sf.ranking_table(matrices)
    assert ranking.loc["b2", "ood"] == pytest.approx(0.4)
    assert ranking.loc["b2", "in_domain"] == pytest.approx(0.7)
    text, in_order, ood_order = sf.ranking_sentence(ranking)
    assert (in_order, ood_order) == (["b1", "b2"], ["b2", "b1"])
    assert text.endswith(
        "The rankings differ: the best in-domain backbone is not the best across corpora."
    )
    effect, sentence = sf.adjustment_effect(
        tmp_path, ["b1", "b2"], ["none", "oracle"], "macro_f1", corpora
    )
    assert effect.loc[sf.AVERAGE, "oracle"] == pytest.approx(0.4)
    assert sentence.endswith("oracle +0.100.")


def test_split_note_names_the_corpora_that_are_not_speaker_disjoint():
    assert sf.split_note({"split_per_corpus": {"x": "speaker_disjoint"}}) == ""
    note = sf.split_note(
        {"split_per_corpus": {"x": "speaker_disjoint", "t": "speaker_overlapping"}}
    )
    assert (
        "t (speaker_overlapping)" in note
        and "x" not in note.split("cells of")[1].split("do not")[0]
    )


def test_synthetic_corpora_read_the_curate_metrics(tmp_path):
    path = tmp_path / "curate.json"
    path.write_text(json.dumps({"a": {"synthetic": True}, "b": {"synthetic": False}}))
    assert synthetic_corpora(["a", "b", "c"], path) == ["a"]
    with pytest.raises(FileNotFoundError, match="dvc repro curate"):
        synthetic_corpora(["a"], tmp_path / "missing.json")
