"""Stage ``curate``: scan every configured corpus, attach evaluation classes, split by speaker.

    python -m selm_lib.stages.curate [--params params.yaml]

Writes, under ``common.output_root``:
  ``manifests/<corpus>.csv``  every file or labelled row, quarantined ones with their reason
  ``splits/<corpus>.csv``     utterance_id, speaker, split, fold (usable rows; speaker-disjoint)
and ``reports/metrics/curate.json`` plus ``reports/plots/curate_counts.csv``. The report
``01_curate.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from selm_lib.config import corpus_root, output_dir, project_root
from selm_lib.config.cli import run_stage
from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import SCANNERS, scan
from selm_lib.data.curate import Curated, attach_eval_class, summary_table
from selm_lib.data.provenance import is_synthetic
from selm_lib.data.splits import speaker_splits


def run_curation(common: dict[str, Any], curate: dict[str, Any]) -> Curated:
    """Scan, split and write every corpus of ``curate.corpora``; returns the tables."""
    params = {"common": common, "curate": curate}
    manifest_dir = output_dir(params, "manifests")
    split_dir = output_dir(params, "splits")
    result = Curated({}, {}, {}, {})
    for name, spec in curate["corpora"].items():
        root = corpus_root(params, name)
        options = {
            "ravdess": {"include_song": curate["ravdess_include_song"]},
            "expresso": {"dialogues": curate["expresso_dialogues"]},
        }.get(name, {})
        manifest = scan(
            name,
            root,
            options=options,
            min_duration_s=curate["min_duration_s"],
            silence_dbfs=curate["silence_dbfs"],
            params_key=f"curate.corpora.{name}.root",
            progress=True,
        )
        manifest = attach_eval_class(
            manifest, curate["class_sets"].get(name), curate["ravdess_calm"]
        )
        manifest.insert(1, "role", spec["role"])
        strategy = curate["split"]["strategy"]
        if strategy == "official" and not SCANNERS[name].has_official_split:
            strategy = "speaker"  # corpora without an official split always use speaker splits
        splits = speaker_splits(
            manifest,
            seed=common["seed"],
            validation=curate["split"]["validation"],
            test=curate["split"]["test"],
            folds=curate["split"]["folds"],
            strategy=strategy,
        )
        manifest.to_csv(manifest_dir / f"{name}.csv", index=False)
        splits.to_csv(split_dir / f"{name}.csv", index=False)
        result.manifests[name] = manifest
        result.splits[name] = splits
        result.roots[name] = root
        result.synthetic[name] = is_synthetic(root)
    return result


def write_metrics(curated: Curated, path: Path, plot_path: Path) -> dict[str, Any]:
    """``reports/metrics/curate.json`` (per corpus counts) and the plot data CSV."""
    summary = summary_table(curated)
    metrics = {
        row["corpus"]: {
            "files": int(row["files"]),
            "usable": int(row["usable"]),
            "quarantined": int(row["quarantined"]),
            "speakers": int(row["speakers"]),
            "hours": float(row["hours"]),
            "synthetic": bool(row["synthetic"]),
        }
        for _, row in summary.iterrows()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    counts = usable(curated.combined()).groupby(["corpus", "emotion"]).size()
    counts.rename("count").reset_index().to_csv(plot_path, index=False)
    return metrics


def curate(params: dict[str, Any], args: argparse.Namespace) -> str:
    curated = run_curation(params["common"], params["curate"])
    root = project_root()
    metrics = write_metrics(
        curated,
        root / "reports" / "metrics" / "curate.json",
        root / "reports" / "plots" / "curate_counts.csv",
    )
    usable_clips = sum(m["usable"] for m in metrics.values())
    quarantined = sum(m["quarantined"] for m in metrics.values())
    return f"curate: {len(metrics)} corpora, {usable_clips} usable clips, {quarantined} quarantined"


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.curate", __doc__, argv, curate)


if __name__ == "__main__":
    sys.exit(main())
