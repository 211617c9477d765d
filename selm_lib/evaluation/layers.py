"""Which encoder layer carries emotion: the classification baseline of ``eval_ood`` trained on one
layer of SELM's encoder at a time (stage ``layer_probe@L``).

For layer L the probe is exactly the OOD stage's baseline (:mod:`selm_lib.evaluation.baseline`,
``eval_ood.baseline``, the same rows of the same training corpora, the same seed) on the mean and
standard deviation of that layer's frames, read from the pooled cache of the layer-``all`` store
(:mod:`selm_lib.features.pooled`). It is scored on the training corpora's own test speakers
(in-domain, over the trained emotions each corpus has, as ``eval_ood``'s in-domain scores) and on
every ``eval_ood.test_corpora`` corpus, whole, on its ``curate.class_sets`` class set (OOD), with
95 % intervals from a bootstrap over speakers. ``*_pooled`` scores take every corpus of a scope
together (the items weighted by their count; speakers kept apart per corpus in the bootstrap).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import resolve_path, section_config
from selm_lib.config.device import resolve_device
from selm_lib.data.corpora.base import usable
from selm_lib.data.curate import read_curated
from selm_lib.data.labels import class_map, classes_of
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.baseline import (
    BaselineConfig,
    baseline_balanced,
    restricted_predictions,
    train_classifier,
)
from selm_lib.evaluation.layer_results import METRICS, LayerSweepError
from selm_lib.features.pooled import PooledLayers, pooled_folder

# The baseline learns on these splits (as in eval_ood); "test" gives the in-domain scores.
TRAIN_SPLITS = ("train", "validation")
# Emotion values that are no categorical answer (the values of selm.triplets.NON_ANSWERS, kept
# here so the probes do not depend on the triplet code; tests/test_layers.py checks they agree).
NOT_CATEGORICAL = ("", "other", "no_agreement")


def score(
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    classes: list[str],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Accuracy, UA, macro-F1, n and their 95 % speaker-bootstrap intervals, rounded."""
    summary = M.summary(truth, predicted, classes)
    interval = M.bootstrap_ci(
        truth, predicted, groups, classes, metrics=METRICS, n_boot=n_boot, seed=seed
    )
    return {
        **{m: round(float(summary[m]), 6) for m in METRICS},
        "n": int(summary["n"]),
        "ci95": {m: [round(lo, 6), round(hi, 6)] for m, (lo, hi) in interval.items()},
    }


def _pooled_score(
    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[str]]], n_boot: int, seed: int
) -> dict[str, Any]:
    """Every corpus of a scope together: ``parts`` holds (corpus, truth, speakers, predictions,
    classes); speakers are qualified by their corpus, the classes are the union."""
    truth = np.concatenate([p[1] for p in parts])
    groups = np.concatenate(
        [np.asarray([f"{p[0]}/{s}" for s in p[2]], dtype=object) for p in parts]
    )
    predicted = np.concatenate([p[3] for p in parts])
    classes = list(dict.fromkeys(c for p in parts for c in p[4]))
    return score(truth, predicted, groups, classes, n_boot, seed)


class LayerFeatures:
    """The pooled features of one layer for the rows of a DataFrame (``corpus``,
    ``utterance_id``), from the pooled caches of the sweep's backbone."""

    def __init__(self, common: dict[str, Any], backbone: str, layer: int):
        self.root = resolve_path(common["output_root"])
        self.backbone, self.layer = backbone, int(layer)
        self.caches: dict[str, PooledLayers] = {}

    def cache(self, corpus: str) -> PooledLayers:
        if corpus not in self.caches:
            self.caches[corpus] = PooledLayers.open(pooled_folder(self.root, self.backbone, corpus))
        return self.caches[corpus]

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        parts, order = [], []
        for corpus, group in rows.groupby("corpus", sort=True):
            parts.append(self.cache(str(corpus)).take(self.layer, list(group["utterance_id"])))
            order.append(group.index.to_numpy())
        if not parts:
            raise LayerSweepError("no rows to read pooled features for")
        out = np.empty((len(rows), parts[0].shape[1]), dtype=np.float32)
        position = pd.Index(rows.index)
        for part, index in zip(parts, order, strict=True):
            out[position.get_indexer(index)] = part
        return out


def training_rows(selm: dict[str, Any], manifests: dict, splits: dict) -> pd.DataFrame:
    """The rows the OOD stage's baseline learns on: categorical labels of the SELM training
    corpora, train and validation splits, in ``selm.train_corpora`` order."""
    frames = []
    for corpus in selm["train_corpora"]:
        if corpus not in manifests:
            raise LayerSweepError(
                f"params.yaml 'selm.train_corpora' lists '{corpus}', which the curate stage did "
                "not produce (add it to curate.corpora)"
            )
        rows = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id"
        )
        rows = rows[~rows["emotion"].isin(NOT_CATEGORICAL) & rows["split"].isin(TRAIN_SPLITS)]
        frames.append(rows[["corpus", "utterance_id", "emotion", "split"]])
    rows = pd.concat(frames, ignore_index=True)
    if rows.empty:
        raise LayerSweepError(
            "the corpora of params.yaml 'selm.train_corpora' have no categorical labels in their "
            "train and validation splits: the layer probes have nothing to learn from"
        )
    return rows


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, str]:
    """``{word: package emotion}`` of ``selm_lib/data/tables/synonyms.csv``, the table through
    which ``eval_ood`` maps the baseline's training emotions to a test class."""
    with (
        resources.files("selm_lib.data")
        .joinpath("tables", "synonyms.csv")
        .open(encoding="utf-8") as handle
    ):
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return dict(zip(table["word"], table["emotion"], strict=True))


def train_to_test(
    train_classes: list[str], to_class: dict[str, str], test_classes: list[str]
) -> dict[str, str]:
    """The test class each training emotion stands for, as in ``eval_ood``: the emotion the
    synonym table gives the training emotion's name (contempt -> disgusted, ...), then the test
    corpus's class set (excited -> happy for IEMOCAP, ...); emotions with no test class are left
    out. (``eval_ood`` maps the name as a generated answer; tests/test_layers.py checks that both
    agree, so the probes need none of SELM's decoding code.)"""
    out = {}
    for emotion in train_classes:
        target = to_class.get(_synonyms().get(emotion, ""))
        if target in test_classes:
            out[emotion] = target
    return out


def best_epoch(history: list[dict[str, float]]) -> dict[str, float]:
    """The epoch :func:`~selm_lib.evaluation.baseline.train_classifier` keeps (the first whose
    validation loss improved on the best by more than 1e-6, as it decides)."""
    best, kept = float("inf"), history[0]
    for entry in history:
        if entry["val_loss"] < best - 1e-6:
            best, kept = entry["val_loss"], entry
    return kept


def probe_layer(params: dict[str, Any], layer: int) -> dict[str, Any]:
    """Train and score the baseline on layer ``layer`` of ``layer_sweep.backbone``."""
    common, selm, curate = params["common"], params["selm"], params["curate"]
    eval_ood, backbone = params["eval_ood"], params["layer_sweep"]["backbone"]
    seed, n_boot = common["seed"], eval_ood["bootstrap"]
    manifests, splits = read_curated(common)
    features = LayerFeatures(common, backbone, layer)
    device = resolve_device(common["device"])

    rows = training_rows(selm, manifests, splits)
    x = features(rows)
    classes = sorted(rows["emotion"].unique())
    y = rows["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    train = (rows["split"] == "train").to_numpy()
    val = (rows["split"] == "validation").to_numpy()
    if not train.any() or not val.any():
        raise LayerSweepError(
            "the SELM training corpora have no train or no validation rows with categorical "
            "labels; check params.yaml 'curate.split.validation'"
        )
    config = section_config(
        BaselineConfig,
        eval_ood["baseline"],
        seed=seed,
        balanced=baseline_balanced(eval_ood["baseline"]["class_weights"], selm),
    )
    model, history = train_classifier(
        x[train], y[train], x[val], y[val], len(classes), config, device=device
    )
    kept = best_epoch(history)

    in_domain, in_parts = {}, []
    for corpus in selm["train_corpora"]:
        test = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id"
        )
        test = test[(test["split"] == "test") & test["emotion"].isin(classes)]
        test = test.reset_index(drop=True)
        if test.empty:
            continue  # no categorical test rows (CMU-MOSEI has sentiment labels only)
        own = sorted(set(test["emotion"]))
        predicted = restricted_predictions(model, features(test), classes, {c: c for c in own}, own)
        truth = test["emotion"].to_numpy(dtype=object)
        speakers = test["speaker"].astype(str).to_numpy(dtype=object)
        in_domain[corpus] = {"classes": own, **score(truth, predicted, speakers, own, n_boot, seed)}
        in_parts.append((corpus, truth, speakers, predicted, own))
    if not in_parts:
        raise LayerSweepError(
            "no SELM training corpus has test speakers with a trained emotion: the in-domain "
            "scores are empty; check params.yaml 'curate.split.test'"
        )

    ood, ood_parts = {}, []
    for corpus in eval_ood["test_corpora"]:
        if corpus not in manifests:
            raise LayerSweepError(
                f"params.yaml 'eval_ood.test_corpora' lists '{corpus}', which the curate stage "
                "did not produce (add it to curate.corpora)"
            )
        class_set = curate["class_sets"].get(corpus)
        if not class_set:
            raise LayerSweepError(
                f"params.yaml 'curate.class_sets' has no class set for '{corpus}'"
            )
        test_classes = classes_of(class_set, curate["ravdess_calm"])
        to_class = class_map(class_set, curate["ravdess_calm"])
        good = usable(manifests[corpus])
        test = good[good["eval_class"] != ""].reset_index(drop=True)
        if test.empty:
            raise LayerSweepError(
                f"test corpus '{corpus}' has no usable rows in its class set; check "
                f"artifacts/manifests/{corpus}.csv and params.yaml 'curate.class_sets.{corpus}'"
            )
        predicted = restricted_predictions(
            model,
            features(test),
            classes,
            train_to_test(classes, to_class, test_classes),
            test_classes,
        )
        truth = test["eval_class"].to_numpy(dtype=object)
        speakers = test["speaker"].astype(str).to_numpy(dtype=object)
        ood[corpus] = {
            "classes": test_classes,
            **score(truth, predicted, speakers, test_classes, n_boot, seed),
        }
        ood_parts.append((corpus, truth, speakers, predicted, test_classes))
    if not ood_parts:
        raise LayerSweepError("params.yaml 'eval_ood.test_corpora' is empty: nothing to score OOD")

    cache = features.cache(in_parts[0][0])
    return {
        "layer": int(layer),
        "backbone": backbone,
        "source": cache.meta.get("source_spec"),
        "num_layers": cache.num_layers,
        "probe": {**eval_ood["baseline"], "bootstrap": n_boot},  # eval_ood's baseline config
        "train_corpora": list(selm["train_corpora"]),
        "test_corpora": list(eval_ood["test_corpora"]),
        "train": {
            "classes": classes,
            "n_train": int(train.sum()),
            "n_validation": int(val.sum()),
            "epochs_run": len(history),
            "best_epoch": int(kept["epoch"]),
            "val_loss": round(float(kept["val_loss"]), 6),
            "val_accuracy": round(float(kept["val_accuracy"]), 6),
        },
        "in_domain": in_domain,
        "in_domain_pooled": _pooled_score(in_parts, n_boot, seed),
        "ood": ood,
        "ood_pooled": _pooled_score(ood_parts, n_boot, seed),
    }
