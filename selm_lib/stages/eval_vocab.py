"""Stage ``eval_vocab``: open-vocabulary class scoring of the trained SELM.

    python -m selm_lib.stages.eval_vocab [--params params.yaml]

Scores every label set of ``eval_vocab.label_sets`` (a test corpus, a class set, the truth
column) under every verbalisation of ``eval_vocab.variants`` (answer template, class names or
synonyms, mean or best-of), with no retraining (:mod:`selm_lib.evaluation.vocabulary`), and pairs
each variant with ``eval_vocab.reference`` (paired bootstrap over speakers and McNemar's test).
Classes that no training answer names (RAVDESS calm as its own class) are scored like the others
and listed as ``unseen``. Writes ``common.output_root/eval_vocab/predictions.csv`` and
``reports/metrics/vocab.json``; the OOD report ``03_eval_ood.py`` shows them.

It reads only the trained model, the curated manifests and the feature stores, not the
``eval_ood`` outputs: a change of verbalisation reruns this stage and the report alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import output_dir, project_root, resolve_path
from selm_lib.config.cli import run_stage
from selm_lib.config.device import resolve_device
from selm_lib.data.curate import read_curated
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.paired import compare
from selm_lib.evaluation.results import EvalError
from selm_lib.evaluation.vocabulary import class_scores, label_rows, score_texts, verbalisations
from selm_lib.features.frames import open_frames
from selm_lib.selm.artifacts import load_trained


def run_eval_vocab(params: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    common, features, selm = params["common"], params["features"], params["selm"]
    eval_ood, eval_vocab = params["eval_ood"], params["eval_vocab"]
    variants = verbalisations(eval_vocab)
    synonyms = eval_vocab["synonyms"]
    manifests, _ = read_curated(common)
    device = resolve_device(common["device"])
    model, tokenizer = load_trained(common, device)
    model.to(device).eval()
    trained = json.loads(
        (resolve_path(common["output_root"]) / "selm" / "candidates.json").read_text()
    )["categorical"]
    prompt = selm["views"]["categorical"]["prompt"]
    reference = eval_vocab["reference"]
    metrics: dict[str, Any] = {"reference": reference, "label_sets": {}}
    tables = []
    for name, spec in eval_vocab["label_sets"].items():
        if spec["corpus"] not in manifests:
            raise EvalError(
                f"params.yaml 'eval_vocab.label_sets.{name}.corpus' is '{spec['corpus']}', "
                "which the curate stage did not produce (add it to curate.corpora)"
            )
        rows, classes, dropped = label_rows(manifests[spec["corpus"]], name, spec)
        frames = open_frames(common, features, selm["backbone"], rows)
        # every distinct (normalisation, text) is scored once for all the variants
        needed: dict[str, list[str]] = {}
        for variant in variants:
            for texts in variant.texts(classes, synonyms):
                needed.setdefault(variant.normalize, []).extend(texts)
        raw: dict[tuple[str, str], np.ndarray] = {}
        for normalize, texts in needed.items():
            texts = list(dict.fromkeys(texts))
            scores = score_texts(
                model,
                tokenizer,
                frames,
                prompt,
                texts,
                normalize,
                eval_ood["batch_size"],
                eval_ood["score_chunk"],
                device,
            )
            raw.update({(normalize, t): scores[:, i] for i, t in enumerate(texts)})
        truth = rows["truth"].to_numpy(dtype=object)
        speakers = rows["speaker"].to_numpy(dtype=object)
        predicted = {
            v.name: np.asarray(classes, dtype=object)[
                class_scores(raw, v, classes, synonyms).argmax(axis=1)
            ]
            for v in variants
        }
        entry: dict[str, Any] = {
            "corpus": spec["corpus"],
            "truth": spec["truth"],
            "classes": classes,
            "unseen": [c for c in classes if c not in trained],
            "excluded": dropped,
            "variants": {},
        }
        for v in variants:
            summary = M.summary(truth, predicted[v.name], classes)
            interval = M.bootstrap_ci(
                truth,
                predicted[v.name],
                speakers,
                classes,
                n_boot=eval_ood["bootstrap"],
                seed=common["seed"],
            )
            recall = M.per_class_recall(truth, predicted[v.name], classes)
            result = {
                "template": v.template,
                "words": v.words,
                "combine": v.combine,
                "normalize": v.normalize,
                "accuracy": round(summary["accuracy"], 6),
                "unweighted_accuracy": round(summary["unweighted_accuracy"], 6),
                "macro_f1": round(summary["macro_f1"], 6),
                "n": int(summary["n"]),
                "ci95": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in interval.items()},
                "recall_unseen": {
                    c: round(recall[c], 6) for c in entry["unseen"] if not math.isnan(recall[c])
                },
            }
            if v.name != reference:
                result["paired_vs_reference"] = compare(
                    truth,
                    predicted[v.name],
                    predicted[reference],
                    speakers,
                    classes,
                    n_boot=eval_ood["bootstrap"],
                    seed=common["seed"],
                )
            entry["variants"][v.name] = result
            tables.append(
                pd.DataFrame(
                    {
                        "label_set": name,
                        "corpus": spec["corpus"],
                        "utterance_id": rows["utterance_id"],
                        "speaker": rows["speaker"],
                        "truth": truth,
                        "variant": v.name,
                        "prediction": predicted[v.name],
                    }
                )
            )
        metrics["label_sets"][name] = entry
    return metrics, pd.concat(tables, ignore_index=True)


def evaluate(params: dict[str, Any], args: argparse.Namespace) -> str:
    metrics, predictions = run_eval_vocab(params)
    folder = output_dir(params, "eval_vocab")
    predictions.to_csv(folder / "predictions.csv", index=False)
    path = project_root() / "reports" / "metrics" / "vocab.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    line = ", ".join(
        f"{name} {v}: {r['accuracy']:.3f}"
        for name, entry in metrics["label_sets"].items()
        for v, r in entry["variants"].items()
    )
    return f"eval_vocab: {line}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("selm_lib.stages.eval_vocab", __doc__, argv, evaluate)


if __name__ == "__main__":
    sys.exit(main())
