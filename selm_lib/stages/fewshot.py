"""Stage ``fewshot``: the few-shot sweep's items aggregated over seeds.

    python -m selm_lib.stages.fewshot [--params params.yaml]

Reads every ``fewshot_item`` output of ``fewshot_sweep`` (k x seeds) and writes
``reports/metrics/fewshot.json`` (mean and 95 % interval over seeds per corpus x method x k) and
``reports/plots/fewshot_curves.csv``. The report ``04_fewshot.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config import project_root
from selm_lib.config.cli import run_stage
from selm_lib.evaluation.fewshot_results import aggregate


def fewshot(params: dict[str, Any], args: argparse.Namespace) -> str:
    summary, table = aggregate(params)
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
