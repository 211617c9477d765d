"""Stage ``fewshot``: the few-shot sweep's items aggregated over seeds.

    python -m selm_lib.stages.fewshot [--params params.yaml]

Reads every ``fewshot_item`` output of ``fewshot_sweep`` (k x seeds) and writes
``reports/metrics/fewshot.json`` (mean and 95 % interval over seeds per corpus x method x k; each
k > 0 against k = 0 by the paired bootstrap over speakers and McNemar's test, seeds pooled, under
``paired_vs_k0``; the smallest k from which adaptation is significantly better under
``significant_from_k``; the settings ``fewshot.select`` chose under ``selected``) and
``reports/plots/fewshot_curves.csv``. The report ``04_fewshot.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config import project_root
from selm_lib.config.cli import run_stage
from selm_lib.data.labels import classes_of
from selm_lib.evaluation.fewshot_results import aggregate, paired_vs_unadapted, significant_from


def fewshot(params: dict[str, Any], args: argparse.Namespace) -> str:
    summary, table = aggregate(params)
    curate = params["curate"]
    classes = {
        corpus: classes_of(curate["class_sets"][corpus], curate["ravdess_calm"])
        for corpus in table["corpus"].unique()
    }
    paired = paired_vs_unadapted(params, classes)
    summary["paired_vs_k0"] = paired
    summary["significant_from_k"] = {
        corpus: {method: significant_from(by_k) for method, by_k in methods.items()}
        for corpus, methods in paired.items()
    }
    root = project_root()
    (root / "reports" / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "reports" / "metrics" / "fewshot.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    (root / "reports" / "plots").mkdir(parents=True, exist_ok=True)
    curves = table.groupby(["corpus", "method", "k"], as_index=False)["accuracy"].mean()
    curves.to_csv(root / "reports" / "plots" / "fewshot_curves.csv", index=False)
    items = table[["k", "seed"]].drop_duplicates().shape[0]
    return f"fewshot: {len(table)} scores from {items} items aggregated"


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.fewshot", __doc__, argv, fewshot)


if __name__ == "__main__":
    sys.exit(main())
