"""Stage ``curate``: scan every configured corpus, attach evaluation classes, split by speaker.

Writes, under ``common.output_root``:
  ``manifests/<corpus>.csv``  every file or labelled row, quarantined ones with their reason
  ``splits/<corpus>.csv``     utterance_id, speaker, split, fold (usable rows; speaker-disjoint)
and ``reports/metrics/curate.json`` plus ``reports/plots/curate_counts.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.corpora import SCANNERS, scan, usable
from selm_lib.labels import class_map
from selm_lib.params import corpus_root, output_dir, project_root
from selm_lib.splits import speaker_splits
from selm_lib.synth.layouts import SYNTHETIC_NOTE

SYNTHETIC_MARKER = "SYNTHETIC_README.txt"


@dataclass
class Curated:
    """What the curate stage produced, for the report."""

    manifests: dict[str, pd.DataFrame]
    splits: dict[str, pd.DataFrame]
    roots: dict[str, Path]
    synthetic: dict[str, bool]

    def combined(self) -> pd.DataFrame:
        """All manifests in one frame, with ``split`` and ``fold`` joined for usable rows."""
        frames = []
        for name, manifest in self.manifests.items():
            split = self.splits[name][["utterance_id", "split", "fold"]]
            frames.append(manifest.merge(split, on="utterance_id", how="left"))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def is_synthetic(root: Path) -> bool:
    """True when the corpus folder was written by selm_lib.synth (it carries the marker file)."""
    marker = root / SYNTHETIC_MARKER
    return marker.is_file() and marker.read_text() == SYNTHETIC_NOTE


def attach_eval_class(
    manifest: pd.DataFrame, class_set: str | None, ravdess_calm: str
) -> pd.DataFrame:
    """Add ``eval_class``: the row's class in its corpus's evaluation class set ('' if excluded)."""
    manifest = manifest.copy()
    if not class_set:
        manifest["eval_class"] = ""
        return manifest
    if class_set == "serevals8":
        manifest["eval_class"] = manifest["serevals8"]
        return manifest
    mapping = class_map(class_set, calm=ravdess_calm)
    manifest["eval_class"] = manifest["emotion"].map(mapping).fillna("")
    return manifest


def run_curation(common: dict[str, Any], curate: dict[str, Any]) -> Curated:
    """Scan, split and write every corpus of ``curate.corpora``; returns the tables."""
    params = {"common": common, "curate": curate}
    manifest_dir = output_dir(params, "manifests")
    split_dir = output_dir(params, "splits")
    result = Curated({}, {}, {}, {})
    for name, spec in curate["corpora"].items():
        root = corpus_root(params, name)
        options = {"include_song": curate["ravdess_include_song"]} if name == "ravdess" else {}
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


def summary_table(curated: Curated) -> pd.DataFrame:
    """One row per corpus: files, usable, quarantined, speakers, hours, rates, role."""
    rows = []
    for name, manifest in curated.manifests.items():
        good = usable(manifest)
        rates = sorted({int(r) for r in good["sample_rate"].unique()})
        rows.append(
            {
                "corpus": name,
                "role": manifest["role"].iloc[0] if len(manifest) else "",
                "synthetic": curated.synthetic[name],
                "files": len(manifest),
                "usable": len(good),
                "quarantined": len(manifest) - len(good),
                "speakers": good.loc[good["speaker"] != "", "speaker"].nunique(),
                "hours": round(float(good["duration_s"].sum()) / 3600, 3),
                "sample_rates": ", ".join(str(r) for r in rates),
                "with_vad": bool(good["valence"].notna().any()),
            }
        )
    return pd.DataFrame(rows)


def counts_by_split(curated: Curated) -> pd.DataFrame:
    """Usable rows per corpus x emotion x split (long format)."""
    combined = usable(curated.combined())
    table = combined.groupby(["corpus", "emotion", "split"]).size().rename("count").reset_index()
    return table.sort_values(["corpus", "emotion", "split"]).reset_index(drop=True)


def eval_class_counts(curated: Curated) -> pd.DataFrame:
    """Usable rows per corpus x evaluation class ('(excluded)' for rows outside the class set)."""
    combined = usable(curated.combined())
    labelled = combined.assign(eval_class=combined["eval_class"].replace("", "(excluded)"))
    return labelled.groupby(["corpus", "eval_class"]).size().unstack(fill_value=0)


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


def relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)
