"""The curated corpora as tables: evaluation classes attached to a manifest, per-corpus summaries
and counts, and reading back what the ``curate`` stage wrote (``manifests/``, ``splits/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.config import corpus_root, project_root, resolve_path
from selm_lib.data.corpora.base import usable
from selm_lib.data.labels import class_map
from selm_lib.data.provenance import is_synthetic


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


def relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


class MissingCuration(FileNotFoundError):
    """The curate stage's manifests are not there; the message says what to run."""


def read_curated(common: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The curate stage's manifests and splits, by corpus."""
    root = resolve_path(common["output_root"])
    manifests, splits = {}, {}
    for path in sorted((root / "manifests").glob("*.csv")):
        manifests[path.stem] = pd.read_csv(path, keep_default_na=False, low_memory=False)
        for column in ("valence", "arousal", "dominance"):
            manifests[path.stem][column] = pd.to_numeric(
                manifests[path.stem][column], errors="coerce"
            )
        splits[path.stem] = pd.read_csv(root / "splits" / path.name, keep_default_na=False)
    if not manifests:
        raise MissingCuration(
            f"no manifests under {root / 'manifests'}: run the curate stage first "
            "(dvc repro curate)"
        )
    return manifests, splits


def load_curated(common: dict[str, Any], curate: dict[str, Any]) -> Curated:
    """The curate stage's outputs as :class:`Curated`, in ``curate.corpora`` order."""
    manifests, splits = read_curated(common)
    params = {"common": common, "curate": curate}
    result = Curated({}, {}, {}, {})
    for name in curate["corpora"]:
        if name not in manifests:
            raise MissingCuration(
                f"no manifest for '{name}' (params.yaml 'curate.corpora.{name}'): rerun dvc repro "
                "curate"
            )
        root = corpus_root(params, name)
        result.manifests[name] = manifests[name]
        result.splits[name] = splits[name]
        result.roots[name] = root
        result.synthetic[name] = is_synthetic(root)
    return result
