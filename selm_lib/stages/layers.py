"""Stage ``layers``: the layer sweep's items aggregated.

    python -m selm_lib.stages.layers [--params params.yaml]

Reads every ``layer_probe`` item of ``layer_sweep.layers`` and writes
``reports/metrics/layers.json`` (every item, the layer SELM uses and the layer the validation
split picks) and ``reports/plots/layer_accuracy.csv`` (layer x scope x corpus with 95 %
intervals). The report ``07_layers.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config import project_root
from selm_lib.config.cli import run_stage
from selm_lib.evaluation.layer_results import aggregate


def layers(params: dict[str, Any], args: argparse.Namespace) -> str:
    summary, table = aggregate(params)
    root = project_root()
    (root / "reports" / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "reports" / "metrics" / "layers.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    (root / "reports" / "plots").mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "reports" / "plots" / "layer_accuracy.csv", index=False)
    return (
        f"layers: {len(summary['layers'])} layers of {summary['backbone']} aggregated; "
        f"validation picks layer {summary['picked_by_validation']}, SELM uses "
        f"{summary['selm_layer']}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.layers", __doc__, argv, layers)


if __name__ == "__main__":
    sys.exit(main())
