"""SER-Evals protocol fidelity: EM on the scored items only, its convergence record, the MAP-EM
variant, the published metric convention, the published tables' names and contamination, and
the label of splits over groups that are not speakers."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from selm_lib.serevals import figures as sf  # noqa: E402
from selm_lib.serevals import probe as se  # noqa: E402
from selm_lib.serevals import protocol as sp  # noqa: E402
from selm_lib.serevals import results as rs  # noqa: E402

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "serevals_published"
C = len(se.CLASSES)
OTHER = se.CLASSES.index("other")
ANGER, SADNESS, HAPPINESS = (se.CLASSES.index(c) for c in ("anger", "sadness", "happiness"))
CLUSTERS = {
    "emodb_resd": ["emodb", "resd"],
    "main": ["emovo", "mesd", "demos", "baum1", "meld", "mead", "cafe", "expresso", "subesco"],
    "urdu_eekk": ["urdu", "eekk"],
}


# ----------------------------------------------------------------------------- EM


def other_heavy_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, truth, uniform train prior): 40 scored items, half anger and half sadness, whose
    logits favour their class but also lean to happiness; 60 ``other`` items (more than the 40 %
    of Expresso) that the probe reads as happiness."""
    rng = np.random.default_rng(seed)
    truth = np.array([ANGER] * 20 + [SADNESS] * 20 + [OTHER] * 60)
    logits = rng.normal(0.0, 0.3, (len(truth), C))
    for i, label in enumerate(truth):
        if label == OTHER:
            logits[i, HAPPINESS] += 2.5
        else:
            logits[i, label] += 1.5
            logits[i, HAPPINESS] += 1.0
    return logits, truth, np.full(C, 1.0 / C)


def test_em_is_fitted_on_the_scored_items_only():
    logits, truth, train = other_heavy_set()
    scored = truth != OTHER
    common = dict(test_labels=truth, other_index=OTHER, return_em=True, strength=0.0)
    _, on_all = se.adjusted_predictions(logits, train, "estimated", **common)
    chosen, on_scored = se.adjusted_predictions(logits, train, "estimated", scored=scored, **common)
    assert on_all.n_fit == 100 and on_scored.n_fit == 40
    # the other items pull the whole estimate onto happiness, which no scored item has
    assert on_all.prior[HAPPINESS] > 0.95
    assert on_scored.prior[HAPPINESS] < 0.5
    assert on_scored.prior[ANGER] > 0.2 and on_scored.prior[SADNESS] > 0.2
    # and with it the scored items' predictions: every one happiness before, mostly right now
    biased, _ = se.adjusted_predictions(logits, train, "estimated", **common)
    assert np.mean(biased[scored] == HAPPINESS) == 1.0
    assert np.mean(chosen[scored] == truth[scored]) > 0.7
    # every row is still predicted, ``other`` never
    assert chosen.shape == (100,) and not np.any(chosen == OTHER)


def test_em_reports_non_convergence():
    logits, truth, train = other_heavy_set()
    probs = se.softmax(logits)
    short = se.fit_test_prior(probs, train, max_iter=1)
    assert short.converged is False and short.iterations == 1
    full = se.fit_test_prior(probs, train, max_iter=500)
    assert full.converged is True and 1 < full.iterations < 500
    assert full.record() == {"converged": True, "iterations": full.iterations, "n_fit": 100}
    np.testing.assert_allclose(se.estimate_test_prior(probs, train, max_iter=500), full.prior)
    # through the variants: the EM ones return their fit, the others None
    for variant in rs.VARIANTS:
        _, em = se.adjusted_predictions(
            logits, train, variant, test_labels=truth, max_iter=1, return_em=True
        )
        assert (em is not None) == (variant in rs.EM_VARIANTS)
        if em is not None:
            assert not em.converged and em.iterations == 1


def test_map_em_shrinks_toward_the_train_prior():
    logits, _, _ = other_heavy_set(seed=3)
    train = np.array([0.3, 0.05, 0.1, 0.1, 0.1, 0.2, 0.0, 0.15])  # ``other`` absent
    probs = se.softmax(logits)
    plain = se.fit_test_prior(probs, train, max_iter=1000, tol=1e-10)
    zero = se.fit_test_prior(probs, train, strength=0.0, max_iter=1000, tol=1e-10)
    np.testing.assert_array_equal(plain.prior, zero.prior)
    distances = [
        np.abs(
            se.fit_test_prior(probs, train, strength=s, max_iter=1000, tol=1e-10).prior - train
        ).sum()
        for s in (0.0, 0.1, 1.0, 10.0, 1000.0)
    ]
    assert all(a > b for a, b in zip(distances, distances[1:], strict=False))
    assert distances[-1] < 1e-2
    big = se.fit_test_prior(probs, train, strength=1.0).prior
    assert big[OTHER] == 0.0 and np.all(big[train > 0] >= train[train > 0] / 2 - 1e-9)
    with pytest.raises(ValueError, match="strength"):
        se.fit_test_prior(probs, train, strength=-1.0)
    # the variant uses the strength; ``estimated`` ignores it
    a = se.adjusted_predictions(logits, train, "estimated", strength=5.0)
    b = se.adjusted_predictions(logits, train, "estimated", strength=0.0)
    np.testing.assert_array_equal(a, b)
    assert "estimated_map" in rs.VARIANTS and "estimated_map" in rs.VARIANT_TEXT


# ----------------------------------------------------------------------------- metric convention


def test_published_convention_counts_predicted_absent_classes():
    truth = ["anger", "anger", "sadness", "sadness"]
    pred = ["anger", "surprise", "sadness", "sadness"]  # surprise: predicted, not in the truth
    present = sp.score(truth, pred, drop_other=True, convention="present")
    published = sp.score(truth, pred, drop_other=True, convention="published")
    # anger F1 = 2*1/(2+1) = 2/3, sadness F1 = 1, surprise F1 = 0; recalls 1/2, 1, (0)
    assert present["macro_f1"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-6)
    assert published["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-6)
    assert present["unweighted_accuracy"] == pytest.approx(0.75)
    assert published["unweighted_accuracy"] == pytest.approx(0.5)
    for key in ("accuracy", "weighted_f1", "n", "classes", "chance_ua"):
        assert present[key] == published[key], key
    assert (present["classes_averaged"], published["classes_averaged"]) == (2, 3)
    # no predicted-but-absent class: the two agree
    fine = ["anger", "sadness", "sadness", "sadness"]
    assert sp.score(truth, fine, drop_other=True, convention="published") == sp.score(
        truth, fine, drop_other=True, convention="present"
    )
    # ``other`` items dropped (OOD) leave the averages; in-domain ``other`` is a class
    with_other = sp.score(
        [*truth, "other"], [*fine, "other"], drop_other=True, convention="published"
    )
    assert with_other["classes_averaged"] == 2
    in_domain = sp.score(truth, ["other", *fine[1:]], drop_other=False, convention="published")
    assert in_domain["classes_averaged"] == 3
    with pytest.raises(rs.SerevalsError, match="serevals.metric_convention"):
        sp.score(truth, pred, drop_other=True, convention="all8")


# ----------------------------------------------------------------------------- group splits


def test_mesd_and_resd_splits_are_group_disjoint():
    rows = pd.DataFrame(
        {
            "utterance_id": [f"u{i:02d}" for i in range(30)],
            "speaker": [f"mesd_{v}" for v in "CFM" for _ in range(10)],
        }
    )
    test, label = sp.in_domain_split(rows, "mesd", "speaker", 0.3, seed=1)
    assert label == rs.GROUP_DISJOINT == "group_disjoint"
    assert set(rows["speaker"][test]).isdisjoint(rows["speaker"][~test])
    _, label = sp.in_domain_split(rows, "emovo", "speaker", 0.3, seed=1)
    assert label == rs.SPEAKER_DISJOINT
    _, label = sp.in_domain_split(rows, "mesd", "random", 0.3, seed=1)
    assert label == rs.SPEAKER_OVERLAPPING
    dialogues = rows.assign(speaker=[f"resd_d{i % 5}" for i in range(30)])
    assert sp.in_domain_split(dialogues, "resd", "speaker", 0.3, seed=1)[1] == rs.GROUP_DISJOINT
    assert set(rs.GROUP_SPEAKERS) == {"mesd", "resd"}
    note = sf.split_note({"split_per_corpus": {"mesd": rs.GROUP_DISJOINT, "x": "speaker_disjoint"}})
    assert "mesd (group_disjoint)" in note and "voice groups" in note


# ----------------------------------------------------------------------------- aggregate


def test_collapse_share_counts_nearly_single_class_cells():
    rows = []
    for cell, predictions in {
        "t1": ["anger"] * 20,  # one class
        "t2": ["anger"] * 19 + ["sadness"],  # 95 %: nearly one class
        "t3": ["anger"] * 10 + ["sadness"] * 10,
    }.items():
        rows += [
            {"backbone": "b", "train": "s", "test": cell, "variant": "estimated", "prediction": p}
            for p in predictions
        ]
    ood = pd.DataFrame(rows)
    assert rs.collapse_share(ood)["estimated"] == pytest.approx(2 / 3)
    assert rs.collapse_share(ood, 1.0)["estimated"] == pytest.approx(1 / 3)
    assert rs.collapse_share(ood, backbone="other").empty


def test_em_summary_lists_the_fits_that_did_not_converge():
    meta = {
        "b1": {
            "em": [
                {"train": "x", "test": "y", "variant": "estimated", "converged": True,
                 "iterations": 12, "n_fit": 30},
                {"train": "x", "test": "y", "variant": "estimated_map", "converged": False,
                 "iterations": 100, "n_fit": 30},
            ]
        },
        "b2": {},  # an item written before the EM record existed
    }  # fmt: skip
    out = rs.em_summary(meta)
    assert out["variants"]["estimated"] == {
        "fits": 1,
        "not_converged": 0,
        "share_not_converged": 0.0,
        "max_iterations": 12,
    }
    assert out["variants"]["estimated_map"]["not_converged"] == 1
    assert out["not_converged"] == [
        {"backbone": "b1", "train": "x", "test": "y", "variant": "estimated_map", "iterations": 100}
    ]
    assert rs.em_summary({"b": {}}) == {"variants": {}, "not_converged": []}


# ----------------------------------------------------------------------------- published tables


def toy_tables(folder: Path) -> None:
    folder.mkdir(parents=True)
    header = "Training Dataset,baum,emovo,thorsten,mesd\n"
    rows = "baum,0.5,0.2,,\nemovo,0.3,0.6,,\nthorsten,,,0.9,\nmesd,,,,0.4\n"
    (folder / "frozen.csv").write_text(header + rows)
    (folder / "emotionwhisper.csv").write_text(header + rows.replace("0.2", "0.8"))


def test_published_names_contamination_and_missing_partners(tmp_path):
    toy_tables(tmp_path / "m")
    table = sf.read_published_matrix(tmp_path / "m" / "frozen.csv")
    assert list(table.index) == ["baum1", "emovo", "thorsten_emotional", "mesd"]
    raw = sf.read_published_matrix(tmp_path / "m" / "frozen.csv", names={})
    assert "baum" in raw.index
    clusters = {"main": ["emovo", "mesd", "baum1", "cafe"]}
    figures, means, notes = sf.published_figures(tmp_path / "m", "macro_f1", clusters=clusters)
    assert means.loc["emotionwhisper", "contaminated"] and not means.loc["frozen", "contaminated"]
    assert means.loc[sf.AVERAGE, "ood_mean"] == pytest.approx(means.loc["frozen", "ood_mean"])
    assert any("emotionwhisper" in n and "kept out of every average" in n for n in notes)
    warning = [n for n in notes if "cluster `main`" in n]
    assert len(warning) == 1
    assert "not in the published tables: cafe" in warning[0]
    assert "emovo -> mesd" in warning[0] and "baum1 -> emovo" not in warning[0]
    # the contaminated bars are drawn, labelled, and left out of the average bar
    legend = [t.get_text() for t in figures[0][1].axes[0].get_legend().get_texts()]
    assert legend == ["emotionwhisper (contaminated)", "frozen", "average"]
    table2 = sf.means_table({"a (contaminated)": table, "b": table * 0.5}, 0, ["a (contaminated)"])
    assert table2.loc["baum1", sf.AVERAGE] == pytest.approx(0.1)
    _, included, notes = sf.published_figures(
        tmp_path / "m", "macro_f1", exclude_contaminated=False
    )
    assert included.loc[sf.AVERAGE, "ood_mean"] == pytest.approx(
        included.loc[["frozen", "emotionwhisper"], "ood_mean"].mean()
    )
    assert any("included in the averages" in n for n in notes)
    for _, fig in figures:
        plt.close(fig)


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"shared fixtures absent: {PUBLISHED}")
def test_published_fixture_names_and_emotionwhisper():
    from selm_lib.data.corpora.registry import SCANNERS

    folder = PUBLISHED / "valid_macro_f1"
    tables = sf.read_published_matrices(folder)
    names = set().union(*(set(t.index) | set(t.columns) for t in tables.values()))
    assert {"baum1", "thorsten_emotional"} <= names and not {"baum", "thorsten"} & names
    assert names <= set(SCANNERS)  # every published corpus name is a package corpus name
    assert sf.missing_partners(tables, CLUSTERS) == []
    unmapped = {b: sf.read_published_matrix(folder / f"{b}.csv", names={}) for b in tables}
    assert any("baum1" in w for w in sf.missing_partners(unmapped, CLUSTERS))
    figures, means, notes = sf.published_figures(folder, "valid_macro_f1", clusters=CLUSTERS)
    assert means.loc["emotionwhisper", "contaminated"]
    frozen = means[~means["contaminated"].astype(bool)].drop(sf.AVERAGE)
    assert means.loc[sf.AVERAGE, "ood_mean"] == pytest.approx(frozen["ood_mean"].mean())
    # emotionwhisper's OOD mean is above every frozen backbone's: not out-of-domain
    assert means.loc["emotionwhisper", "ood_mean"] > frozen["ood_mean"].max()
    assert any("emotionwhisper" in n for n in notes)
    for _, fig in figures:
        plt.close(fig)
