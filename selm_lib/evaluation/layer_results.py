"""The layer sweep's results as its items write them and the aggregate and the report read them:
where an item's json lives, the table over layers and the layer validation picks (no model code,
so editing the probes does not stale the aggregate and editing the aggregate does not stale the
items)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.config import resolve_path

METRICS = ("accuracy", "unweighted_accuracy", "macro_f1")
SCOPES = ("in_domain", "ood")
POOLED = "pooled"  # the corpus name of the scores over every corpus of a scope together


class LayerSweepError(ValueError):
    """Bad layer-sweep input or a missing item; names the params key or the stage to run."""


def item_path(common: dict[str, Any], layer: int) -> Path:
    """``<output_root>/layer_sweep/probes/layer_<L>.json``."""
    return resolve_path(common["output_root"]) / "layer_sweep" / "probes" / f"layer_{layer}.json"


def state_of(layer: int | str, num_layers: int) -> int:
    """A features.backbones ``layer`` value as a state index (``last`` = ``num_layers``)."""
    if layer == "last":
        return int(num_layers)
    if isinstance(layer, int):
        return layer
    raise LayerSweepError(f"layer {layer!r} is not one state (an integer or 'last')")


def aggregate(params: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every item of ``layer_sweep.layers`` into one summary and a long table (one row per layer,
    scope, corpus: the metrics and their 95 % speaker-bootstrap intervals)."""
    sweep = params["layer_sweep"]
    items, rows = {}, []
    for layer in sweep["layers"]:
        path = item_path(params["common"], layer)
        if not path.is_file():
            raise LayerSweepError(
                f"{path} is missing: run dvc repro layer_probe@{layer} (params.yaml "
                "'layer_sweep.layers' lists it)"
            )
        item = json.loads(path.read_text())
        if item["backbone"] != sweep["backbone"] or item["layer"] != layer:
            raise LayerSweepError(
                f"{path} holds layer {item['layer']} of '{item['backbone']}', not layer {layer} "
                f"of 'layer_sweep.backbone' = '{sweep['backbone']}': rerun dvc repro layer_probe"
            )
        items[str(layer)] = item
        for scope in SCOPES:
            scores = {**item[scope], POOLED: item[f"{scope}_pooled"]}
            for corpus, score in scores.items():
                row = {"layer": layer, "scope": scope, "corpus": corpus, "n": score["n"]}
                for metric in METRICS:
                    row[metric] = score[metric]
                    row[f"{metric}_low"], row[f"{metric}_high"] = score["ci95"][metric]
                rows.append(row)
    table = pd.DataFrame(rows)
    first = items[str(sweep["layers"][0])]
    backbones = params["features"]["backbones"]
    selm_backbone = params["selm"]["backbone"]
    validation = {k: v["train"]["val_accuracy"] for k, v in items.items()}
    # the layer the validation split picks (ties: the lower validation loss, then the lower
    # layer): the choice one can make without looking at any test speaker
    picked = min(
        items,
        key=lambda k: (-items[k]["train"]["val_accuracy"], items[k]["train"]["val_loss"], int(k)),
    )
    summary = {
        "backbone": sweep["backbone"],
        "source": first["source"],
        "num_layers": first["num_layers"],
        "layers": list(sweep["layers"]),
        "selm_backbone": selm_backbone,
        "selm_layer": state_of(backbones[selm_backbone]["layer"], first["num_layers"]),
        "probe": first["probe"],
        "train_corpora": first["train_corpora"],
        "test_corpora": first["test_corpora"],
        "validation_accuracy": validation,
        "picked_by_validation": int(picked),
        "items": items,
    }
    return summary, table


def score_table(table: pd.DataFrame, scope: str, metric: str = "accuracy") -> pd.DataFrame:
    """Layers (rows) x corpora (columns, the pooled scores last) of one scope: ``value [low,
    high]`` strings for the report."""
    part = table[table["scope"] == scope]
    if part.empty:
        raise LayerSweepError(f"no {scope} scores in the layer table")
    text = part.assign(
        cell=[
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(
                part[metric], part[f"{metric}_low"], part[f"{metric}_high"], strict=True
            )
        ]
    )
    wide = text.pivot(index="layer", columns="corpus", values="cell")
    corpora = [c for c in dict.fromkeys(part["corpus"]) if c != POOLED] + [POOLED]
    return wide[corpora].sort_index()
