"""Stage ``eval_ood``: SELM and its baselines scored on the held-out corpora.

    python -m selm_lib.stages.eval_ood [--params params.yaml]

Trains the classification baseline on the SELM training corpora's cached features, scores every
method of :mod:`selm_lib.evaluation.ood` on every ``eval_ood.test_corpora`` corpus, and writes
``common.output_root/eval_ood/`` (predictions, baseline), ``reports/metrics/ood.json`` and
``reports/plots/ood_accuracy.csv``. The report ``03_eval_ood.py`` reads them.

Besides the methods' scores, ``ood.json`` holds: the paired comparisons (``paired``: every SELM
method against the baselines, every prior matching against plain ``selm_score``), the prior
matching's priors and EM convergence per corpus (``prior_matching``), how the headline variant
was chosen (``headline_selection``: fixed, or by unweighted accuracy on the training corpora's
validation split), ``calibration`` (ECE, NLL, Brier, reliability tables, temperatures),
``agreement`` (each method's predicted class distribution against the annotators' votes of the
manifest's ``votes`` column, where a corpus has them: Jensen-Shannon divergence, soft accuracy,
the human ceiling; :mod:`selm_lib.evaluation.agreement`) and ``contaminated`` (the test corpora
SELM's encoder checkpoint saw in training, by the contamination ledger).
The training corpora's test split gives the in-domain scores, their validation split the
headline choice and the temperatures; no choice reads a test set.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from dataclasses import dataclass
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
from selm_lib.data.contamination import contaminated_cells
from selm_lib.data.corpora.base import usable
from selm_lib.data.curate import read_curated
from selm_lib.data.labels import class_map, classes_of
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.agreement import agreement_summary
from selm_lib.evaluation.baseline import (
    BaselineConfig,
    baseline_balanced,
    pool_frames,
    restricted_logits,
    restricted_predictions,
    train_classifier,
)
from selm_lib.evaluation.calibration import calibration_record, fit_temperature, label_indices
from selm_lib.evaluation.ood import (
    answer_weights,
    check_predictions,
    check_vocabulary,
    content_free_frame,
    content_free_scores,
    evaluation_rows,
    map_answer,
    relative_gains,
    selm_predict,
    trained_answers,
    training_answer_prior,
)
from selm_lib.evaluation.paired import compare
from selm_lib.evaluation.prior import match_priors, softmax
from selm_lib.evaluation.results import (
    CALIBRATED,
    HEADLINE_CANDIDATES,
    METHODS,
    ORACLES,
    PAIRED_BASELINES,
    PREDICTION_COLUMNS,
    SCORE_VARIANTS,
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


@dataclass
class Scored:
    """One corpus (or one split of a training corpus) scored: the class set, the truth, the
    (N, C) class scores of every calibrated method (SELM's class log-likelihoods, their
    prior-matched versions, the baseline's restricted log-probabilities), every method's
    predictions, and the prior matching's record."""

    classes: list[str]
    truth: np.ndarray
    speakers: np.ndarray
    scores: dict[str, np.ndarray]
    predictions: dict[str, np.ndarray]
    prior_matching: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        return label_indices(self.truth, self.classes)


def score_selm_and_baseline(
    model,
    tokenizer,
    baseline,
    baseline_classes,
    frames,
    rows,
    truth,
    classes,
    to_class,
    weights,
    corpus,
    selm,
    eval_ood,
    device,
    *,
    generate_answers: bool,
) -> tuple[Scored, list[str]]:
    """SELM (class scoring, its prior-matched variants, generation when asked) and the baseline
    on one set of clips; also returns the generated texts."""
    prediction = selm_predict(
        model,
        tokenizer,
        frames,
        classes,
        to_class,
        selm,
        eval_ood,
        device,
        generate_answers=generate_answers,
        return_scores=True,
    )
    content_free = content_free_scores(
        model,
        tokenizer,
        content_free_frame(eval_ood["content_free"], prediction),
        classes,
        selm,
        eval_ood,
        device,
    )
    labels = label_indices(truth, classes)
    matched = match_priors(
        prediction.log_likelihood,
        training_answer_prior(weights, selm, classes, corpus),
        content_free,
        labels=labels,
        strength=float(eval_ood["em_prior_strength"]),
    )
    pooled = pool_frames(frames)
    train_to_test = {e: map_answer(e, to_class) for e in baseline_classes}
    train_to_test = {e: c for e, c in train_to_test.items() if c != UNMAPPED}
    scores = {
        "selm_score": prediction.log_likelihood,
        **{f"selm_score_{v}": m for v, m in matched.scores.items()},
        "classifier_baseline": restricted_logits(
            baseline, pooled, baseline_classes, train_to_test, classes
        ),
    }
    names = np.asarray(classes, dtype=object)
    predictions = {
        "selm_generate": np.asarray(prediction.mapped, dtype=object),
        "selm_score": np.asarray(prediction.scored, dtype=object),
        **{v: names[np.argmax(scores[v], axis=1)] for v in SCORE_VARIANTS},
        "classifier_baseline": restricted_predictions(
            baseline, pooled, baseline_classes, train_to_test, classes
        ),
    }
    if not generate_answers:
        del predictions["selm_generate"]
    record = {**matched.record(), "content_free_input": eval_ood["content_free"]}
    scored = Scored(classes, truth, rows["speaker"].to_numpy(), scores, predictions, record)
    return scored, prediction.texts


def check_settings(eval_ood: dict[str, Any]) -> None:
    """Ranges the params schema does not check."""
    if eval_ood["em_prior_strength"] < 0:
        raise EvalError(
            f"params.yaml 'eval_ood.em_prior_strength' is {eval_ood['em_prior_strength']}; it "
            "must be >= 0 (0 = plain EM)"
        )
    if eval_ood["calibration_bins"] < 1:
        raise EvalError(
            f"params.yaml 'eval_ood.calibration_bins' is {eval_ood['calibration_bins']}; it "
            "must be >= 1 (15 is the usual ECE)"
        )


def run_eval_ood(
    common: dict[str, Any],
    features: dict[str, Any],
    selm: dict[str, Any],
    curate: dict[str, Any],
    eval_ood: dict[str, Any],
) -> OODResult:
    """Score every method on every test corpus; writes predictions and ``ood.json``."""
    check_settings(eval_ood)
    manifests, splits = read_curated(common)
    device = resolve_device(common["device"])
    model, tokenizer = load_trained(common, device)
    model.to(device).eval()
    trained = json.loads(
        (resolve_path(common["output_root"]) / "selm" / "candidates.json").read_text()
    )["categorical"]
    weights = answer_weights(common)
    baseline, baseline_classes, _ = train_baseline(
        common, features, selm, manifests, splits, eval_ood, device=device
    )

    rows_out, result_metrics, paired, agreement = [], {m: {} for m in METHODS}, {}, {}
    classes_by_corpus, excluded, unmapped, scored_ood = {}, {}, {}, {}
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
        truth = rows["eval_class"].to_numpy()
        scored, texts = score_selm_and_baseline(
            model,
            tokenizer,
            baseline,
            baseline_classes,
            frames,
            rows,
            truth,
            classes,
            to_class,
            weights,
            corpus,
            selm,
            eval_ood,
            device,
            generate_answers=True,
        )
        scored_ood[corpus] = scored
        unmapped[corpus] = float(
            np.mean([p == UNMAPPED for p in scored.predictions["selm_generate"]])
        )
        majority = pd.Series(truth).value_counts().sort_index().idxmax()
        rng = np.random.default_rng([common["seed"], zlib.crc32(corpus.encode())])
        predictions = {
            **scored.predictions,
            "majority": np.full(len(rows), majority, dtype=object),
            "chance": np.asarray(classes, dtype=object)[rng.integers(len(classes), size=len(rows))],
        }
        speakers = scored.speakers
        if "votes" in rows and (rows["votes"].astype(str) != "").any():
            agreement[corpus] = {
                method: agreement_summary(
                    rows["votes"].astype(str).tolist(),
                    softmax(scored.scores[method]) if method in scored.scores else None,
                    predictions[method],
                    classes,
                    to_class,
                )
                for method in METHODS
            }
        pairs = [(a, b) for a in SELM_METHODS for b in PAIRED_BASELINES]
        pairs += [(v, "selm_score") for v in SCORE_VARIANTS]
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
            for a, b in pairs
        }
        for method in METHODS:
            predicted = predictions[method]
            summary = M.summary(truth, predicted, classes)
            interval = M.bootstrap_ci(
                truth,
                predicted,
                speakers,
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
    split_args = (model, tokenizer, baseline, baseline_classes, common, features, selm)
    split_args += (manifests, splits, eval_ood, device)
    in_domain_data = split_scores(*split_args, split="test", weights=weights)
    needs_validation = eval_ood["headline"] == "validation" or eval_ood["temperature_scaling"]
    validation_data = (
        split_scores(*split_args, split="validation", weights=weights) if needs_validation else {}
    )
    headline, selection = choose_headline(eval_ood["headline"], validation_data)
    metrics = {
        **result_metrics,
        "in_domain": in_domain_metrics(in_domain_data),
        "headline": headline,
        "headline_selection": selection,
        "paired": paired,
        "prior_matching": {c: s.prior_matching for c, s in scored_ood.items()},
        "calibration": calibration_section(scored_ood, in_domain_data, validation_data, eval_ood),
        "relative_gain_over_best_baseline": gains,
        # predicted class distributions against the annotators' votes, where a corpus has them
        "agreement": agreement,
        # test corpora that SELM's encoder checkpoint saw in training (contamination ledger)
        "contaminated": contaminated_cells(
            features["backbones"][selm["backbone"]]["source"], list(classes_by_corpus)
        ),
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


def split_scores(
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
    *,
    split: str,
    weights: pd.Series | None = None,
) -> dict[str, Scored]:
    """SELM class scoring (and its prior matchings) and the baseline on one split of each
    training corpus (``test``: the in-domain scores; ``validation``: what the headline choice
    and the temperatures are fitted on), over the emotions of the corpus that are SELM training
    answers and baseline classes. Corpora without categorical labels (CMU-MOSEI) are left
    out."""
    weights = answer_weights(common) if weights is None else weights
    out: dict[str, Scored] = {}
    for corpus in selm["train_corpora"]:
        rows = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id"
        )
        allowed = trained_answers(weights, selm, list(baseline_classes))
        rows = rows[(rows["split"] == split) & rows["emotion"].isin(allowed)]
        rows = rows.reset_index(drop=True)
        if rows.empty:
            continue
        classes = sorted(set(rows["emotion"]))
        frames = open_frames(common, features, selm["backbone"], rows)
        out[corpus], _ = score_selm_and_baseline(
            model,
            tokenizer,
            baseline,
            baseline_classes,
            frames,
            rows,
            rows["emotion"].to_numpy(),
            classes,
            {c: c for c in classes},
            weights,
            corpus,
            selm,
            eval_ood,
            device,
            generate_answers=False,
        )
    return out


def in_domain_metrics(data: dict[str, Scored]) -> dict[str, Any]:
    """Accuracy, UA, macro-F1 and n of every scored method per training corpus."""
    return {
        corpus: {
            "classes": scored.classes,
            **{
                method: {
                    k: (int(v) if k == "n" else round(float(v), 6))
                    for k, v in M.summary(scored.truth, pred, scored.classes).items()
                    if k in ("accuracy", "unweighted_accuracy", "macro_f1", "n")
                }
                for method, pred in scored.predictions.items()
            },
        }
        for corpus, scored in data.items()
    }


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
    """SELM class scoring (plain and prior-matched) and the baseline on the training corpora's
    own test speakers (the split nothing trains or stops on), over the trained emotions each
    corpus has: the in-domain scores beside the OOD ones (:func:`split_scores`)."""
    return in_domain_metrics(
        split_scores(
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
            split="test",
        )
    )


def choose_headline(rule: str, validation: dict[str, Scored]) -> tuple[str, dict[str, Any]]:
    """The headline SELM variant: ``eval_ood.headline`` itself when it names one, or with
    ``validation`` the :data:`HEADLINE_CANDIDATES` variant with the best unweighted accuracy
    averaged over the training corpora's validation splits (ties: the first listed). Only
    validation data is read; the oracle is never a headline."""
    if rule in ORACLES:
        raise EvalError(
            f"params.yaml 'eval_ood.headline' is '{rule}', an oracle (it reads the test labels): "
            f"name one of {('selm_generate', *HEADLINE_CANDIDATES)} or 'validation'"
        )
    if rule != "validation":
        return rule, {"rule": "fixed", "chosen": rule}
    if not validation:
        raise EvalError(
            "params.yaml 'eval_ood.headline: validation' needs the validation split of a "
            "training corpus with categorical labels ('selm.train_corpora'); none has one: name "
            "the headline variant instead"
        )
    per_method = {}
    for method in HEADLINE_CANDIDATES:
        values = {
            corpus: round(
                float(
                    M.summary(scored.truth, scored.predictions[method], scored.classes)[
                        "unweighted_accuracy"
                    ]
                ),
                6,
            )
            for corpus, scored in validation.items()
        }
        per_method[method] = {**values, "mean": round(float(np.mean(list(values.values()))), 6)}
    chosen = max(HEADLINE_CANDIDATES, key=lambda m: per_method[m]["mean"])  # first on a tie
    return chosen, {
        "rule": "validation",
        "chosen": chosen,
        "candidates": list(HEADLINE_CANDIDATES),
        "corpora": list(validation),
        "metric": "unweighted_accuracy",
        "validation_unweighted_accuracy": per_method,
    }


def calibration_section(
    ood: dict[str, Scored],
    in_domain: dict[str, Scored],
    validation: dict[str, Scored],
    eval_ood: dict[str, Any],
) -> dict[str, Any]:
    """ECE, NLL, Brier and reliability tables of every calibrated method's softmax, per corpus,
    OOD and in domain; with ``eval_ood.temperature_scaling`` also after dividing each method's
    scores by its temperature fitted on the training corpora's validation splits (pooled)."""
    bins = int(eval_ood["calibration_bins"])
    temperatures = {}
    if eval_ood["temperature_scaling"]:
        if not validation:
            raise EvalError(
                "params.yaml 'eval_ood.temperature_scaling: true' needs the validation split "
                "of a training corpus with categorical labels ('selm.train_corpora'); none has "
                "one: set it to false"
            )
        for method in CALIBRATED:
            temperatures[method] = fit_temperature(
                [s.scores[method] for s in validation.values()],
                [s.labels for s in validation.values()],
            )

    def records(data: dict[str, Scored]) -> dict[str, Any]:
        out = {}
        for corpus, scored in data.items():
            labels = scored.labels
            out[corpus] = {}
            for method in CALIBRATED:
                z = scored.scores[method]
                entry = {"raw": calibration_record(z, labels, bins=bins)}
                if method in temperatures:
                    t = temperatures[method].temperature
                    entry["scaled"] = calibration_record(z, labels, temperature=t, bins=bins)
                out[corpus][method] = entry
        return out

    return {
        "bins": bins,
        "temperature_scaling": bool(eval_ood["temperature_scaling"]),
        "temperatures": {m: t.record() for m, t in temperatures.items()},
        "ood": records(ood),
        "in_domain": records(in_domain),
    }


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
