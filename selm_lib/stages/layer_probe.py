"""Stage ``layer_probe@L``: the classification baseline on layer L of SELM's encoder.

    python -m selm_lib.stages.layer_probe --layer L [--params params.yaml]

Trains the ``eval_ood`` baseline on the pooled layer L of ``layer_sweep.backbone`` (SELM's
training corpora, train and validation splits) and scores the in-domain test speakers and every
``eval_ood.test_corpora`` corpus (:func:`selm_lib.evaluation.layers.probe_layer`); writes
``common.output_root/layer_sweep/probes/layer_L.json``. It reads its own layer only, never
``layer_sweep.layers``, so adding a layer there runs only the new item.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selm_lib.config.cli import run_stage
from selm_lib.evaluation.layer_results import item_path
from selm_lib.evaluation.layers import probe_layer


def probe(params: dict[str, Any], args: argparse.Namespace) -> str:
    result = probe_layer(params, args.layer)
    path = item_path(params["common"], args.layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    in_domain, ood = result["in_domain_pooled"], result["ood_pooled"]
    return (
        f"layer {args.layer} of {result['backbone']}: in-domain accuracy "
        f"{in_domain['accuracy']:.3f}, OOD {ood['accuracy']:.3f} -> {path}"
    )


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--layer", type=int, required=True, help="encoder state 0..L")

    return run_stage("selm_lib.stages.layer_probe", __doc__, argv, probe, options)


if __name__ == "__main__":
    sys.exit(main())
