"""The SELM stage, end to end: manifests + cached features -> triplets -> tokenizer -> model ->
training -> metrics. ``02_train_selm.py`` is a report over :func:`train_selm`.

Everything the later stages need is written under ``common.output_root/selm/``: the tokenizer,
the best model (``model/``), the triplets and the training history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.features import FeatureStore, store_folder
from selm_lib.labels import class_set_table
from selm_lib.model import SELM, SELMConfig, build_selm
from selm_lib.params import output_dir, resolve_path
from selm_lib.tokenizer import load_tokenizer, save_tokenizer, train_bpe
from selm_lib.train import (
    TrainConfig,
    TrainingError,
    answer_text,
    encode_triplets,
    fit,
    resolve_device,
    sample_generations,
)
from selm_lib.triplets import build_triplets, candidates, check_training_corpora


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
        raise TrainingError(
            f"no manifests under {root / 'manifests'}: run the curate stage first "
            "(dvc repro curate)"
        )
    return manifests, splits


def feature_store(common: dict[str, Any], features: dict[str, Any], backbone: str,
                  corpus: str) -> FeatureStore:  # fmt: skip
    """The cached features of one corpus for a ``features.backbones`` entry."""
    spec = features["backbones"][backbone]
    folder = store_folder(resolve_path(common["output_root"]) / "features", backbone,
                          spec["layer"], corpus)  # fmt: skip
    if not (folder / "meta.json").is_file():
        raise TrainingError(
            f"no cached features for backbone '{backbone}' (selm.backbone) and corpus '{corpus}' "
            f"in {folder}: run the features stage (dvc repro features)"
        )
    return FeatureStore.open(folder)


def load_features(common: dict[str, Any], features: dict[str, Any], backbone: str,
                  keys: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:  # fmt: skip
    """``{(corpus, utterance_id): (frames, D) float32}`` for the rows of ``keys``."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for corpus, rows in keys.groupby("corpus", sort=True):
        store = feature_store(common, features, backbone, corpus)
        wanted = sorted(set(rows["utterance_id"]))
        for utterance, array in zip(wanted, store.get_many(wanted), strict=True):
            out[(corpus, utterance)] = np.asarray(array, dtype=np.float32)
    return out


def all_answer_words() -> list[str]:
    """Every class word of every evaluation class set: the tokenizer must know them all."""
    return sorted(set(class_set_table()["class"]) | set(class_set_table()["emotion"]))


def make_tokenizer(selm: dict[str, Any], triplets: pd.DataFrame) -> Any:
    if selm["tokenizer"] != "train":
        return load_tokenizer(selm["tokenizer"])
    texts = list(triplets["prompt"].unique()) + [
        answer_text(a) for a in triplets["answer"].unique()
    ]
    return train_bpe(
        texts,
        vocab_size=selm["tokenizer_vocab_size"],
        seed_words=all_answer_words() + list(selm["dimensional_words"]),
    )


def model_config(selm: dict[str, Any], audio_dim: int, seed: int) -> SELMConfig:
    return SELMConfig(
        audio_dim=audio_dim,
        lm=selm["lm"],
        lm_trainable=selm["lm_trainable"],
        tiny_lm=dict(selm["tiny_lm"]),
        audio_prefix_len=selm["audio_prefix_len"],
        text_prefix_len=selm["text_prefix_len"],
        projection_dim=selm["projection_dim"],
        mapper_layers=selm["mapper_layers"],
        mapper_heads=selm["mapper_heads"],
        dropout=float(selm["dropout"]),
        seed=seed,
    )


@dataclass
class TrainedSELM:
    """What the training stage produced, for the report and later stages."""

    model: SELM
    tokenizer: Any
    triplets: pd.DataFrame
    history: pd.DataFrame
    metrics: dict[str, Any]
    generations: pd.DataFrame
    folder: Path


def train_selm(
    common: dict[str, Any],
    features: dict[str, Any],
    selm: dict[str, Any],
    train_selm: dict[str, Any],
    *,
    stop_after_epoch: int | None = None,
    log: Any = print,
) -> TrainedSELM:
    """Build triplets, tokenizer and model, train, and write model + metrics."""
    manifests, splits = read_curated(common)
    roles = {name: str(m["role"].iloc[0]) for name, m in manifests.items() if len(m)}
    check_training_corpora(
        selm["train_corpora"], list(manifests), selm["allow_ood_training"], roles=roles
    )
    triplets = build_triplets(manifests, splits, selm)
    train_rows = triplets[triplets["split"] == "train"]
    val_rows = triplets[triplets["split"] == "validation"]
    if train_rows.empty or val_rows.empty:
        raise TrainingError(
            "the training corpora have no train or no validation speakers: check "
            "curate.split.validation and the corpora in selm.train_corpora"
        )
    feats = load_features(common, features, selm["backbone"], triplets)
    audio_dim = next(iter(feats.values())).shape[-1]
    if next(iter(feats.values())).ndim != 2:
        raise TrainingError(
            f"features.backbones.{selm['backbone']}.layer must be one layer (an integer or "
            "'last') for SELM, not 'all'"
        )

    folder = output_dir({"common": common}, "selm")
    tokenizer = make_tokenizer(selm, triplets)
    save_tokenizer(tokenizer, folder / "tokenizer")
    device = resolve_device(common["device"])
    model = build_selm(model_config(selm, audio_dim, common["seed"]), tokenizer)

    train = encode_triplets(train_rows, feats, tokenizer)
    validation = encode_triplets(val_rows, feats, tokenizer)
    options = candidates(triplets)
    candidate_ids = {
        view: [tokenizer.encode(answer_text(a)) + [tokenizer.eos_token_id] for a in answers]
        for view, answers in options.items()
    }
    config = TrainConfig(
        epochs=train_selm["epochs"], batch_size=train_selm["batch_size"],
        learning_rate=float(train_selm["learning_rate"]),
        weight_decay=float(train_selm["weight_decay"]),
        warmup_ratio=float(train_selm["warmup_ratio"]), grad_clip=float(train_selm["grad_clip"]),
        patience=train_selm["patience"], seed=common["seed"],
    )  # fmt: skip
    result = fit(model, train, validation, candidate_ids, config, folder / "checkpoints",
                 pad=tokenizer.pad_token_id, device=device, stop_after_epoch=stop_after_epoch,
                 log=log)  # fmt: skip
    history = pd.DataFrame(result["history"])
    if result["interrupted"]:
        return TrainedSELM(model, tokenizer, triplets, history, {}, pd.DataFrame(), folder)

    model.save(folder / "model")
    triplets.to_csv(folder / "triplets.csv", index=False)
    (folder / "candidates.json").write_text(json.dumps(options, indent=2, sort_keys=True) + "\n")
    best = history[history["epoch"] == result["best_epoch"]].iloc[0]
    counts = model.parameter_counts()
    views = sorted(options)
    metrics = {
        "train_loss": round(float(best["train_loss"]), 6),
        "val_loss": round(float(best["val_loss"]), 6),
        "val_loss_by_view": {v: round(float(best[f"val_loss_{v}"]), 6) for v in views},
        "val_accuracy_by_view": {v: round(float(best[f"val_accuracy_{v}"]), 6) for v in views},
        "chance_accuracy_by_view": {v: round(1 / len(options[v]), 6) for v in views},
        "majority_accuracy_by_view": {
            v: round(
                float(
                    val_rows.loc[val_rows["view"] == v, "answer"]
                    .value_counts(normalize=True)
                    .iloc[0]
                ),
                6,
            )
            for v in views
        },  # fmt: skip
        "trainable_parameters": int(counts["trainable"]),
        "frozen_parameters": int(counts["frozen"]),
        "epochs": int(len(history)),
        "best_epoch": int(result["best_epoch"]),
        "train_triplets": int(len(train_rows)),
        "validation_triplets": int(len(val_rows)),
        "device": device.type,
    }
    generations = sample_generations(model, validation, tokenizer, tokenizer.pad_token_id, device,
                                     per_view=train_selm["samples_per_view"])  # fmt: skip
    return TrainedSELM(model, tokenizer, triplets, history, metrics, generations, folder)


def load_trained(common: dict[str, Any], device: str | torch.device = "cpu") -> tuple[SELM, Any]:
    """The trained model and tokenizer written by the train_selm stage."""
    folder = resolve_path(common["output_root"]) / "selm"
    if not (folder / "model").is_dir():
        raise TrainingError(f"no trained SELM in {folder}: run dvc repro train_selm")
    return SELM.load(folder / "model", map_location=device), load_tokenizer(
        str(folder / "tokenizer")
    )
