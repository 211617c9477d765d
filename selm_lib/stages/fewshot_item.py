"""Stage ``fewshot_item@K-SEED``: one (k, seed) item of the few-shot sweep.

    python -m selm_lib.stages.fewshot_item --k K --seed S [--params params.yaml]

Draws the support set, adapts every method of ``fewshot.methods`` (see
:mod:`selm_lib.selm.adapt`), scores the evaluation speakers and writes
``common.output_root/fewshot/kK_seedS/`` (metrics.json, predictions.csv).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config.cli import run_stage
from selm_lib.config.device import resolve_device
from selm_lib.data.curate import read_curated
from selm_lib.data.labels import class_map, classes_of
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.baseline import pool_frames, restricted_predictions
from selm_lib.evaluation.fewshot_results import METRICS, FewshotError, item_folder
from selm_lib.evaluation.ood import evaluation_rows, load_baseline, map_answer, selm_predict
from selm_lib.features.frames import open_frames
from selm_lib.selm.adapt import _adapt_baseline, _adapt_selm, speaker_partition, support_set
from selm_lib.selm.artifacts import load_trained


def run_item(params: dict[str, Any], k: int, seed: int) -> dict[str, Any]:
    """One (k, seed) item over every few-shot corpus and method; returns metrics + predictions."""
    common, features, selm = params["common"], params["features"], params["selm"]
    curate, fewshot, eval_ood = params["curate"], params["fewshot"], params["eval_ood"]
    device = resolve_device(common["device"])
    manifests, _ = read_curated(common)
    model, tokenizer = load_trained(common, device)
    model.to(device).eval()
    baseline, train_classes = load_baseline(common)
    results, predictions, capped_all = {}, [], {}
    for corpus in fewshot["corpora"]:
        if corpus not in manifests:
            raise FewshotError(
                f"params.yaml 'fewshot.corpora' lists '{corpus}', which the curate "
                "stage did not produce"
            )
        class_set = curate["class_sets"][corpus]
        classes = classes_of(class_set, curate["ravdess_calm"])
        to_class = class_map(class_set, curate["ravdess_calm"])
        rows, _ = evaluation_rows(manifests[corpus], corpus)
        draw = seed if fewshot["partition_per_seed"] else None
        pool_speakers = speaker_partition(
            rows, corpus, common["seed"], fewshot["support_share"], draw=draw
        )
        pool = rows[rows["speaker"].isin(pool_speakers)]
        evaluated = rows[~rows["speaker"].isin(pool_speakers)].reset_index(drop=True)
        support, capped = support_set(pool, corpus, classes, k, seed, fewshot["cap_k"])
        if capped:
            capped_all[corpus] = capped
        eval_frames = open_frames(common, features, selm["backbone"], evaluated)
        support_frames = open_frames(common, features, selm["backbone"], support)
        truth = evaluated["eval_class"].to_numpy()
        train_to_test = {e: map_answer(e, to_class) for e in train_classes}
        train_to_test = {e: c for e, c in train_to_test.items() if c in classes}
        predicted: dict[str, np.ndarray] = {}
        for method in fewshot["methods"]:
            if method == "classifier_baseline":
                adapted = (
                    baseline
                    if k == 0
                    else _adapt_baseline(
                        baseline,
                        train_classes,
                        pool_frames(support_frames),
                        list(support["eval_class"]),
                        to_class,
                        fewshot,
                        seed,
                        device=device,
                    )
                )
                predicted[method] = restricted_predictions(
                    adapted, pool_frames(eval_frames), train_classes, train_to_test, classes
                )
            elif k == 0 and "unadapted" in predicted:
                # both SELM variants are the same unadapted model at k = 0: score it once
                predicted[method] = predicted["unadapted"]
            else:
                adapted = (
                    model
                    if k == 0
                    else _adapt_selm(
                        model,
                        tokenizer,
                        support_frames,
                        list(support["eval_class"]),
                        selm,
                        fewshot,
                        full=method == "selm_full",
                        seed=seed,
                        device=device,
                    )
                )
                _, _, scored = selm_predict(
                    adapted,
                    tokenizer,
                    eval_frames,
                    classes,
                    to_class,
                    selm,
                    dict(eval_ood, num_beams=1, max_new_tokens=1),
                    device,
                    generate_answers=False,
                )
                predicted[method] = np.asarray(scored, dtype=object)
                if k == 0:
                    predicted["unadapted"] = predicted[method]
        predicted.pop("unadapted", None)
        results[corpus] = {
            method: {
                m: round(v, 6)
                for m, v in M.summary(truth, pred, classes).items()
                if m in (*METRICS, "n")
            }
            for method, pred in predicted.items()
        }
        for method, pred in predicted.items():
            predictions.append(
                pd.DataFrame(
                    {
                        "corpus": corpus,
                        "utterance_id": evaluated["utterance_id"],
                        "speaker": evaluated["speaker"],
                        "truth": truth,
                        "method": method,
                        "prediction": pred,
                        "k": k,
                        "seed": seed,
                    }
                )
            )
    return {
        "k": k,
        "seed": seed,
        "results": results,
        "capped": capped_all,
        "predictions": pd.concat(predictions, ignore_index=True),
    }


def write_item(params: dict[str, Any], item: dict[str, Any]) -> Path:
    folder = item_folder(params, item["k"], item["seed"])
    folder.mkdir(parents=True, exist_ok=True)
    item["predictions"].to_csv(folder / "predictions.csv", index=False)
    summary = {k: v for k, v in item.items() if k != "predictions"}
    (folder / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return folder


def item(params: dict[str, Any], args: argparse.Namespace) -> str:
    result = run_item(params, args.k, args.seed)
    folder = write_item(params, result)
    line = ", ".join(
        f"{c} {m} {v['accuracy']:.3f}" for c, ms in result["results"].items() for m, v in ms.items()
    )
    return f"few-shot k={args.k} seed={args.seed}: {line} -> {folder}"


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--k", type=int, required=True, help="examples per class")
        parser.add_argument("--seed", type=int, required=True, help="support-set draw")

    return run_stage("selm_lib.stages.fewshot_item", __doc__, argv, item, options)


if __name__ == "__main__":
    sys.exit(main())
