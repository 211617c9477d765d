"""Stage ``serevals``: the SER-Evals probes of every backbone as train x test matrices.

    python -m selm_lib.stages.serevals [--params params.yaml]

Reads every ``serevals_probe`` item of ``serevals_sweep.backbones`` and writes the matrices per
backbone x variant x metric (``common.output_root/serevals/matrices/``, CSV and one
``matrices.json``) and ``reports/metrics/serevals.json`` (in-domain and OOD means per backbone,
per variant the share of OOD cells collapsed onto one class, the convergence of every EM fit
from the items' meta, and the metric convention). The reports ``05_ser_evals.py`` and
``06_figures.py`` read them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config import output_dir, project_root
from selm_lib.config.cli import run_stage
from selm_lib.serevals.results import (
    CONVENTION_TEXT,
    matrices,
    read_meta,
    read_ood_predictions,
    read_results,
    summary,
    write_matrices,
)


def serevals(params: dict[str, Any], args: argparse.Namespace) -> str:
    results = read_results(params)
    scores = summary(results, params, read_ood_predictions(params), read_meta(params))
    folder = output_dir(params, "serevals", "matrices")
    settings = params["serevals"]
    about = {
        "split_per_corpus": scores["split_per_corpus"],
        "normalize": settings["normalize"],
        "mask_absent": settings["mask_absent"],
        "metric_convention": settings["metric_convention"],
        "metric_convention_text": CONVENTION_TEXT[settings["metric_convention"]],
        "em_prior_strength": settings["em_prior_strength"],
    }
    write_matrices(matrices(results, params), folder, about=about)
    path = project_root() / "reports" / "metrics" / "serevals.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    return f"serevals: {len(list(folder.rglob('*.csv')))} matrices -> {folder}; {path}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.serevals", __doc__, argv, serevals)


if __name__ == "__main__":
    sys.exit(main())
