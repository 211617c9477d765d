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
from selm_lib.selm.adapt import (
    SELECT_METRIC,
    _adapt_baseline,
    _adapt_selm,
    candidate_settings,
    check_selection,
    inner_partition,
    select_settings,
    speaker_partition,
    support_set,
)
from selm_lib.selm.artifacts import load_trained


class _Item:
    """What one item's corpora share: the trained models, the params, the device."""

    def __init__(self, params: dict[str, Any], k: int, seed: int) -> None:
        self.params, self.k, self.seed = params, k, seed
        self.device = resolve_device(params["common"]["device"])
        self.model, self.tokenizer = load_trained(params["common"], self.device)
        self.model.to(self.device).eval()
        self.baseline, self.train_classes = load_baseline(params["common"])

    def frames(self, rows: pd.DataFrame):
        p = self.params
        return open_frames(p["common"], p["features"], p["selm"]["backbone"], rows)

    def predict(
        self,
        method: str,
        fewshot: dict[str, Any],
        support: pd.DataFrame,
        evaluated: pd.DataFrame,
        classes: list[str],
        to_class: dict[str, str],
    ) -> np.ndarray:
        """``method`` adapted on ``support`` with the settings in ``fewshot`` (unadapted when
        ``support`` is empty), predicting the classes of ``evaluated``."""
        p, seed, device = self.params, self.seed, self.device
        eval_frames = self.frames(evaluated)
        if method == "classifier_baseline":
            adapted = self.baseline
            if len(support):
                adapted = _adapt_baseline(
                    self.baseline,
                    self.train_classes,
                    pool_frames(self.frames(support)),
                    list(support["eval_class"]),
                    to_class,
                    fewshot,
                    seed,
                    device=device,
                )
            train_to_test = {e: map_answer(e, to_class) for e in self.train_classes}
            train_to_test = {e: c for e, c in train_to_test.items() if c in classes}
            return restricted_predictions(
                adapted, pool_frames(eval_frames), self.train_classes, train_to_test, classes
            )
        adapted = self.model
        if len(support):
            adapted = _adapt_selm(
                self.model,
                self.tokenizer,
                self.frames(support),
                list(support["eval_class"]),
                p["selm"],
                fewshot,
                full=method == "selm_full",
                seed=seed,
                device=device,
            )
        _, _, scored = selm_predict(
            adapted,
            self.tokenizer,
            eval_frames,
            classes,
            to_class,
            p["selm"],
            dict(p["eval_ood"], num_beams=1, max_new_tokens=1),
            device,
            generate_answers=False,
        )
        return np.asarray(scored, dtype=object)


def run_item(params: dict[str, Any], k: int, seed: int) -> dict[str, Any]:
    """One (k, seed) item over every few-shot corpus and method; returns metrics + predictions.

    With ``fewshot.select``, each method's adaptation settings are chosen per corpus on an
    inner split of the adaptation pool (:func:`selm_lib.selm.adapt.inner_partition`): k
    examples per class from the inner support groups, scored on the other pool groups; the
    chosen settings then adapt on k examples from the whole pool. The evaluated speakers play
    no part in the choice."""
    common, curate, fewshot = params["common"], params["curate"], params["fewshot"]
    check_selection(fewshot.get("select", {}))
    manifests, _ = read_curated(common)
    shared = _Item(params, k, seed)
    results, predictions, capped_all, selected = {}, [], {}, {}
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
        truth = evaluated["eval_class"].to_numpy()
        predicted: dict[str, np.ndarray] = {}
        for method in fewshot["methods"]:
            settings = fewshot
            if k > 0 and candidate_settings(fewshot, method) != [{}]:
                settings, tried = _choose(shared, method, pool, corpus, classes, to_class)
                selected.setdefault(corpus, {})[method] = tried
            if k == 0 and method != "classifier_baseline" and "unadapted" in predicted:
                # both SELM variants are the same unadapted model at k = 0: score it once
                predicted[method] = predicted["unadapted"]
                continue
            predicted[method] = shared.predict(
                method, settings, support, evaluated, classes, to_class
            )
            if k == 0 and method != "classifier_baseline":
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
        "selected": selected,
        "predictions": pd.concat(predictions, ignore_index=True),
    }


def _choose(
    shared: _Item,
    method: str,
    pool: pd.DataFrame,
    corpus: str,
    classes: list[str],
    to_class: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``fewshot`` with ``method``'s settings chosen on the pool's inner split, and the record
    of the choice (candidates, their inner-validation scores, the sizes of both parts)."""
    fewshot, seed = shared.params["fewshot"], shared.seed
    inner_support, inner_validation = inner_partition(
        pool, corpus, shared.params["common"]["seed"], fewshot["inner_share"], draw=seed
    )
    support, capped = support_set(inner_support, corpus, classes, shared.k, seed, cap=True)
    truth = inner_validation["eval_class"].to_numpy()

    def score(settings: dict[str, Any]) -> float:
        pred = shared.predict(method, settings, support, inner_validation, classes, to_class)
        return M.summary(truth, pred, classes)[SELECT_METRIC]

    settings, tried = select_settings(fewshot, method, score)
    chosen = {key: settings[key] for key in candidate_settings(fewshot, method)[0]}
    return settings, {
        "chosen": chosen,
        "candidates": tried,
        "inner_support": int(len(support)),
        "inner_validation": int(len(inner_validation)),
        "inner_capped": capped,
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
