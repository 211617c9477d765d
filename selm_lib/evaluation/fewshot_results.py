"""The few-shot sweep's results as the items write them and the aggregate reads them: where an
item's outputs live and the mean and interval over seeds (no model code, so editing the
adaptation does not stale the aggregate and editing the aggregate does not stale the items)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import resolve_path

METRICS = ("accuracy", "unweighted_accuracy", "macro_f1")


class FewshotError(ValueError):
    """Bad few-shot request; names the corpus, class and params key."""


def item_folder(params: dict[str, Any], k: int, seed: int) -> Path:
    return resolve_path(params["common"]["output_root"]) / "fewshot" / f"k{k}_seed{seed}"


def aggregate(params: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Mean and 95 % interval over seeds per corpus x method x k (t interval; one seed: none),
    plus ``capped_k``: the classes that had fewer than k pool examples when fewshot.cap_k is on."""
    from scipy import stats

    rows, capped = [], {}
    for k in params["fewshot_sweep"]["k"]:
        for seed in params["fewshot_sweep"]["seeds"]:
            path = item_folder(params, k, seed) / "metrics.json"
            if not path.is_file():
                raise FewshotError(f"{path} is missing: run dvc repro fewshot_item")
            item = json.loads(path.read_text())
            for corpus, classes in item.get("capped", {}).items():
                capped.setdefault(corpus, {})[str(k)] = classes
            for corpus, methods in item["results"].items():
                for method, values in methods.items():
                    rows.append(
                        {
                            "corpus": corpus,
                            "method": method,
                            "k": k,
                            "seed": seed,
                            **{m: values[m] for m in METRICS},
                        }
                    )
    table = pd.DataFrame(rows)
    summary: dict[str, Any] = {}
    for (corpus, method, k), group in table.groupby(["corpus", "method", "k"], sort=True):
        entry = {}
        for metric in METRICS:
            values = group[metric].to_numpy(dtype=float)
            mean = float(values.mean())
            if len(values) > 1:
                half = float(
                    stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                )
            else:
                half = 0.0
            entry[metric] = {
                "mean": round(mean, 6),
                "ci95": [round(mean - half, 6), round(mean + half, 6)],
            }
        entry["seeds"] = int(len(group))
        summary.setdefault(corpus, {}).setdefault(method, {})[str(int(k))] = entry
    # k values that fewshot.cap_k lowered, per corpus: {k: {class: examples used}}
    summary["capped_k"] = capped
    summary["selected"] = selection_counts(params)
    return summary, table


def read_predictions(params: dict[str, Any], k: int) -> pd.DataFrame:
    """Every seed's per-item predictions at ``k`` (one item file at a time)."""
    frames = []
    for seed in params["fewshot_sweep"]["seeds"]:
        path = item_folder(params, k, seed) / "predictions.csv"
        if not path.is_file():
            raise FewshotError(f"{path} is missing: run dvc repro fewshot_item")
        frames.append(pd.read_csv(path, dtype={"utterance_id": str, "speaker": str}))
    return pd.concat(frames, ignore_index=True)


def paired_vs_unadapted(
    params: dict[str, Any], classes: dict[str, list[str]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each k > 0 against k = 0, per corpus and method: the paired bootstrap of the difference
    over speakers and McNemar's test (:func:`selm_lib.evaluation.paired.compare`).

    Seeds are pooled: an item of seed s at k is paired with the k = 0 item of the same seed (the
    same evaluated speakers and rows), the pairs of every seed are stacked and the bootstrap
    resamples *speakers* (a speaker evaluated under several seeds brings all its pairs), so the
    interval covers the seeds' support draws and partitions. McNemar counts each stacked pair
    once (rows repeated across seeds are not independent; the bootstrap is the verdict).
    ``classes``: each corpus's class set (the columns of the metrics)."""
    from selm_lib.evaluation.paired import compare

    ks = sorted(params["fewshot_sweep"]["k"])
    if 0 not in ks:
        return {}
    zero = read_predictions(params, 0)
    key = ["corpus", "method", "seed", "utterance_id"]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for k in (k for k in ks if k > 0):
        merged = read_predictions(params, k).merge(
            zero[key + ["prediction"]], on=key, suffixes=("", "_k0"), validate="one_to_one"
        )
        for (corpus, method), group in merged.groupby(["corpus", "method"], sort=True):
            result = compare(
                group["truth"].to_numpy(dtype=object),
                group["prediction"].to_numpy(dtype=object),
                group["prediction_k0"].to_numpy(dtype=object),
                group["speaker"].to_numpy(dtype=object),
                classes[corpus],
                n_boot=params["eval_ood"]["bootstrap"],
                seed=params["common"]["seed"],
            )
            out.setdefault(corpus, {}).setdefault(method, {})[str(k)] = result
    return out


def significant_from(paired: dict[str, dict[str, Any]]) -> int | None:
    """The smallest k from which adaptation is significantly better than k = 0: its paired
    verdict and that of every larger k are ``better``; None when there is no such k."""
    ks = sorted(int(k) for k in paired)
    found = None
    for k in reversed(ks):
        if paired[str(k)]["verdict"] != "better":
            break
        found = k
    return found


def selection_counts(params: dict[str, Any]) -> dict[str, Any]:
    """How often each candidate of ``fewshot.select`` was chosen, per corpus x method x k
    (over seeds): ``{corpus: {method: {k: {"<settings as JSON>": count}}}}``."""
    counts: dict[str, Any] = {}
    for k in params["fewshot_sweep"]["k"]:
        for seed in params["fewshot_sweep"]["seeds"]:
            item = json.loads((item_folder(params, k, seed) / "metrics.json").read_text())
            for corpus, methods in item.get("selected", {}).items():
                for method, record in methods.items():
                    label = json.dumps(record["chosen"], sort_keys=True)
                    cell = counts.setdefault(corpus, {}).setdefault(method, {})
                    cell.setdefault(str(k), {})
                    cell[str(k)][label] = cell[str(k)].get(label, 0) + 1
    return counts
