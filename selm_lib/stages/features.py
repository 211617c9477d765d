"""Stage ``features@NAME``: frame features of every corpus that backbone entry NAME encodes.

    python -m selm_lib.stages.features --backbone NAME [--params params.yaml]

One DVC stage per ``features.backbones`` entry (a ``foreach``), each writing only
``common.output_root/features/NAME/``, so adding a backbone encodes only its corpora and leaves
every other backbone's stores, and the stages that read them, untouched. Within a backbone, stores
whose backbone, layer, dtype and manifest are unchanged are skipped.

With ``common.nproc > 1`` (or under ``torchrun``) the clips' batches are spread over the ranks by
length, each rank encodes its share into its own shards, and rank 0 renumbers them into one store
and moves it in place once every rank is done (:func:`selm_lib.features.extract.compute_features`):
a store holds the same bytes per clip however many processes wrote it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from selm_lib.config import ParamsError, resolve_path
from selm_lib.config.cli import run_stage
from selm_lib.features.extract import compute_all


def features(params: dict[str, Any], args: argparse.Namespace) -> str:
    if args.backbone not in params["features"]["backbones"]:
        raise ParamsError(
            f"'{args.backbone}' is not a params.yaml 'features.backbones' entry (known: "
            + ", ".join(params["features"]["backbones"])
            + ")"
        )
    output_root = resolve_path(params["common"]["output_root"])
    table = compute_all(
        params["features"],
        manifests_dir=output_root / "manifests",
        output_root=output_root / "features",
        backbones=[args.backbone],
        device=params["common"]["device"],
        seed=params["common"]["seed"],
    )
    (output_root / "features" / args.backbone).mkdir(parents=True, exist_ok=True)
    columns = [
        "backbone",
        "layer",
        "corpus",
        "skipped",
        "clips",
        "audio_seconds",
        "audio_seconds_per_second",
        "padding_fraction",
    ]
    return table[[c for c in columns if c in table]].to_string(index=False)


def main(argv: Sequence[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backbone", required=True, help="a features.backbones entry")

    return run_stage("selm_lib.stages.features", __doc__, argv, features, options, distributed=True)


if __name__ == "__main__":
    raise SystemExit(main())
