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

VARIANTS: tuple[str, ...] = ("none", "train_prior", "oracle", "estimated")
METRICS = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
SPEAKER_DISJOINT = "speaker_disjoint"
SPEAKER_OVERLAPPING = "speaker_overlapping"
SPEAKER_UNKNOWN = "speaker_unknown"  # a corpus with no speaker ids (label-folder layouts)
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


def single_class_share(params: dict[str, Any]) -> pd.Series:
    """Per variant, the share of OOD (pair, backbone) cells in which one class takes every
    prediction (a collapse), from the items' predictions.csv."""
    frames = []
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "predictions.csv"
        if not path.is_file():
            raise SerevalsError(f"{path} is missing: run dvc repro serevals_probe")
        table = pd.read_csv(path, keep_default_na=False)
        frames.append(table[table["train"] != table["test"]])
    ood = pd.concat(frames, ignore_index=True)
    if ood.empty:
        return pd.Series(dtype=float, name="single_class_share")
    classes = ood.groupby(["backbone", "train", "test", "variant"])["prediction"].nunique()
    share = (classes == 1).groupby(level="variant").mean()
    share.name = "single_class_share"
    return share.reindex([v for v in VARIANTS if v in share.index])


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


def summary(results: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """``serevals.json``: per backbone the in-domain mean (over corpora) and the OOD mean (over
    pairs, per variant) of every metric, the share of OOD pairs whose unweighted accuracy beats
    chance, and the split label; plus the mean over backbones."""

    def means(rows: pd.DataFrame) -> dict[str, float]:
        return {m: round(float(rows[m].mean()), 6) for m in METRICS} if len(rows) else {}

    def block(rows: pd.DataFrame) -> dict[str, Any]:
        in_domain = rows[rows["kind"] == "in_domain"]
        ood = rows[rows["kind"] == "ood"]
        above_in = (in_domain["unweighted_accuracy"] > in_domain["chance_ua"]).mean()
        out: dict[str, Any] = {
            "in_domain": {
                **means(in_domain),
                "corpora": int(in_domain["train"].nunique()),
                "share_above_chance_ua": round(float(above_in), 6) if len(in_domain) else 0.0,
            },
            "ood": {},
        }
        for variant in VARIANTS:
            chosen = ood[ood["variant"] == variant]
            if chosen.empty:
                continue
            above = (chosen["unweighted_accuracy"] > chosen["chance_ua"]).mean()
            out["ood"][variant] = {
                **means(chosen),
                "pairs": int(len(chosen)) // max(1, chosen["backbone"].nunique()),
                "share_above_chance_ua": round(float(above), 6),
            }
        return out

    splits = sorted(set(results["split"]))
    in_domain = results[results["kind"] == "in_domain"].drop_duplicates("train")
    return {
        "split": params["serevals"]["split"],
        "split_labels": splits,
        "split_per_corpus": dict(zip(in_domain["train"], in_domain["split"], strict=True)),
        "classes": list(CLASSES),
        "variants": {
            "none": "raw logits (other and classes absent from training masked)",
            "train_prior": "training prior removed",
            "oracle": "the paper's adjustment with the test prior from the test labels (oracle)",
            "estimated": "test prior estimated by EM from unlabelled test predictions",
        },
        "mask_absent": params["serevals"]["mask_absent"],
        "normalize": params["serevals"]["normalize"],
        "backbones": {
            b: block(results[results["backbone"] == b])
            for b in params["serevals_sweep"]["backbones"]
        },
        "mean_over_backbones": block(results),
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
    return (
        f"**Setup.** {len(backbones)} backbones x {len(corpora)} corpora; in-domain split "
        f"`serevals.split: {serevals['split']}` (labels in the results: {labels}); {len(pairs)} "
        f"OOD pairs within clusters; probe {probe['epochs']} epochs, batch "
        f"{probe['batch_size']}, peak learning rate {probe['learning_rate']}; audio truncated to "
        f"{serevals['max_seconds']} s; feature normalisation `serevals.normalize: "
        f"{serevals['normalize']}` ({normalize}).\n\n**Clusters.** {clusters}.\n\n"
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
        }
        for backbone, block in blocks.items()
        for variant, values in ((v, block["ood"][v]) for v in VARIANTS if v in block["ood"])
    ]
    return pd.DataFrame(rows)


def in_domain_table(
    results: pd.DataFrame, corpora: list[str], backbones: list[str]
) -> tuple[pd.DataFrame, str]:
    """Macro-F1 per corpus x backbone on the held-out parts, with each corpus's split, classes
    and chance UA; and a sentence: the share of cells above chance, the mean per backbone."""
    in_domain = results[results["kind"] == "in_domain"]
    table = in_domain.pivot(index="train", columns="backbone", values="macro_f1")
    table = table.reindex(index=corpora, columns=backbones)
    info = in_domain.drop_duplicates("train").set_index("train")
    for column in ("split", "classes", "chance_ua"):
        table[column] = info[column]
    table.index.name = "corpus"
    ua = in_domain.pivot(index="train", columns="backbone", values="unweighted_accuracy")
    above = (ua.to_numpy() > info.loc[ua.index, "chance_ua"].to_numpy()[:, None]).mean()
    means = ", ".join(
        f"{b} {in_domain[in_domain.backbone == b].macro_f1.mean():.3f}" for b in backbones
    )
    text = (
        f"In-domain unweighted accuracy is above chance in {above:.0%} of the {ua.size} corpus x "
        f"backbone cells; the mean macro-F1 per backbone is {means}."
    )
    return table, text


def ood_pivot(ood: pd.DataFrame, backbones: list[str], value: str) -> pd.DataFrame:
    """Backbones (and their mean) x variants of one value of :func:`ood_frame`'s rows."""
    table = ood.pivot(index="backbone", columns="variant", values=value)
    return table.reindex(index=[*backbones, "mean_over_backbones"])


def pair_table(results: pd.DataFrame, variant: str = "none") -> pd.DataFrame:
    """Every OOD pair, averaged over backbones, under one adjustment variant."""
    ood = results[(results["kind"] == "ood") & (results["variant"] == variant)]
    columns = ["macro_f1", "unweighted_accuracy", "chance_ua", "n"]
    return ood.groupby(["train", "test"], sort=False)[columns].mean()


def summary_sentence(
    scores: dict[str, Any], corpora: list[str], backbones: list[str], synthetic: bool
) -> str:
    """The report's one-line summary of ``serevals.json``."""
    mean = scores["mean_over_backbones"]
    ood = mean["ood"]
    text = (
        f"SER-Evals probes, {len(backbones)} backbones x {len(corpora)} corpora"
        + (" (synthetic data)" if synthetic else "")
        + f": in-domain macro-F1 {mean['in_domain']['macro_f1']:.3f} on average ("
        + ", ".join(scores["split_labels"])
        + ")"
    )
    if not ood:
        return text + "; no OOD pair."
    return (
        text
        + f"; OOD macro-F1 over {ood['none']['pairs']} pairs "
        + ", ".join(f"{v} {ood[v]['macro_f1']:.3f}" for v in VARIANTS if v in ood)
        + f"; {ood['none']['share_above_chance_ua']:.0%} of pair x backbone scores above chance "
        "without adjustment."
    )
