"""Few-shot adaptation settings chosen on an inner split of the pool (``fewshot.select``), and
the aggregate's paired comparisons of each k against k = 0."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from selm_lib.evaluation import fewshot_results as R
from selm_lib.evaluation.fewshot_results import FewshotError
from selm_lib.evaluation.paired import compare
from selm_lib.features.frames import ArrayFrames
from selm_lib.selm.adapt import (
    candidate_settings,
    check_selection,
    inner_partition,
    select_settings,
    speaker_partition,
)
from selm_lib.stages import fewshot_item

from .test_stage_units import CLASSES, manifest, params

GOOD, BAD = 0.003, 0.001  # learning rates: GOOD is right on the pool, BAD on evaluated speakers


class Adapted:
    def __init__(self, lr=None):
        self.lr = lr

    def to(self, device):
        return self

    def eval(self):
        return self


def select_params(**select) -> dict:
    p = params(methods=("selm_mappers", "classifier_baseline"))
    p["fewshot"].update(
        learning_rate=0.01,
        baseline_learning_rate=0.01,
        select=select,
        inner_share=0.5,
    )
    return p


@pytest.fixture()
def rigged(monkeypatch):
    """run_item with fakes whose quality depends on the learning rate *and* on whose clips are
    scored: GOOD is right on the adaptation pool and wrong on the evaluated speakers, BAD the
    reverse. A selection that looked at the evaluated speakers would pick BAD."""
    table = manifest()
    ids = list(table["utterance_id"])
    calls: dict[str, list] = {"adapt": [], "scored": []}
    pool_speakers: set[str] = set()

    def frames(common, features, backbone, rows, params_key="selm.backbone"):
        return ArrayFrames(
            [np.full((3, 4), ids.index(u), np.float32) for u in rows["utterance_id"]]
        )

    def labels_for(lr, uids):
        right = [u.split("_")[1] for u in uids]
        on_pool = all(u.split("_")[0] in pool_speakers for u in uids)
        good = (lr == GOOD) == on_pool
        return np.asarray(right if good else [CLASSES[0]] * len(uids), dtype=object)

    def adapt_selm(model, tokenizer, support, labels, selm, fewshot, *, full, seed, device):
        uids = [ids[int(f[0, 0])] for f in support]
        calls["adapt"].append(("selm", fewshot["learning_rate"], uids))
        return Adapted(fewshot["learning_rate"])

    def adapt_baseline(baseline, train_classes, x, labels, to_class, fewshot, seed, device):
        uids = [ids[int(v)] for v in x[:, 0]]
        calls["adapt"].append(("baseline", fewshot["baseline_learning_rate"], uids))
        return Adapted(fewshot["baseline_learning_rate"])

    def predict(model, tokenizer, eval_frames, classes, to_class, selm, eval_ood, device, **kw):
        uids = [ids[int(f[0, 0])] for f in eval_frames]
        calls["scored"].append(uids)
        n = len(uids)
        return [""] * n, [""] * n, list(labels_for(model.lr, uids))

    def restricted(model, x, train_classes, train_to_test, classes):
        uids = [ids[int(v)] for v in x[:, 0]]
        calls["scored"].append(uids)
        return labels_for(model.lr, uids)

    monkeypatch.setattr(fewshot_item, "read_curated", lambda common: ({"crema_d": table}, {}))
    monkeypatch.setattr(fewshot_item, "load_trained", lambda common, device: (Adapted(), None))
    monkeypatch.setattr(fewshot_item, "load_baseline", lambda common: (Adapted(), list(CLASSES)))
    monkeypatch.setattr(fewshot_item, "open_frames", frames)
    monkeypatch.setattr(fewshot_item, "_adapt_selm", adapt_selm)
    monkeypatch.setattr(fewshot_item, "_adapt_baseline", adapt_baseline)
    monkeypatch.setattr(fewshot_item, "selm_predict", predict)
    monkeypatch.setattr(fewshot_item, "restricted_predictions", restricted)
    usable = table[table["quarantine"] == ""]
    pool_speakers |= speaker_partition(usable, "crema_d", 34, 0.5)
    return calls, pool_speakers


def test_settings_are_chosen_on_the_pool_never_on_the_evaluated_speakers(rigged):
    calls, pool = rigged
    p = select_params(learning_rate=[BAD, GOOD], baseline_learning_rate=[BAD, GOOD])
    result = fewshot_item.run_item(p, k=1, seed=3)
    chosen = result["selected"]["crema_d"]
    assert chosen["selm_mappers"]["chosen"] == {"learning_rate": GOOD}
    assert chosen["classifier_baseline"]["chosen"] == {"baseline_learning_rate": GOOD}
    assert [c["settings"] for c in chosen["selm_mappers"]["candidates"]] == [
        {"learning_rate": BAD},
        {"learning_rate": GOOD},
    ]
    # two candidates and one final adaptation per method, each on pool clips only
    assert [(kind, lr) for kind, lr, _ in calls["adapt"]] == [
        ("selm", BAD),
        ("selm", GOOD),
        ("selm", GOOD),
        ("baseline", BAD),
        ("baseline", GOOD),
        ("baseline", GOOD),
    ]
    for _, _, uids in calls["adapt"]:
        assert {u.split("_")[0] for u in uids} <= pool
    # inner candidates are scored on pool clips that were not their support
    inner = [u for u in calls["scored"] if {x.split("_")[0] for x in u} <= pool]
    assert len(inner) == 4
    inner_support = {u.split("_")[0] for u in calls["adapt"][0][2]}
    assert all(not {x.split("_")[0] for x in u} & inner_support for u in inner)
    # the chosen (GOOD) models are then wrong on the evaluated speakers, by construction
    assert result["results"]["crema_d"]["selm_mappers"]["accuracy"] < 0.5


def test_without_candidates_the_settings_are_fixed_and_nothing_extra_runs(rigged):
    calls, _ = rigged
    result = fewshot_item.run_item(select_params(), k=1, seed=3)
    assert result["selected"] == {}
    assert [(kind, lr) for kind, lr, _ in calls["adapt"]] == [("selm", 0.01), ("baseline", 0.01)]


def test_k0_runs_no_selection(rigged):
    calls, _ = rigged
    result = fewshot_item.run_item(select_params(learning_rate=[BAD, GOOD]), k=0, seed=3)
    assert calls["adapt"] == [] and result["selected"] == {}


def test_candidate_grid_uses_only_each_methods_own_keys_in_listed_order():
    fewshot = {"select": {"learning_rate": [1, 2], "steps": [5, 9], "baseline_steps": [7]}}
    assert candidate_settings(fewshot, "selm_mappers") == [
        {"steps": 5, "learning_rate": 1},
        {"steps": 5, "learning_rate": 2},
        {"steps": 9, "learning_rate": 1},
        {"steps": 9, "learning_rate": 2},
    ]
    assert candidate_settings(fewshot, "classifier_baseline") == [{"baseline_steps": 7}]
    assert candidate_settings({"select": {}}, "selm_full") == [{}]
    with pytest.raises(FewshotError, match=r"'fewshot.select.lr' is not an adaptation setting"):
        check_selection({"lr": [1]})
    with pytest.raises(FewshotError, match="non-empty list"):
        check_selection({"steps": []})


def test_a_tie_keeps_the_first_candidate_listed():
    fewshot = {"select": {"learning_rate": [3, 1, 2]}, "learning_rate": 9}
    chosen, tried = select_settings(fewshot, "selm_mappers", lambda s: 0.5)
    assert chosen["learning_rate"] == 3 and len(tried) == 3
    chosen, _ = select_settings(fewshot, "selm_mappers", lambda s: s["learning_rate"] == 2)
    assert chosen["learning_rate"] == 2


def test_inner_partition_splits_the_pool_by_whole_groups_and_needs_two():
    table = manifest()
    table = table[table["quarantine"] == ""]
    support, validation = inner_partition(table, "toy", seed=1, share=0.5, draw=0)
    assert len(support) + len(validation) == len(table)
    assert not set(support["speaker"]) & set(validation["speaker"])
    one = table[table["speaker"] == "s0"]
    with pytest.raises(FewshotError, match=r"adaptation pool of 'toy'.*fewshot.support_share"):
        inner_partition(one, "toy", seed=1, share=0.5, draw=0)


def write_items(tmp_path, predictions: dict[tuple[int, int], pd.DataFrame], selected=None):
    sweep = {"k": sorted({k for k, _ in predictions}), "seeds": sorted({s for _, s in predictions})}
    p = {
        "common": {"output_root": str(tmp_path), "seed": 0},
        "fewshot_sweep": sweep,
        "eval_ood": {"bootstrap": 200},
    }
    for (k, seed), table in predictions.items():
        folder = R.item_folder(p, k, seed)
        folder.mkdir(parents=True)
        table.assign(k=k, seed=seed).to_csv(folder / "predictions.csv", index=False)
        item = {"results": {}, "selected": (selected or {}).get((k, seed), {})}
        (folder / "metrics.json").write_text(json.dumps(item))
    return p


def items(seed: int, right_share: float, speakers=8, per=10) -> pd.DataFrame:
    rng = np.random.default_rng(seed + int(right_share * 100))
    truth = np.array(["a", "b"] * (speakers * per // 2), dtype=object)
    right = rng.random(len(truth)) < right_share
    pred = np.where(right, truth, np.where(truth == "a", "b", "a"))
    return pd.DataFrame(
        {
            "corpus": "toy",
            "utterance_id": [f"u{i}" for i in range(len(truth))],
            "speaker": [f"s{(i // per) + seed}" for i in range(len(truth))],
            "truth": truth,
            "method": "m",
            "prediction": pred,
        }
    )


def test_paired_vs_k0_pairs_each_seed_with_its_own_k0_and_pools_speakers(tmp_path):
    tables = {(0, 0): items(0, 0.5), (0, 1): items(1, 0.5), (4, 0): items(0, 0.95)}
    tables[(4, 1)] = items(1, 0.95)
    p = write_items(tmp_path, tables)
    paired = R.paired_vs_unadapted(p, {"toy": ["a", "b"]})
    result = paired["toy"]["m"]["4"]
    stacked_k = pd.concat([tables[(4, 0)], tables[(4, 1)]])
    stacked_0 = pd.concat([tables[(0, 0)], tables[(0, 1)]])
    expected = compare(
        stacked_k["truth"].to_numpy(),
        stacked_k["prediction"].to_numpy(),
        stacked_0["prediction"].to_numpy(),
        stacked_k["speaker"].to_numpy(),
        ["a", "b"],
        n_boot=200,
        seed=0,
    )
    assert result == expected
    assert result["verdict"] == "better"
    assert result["clusters"] == 9  # speakers s0..s8: seeds 0 and 1 share s1..s7
    assert R.significant_from(paired["toy"]["m"]) == 4


def test_significant_from_needs_every_larger_k_better():
    verdicts = {"1": "better", "2": "not distinguishable", "4": "better", "8": "better"}
    assert R.significant_from({k: {"verdict": v} for k, v in verdicts.items()}) == 4
    verdicts["8"] = "worse"
    assert R.significant_from({k: {"verdict": v} for k, v in verdicts.items()}) is None


def test_selection_counts_over_seeds(tmp_path):
    chosen = {"crema_d": {"m": {"chosen": {"learning_rate": 0.003}}}}
    tables = {(0, 0): items(0, 0.5), (2, 0): items(0, 0.5), (2, 1): items(1, 0.5)}
    tables[(0, 1)] = items(1, 0.5)
    p = write_items(tmp_path, tables, selected={(2, 0): chosen, (2, 1): chosen})
    assert R.selection_counts(p) == {"crema_d": {"m": {"2": {'{"learning_rate": 0.003}': 2}}}}


def test_report_tables_and_sentences_read_the_paired_results(tmp_path):
    from selm_lib.evaluation import compare as C

    tables = {(0, 0): items(0, 0.5), (4, 0): items(0, 0.95), (2, 0): items(0, 0.52)}
    p = write_items(tmp_path, tables)
    paired = R.paired_vs_unadapted(p, {"toy": ["a", "b"]})
    summary = {
        "paired_vs_k0": paired,
        "significant_from_k": {"toy": {"m": R.significant_from(paired["toy"]["m"])}},
    }
    table = C.fewshot_paired_table(summary, ["toy"], ["m"], [0, 2, 4])
    assert list(table.columns) == [2, 4]
    assert table.loc[("toy", "m"), 4].endswith("better")
    assert table.loc[("toy", "m"), 2].endswith("not distinguishable")
    (line,) = C.fewshot_significance_sentences(summary, ["toy"], ["m"])
    assert "from k = 4 on" in line and "coarse" in line  # 8 speakers: few clusters
    selected = {"toy": {"m": {"2": {'{"learning_rate": 0.1}': 1, '{"learning_rate": 0.2}': 2}}}}
    rows = C.selection_table(selected)
    assert rows["seeds"].tolist() == [1, 2] and set(rows["k"]) == {2}
