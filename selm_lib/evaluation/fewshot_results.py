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
    return summary, table
