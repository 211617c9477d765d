"""Stage ``layer_pool``: the per-layer pooled features of the layer sweep's backbone.

    python -m selm_lib.stages.layer_pool [--params params.yaml]

Reads every layer-``all`` store of ``layer_sweep.backbone`` once and writes, per corpus, the mean
and standard deviation over frames of every layer (:mod:`selm_lib.features.pooled`) under
``common.output_root/layer_sweep/pooled/BACKBONE/``. A corpus whose store is unchanged is skipped.
The ``layer_probe@L`` items read one layer each.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from selm_lib.config import resolve_path
from selm_lib.config.cli import run_stage
from selm_lib.features.pooled import pool_layers, pooled_folder
from selm_lib.features.store import open_store


def pool(params: dict[str, Any], args: argparse.Namespace) -> str:
    backbone = params["layer_sweep"]["backbone"]
    entry = params["features"]["backbones"][backbone]
    root = resolve_path(params["common"]["output_root"])
    if entry.get("corpora") is not None:
        corpora = list(entry["corpora"])
    else:  # every corpus the features stage encoded with this entry
        folder = root / "features" / backbone / f"layer_{entry['layer']}"
        corpora = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not corpora:
        raise FileNotFoundError(
            f"no feature stores of 'layer_sweep.backbone' = '{backbone}' under "
            f"{root / 'features' / backbone}: run dvc repro features@{backbone}"
        )
    done = []
    for corpus in corpora:
        store = open_store(root, backbone, entry["layer"], corpus, "layer_sweep.backbone")
        computed = pool_layers(store, pooled_folder(root, backbone, corpus))
        done.append(f"{corpus} {'pooled' if computed else 'unchanged'} ({len(store)} clips)")
        store.close()
    return f"layer_pool {backbone}: " + ", ".join(done)


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.layer_pool", __doc__, argv, pool)


if __name__ == "__main__":
    sys.exit(main())
