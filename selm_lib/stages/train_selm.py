"""Stage ``train_selm``: manifests + cached features -> triplets -> tokenizer -> model ->
training -> metrics.

    python -m selm_lib.stages.train_selm [--params params.yaml]

Everything the later stages and the report ``02_train_selm.py`` need is written under
``common.output_root/selm/``: the tokenizer, the best model (``model/``), the triplets, the
candidate answers, the training history and sample generations; plus
``reports/metrics/train_selm.json`` and ``reports/plots/train_selm_loss.csv``. Checkpoints go to
``common.output_root/checkpoints/train_selm/`` (kept across ``dvc repro`` restarts, so an
interrupted run resumes; refused when written with other parameters; removed once the run
completes).

With ``common.nproc > 1`` (or under ``torchrun``) training is DistributedDataParallel over the
ranks (:func:`selm_lib.selm.train.fit`); rank 0 writes the checkpoints, the model, the metrics
and the logs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.config import distributed as D
from selm_lib.config import output_dir, project_root, section_config
from selm_lib.config.cli import run_stage
from selm_lib.config.device import resolve_device
from selm_lib.data.curate import read_curated
from selm_lib.features.frames import open_frames
from selm_lib.selm.artifacts import make_tokenizer, model_config
from selm_lib.selm.batching import TrainingError, answer_text, encode_triplets
from selm_lib.selm.model import SELM, build_selm
from selm_lib.selm.tokenizer import save_tokenizer
from selm_lib.selm.train import TrainConfig, fit, sample_generations
from selm_lib.selm.triplets import build_triplets, candidates, check_training_corpora


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
    backbone: dict[str, Any]  # the features.backbones entry the model was trained on, by name


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
    # Only the train and validation triplets are read, lazily, a batch at a time.
    train_frames = open_frames(common, features, selm["backbone"], train_rows)
    val_frames = open_frames(common, features, selm["backbone"], val_rows)
    try:
        audio_dim = train_frames.dim
    except ValueError as error:
        raise TrainingError(f"features.backbones.{selm['backbone']}.layer: {error}") from None

    folder = output_dir({"common": common}, "selm")
    backbone = {"name": selm["backbone"], **features["backbones"][selm["backbone"]]}
    tokenizer = make_tokenizer(selm, triplets)  # deterministic: every rank builds the same
    main = D.context().main
    if main:
        save_tokenizer(tokenizer, folder / "tokenizer")
    device = resolve_device(common["device"])
    model = build_selm(model_config(selm, audio_dim, common["seed"]), tokenizer)

    train = encode_triplets(train_rows, train_frames, tokenizer)
    validation = encode_triplets(val_rows, val_frames, tokenizer)
    options = candidates(triplets)
    candidate_ids = {
        view: [tokenizer.encode(answer_text(a)) + [tokenizer.eos_token_id] for a in answers]
        for view, answers in options.items()
    }
    config = section_config(TrainConfig, train_selm, seed=common["seed"])
    checkpoints = checkpoint_dir(common)
    result = fit(
        model,
        train,
        validation,
        candidate_ids,
        config,
        checkpoints,
        pad=tokenizer.pad_token_id,
        device=device,
        stop_after_epoch=stop_after_epoch,
        log=log,
        score_chunk=train_selm["score_chunk"],
        fingerprint=run_fingerprint(
            common, backbone, selm, train_selm, triplets, feature_keys(train_frames, val_frames)
        ),
    )
    history = pd.DataFrame(result["history"])
    if result["interrupted"] or not main:  # rank 0 alone writes the model and the outputs
        return TrainedSELM(
            model, tokenizer, triplets, history, {}, pd.DataFrame(), folder, backbone
        )

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
        },
        "trainable_parameters": int(counts["trainable"]),
        "frozen_parameters": int(counts["frozen"]),
        "epochs": int(len(history)),
        "best_epoch": int(result["best_epoch"]),
        "train_triplets": int(len(train_rows)),
        "validation_triplets": int(len(val_rows)),
        "device": device.type,
    }
    generations = sample_generations(
        model,
        validation,
        tokenizer,
        tokenizer.pad_token_id,
        device,
        per_view=train_selm["samples_per_view"],
    )
    return TrainedSELM(model, tokenizer, triplets, history, metrics, generations, folder, backbone)


def checkpoint_dir(common: dict[str, Any]) -> Path:
    """``common.output_root/checkpoints/train_selm``: outside the stage's other outputs and
    declared ``persist: true`` in dvc.yaml, so a restarted ``dvc repro`` finds the checkpoint of
    the interrupted run (DVC deletes a stage's plain outputs before it runs)."""
    return output_dir({"common": common}, "checkpoints") / "train_selm"


def run_fingerprint(
    common: dict[str, Any],
    backbone: dict[str, Any],
    selm: dict[str, Any],
    train_selm: dict[str, Any],
    triplets: pd.DataFrame,
    features: list[str] | None = None,
) -> str:
    """sha256 of everything that shapes a training run: the seed, the backbone entry, the
    ``selm`` and ``train_selm`` sections, the triplets and the cache keys of the feature stores
    read (which change with the weights, the precision, the chunking and the audio); a
    checkpoint of another run is refused on resume."""
    digest = hashlib.sha256()
    payload = {
        "seed": common["seed"],
        "backbone": backbone,
        "selm": selm,
        "train": train_selm,
        "features": sorted(features or []),
    }
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    columns = ["corpus", "utterance_id", "view", "answer", "split", "weight"]
    digest.update(triplets[columns].to_csv(index=False).encode())
    return digest.hexdigest()


def feature_keys(*frame_sets: Any) -> list[str]:
    """The cache keys of the feature stores behind ``frame_sets``."""
    return sorted({str(s.meta.get("key", "")) for f in frame_sets for s in f.stores})


def finish_checkpoints(folder: Path, best_epoch: int) -> None:
    """After a completed run (the model and every output written) the checkpoints have served:
    remove them, so a later rerun (code changed) trains afresh, and leave a fixed status file."""
    for name in ("last.pt", "best.pt"):
        (folder / name).unlink(missing_ok=True)
    status = {"completed": True, "best_epoch": int(best_epoch)}
    (folder / "status.json").write_text(json.dumps(status, sort_keys=True) + "\n")


def write_outputs(trained: TrainedSELM, root: Path) -> None:
    """History and generations beside the model; metrics and the loss curve under reports/."""
    trained.history.to_csv(trained.folder / "history.csv", index=False)
    (trained.folder / "backbone.json").write_text(json.dumps(trained.backbone, indent=2) + "\n")
    trained.generations.to_csv(trained.folder / "generations.csv", index=False)
    plots = root / "reports" / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    trained.history[["epoch", "train_loss", "val_loss"]].to_csv(
        plots / "train_selm_loss.csv", index=False
    )
    metrics = root / "reports" / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "train_selm.json").write_text(
        json.dumps(trained.metrics, indent=2, sort_keys=True) + "\n"
    )


def train(params: dict[str, Any], args: argparse.Namespace) -> str:
    trained = train_selm(*(params[s] for s in ("common", "features", "selm", "train_selm")))
    if not D.context().main:
        return ""
    write_outputs(trained, project_root())
    # only now, with the model and every output written, have the checkpoints served
    finish_checkpoints(checkpoint_dir(params["common"]), trained.metrics["best_epoch"])
    accuracy = trained.metrics["val_accuracy_by_view"]
    return f"train_selm: {trained.metrics['epochs']} epochs, validation accuracy " + ", ".join(
        f"{v} {a:.3f}" for v, a in accuracy.items()
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.train_selm", __doc__, argv, train, distributed=True)


if __name__ == "__main__":
    sys.exit(main())
