"""Paired comparisons of the SER-Evals probes (``serevals.json``'s ``paired`` block).

Two kinds, both on the items the probe items scored (their ``predictions.csv``), cell by cell:

- **backbone vs backbone**: in every in-domain cell (a corpus's held-out part) and every OOD cell
  (train -> test, adjustment ``serevals.paired.variant``), each backbone against the reference
  backbone (``serevals.paired.reference``: a backbone name, or ``best``: the one with the best
  mean of the verdict metric over that kind of cell, contaminated cells left out when
  ``serevals.exclude_contaminated``; a reference picked on the test scores makes the comparisons
  a description of the ranking, not a confirmatory test);
- **logit adjustment vs none**: in every OOD cell of every backbone, each variant against
  ``none``.

Each comparison is :func:`selm_lib.evaluation.paired.compare`: the cluster bootstrap of the
*difference* (every replicate resamples the same clusters for both systems) with its 95 %
interval and p-value per metric of ``serevals.paired.metrics``, McNemar's test on the same items,
and the verdict on the first metric: ``better`` / ``worse`` when its interval excludes 0, else
``not distinguishable``. Items are matched by utterance id (and seed, when the predictions carry
a ``seed`` column: seeds are then pooled, a speaker bringing its items of every seed).

**Clusters.** The speakers of the cell's items (an empty speaker id is one cluster, as in the
split); a cell with fewer than two distinct speaker values (one speaker, or a corpus without
speaker ids) is resampled by utterance instead (``cluster_unit: utterance``: items of one
speaker are not independent, so that interval is too narrow). Fewer than
:data:`selm_lib.evaluation.paired.FEW_CLUSTERS` clusters make an interval coarse
(``few_clusters``); the reports say so.

**Classes** follow ``serevals.metric_convention``: ``present`` averages over the classes of the
cell's truth, a prediction outside them a miss; ``published`` over the classes in the truth or
either system's predictions. Macro-F1 and accuracy then equal the cell's scores in
``results.csv``; unweighted accuracy under ``published`` is averaged over the truth's classes
only.

Memory: the predictions are read one backbone at a time (the reference's kept beside), as
categorical columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.data.labels import SEREVALS_CLASSES as CLASSES
from selm_lib.evaluation.paired import FEW_CLUSTERS, compare
from selm_lib.serevals.results import BEST_REFERENCE, VARIANTS, SerevalsError, probe_folder

VERDICTS = ("better", "not distinguishable", "worse")
BEST = BEST_REFERENCE
PREDICTION_COLUMNS = ("train", "test", "variant", "utterance_id", "speaker", "truth", "prediction")


def read_backbone_predictions(path: Path) -> pd.DataFrame:
    """One probe item's predictions.csv, the columns a comparison needs, as categoricals."""
    if not path.is_file():
        raise SerevalsError(f"{path} is missing: run dvc repro serevals_probe")
    wanted = {*PREDICTION_COLUMNS, "seed"}
    table = pd.read_csv(
        path, usecols=lambda c: c in wanted, dtype="category", keep_default_na=False
    )
    missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if missing:
        raise SerevalsError(
            f"{path} lacks column(s) {missing} (written by an older serevals_probe): rerun dvc "
            "repro serevals_probe"
        )
    return table


def _cells(table: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """``{(train, test, variant): rows}``."""
    return {
        (str(k[0]), str(k[1]), str(k[2])): rows
        for k, rows in table.groupby(["train", "test", "variant"], observed=True, sort=False)
    }


def cluster_groups(speakers: Sequence[Any], items: Sequence[Any]) -> tuple[np.ndarray, str]:
    """(cluster of every item, unit): speakers when there are at least two distinct speaker
    values (an empty id is one cluster), else each utterance its own cluster."""
    speakers = np.asarray(speakers, dtype=object)
    if len(set(speakers.tolist())) >= 2:
        return speakers, "speaker"
    return np.asarray(items, dtype=object), "utterance"


def cell_classes(truth: np.ndarray, predictions: Sequence[np.ndarray], convention: str) -> list:
    """The classes a cell's macro averages run over (``serevals.metric_convention``)."""
    seen = set(truth.tolist())
    if convention == "published":
        for predicted in predictions:
            seen |= set(predicted.tolist())
    return [c for c in CLASSES if c in seen]


def compare_cell(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    metrics: Sequence[str],
    n_boot: int,
    seed: int,
    convention: str = "present",
) -> dict[str, Any] | None:
    """:func:`compare` of system ``a`` against ``b`` on the items both scored (matched by
    utterance id, and seed when there is a ``seed`` column), with ``n``, the cluster unit and
    the cluster count; None when they share no item."""
    key = ["seed", "utterance_id"] if "seed" in a.columns and "seed" in b.columns else []
    key = key or ["utterance_id"]
    left = a[[*key, "speaker", "truth", "prediction"]].astype(str)
    right = b[[*key, "truth", "prediction"]].astype(str)
    try:
        merged = left.merge(right, on=key, suffixes=("_a", "_b"), validate="one_to_one")
    except pd.errors.MergeError as error:
        raise SerevalsError(
            f"an utterance appears twice in one SER-Evals cell ({error}); rerun dvc repro "
            "serevals_probe"
        ) from error
    if merged.empty:
        return None
    merged = merged.sort_values(key, kind="stable")
    if (merged["truth_a"] != merged["truth_b"]).any():
        raise SerevalsError(
            "two SER-Evals probe items give the same utterance different labels; the manifests "
            "changed between them: rerun dvc repro serevals_probe"
        )
    truth = merged["truth_a"].to_numpy(dtype=object)
    pred_a = merged["prediction_a"].to_numpy(dtype=object)
    pred_b = merged["prediction_b"].to_numpy(dtype=object)
    groups, unit = cluster_groups(merged["speaker"].to_numpy(dtype=object), merged["utterance_id"])
    classes = cell_classes(truth, (pred_a, pred_b), convention)
    result = compare(
        truth, pred_a, pred_b, groups, classes, metrics=tuple(metrics), n_boot=n_boot, seed=seed
    )
    return {**result, "n": int(len(merged)), "cluster_unit": unit}


def _row(kind: str, train: str, test: str, a: str, b: str, result: dict[str, Any], flagged: bool):
    return {
        "kind": kind,
        "train": train,
        "test": test,
        "a": a,
        "b": b,
        "contaminated": flagged,
        **result,
    }


def pick_reference(
    results: pd.DataFrame,
    backbones: Sequence[str],
    setting: str,
    kind: str,
    variant: str,
    metric: str,
    contaminated: Mapping[str, Sequence[str]],
    exclude: bool,
) -> str:
    """The reference backbone for one kind of cell: ``setting`` itself when it names a
    backbone, else (``best``) the backbone with the highest mean ``metric`` over those cells
    (contaminated cells left out when ``exclude``; ties: the first in ``backbones``)."""
    if setting != BEST:
        if setting not in backbones:
            raise SerevalsError(
                f"params.yaml 'serevals.paired.reference' is {setting!r}: use 'best' or one of "
                f"'serevals_sweep.backbones' ({', '.join(backbones)})"
            )
        return setting
    rows = results[results["kind"] == kind]
    if kind == "ood":
        rows = rows[rows["variant"] == variant]
    if exclude:
        flags = [
            t in set(contaminated.get(b, ())) for b, t in zip(rows.backbone, rows.test, strict=True)
        ]
        rows = rows[~np.asarray(flags, dtype=bool)] if len(rows) else rows
    means = rows.groupby("backbone")[metric].mean().reindex(list(backbones))
    if means.isna().all():
        return backbones[0]
    return str(means.idxmax())


def paired_block(
    params: dict[str, Any],
    results: pd.DataFrame,
    contaminated: Mapping[str, Sequence[str]] | None = None,
    read: Any = None,
) -> dict[str, Any]:
    """``serevals.json``'s ``paired`` block (see the module docstring): settings, the reference
    of each kind, one row per comparison (``backbones``, ``adjustment``) and the verdict counts
    (``tally``), contaminated cells flagged in the rows and, with
    ``serevals.exclude_contaminated``, left out of the counts. ``read`` (tests) maps a backbone
    to its predictions frame; default: its item's predictions.csv."""
    settings, serevals = params["serevals"]["paired"], params["serevals"]
    backbones = list(params["serevals_sweep"]["backbones"])
    metrics = list(settings["metrics"])
    variant, n_boot = settings["variant"], int(settings["bootstrap"])
    seed = int(params["common"]["seed"])
    convention = serevals["metric_convention"]
    exclude = bool(serevals["exclude_contaminated"])
    contaminated = {b: list(v) for b, v in (contaminated or {}).items()}
    read = read or (
        lambda b: read_backbone_predictions(probe_folder(params, b) / "predictions.csv")
    )
    reference = {
        kind: pick_reference(
            results,
            backbones,
            settings["reference"],
            kind,
            variant,
            metrics[0],
            contaminated,
            exclude,
        )
        for kind in ("in_domain", "ood")
    }

    def flagged(backbone: str, test: str) -> bool:
        return test in set(contaminated.get(backbone, ()))

    def run(a_rows, b_rows) -> dict[str, Any] | None:
        return compare_cell(
            a_rows, b_rows, metrics=metrics, n_boot=n_boot, seed=seed, convention=convention
        )

    references = {name: _cells(read(name)) for name in dict.fromkeys(reference.values())}
    versus, adjustment = [], []
    for backbone in backbones:
        cells = references.get(backbone) or _cells(read(backbone))
        for (train, test, cell_variant), rows in cells.items():
            kind = "in_domain" if train == test else "ood"
            ref = reference[kind]
            if ref != backbone and cell_variant == ("none" if kind == "in_domain" else variant):
                other = references[ref].get((train, test, cell_variant))
                result = None if other is None else run(rows, other)
                if result is not None:
                    mark = flagged(backbone, test) or flagged(ref, test)
                    versus.append(_row(kind, train, test, backbone, ref, result, mark))
            if kind == "ood" and cell_variant != "none":
                base = cells.get((train, test, "none"))
                result = None if base is None else run(rows, base)
                if result is not None:
                    row = _row(
                        kind, train, test, cell_variant, "none", result, flagged(backbone, test)
                    )
                    adjustment.append({"backbone": backbone, **row})
        del cells
    order = {v: i for i, v in enumerate(VARIANTS)}
    position = {b: i for i, b in enumerate(backbones)}
    versus.sort(key=lambda r: (r["kind"] != "in_domain", position[r["a"]], r["train"], r["test"]))
    adjustment.sort(key=lambda r: (position[r["backbone"]], r["train"], r["test"], order[r["a"]]))
    return {
        "metrics": metrics,
        "verdict_metric": metrics[0],
        "variant": variant,
        "bootstrap": n_boot,
        "seed": seed,
        "metric_convention": convention,
        "few_clusters_below": FEW_CLUSTERS,
        "exclude_contaminated": exclude,
        "reference_setting": settings["reference"],
        "reference": reference,
        "verdict_rule": (
            f"better / worse: the 95 % paired-bootstrap interval of the {metrics[0]} difference "
            "(a minus b) excludes 0; otherwise not distinguishable"
        ),
        "backbones": versus,
        "adjustment": adjustment,
        "tally": {
            "backbones": tally(versus, ("kind", "a"), exclude),
            "adjustment": tally(adjustment, ("backbone", "a"), exclude),
        },
    }


def tally(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], exclude: bool) -> dict:
    """Verdict counts nested by ``keys`` (e.g. kind -> backbone), with ``few_clusters`` (cells
    whose interval is coarse) and ``contaminated`` (flagged cells, left out of the verdict
    counts when ``exclude``)."""
    out: dict[str, Any] = {}
    for row in rows:
        node = out
        for key in keys[:-1]:
            node = node.setdefault(str(row[key]), {})
        counts = node.setdefault(
            str(row[keys[-1]]), {**{v: 0 for v in VERDICTS}, "few_clusters": 0, "contaminated": 0}
        )
        if row["contaminated"]:
            counts["contaminated"] += 1
            if exclude:
                continue
        counts[row["verdict"]] += 1
        counts["few_clusters"] += int(bool(row["few_clusters"]))
    return out
