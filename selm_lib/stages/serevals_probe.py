"""Stage ``serevals_probe@BACKBONE``: every SER-Evals probe of one backbone.

    python -m selm_lib.stages.serevals_probe --backbone NAME [--params params.yaml]

Trains the frame-MLP probe of every ``serevals.corpora`` corpus on cached features, scores it
in-domain and on every other corpus of its cluster (:func:`selm_lib.serevals.protocol.run_backbone`)
and writes ``common.output_root/serevals/probes/NAME/`` (results.csv, predictions.csv, meta.json;
the meta's ``em`` entries record, per OOD pair and EM variant, whether the prior's EM fit
converged, its iterations, the items it was fitted on and the estimate).

With ``common.nproc > 1`` (or under ``torchrun``) the corpora's probes are spread over the ranks
by size, each OOD pair is scored by the rank holding its training corpus's probe, and rank 0
writes every rank's scores in the order one process writes them (the same files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.config import distributed as D
from selm_lib.config import output_dir
from selm_lib.config.cli import run_stage
from selm_lib.serevals.protocol import run_backbone
from selm_lib.serevals.results import SerevalsError, probe_folder


def write_backbone(
    params: dict[str, Any],
    backbone: str,
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    meta: dict[str, Any],
) -> Path:
    folder = probe_folder(params, backbone)
    folder.mkdir(parents=True, exist_ok=True)
    results.to_csv(folder / "results.csv", index=False)
    predictions.to_csv(folder / "predictions.csv", index=False)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def probe(params: dict[str, Any], args: argparse.Namespace) -> str:
    if args.backbone not in params["features"]["backbones"]:
        raise SerevalsError(
            f"'{args.backbone}' is not a params.yaml 'features.backbones' entry (the DVC matrix "
            "runs every entry of 'serevals_sweep.backbones', which validate checks)"
        )
    output_dir(params, "serevals", "probes")
    start = time.perf_counter()
    results, predictions, meta = run_backbone(
        params, args.backbone, log=lambda line: print(line, flush=True)
    )
    if not D.context().main:  # rank 0 writes what every rank computed
        return ""
    # the aggregate joins the source with the contamination ledger from here, so it reads no
    # features.backbones entry itself (a new entry then stales only its own features stage)
    meta = {**meta, "source": str(params["features"]["backbones"][args.backbone]["source"])}
    folder = write_backbone(params, args.backbone, results, predictions, meta)
    return (
        f"{args.backbone}: {len(results)} scores in {time.perf_counter() - start:.1f} s -> {folder}"
    )


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backbone", required=True, help="a features.backbones entry")

    return run_stage(
        "selm_lib.stages.serevals_probe", __doc__, argv, probe, options, distributed=True
    )


if __name__ == "__main__":
    sys.exit(main())
