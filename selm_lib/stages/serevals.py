"""Stage ``serevals``: the SER-Evals probes of every backbone as train x test matrices.

    python -m selm_lib.stages.serevals [--params params.yaml]

Reads every ``serevals_probe`` item of ``serevals_sweep.backbones`` and writes the matrices per
backbone x variant x metric (``common.output_root/serevals/matrices/``, CSV and one
``matrices.json``) and ``reports/metrics/serevals.json`` (in-domain and OOD means per backbone,
per variant the share of OOD cells collapsed onto one class, the convergence of every EM fit
from the items' meta, the metric convention, the ``contamination`` block: which (backbone, test
corpus) cells the contamination ledger flags, left out of the OOD means with
``serevals.exclude_contaminated``, and the ``paired`` block: backbone vs backbone and adjustment
vs none per cell, :mod:`selm_lib.serevals.paired`). The reports ``05_ser_evals.py`` and
``06_figures.py`` read them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config import output_dir, project_root
from selm_lib.config.cli import run_stage
from selm_lib.data.contamination import LEDGER_PATH, contaminated_cells, describe
from selm_lib.serevals.paired import paired_block
from selm_lib.serevals.results import (
    CONVENTION_TEXT,
    SerevalsError,
    contamination_summary,
    matrices,
    probe_folder,
    read_meta,
    read_ood_predictions,
    read_results,
    summary,
    write_matrices,
)


def contamination(params: dict[str, Any], meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``contamination`` block: every SER-Evals backbone's source joined with the ledger
    (``selm_lib/data/tables/contamination.csv``) over ``serevals.corpora``. The sources come
    from the items' meta (``meta``, :func:`read_meta`; each item records the source of its
    features.backbones entry), so this stage reads no features.backbones entry itself."""
    sources = {}
    for b in params["serevals_sweep"]["backbones"]:
        if "source" not in meta.get(b, {}):
            raise SerevalsError(
                f"{probe_folder(params, b) / 'meta.json'} does not record the backbone's source "
                f"(written by an older version): rerun dvc repro serevals_probe@{b}"
            )
        sources[b] = str(meta[b]["source"])
    corpora = list(params["serevals"]["corpora"])
    cells = {b: contaminated_cells(source, corpora) for b, source in sources.items()}
    notes = {b: describe(source) for b, source in sources.items()}
    exclude = params["serevals"]["exclude_contaminated"]
    return contamination_summary(cells, sources, notes, exclude, LEDGER_PATH)


def serevals(params: dict[str, Any], args: argparse.Namespace) -> str:
    results = read_results(params)
    meta = read_meta(params)
    flags = contamination(params, meta)
    cells = {b: v["test_corpora"] for b, v in flags["cells"].items()}
    paired = paired_block(params, results, cells)
    scores = summary(results, params, read_ood_predictions(params), meta, flags, paired)
    folder = output_dir(params, "serevals", "matrices")
    settings = params["serevals"]
    about = {
        "contaminated": cells,
        "exclude_contaminated": flags["exclude_contaminated"],
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
