"""SER-Evals results as the stages write them and the reports read them: the probe items'
score tables, the OOD pairs of the clusters, the train x test matrices and ``serevals.json``
(no model code, so reports import it cheaply)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import resolve_path
from selm_lib.data.labels import SEREVALS_CLASSES as CLASSES

VARIANTS: tuple[str, ...] = ("none", "train_prior", "oracle", "estimated", "estimated_map")
EM_VARIANTS: tuple[str, ...] = ("estimated", "estimated_map")  # the variants that run EM
VARIANT_TEXT = {
    "none": "raw logits (other and classes absent from training masked)",
    "train_prior": "training prior removed",
    "oracle": "the paper's adjustment with the test prior from the test labels (oracle)",
    "estimated": "test prior estimated by EM from unlabelled test predictions (scored items only)",
    "estimated_map": "test prior estimated by MAP-EM, a Dirichlet prior pulling it toward the "
    "training prior (strength serevals.em_prior_strength; scored items only)",
}
METRICS = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
CONVENTIONS = ("present", "published")
CONVENTION_TEXT = {
    "present": "macro averages over the classes present in the scored truth",
    "published": "macro averages over every class of the 8-class space that occurs in the scored "
    "truth or the predictions (the published tables' torchmetrics convention: a class predicted "
    "but absent from the truth counts with F1 and recall 0)",
}
SPEAKER_DISJOINT = "speaker_disjoint"
SPEAKER_OVERLAPPING = "speaker_overlapping"
SPEAKER_UNKNOWN = "speaker_unknown"  # a corpus with no speaker ids (label-folder layouts)
OFFICIAL = "official"  # the corpus's own test split (serevals.split: official; MELD, RESD)
GROUP_DISJOINT = "group_disjoint"  # disjoint over groups that are not speakers (GROUP_SPEAKERS)
# Corpora whose ``speaker`` column holds a group that is not an individual speaker (see each
# scanner's docstring). A split over such a column is disjoint by group, not by speaker, and is
# labelled ``group_disjoint``: the same person may sit on both sides.
GROUP_SPEAKERS: dict[str, str] = {
    "mesd": "voice group (child, female adult, male adult; selm_lib/data/corpora/mesd.py)",
    "resd": "dialogue number (actors recur across dialogues; selm_lib/data/corpora/resd.py)",
}
BEST_REFERENCE = "best"  # serevals.paired.reference: the best mean backbone of each kind of cell
COLLAPSE_SHARE = 0.95  # an OOD cell has collapsed when one class takes this share of predictions
RESULT_COLUMNS = [
    "backbone",
    "train",
    "test",
    "kind",
    "cluster",
    "split",
    "variant",
    *METRICS,
    "n",
    "classes",
    "classes_averaged",
    "chance_ua",
    "majority_accuracy",
]


class SerevalsError(ValueError):
    """Bad SER-Evals input; names the corpus and the params.yaml key."""


def cluster_pairs(clusters: dict[str, list[str]], corpora: list[str]) -> list[tuple[str, str, str]]:
    """(cluster, train, test) for every ordered pair of distinct corpora of a cluster that are
    both in ``corpora``; ordered as ``corpora``. A pair in two clusters is listed once."""
    position = {c: i for i, c in enumerate(corpora)}
    pairs: dict[tuple[str, str], str] = {}
    for name, members in clusters.items():
        present = sorted({m for m in members if m in position}, key=position.__getitem__)
        for train in present:
            for test in present:
                if train != test:
                    pairs.setdefault((train, test), name)
    ordered = sorted(pairs, key=lambda p: (position[p[0]], position[p[1]]))
    return [(pairs[p], *p) for p in ordered]


def unavailable_members(clusters: dict[str, list[str]], corpora: list[str]) -> dict[str, list[str]]:
    """Cluster members not in ``corpora`` (not curated or not probed), per cluster."""
    out = {name: [m for m in members if m not in corpora] for name, members in clusters.items()}
    return {name: missing for name, missing in out.items() if missing}


def probe_folder(params: dict[str, Any], backbone: str) -> Path:
    return resolve_path(params["common"]["output_root"]) / "serevals" / "probes" / backbone


def read_results(params: dict[str, Any]) -> pd.DataFrame:
    """Every backbone item's results.csv, in ``serevals_sweep.backbones`` order."""
    frames = []
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "results.csv"
        if not path.is_file():
            raise SerevalsError(
                f"{path} is missing: backbone '{backbone}' is in params.yaml "
                "'serevals_sweep.backbones' but its probe item has not run; run dvc repro "
                "serevals_probe"
            )
        frames.append(pd.read_csv(path, keep_default_na=False))
    return pd.concat(frames, ignore_index=True)


def read_ood_predictions(params: dict[str, Any]) -> pd.DataFrame:
    """The OOD rows (train != test) of every backbone item's predictions.csv."""
    frames = []
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "predictions.csv"
        if not path.is_file():
            raise SerevalsError(f"{path} is missing: run dvc repro serevals_probe")
        table = pd.read_csv(path, keep_default_na=False)
        frames.append(table[table["train"] != table["test"]])
    return pd.concat(frames, ignore_index=True)


def read_meta(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every backbone item's meta.json (``{}`` for an item without one)."""
    out = {}
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "meta.json"
        out[backbone] = json.loads(path.read_text()) if path.is_file() else {}
    return out


def top_class_shares(ood: pd.DataFrame) -> pd.Series:
    """Per OOD (backbone, train, test, variant) cell, the share of its predictions taken by its
    most predicted class (1.0: a single class takes every prediction)."""
    keys = ["backbone", "train", "test", "variant"]
    if ood.empty:
        return pd.Series(dtype=float, name="top_class_share")
    counts = ood.groupby([*keys, "prediction"]).size()
    top = counts.groupby(level=keys).max() / counts.groupby(level=keys).sum()
    top.name = "top_class_share"
    return top


def collapse_share(
    ood: pd.DataFrame, threshold: float = COLLAPSE_SHARE, backbone: str | None = None
) -> pd.Series:
    """Per variant, the share of OOD (pair, backbone) cells whose predictions are (nearly) all one
    class: the most predicted class takes at least ``threshold`` of them (1.0: exactly one
    class). ``backbone`` restricts the cells to one backbone."""
    top = top_class_shares(ood)
    if backbone is not None and len(top):
        top = top[top.index.get_level_values("backbone") == backbone]
    if top.empty:
        return pd.Series(dtype=float, name="collapse_share")
    share = (top >= threshold - 1e-12).groupby(level="variant").mean()
    share.name = "collapse_share"
    return share.reindex([v for v in VARIANTS if v in share.index])


def single_class_share(params: dict[str, Any]) -> pd.Series:
    """Per variant, the share of OOD (pair, backbone) cells in which one class takes every
    prediction (a collapse), from the items' predictions.csv."""
    share = collapse_share(read_ood_predictions(params), threshold=1.0)
    share.name = "single_class_share"
    return share


def calibration_summary(
    meta: dict[str, dict[str, Any]], contaminated: dict[str, list[str]], exclude: bool
) -> dict[str, Any]:
    """``serevals.json``'s ``calibration`` block from the items' meta ``calibration`` entries:
    per backbone, kind (in_domain / ood) and variant the mean ECE, NLL and Brier score over the
    cells and the pooled reliability table (bin counts summed, mean confidence and accuracy
    weighted by them). OOD cells whose backbone saw the test corpus are left out when
    ``exclude`` (``serevals.exclude_contaminated``), as in the OOD means."""
    out: dict[str, Any] = {}
    for backbone, item in meta.items():
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for entry in item.get("calibration", []):
            flagged = entry["kind"] == "ood" and entry["test"] in contaminated.get(backbone, [])
            if flagged and exclude:
                continue
            groups.setdefault((entry["kind"], entry["variant"]), []).append(entry)
        for (kind, variant), entries in sorted(groups.items()):
            bins = len(entries[0]["reliability"]["count"])
            count = np.zeros(bins)
            confidence, accuracy = np.zeros(bins), np.zeros(bins)
            for e in entries:
                table = e["reliability"]
                c = np.asarray(table["count"], dtype=float)
                count += c
                confidence += c * np.nan_to_num(np.asarray(table["confidence"], dtype=float))
                accuracy += c * np.nan_to_num(np.asarray(table["accuracy"], dtype=float))
            safe = np.where(count > 0, count, 1.0)
            out.setdefault(backbone, {}).setdefault(kind, {})[variant] = {
                "cells": len(entries),
                **{
                    m: round(float(np.mean([e[m] for e in entries])), 6)
                    for m in ("ece", "nll", "brier")
                },
                "reliability": {
                    "lower": entries[0]["reliability"]["lower"],
                    "upper": entries[0]["reliability"]["upper"],
                    "count": [int(c) for c in count],
                    "confidence": [
                        round(float(v), 6) if n else None
                        for v, n in zip(confidence / safe, count, strict=True)
                    ],
                    "accuracy": [
                        round(float(v), 6) if n else None
                        for v, n in zip(accuracy / safe, count, strict=True)
                    ],
                },
            }
    return out


def calibration_table(block: dict[str, Any], kind: str) -> pd.DataFrame:
    """(backbone, variant) rows: cells, mean ECE, NLL and Brier of ``kind`` (in_domain / ood)."""
    rows = [
        {"backbone": b, "variant": v, **{k: r[k] for k in ("cells", "ece", "nll", "brier")}}
        for b, kinds in block.items()
        for v, r in kinds.get(kind, {}).items()
    ]
    return pd.DataFrame(rows).set_index(["backbone", "variant"]) if rows else pd.DataFrame()


def em_table(meta: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per EM fit (backbone, train, test, variant) from the items' meta ``em`` entries:
    converged, iterations, scored items."""
    rows = [
        {"backbone": backbone, **entry}
        for backbone, item in meta.items()
        for entry in item.get("em", [])
    ]
    columns = ["backbone", "train", "test", "variant", "converged", "iterations", "n_fit"]
    return pd.DataFrame(rows).reindex(columns=columns) if rows else pd.DataFrame(columns=columns)


def em_summary(meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``serevals.json``'s ``em`` block: per EM variant the fits, how many did not converge and
    the largest iteration count; and every fit that did not converge."""
    table = em_table(meta)
    out: dict[str, Any] = {"variants": {}, "not_converged": []}
    for variant in EM_VARIANTS:
        rows = table[table["variant"] == variant]
        if rows.empty:
            continue
        failed = int((~rows["converged"].astype(bool)).sum())
        out["variants"][variant] = {
            "fits": int(len(rows)),
            "not_converged": failed,
            "share_not_converged": round(failed / len(rows), 6),
            "max_iterations": int(rows["iterations"].max()),
        }
    bad = table[~table["converged"].astype(bool)] if len(table) else table
    out["not_converged"] = [
        {k: (int(v) if k == "iterations" else v) for k, v in row.items() if k != "converged"}
        for row in bad[["backbone", "train", "test", "variant", "iterations"]].to_dict("records")
    ]
    return out


def matrix(
    results: pd.DataFrame, backbone: str, metric: str, variant: str, corpora: list[str]
) -> pd.DataFrame:
    """train x test matrix: the diagonal is in-domain, off-diagonal cells the OOD pairs scored
    with ``variant``; pairs not evaluated (other clusters) are NaN."""
    table = pd.DataFrame(np.nan, index=list(corpora), columns=list(corpora), dtype=float)
    table.index.name, table.columns.name = "train", "test"
    rows = results[results["backbone"] == backbone]
    chosen = rows[(rows["kind"] == "in_domain") | (rows["variant"] == variant)]
    for row in chosen.itertuples(index=False):
        if row.train in table.index and row.test in table.columns:
            table.loc[row.train, row.test] = float(getattr(row, metric))
    return table


def matrices(results: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """``{backbone: {variant: {metric: DataFrame}}}`` for every backbone, variant and metric."""
    corpora = list(params["serevals"]["corpora"])
    return {
        backbone: {
            variant: {
                metric: matrix(results, backbone, metric, variant, corpora) for metric in METRICS
            }
            for variant in VARIANTS
        }
        for backbone in params["serevals_sweep"]["backbones"]
    }


def write_matrices(
    all_matrices: dict[str, Any], folder: Path, about: dict[str, Any] | None = None
) -> None:
    """``<backbone>/<variant>/<metric>.csv`` plus one ``matrices.json`` (NaN as null) whose
    ``about`` entry records the settings (split per corpus, normalisation)."""
    nested: dict[str, Any] = {"about": about or {}}
    for backbone, variants in all_matrices.items():
        for variant, by_metric in variants.items():
            for metric, table in by_metric.items():
                path = folder / backbone / variant / f"{metric}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                table.round(6).to_csv(path)
                nested.setdefault(backbone, {}).setdefault(variant, {})[metric] = {
                    train: {
                        test: (None if np.isnan(v) else round(float(v), 6))
                        for test, v in row.items()
                    }
                    for train, row in table.iterrows()
                }
    (folder / "matrices.json").write_text(json.dumps(nested, indent=2, sort_keys=True) + "\n")


def flag_contaminated(results: pd.DataFrame, cells: dict[str, list[str]]) -> pd.Series:
    """Per row of ``results`` (or of a predictions table), whether its (backbone, test corpus)
    cell is contaminated: ``cells`` maps a backbone to the test corpora its checkpoint saw in
    training (:func:`selm_lib.data.contamination.contaminated_cells`)."""
    if results.empty or not cells:
        return pd.Series(False, index=results.index, name="contaminated")
    pairs = {(b, t) for b, tests in cells.items() for t in tests}
    flags = [
        (str(b), str(t)) in pairs for b, t in zip(results["backbone"], results["test"], strict=True)
    ]
    return pd.Series(flags, index=results.index, name="contaminated")


def contamination_summary(
    cells: dict[str, list[str]],
    sources: dict[str, str],
    notes: dict[str, str],
    exclude: bool,
    ledger: str = "",
) -> dict[str, Any]:
    """``serevals.json``'s ``contamination`` block: the ledger's path (``ledger``, from
    :data:`selm_lib.data.contamination.LEDGER_PATH`: this module reads no table), per backbone
    its source, the test corpora its checkpoint saw (``cells``, from the ledger) and the
    ledger's note; whether those cells are left out of the OOD averages
    (``serevals.exclude_contaminated``)."""
    return {
        "ledger": ledger,
        "exclude_contaminated": bool(exclude),
        "cells": {
            b: {"source": sources[b], "test_corpora": list(tests), "ledger": notes.get(b, "")}
            for b, tests in cells.items()
            if tests
        },
    }


def summary(
    results: pd.DataFrame,
    params: dict[str, Any],
    predictions: pd.DataFrame | None = None,
    meta: dict[str, dict[str, Any]] | None = None,
    contamination: dict[str, Any] | None = None,
    paired: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``serevals.json``: per backbone the in-domain mean (over corpora) and the OOD mean (over
    pairs, per variant) of every metric, the share of OOD pairs whose unweighted accuracy beats
    chance, and the split label; plus the mean over backbones. With the OOD ``predictions``
    (:func:`read_ood_predictions`) each variant also gets its collapse share (cells whose most
    predicted class takes at least :data:`COLLAPSE_SHARE` of the predictions) and its
    single-class share; with the items' ``meta`` (:func:`read_meta`) an ``em`` block records
    every EM fit's convergence (:func:`em_summary`) and a ``calibration`` block the probes' ECE,
    NLL, Brier and pooled reliability (:func:`calibration_summary`). ``metric_convention`` names
    how the macro averages were taken (``serevals.metric_convention``).

    ``contamination`` (:func:`contamination_summary`): its cells are flagged, and with
    ``exclude_contaminated`` the OOD means, shares and collapse shares leave them out (each OOD
    block counts them in ``contaminated_excluded``); in-domain means keep them and count them
    in ``contaminated_cells``. ``paired`` (:func:`selm_lib.serevals.paired.paired_block`) is
    stored under ``paired``."""
    cells = {b: v["test_corpora"] for b, v in (contamination or {}).get("cells", {}).items()}
    exclude = bool((contamination or {}).get("exclude_contaminated", False))
    results = results.assign(contaminated=flag_contaminated(results, cells).to_numpy())
    if predictions is not None and exclude and cells:
        predictions = predictions[~flag_contaminated(predictions, cells).to_numpy()]

    def means(rows: pd.DataFrame) -> dict[str, float]:
        return {m: round(float(rows[m].mean()), 6) for m in METRICS} if len(rows) else {}

    def block(rows: pd.DataFrame, backbone: str | None = None) -> dict[str, Any]:
        in_domain = rows[rows["kind"] == "in_domain"]
        ood = rows[rows["kind"] == "ood"]
        flagged_ood = ood[ood["contaminated"]]
        if exclude:
            ood = ood[~ood["contaminated"]]
        above_in = (in_domain["unweighted_accuracy"] > in_domain["chance_ua"]).mean()
        out: dict[str, Any] = {
            "in_domain": {
                **means(in_domain),
                "corpora": int(in_domain["train"].nunique()),
                "share_above_chance_ua": round(float(above_in), 6) if len(in_domain) else 0.0,
                "contaminated_cells": int(in_domain["contaminated"].sum()),
            },
            "ood": {},
        }
        for variant in VARIANTS:
            chosen = ood[ood["variant"] == variant]
            left_out = int((flagged_ood["variant"] == variant).sum()) if exclude else 0
            if chosen.empty and not left_out:
                continue
            above = (chosen["unweighted_accuracy"] > chosen["chance_ua"]).mean()
            out["ood"][variant] = {
                **(means(chosen) if len(chosen) else dict.fromkeys(METRICS)),
                "pairs": chosen[["train", "test"]].drop_duplicates().shape[0],
                "share_above_chance_ua": round(float(above), 6) if len(chosen) else 0.0,
                "contaminated_excluded": left_out,
            }
            if top is not None:
                cells = top[top.index.get_level_values("variant") == variant]
                if backbone is not None:
                    cells = cells[cells.index.get_level_values("backbone") == backbone]
                for key, threshold in (
                    ("collapse_share", COLLAPSE_SHARE),
                    ("single_class_share", 1),
                ):
                    value = float((cells >= threshold - 1e-12).mean()) if len(cells) else None
                    out["ood"][variant][key] = None if value is None else round(value, 6)
        return out

    convention = params["serevals"]["metric_convention"]
    top = top_class_shares(predictions) if predictions is not None else None
    top = None if top is None or top.empty else top
    splits = sorted(set(results["split"]))
    in_domain = results[results["kind"] == "in_domain"].drop_duplicates("train")
    return {
        "split": params["serevals"]["split"],
        "split_labels": splits,
        "split_per_corpus": dict(zip(in_domain["train"], in_domain["split"], strict=True)),
        "group_columns": {c: GROUP_SPEAKERS[c] for c in in_domain["train"] if c in GROUP_SPEAKERS},
        "classes": list(CLASSES),
        "variants": dict(VARIANT_TEXT),
        "mask_absent": params["serevals"]["mask_absent"],
        "normalize": params["serevals"]["normalize"],
        "metric_convention": convention,
        "metric_convention_text": CONVENTION_TEXT[convention],
        "em_prior_strength": params["serevals"]["em_prior_strength"],
        "collapse_threshold": COLLAPSE_SHARE,
        "backbones": {
            b: block(results[results["backbone"] == b], b)
            for b in params["serevals_sweep"]["backbones"]
        },
        "mean_over_backbones": block(results),
        **({"em": em_summary(meta)} if meta is not None else {}),
        **({"calibration": calibration_summary(meta, cells, exclude)} if meta is not None else {}),
        **({"contamination": contamination} if contamination is not None else {}),
        **({"paired": paired} if paired is not None else {}),
    }


def setup_text(serevals: dict[str, Any], backbones: list[str], results: pd.DataFrame) -> str:
    """The report's setup paragraph: sizes, split, probe settings, clusters and the corpora
    that are in-domain only."""
    corpora = list(serevals["corpora"])
    probe = serevals["probe"]
    pairs = cluster_pairs(serevals["clusters"], corpora)
    missing = unavailable_members(serevals["clusters"], corpora)
    in_cluster = {c for _, a, b in pairs for c in (a, b)}
    labels = ", ".join(f"`{s}`" for s in sorted(set(results["split"])))
    normalize = (
        "each corpus z-scored with its own statistics"
        if serevals["normalize"] == "corpus"
        else "raw features, as in the paper"
    )
    clusters = "; ".join(
        f"{name}: {', '.join(m for m in members if m in corpora) or '(none available)'}"
        + (f" (not available: {', '.join(missing[name])})" if name in missing else "")
        for name, members in serevals["clusters"].items()
    )
    alone = ", ".join(c for c in corpora if c not in in_cluster) or "none"
    convention = serevals["metric_convention"]
    groups = [c for c in corpora if c in GROUP_SPEAKERS]
    group_text = (
        " Splits of "
        + "; ".join(f"{c} (its speaker column is a {GROUP_SPEAKERS[c]})" for c in groups)
        + f" are over groups that are not speakers and are labelled `{GROUP_DISJOINT}`."
        if groups
        else ""
    )
    return (
        f"**Setup.** {len(backbones)} backbones x {len(corpora)} corpora; in-domain split "
        f"`serevals.split: {serevals['split']}` (labels in the results: {labels}); {len(pairs)} "
        f"OOD pairs within clusters; probe {probe['epochs']} epochs, batch "
        f"{probe['batch_size']}, peak learning rate {probe['learning_rate']}; audio truncated to "
        f"{serevals['max_seconds']} s; feature normalisation `serevals.normalize: "
        f"{serevals['normalize']}` ({normalize}); metric convention `serevals.metric_convention: "
        f"{convention}` ({CONVENTION_TEXT[convention]}); the `estimated` and `estimated_map` "
        "priors are fitted by EM on the scored test items only (`other` items excluded), "
        f"`estimated_map` with a Dirichlet prior of strength `serevals.em_prior_strength: "
        f"{serevals['em_prior_strength']}` toward the training prior.{group_text}\n\n"
        f"**Clusters.** {clusters}.\n\n"
        f"**In-domain only** (no cluster partner available): {alone}."
    )


def ood_frame(scores: dict[str, Any], backbones: list[str]) -> pd.DataFrame:
    """``serevals.json``'s OOD block as rows of backbone x variant (plus the mean over
    backbones)."""
    blocks = {
        **{b: scores["backbones"][b] for b in backbones},
        "mean_over_backbones": scores["mean_over_backbones"],
    }
    rows = [
        {
            "backbone": backbone,
            "variant": variant,
            **{
                k: values[k]
                for k in ("macro_f1", "unweighted_accuracy", "accuracy", "share_above_chance_ua")
            },
            **{k: values[k] for k in ("collapse_share", "single_class_share") if k in values},
        }
        for backbone, block in blocks.items()
        for variant, values in ((v, block["ood"][v]) for v in VARIANTS if v in block["ood"])
    ]
    return pd.DataFrame(rows)


def in_domain_table(
    results: pd.DataFrame,
    corpora: list[str],
    backbones: list[str],
    convention: str | None = None,
    contaminated: dict[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Macro-F1 per corpus x backbone on the held-out parts, with each corpus's split, classes
    and chance UA, and (``contaminated``: backbone -> corpora its checkpoint saw) the backbones
    whose cell on that corpus is contaminated; and a sentence: the share of cells above chance,
    the mean per backbone, and the metric convention when given
    (``serevals.metric_convention``)."""
    in_domain = results[results["kind"] == "in_domain"]
    table = in_domain.pivot(index="train", columns="backbone", values="macro_f1")
    table = table.reindex(index=corpora, columns=backbones)
    info = in_domain.drop_duplicates("train").set_index("train")
    for column in ("split", "classes", "chance_ua"):
        table[column] = info[column]
    if contaminated and any(contaminated.values()):
        table["contaminated"] = [
            ", ".join(b for b in backbones if c in set(contaminated.get(b, ()))) for c in corpora
        ]
    table.index.name = "corpus"
    ua = in_domain.pivot(index="train", columns="backbone", values="unweighted_accuracy")
    above = (ua.to_numpy() > info.loc[ua.index, "chance_ua"].to_numpy()[:, None]).mean()
    means = ", ".join(
        f"{b} {in_domain[in_domain.backbone == b].macro_f1.mean():.3f}" for b in backbones
    )
    text = (
        f"In-domain unweighted accuracy is above chance in {above:.0%} of the {ua.size} corpus x "
        f"backbone cells; the mean macro-F1 per backbone is {means}"
        + (f" (metric convention `{convention}`)." if convention else ".")
    )
    return table, text


def ood_pivot(ood: pd.DataFrame, backbones: list[str], value: str) -> pd.DataFrame:
    """Backbones (and their mean) x variants of one value of :func:`ood_frame`'s rows."""
    table = ood.pivot(index="backbone", columns="variant", values=value)
    columns = [v for v in VARIANTS if v in table.columns]
    return table.reindex(index=[*backbones, "mean_over_backbones"], columns=columns)


def pair_table(
    results: pd.DataFrame,
    variant: str = "none",
    contaminated: dict[str, list[str]] | None = None,
    exclude: bool = True,
) -> pd.DataFrame:
    """Every OOD pair, averaged over backbones, under one adjustment variant. With
    ``contaminated`` (backbone -> test corpora its checkpoint saw) a ``contaminated`` column
    counts the flagged backbones of each pair, and with ``exclude`` they stay out of the mean
    (a pair whose every backbone is flagged has no mean)."""
    ood = results[(results["kind"] == "ood") & (results["variant"] == variant)]
    columns = ["macro_f1", "unweighted_accuracy", "chance_ua", "n"]
    if not contaminated or not any(contaminated.values()):
        return ood.groupby(["train", "test"], sort=False)[columns].mean()
    ood = ood.assign(contaminated=flag_contaminated(ood, contaminated).to_numpy())
    kept = ood[~ood["contaminated"]] if exclude else ood
    table = kept.groupby(["train", "test"], sort=False)[columns].mean()
    counts = ood.groupby(["train", "test"], sort=False)["contaminated"].sum()
    table = table.reindex(counts.index)
    table["contaminated"] = counts.astype(int)
    return table


def summary_sentence(
    scores: dict[str, Any], corpora: list[str], backbones: list[str], synthetic: bool
) -> str:
    """The report's one-line summary of ``serevals.json``."""
    mean = scores["mean_over_backbones"]
    ood = mean["ood"]
    convention = scores.get("metric_convention")
    text = (
        f"SER-Evals probes, {len(backbones)} backbones x {len(corpora)} corpora"
        + (" (synthetic data)" if synthetic else "")
        + (f", metric convention {convention}" if convention else "")
        + f": in-domain macro-F1 {mean['in_domain']['macro_f1']:.3f} on average ("
        + ", ".join(scores["split_labels"])
        + ")"
    )
    if not ood or ood.get("none", {}).get("macro_f1") is None:
        return text + "; no OOD pair" + (" left after the contaminated cells." if ood else ".")
    collapsed = [
        f"{v} {ood[v]['collapse_share']:.0%}"
        for v in VARIANTS
        if v in ood and ood[v].get("collapse_share") is not None
    ]
    return (
        text
        + f"; OOD macro-F1 over {ood['none']['pairs']} pairs "
        + ", ".join(
            f"{v} {ood[v]['macro_f1']:.3f}"
            for v in VARIANTS
            if v in ood and ood[v]["macro_f1"] is not None
        )
        + f"; {ood['none']['share_above_chance_ua']:.0%} of pair x backbone scores above chance "
        "without adjustment"
        + (f"; cells (nearly) collapsed to one class: {', '.join(collapsed)}" if collapsed else "")
        + contamination_clause(scores)
        + paired_clause(scores)
        + "."
    )


# ----------------------------------------------------------------------------- contamination


def contaminated_map(scores: dict[str, Any]) -> dict[str, list[str]]:
    """backbone -> the test corpora its checkpoint saw, from ``serevals.json``."""
    cells = scores.get("contamination", {}).get("cells", {})
    return {b: list(v["test_corpora"]) for b, v in cells.items()}


def flagged_cells(scores: dict[str, Any], results: pd.DataFrame) -> list[str]:
    """Every contaminated cell that was scored, as ``backbone: train -> test`` (in-domain:
    ``backbone: corpus (in-domain)``), in results order."""
    cells = contaminated_map(scores)
    rows = results[flag_contaminated(results, cells).to_numpy()].drop_duplicates(
        ["backbone", "train", "test"]
    )
    return [
        f"{r.backbone}: {r.train} (in-domain)"
        if r.train == r.test
        else f"{r.backbone}: {r.train} -> {r.test}"
        for r in rows.itertuples(index=False)
    ]


def contamination_text(scores: dict[str, Any], results: pd.DataFrame) -> str:
    """The report's paragraph on contaminated cells: the ledger, which backbones' checkpoints
    saw which test corpora, every flagged cell by name, and whether the OOD averages leave them
    out (``serevals.exclude_contaminated``)."""
    block = scores.get("contamination")
    if block is None:
        return "No contamination record in `serevals.json` (rerun dvc repro serevals)."
    ledger = f"`{block['ledger']}`"
    if not block["cells"]:
        return (
            f"**Contamination.** No backbone's `features.backbones.<name>.source` matches the "
            f"contamination ledger ({ledger}): no cell is flagged. (A checkpoint the ledger does "
            "not name is not thereby proven clean.)"
        )
    names = flagged_cells(scores, results)
    backbones = "; ".join(
        f"`{b}` (`{v['source']}`) saw {', '.join(v['test_corpora'])}"
        + (f" [{v['ledger']}]" if v.get("ledger") else "")
        for b, v in block["cells"].items()
    )
    handling = (
        "They are flagged in every table and left out of the OOD averages "
        "(`serevals.exclude_contaminated: true`); in-domain means keep them, flagged."
        if block["exclude_contaminated"]
        else "They are flagged but kept in the averages (`serevals.exclude_contaminated: false`)."
    )
    return (
        f"**Contamination** (ledger {ledger}): {backbones}. Flagged cells ({len(names)}): "
        + (", ".join(names) if names else "none of them was scored")
        + f". {handling}"
    )


def contamination_clause(scores: dict[str, Any]) -> str:
    """The summary sentence's clause on contaminated cells ("" when none)."""
    block = scores.get("contamination") or {}
    cells = sum(len(v["test_corpora"]) for v in block.get("cells", {}).values())
    if not cells:
        return ""
    how = "left out of the OOD means" if block.get("exclude_contaminated") else "kept in the means"
    return f"; contaminated (backbone, test corpus) cells flagged: {cells}, {how}"


# ----------------------------------------------------------------------------- paired


def paired_rows(scores: dict[str, Any], which: str) -> pd.DataFrame:
    """``serevals.json``'s ``paired`` rows (``backbones`` or ``adjustment``) as a table: the
    verdict metric's difference, interval and p-value, McNemar's p-value, clusters, flags."""
    paired = scores.get("paired") or {}
    metric = paired.get("verdict_metric", "macro_f1")
    rows = [
        {
            **{k: r[k] for k in ("backbone", "kind", "train", "test", "a", "b") if k in r},
            "n": r["n"],
            "difference": r[metric]["difference"],
            "ci95_low": r[metric]["ci95"][0],
            "ci95_high": r[metric]["ci95"][1],
            "p_value": r[metric]["p_value"],
            "mcnemar_p": r["mcnemar"]["p_value"],
            "clusters": r["clusters"],
            "cluster_unit": r["cluster_unit"],
            "few_clusters": r["few_clusters"],
            "contaminated": r["contaminated"],
            "verdict": r["verdict"],
        }
        for r in paired.get(which, [])
    ]
    return pd.DataFrame(rows)


def verdict_table(scores: dict[str, Any], which: str) -> pd.DataFrame:
    """Verdict counts: ``backbones`` -> rows (kind, backbone) vs the reference; ``adjustment``
    -> rows (backbone, variant) vs ``none``; columns the three verdicts, the cells with few
    clusters and the contaminated cells (left out of the verdict counts when
    ``serevals.exclude_contaminated``)."""
    tally = (scores.get("paired") or {}).get("tally", {}).get(which, {})
    rows = [
        {"group": group, "system": system, **counts}
        for group, systems in tally.items()
        for system, counts in systems.items()
    ]
    if not rows:
        return pd.DataFrame()
    label = ("kind", "backbone") if which == "backbones" else ("backbone", "variant")
    columns = ["group", "system", "better", "not distinguishable", "worse"]
    columns += ["few_clusters", "contaminated"]
    return (
        pd.DataFrame(rows)
        .reindex(columns=columns)
        .rename(columns=dict(zip(("group", "system"), label, strict=True)))
        .set_index(list(label))
    )


def in_domain_verdicts(scores: dict[str, Any]) -> pd.DataFrame:
    """Corpus x backbone: each backbone's in-domain difference from the reference with its
    interval and verdict, as text (``+0.031 [-0.010, +0.072] not distinguishable``; ``*``
    marks few clusters, ``(contaminated)`` a flagged cell)."""
    table = paired_rows(scores, "backbones")
    if table.empty:
        return table
    table = table[table["kind"] == "in_domain"]
    text = [
        f"{r.difference:+.3f} [{r.ci95_low:+.3f}, {r.ci95_high:+.3f}] {r.verdict}"
        + ("*" if r.few_clusters else "")
        + (" (contaminated)" if r.contaminated else "")
        for r in table.itertuples(index=False)
    ]
    out = table.assign(text=text).pivot(index="train", columns="a", values="text")
    out.index.name, out.columns.name = "corpus", "backbone"
    return out.reindex(index=list(dict.fromkeys(table["train"])))


def paired_text(scores: dict[str, Any]) -> str:
    """The report's paragraph on the paired comparisons: the rule, the references (and the
    caveat of one picked on the test scores), the tallies in words and where few clusters make
    the intervals weak."""
    paired = scores.get("paired")
    if not paired:
        return "No paired comparison in `serevals.json` (rerun dvc repro serevals)."
    ref = paired["reference"]
    chosen = (
        f"picked as the best mean {paired['verdict_metric']} on these test scores "
        "(`serevals.paired.reference: best`), so the comparisons describe the ranking against "
        "the leader rather than test a hypothesis fixed in advance"
        if paired["reference_setting"] == BEST_REFERENCE
        else "named in advance (`serevals.paired.reference`)"
    )
    counts = {which: paired_rows(scores, which) for which in ("backbones", "adjustment")}
    few = pd.concat([t for t in counts.values() if not t.empty] or [pd.DataFrame()])
    weak = ""
    coarse = few[few["few_clusters"] & (few["cluster_unit"] == "speaker")] if len(few) else few
    if len(coarse):
        cells = coarse.drop_duplicates(["train", "test"])
        named = [
            f"{r.train} (in-domain)" if r.train == r.test else f"{r.train} -> {r.test}"
            for r in cells.itertuples(index=False)
        ]
        weak = (
            f" **Few clusters:** {len(named)} cell(s) have fewer than "
            f"{paired['few_clusters_below']} speaker clusters, so their intervals are coarse "
            "and a `not distinguishable` there says little: "
            + ", ".join(named[:15])
            + (" ..." if len(named) > 15 else "")
            + "."
        )
    if not few.empty and (few["cluster_unit"] == "utterance").any():
        cells = few[few["cluster_unit"] == "utterance"].drop_duplicates(["train", "test"])
        named = [
            f"{r.train} (in-domain)" if r.train == r.test else f"{r.train} -> {r.test}"
            for r in cells.itertuples(index=False)
        ]
        weak += (
            f" **Resampled by utterance** (one speaker or no speaker ids): {', '.join(named)}; "
            "their items are not independent, so these intervals are too narrow."
        )
    return (
        f"**Paired comparisons.** {paired['verdict_rule']}; cluster bootstrap over speakers "
        f"with {paired['bootstrap']} resamples shared by both systems (seed {paired['seed']}), "
        f"McNemar's test on the same items, metric convention `{paired['metric_convention']}`. "
        f"Backbones are compared with the reference `{ref['in_domain']}` in-domain and "
        f"`{ref['ood']}` out of domain (OOD adjustment `{paired['variant']}`), {chosen}; "
        "every adjustment variant with `none` on the same OOD cell."
        + (
            " Contaminated cells are flagged and left out of the verdict counts."
            if paired["exclude_contaminated"]
            else ""
        )
        + weak
    )


def paired_clause(scores: dict[str, Any]) -> str:
    """The summary sentence's clause: per backbone vs the OOD reference, better / worse cells."""
    paired = scores.get("paired") or {}
    ood = paired.get("tally", {}).get("backbones", {}).get("ood", {})
    if not ood:
        return ""
    parts = ", ".join(f"{b} {c['better']}/{c['worse']}" for b, c in ood.items())
    return (
        f"; OOD cells significantly better/worse than {paired['reference']['ood']} "
        f"({paired['verdict_metric']}, paired bootstrap): {parts}"
    )
