"""Stage ``eval_ood``: SELM and its baselines scored on the held-out corpora.

    python -m selm_lib.stages.eval_ood [--params params.yaml]

Trains the classification baseline on the SELM training corpora's cached features, scores every
method of :mod:`selm_lib.evaluation.ood` on every ``eval_ood.test_corpora`` corpus, and writes
``common.output_root/eval_ood/`` (predictions, baseline), ``reports/metrics/ood.json`` and
``reports/plots/ood_accuracy.csv``. The report ``03_eval_ood.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.config import (
    output_dir,
    project_root,
    resolve_path,
    section_config,
)
from selm_lib.config.cli import run_stage
from selm_lib.config.device import resolve_device
from selm_lib.data.corpora.base import usable
from selm_lib.data.curate import read_curated
from selm_lib.data.labels import class_map, classes_of
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.baseline import (
    BaselineConfig,
    baseline_balanced,
    pool_frames,
    restricted_predictions,
    train_classifier,
)
from selm_lib.evaluation.ood import (
    check_predictions,
    check_vocabulary,
    evaluation_rows,
    map_answer,
    relative_gains,
    selm_predict,
)
from selm_lib.evaluation.paired import compare
from selm_lib.evaluation.results import (
    METHODS,
    PAIRED_BASELINES,
    PREDICTION_COLUMNS,
    SELM_METHODS,
    UNMAPPED,
    EvalError,
    OODResult,
)
from selm_lib.features.frames import open_frames
from selm_lib.selm.artifacts import load_trained
from selm_lib.selm.triplets import NON_ANSWERS

# The baseline learns on these splits; "test" gives the in-domain scores.
TRAIN_SPLITS = ("train", "validation")


def run_eval_ood(
    common: dict[str, Any],
    features: dict[str, Any],
    selm: dict[str, Any],
    curate: dict[str, Any],
    eval_ood: dict[str, Any],
) -> OODResult:
    """Score every method on every test corpus; writes predictions and ``ood.json``."""
    manifests, splits = read_curated(common)
    device = resolve_device(common["device"])
    model, tokenizer = load_trained(common, device)
    model.to(device).eval()
    trained = json.loads(
        (resolve_path(common["output_root"]) / "selm" / "candidates.json").read_text()
    )["categorical"]
    baseline, baseline_classes, _ = train_baseline(
        common, features, selm, manifests, splits, eval_ood, device=device
    )

    rows_out, result_metrics, paired = [], {m: {} for m in METHODS}, {}
    classes_by_corpus, excluded, unmapped = {}, {}, {}
    for corpus in eval_ood["test_corpora"]:
        if corpus not in manifests:
            raise EvalError(
                f"params.yaml 'eval_ood.test_corpora' lists '{corpus}', which the "
                "curate stage did not produce (add it to curate.corpora)"
            )
        class_set = curate["class_sets"].get(corpus)
        if not class_set:
            raise EvalError(f"params.yaml 'curate.class_sets' has no class set for '{corpus}'")
        classes = classes_of(class_set, curate["ravdess_calm"])
        to_class = class_map(class_set, curate["ravdess_calm"])
        check_vocabulary(corpus, classes, trained)
        rows, excluded[corpus] = evaluation_rows(manifests[corpus], corpus)
        classes_by_corpus[corpus] = classes
        frames = open_frames(common, features, selm["backbone"], rows)

        texts, generated, scored = selm_predict(
            model, tokenizer, frames, classes, to_class, selm, eval_ood, device
        )
        unmapped[corpus] = float(np.mean([p == UNMAPPED for p in generated]))
        train_to_test = {e: map_answer(e, to_class) for e in baseline_classes}
        train_to_test = {e: c for e, c in train_to_test.items() if c != UNMAPPED}
        classified = restricted_predictions(
            baseline, pool_frames(frames), baseline_classes, train_to_test, classes
        )
        truth = rows["eval_class"].to_numpy()
        majority = pd.Series(truth).value_counts().sort_index().idxmax()
        rng = np.random.default_rng([common["seed"], zlib.crc32(corpus.encode())])
        predictions = {
            "selm_generate": np.asarray(generated, dtype=object),
            "selm_score": np.asarray(scored, dtype=object),
            "classifier_baseline": classified,
            "majority": np.full(len(rows), majority, dtype=object),
            "chance": np.asarray(classes, dtype=object)[rng.integers(len(classes), size=len(rows))],
        }
        speakers = rows["speaker"].to_numpy()
        paired[corpus] = {
            f"{a}_vs_{b}": compare(
                truth,
                predictions[a],
                predictions[b],
                speakers,
                classes,
                n_boot=eval_ood["bootstrap"],
                seed=common["seed"],
            )
            for a in SELM_METHODS
            for b in PAIRED_BASELINES
        }
        for method, predicted in predictions.items():
            summary = M.summary(truth, predicted, classes)
            interval = M.bootstrap_ci(
                truth,
                predicted,
                rows["speaker"].to_numpy(),
                classes,
                n_boot=eval_ood["bootstrap"],
                seed=common["seed"],
            )
            result_metrics[method][corpus] = {
                "accuracy": round(summary["accuracy"], 6),
                "unweighted_accuracy": round(summary["unweighted_accuracy"], 6),
                "macro_f1": round(summary["macro_f1"], 6),
                "n": int(summary["n"]),
                "ci95": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in interval.items()},
            }
            rows_out.append(
                pd.DataFrame(
                    {
                        "corpus": corpus,
                        "utterance_id": rows["utterance_id"],
                        "speaker": rows["speaker"],
                        "truth": truth,
                        "method": method,
                        "prediction": predicted,
                        "generated": texts if method == "selm_generate" else "",
                    }
                )
            )
    predictions = pd.concat(rows_out, ignore_index=True)[PREDICTION_COLUMNS]
    for corpus in classes_by_corpus:
        rows, _ = evaluation_rows(manifests[corpus], corpus)
        check_predictions(predictions, rows, corpus)
    gains = relative_gains(result_metrics, list(classes_by_corpus))
    in_domain = in_domain_scores(
        model,
        tokenizer,
        baseline,
        baseline_classes,
        common,
        features,
        selm,
        manifests,
        splits,
        eval_ood,
        device,
    )
    metrics = {
        **result_metrics,
        "in_domain": in_domain,
        "headline": eval_ood["headline"],
        "paired": paired,
        "relative_gain_over_best_baseline": gains,
        "unmapped_rate": {c: round(v, 6) for c, v in unmapped.items()},
        "excluded": excluded,
        "classes": classes_by_corpus,
    }
    folder = output_dir({"common": common}, "eval_ood")
    predictions.to_csv(folder / "predictions.csv", index=False)
    torch.save(
        {
            "state": {k: v.cpu() for k, v in baseline.state_dict().items()},
            "classes": baseline_classes,
            "in_dim": baseline.net[0].in_features,
            "hidden": baseline.net[0].out_features,
            "dropout": baseline.net[2].p,
        },
        folder / "baseline.pt",
    )
    return OODResult(predictions, metrics, classes_by_corpus, excluded, unmapped)


def in_domain_scores(
    model,
    tokenizer,
    baseline,
    baseline_classes,
    common,
    features,
    selm,
    manifests,
    splits,
    eval_ood,
    device,
) -> dict[str, Any]:
    """SELM class scoring and the baseline on the training corpora's own test speakers (the
    split nothing trains or stops on), over the trained emotions each corpus has: the in-domain
    scores beside the OOD ones. Corpora without categorical labels (CMU-MOSEI) are left out."""
    out: dict[str, Any] = {}
    for corpus in selm["train_corpora"]:
        rows = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id"
        )
        rows = rows[(rows["split"] == "test") & rows["emotion"].isin(baseline_classes)]
        rows = rows.reset_index(drop=True)
        if rows.empty:
            continue
        classes = sorted(set(rows["emotion"]))
        identity = {c: c for c in classes}
        frames = open_frames(common, features, selm["backbone"], rows)
        _, _, scored = selm_predict(
            model,
            tokenizer,
            frames,
            classes,
            identity,
            selm,
            eval_ood,
            device,
            generate_answers=False,
        )
        predicted = {
            "selm_score": np.asarray(scored, dtype=object),
            "classifier_baseline": restricted_predictions(
                baseline, pool_frames(frames), baseline_classes, identity, classes
            ),
        }
        truth = rows["emotion"].to_numpy()
        out[corpus] = {
            "classes": classes,
            **{
                method: {
                    k: (int(v) if k == "n" else round(float(v), 6))
                    for k, v in M.summary(truth, pred, classes).items()
                    if k in ("accuracy", "unweighted_accuracy", "macro_f1", "n")
                }
                for method, pred in predicted.items()
            },
        }
    return out


def train_baseline(common, features, selm, manifests, splits, eval_ood, device=None):
    """Train the classification baseline on the SELM training corpora's categorical labels
    (their train and validation splits), on ``device``. Pooled features are computed clip by
    clip from the feature stores."""
    frames = []
    for corpus in selm["train_corpora"]:
        rows = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id"
        )
        rows = rows[~rows["emotion"].isin(NON_ANSWERS) & rows["split"].isin(TRAIN_SPLITS)]
        frames.append(rows[["corpus", "utterance_id", "emotion", "split"]])
    rows = pd.concat(frames, ignore_index=True)
    x = pool_frames(open_frames(common, features, selm["backbone"], rows))
    classes = sorted(rows["emotion"].unique())
    y = rows["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    train, val = (rows["split"] == "train").to_numpy(), (rows["split"] == "validation").to_numpy()
    config = section_config(
        BaselineConfig,
        eval_ood["baseline"],
        seed=common["seed"],
        balanced=baseline_balanced(eval_ood["baseline"]["class_weights"], selm),
    )
    model, history = train_classifier(
        x[train], y[train], x[val], y[val], len(classes), config, device=device
    )
    return model, classes, history


def write_outputs(result: OODResult, metrics_path: Path, plot_path: Path) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"method": m, "corpus": c, "accuracy": result.metrics[m][c]["accuracy"]}
        for m in METHODS
        for c in result.classes
    ]
    pd.DataFrame(rows).to_csv(plot_path, index=False)


def evaluate(params: dict[str, Any], args: argparse.Namespace) -> str:
    result = run_eval_ood(
        *(params[s] for s in ("common", "features", "selm", "curate", "eval_ood"))
    )
    root = project_root()
    write_outputs(
        result,
        root / "reports" / "metrics" / "ood.json",
        root / "reports" / "plots" / "ood_accuracy.csv",
    )
    line = ", ".join(
        f"{c} {result.metrics['selm_score'][c]['accuracy']:.3f}" for c in result.classes
    )
    return f"eval_ood: SELM class-scoring accuracy {line}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.eval_ood", __doc__, argv, evaluate)


if __name__ == "__main__":
    sys.exit(main())
