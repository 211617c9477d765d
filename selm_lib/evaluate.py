"""Out-of-domain evaluation on the held-out corpora (stage ``eval_ood``).

Methods, each scored on every test corpus with its own class set (``curate.class_sets``):

* ``selm_generate``: SELM writes an answer (beam search); the text is mapped to a test class
  through the synonym table ``selm_lib/data/synonyms.csv``; unmappable answers count as errors;
* ``selm_score``: every class's verbalisation ranked by its log-likelihood (never unmappable);
* ``classifier_baseline``: a small classifier on the same cached features and training corpora;
* ``majority``: the test corpus's most frequent class (it reads the test labels: a reference
  line, not a method);
* ``chance``: uniform random classes (seeded).

Metrics: accuracy (WA), unweighted accuracy (UA, mean per-class recall), macro-F1, n, and 95 %
intervals by bootstrap over speakers.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib import metrics as M
from selm_lib.baseline import (
    BaselineConfig,
    PooledClassifier,
    pool_frames,
    restricted_predictions,
    train_classifier,
)
from selm_lib.corpora import usable
from selm_lib.decode import generate, score_classes
from selm_lib.labels import class_map, classes_of
from selm_lib.params import output_dir, resolve_path
from selm_lib.selm import load_features, load_trained, read_curated
from selm_lib.train import Encoded, answer_text, collate, resolve_device
from selm_lib.triplets import NON_ANSWERS

UNMAPPED = "<unmapped>"
METHODS = ("selm_generate", "selm_score", "classifier_baseline", "majority", "chance")
SELM_METHODS = ("selm_generate", "selm_score")
BASELINES = ("classifier_baseline", "majority", "chance")
PREDICTION_COLUMNS = ["corpus", "utterance_id", "speaker", "truth", "method", "prediction",
                      "generated"]  # fmt: skip


class EvalError(ValueError):
    """Bad evaluation input; names the corpus, the file or the params key."""


@lru_cache(maxsize=1)
def synonyms() -> dict[str, str]:
    """``{word: package emotion}`` from ``selm_lib/data/synonyms.csv``."""
    with resources.files("selm_lib.data").joinpath("synonyms.csv").open(encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return dict(zip(table["word"], table["emotion"], strict=True))


def map_answer(text: str, to_class: dict[str, str]) -> str:
    """The test class a generated answer names: its first word found in the synonym table whose
    emotion is in the class set; :data:`UNMAPPED` when there is none."""
    for word in re.findall(r"[a-z]+", text.lower()):
        emotion = synonyms().get(word)
        if emotion is not None and emotion in to_class:
            return to_class[emotion]
    return UNMAPPED


def evaluation_rows(manifest: pd.DataFrame, corpus: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The evaluated rows (usable, inside the class set) and what was excluded, counted."""
    good = usable(manifest)
    rows = good[good["eval_class"] != ""].reset_index(drop=True)
    excluded = {
        "quarantined": int(len(manifest) - len(good)),
        "outside_class_set": int(len(good) - len(rows)),
    }
    if rows.empty:
        raise EvalError(
            f"test corpus '{corpus}' has no usable rows in its class set ({excluded}); check "
            f"artifacts/manifests/{corpus}.csv and params.yaml 'curate.class_sets.{corpus}'"
        )
    return rows, excluded


def check_vocabulary(corpus: str, classes: list[str], trained: list[str]) -> None:
    """Every test class must be an answer SELM was trained to give (else scoring it is a guess
    about a word the model never produced)."""
    missing = [c for c in classes if c not in trained]
    if missing:
        raise EvalError(
            f"test corpus '{corpus}': class(es) {missing} never occur as a categorical answer in "
            f"training (trained answers: {', '.join(trained)}). Fix: merge or drop them in the "
            f"class set (params.yaml 'curate.class_sets.{corpus}', 'curate.ravdess_calm' for "
            "calm), or add a training corpus that has them ('selm.train_corpora')."
        )


def check_predictions(predictions: pd.DataFrame, rows: pd.DataFrame, corpus: str,
                      source: str = "predictions") -> None:  # fmt: skip
    """A prediction table must cover exactly the evaluated rows, once per method."""
    for method, group in predictions[predictions["corpus"] == corpus].groupby("method"):
        ids, expected = list(group["utterance_id"]), set(rows["utterance_id"])
        if len(ids) != len(set(ids)) or set(ids) != expected:
            extra, missing = set(ids) - expected, expected - set(ids)
            raise EvalError(
                f"{source}: method '{method}' on '{corpus}' does not match the manifest "
                f"({len(missing)} evaluated rows without a prediction, {len(extra)} predictions "
                f"for rows not evaluated, {len(ids) - len(set(ids))} duplicates); rerun "
                "dvc repro eval_ood"
            )


def _prompt_batches(feats: list[np.ndarray], prompt_ids: list[int], eos: int, batch_size: int,
                    device: torch.device):  # fmt: skip
    data = Encoded(
        feats,
        [prompt_ids] * len(feats),
        [[eos]] * len(feats),
        np.ones(len(feats), np.float32),
        [""] * len(feats),
        [""] * len(feats),
    )
    for start in range(0, len(feats), batch_size):
        index = np.arange(start, min(start + batch_size, len(feats)))
        yield index, collate(data, index, eos, device)


@torch.no_grad()
def selm_predict(model: Any, tokenizer: Any, feats: list[np.ndarray], classes: list[str],
                 to_class: dict[str, str], selm: dict[str, Any], eval_ood: dict[str, Any],
                 device: torch.device, generate_answers: bool = True,
                 ) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """(generated texts, their mapped classes, class-scoring predictions) for one test corpus.

    ``generate_answers=False`` skips generation (empty texts) when only class scoring is needed.
    """
    spec = selm["views"]["categorical"]
    prompt = tokenizer.encode(spec["prompt"])
    eos = tokenizer.eos_token_id
    candidates = [tokenizer.encode(answer_text(spec["answer"].format(emotion=c))) + [eos]
                  for c in classes]  # fmt: skip
    texts, scored = [], []
    for _, batch in _prompt_batches(feats, prompt, eos, eval_ood["batch_size"], device):
        args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
        if generate_answers:
            ids = generate(model, *args, eos_token_id=eos,
                           max_new_tokens=eval_ood["max_new_tokens"],
                           num_beams=eval_ood["num_beams"])  # fmt: skip
            texts += [tokenizer.decode(i, skip_special_tokens=True).strip() for i in ids]
        else:
            texts += [""] * len(batch["features"])
        scores = score_classes(model, *args, candidates)  # (B, C)
        scored += [classes[i] for i in scores.argmax(dim=1).tolist()]
    return texts, [map_answer(t, to_class) for t in texts], scored


@dataclass
class OODResult:
    predictions: pd.DataFrame
    metrics: dict[str, Any]
    classes: dict[str, list[str]]
    excluded: dict[str, dict[str, int]]
    unmapped_rate: dict[str, float]

    def table(self, metric: str = "accuracy") -> pd.DataFrame:
        """Methods x corpora, the paper's shape."""
        return pd.DataFrame({
            corpus: {m: self.metrics[m][corpus][metric] for m in METHODS}
            for corpus in self.classes
        })  # fmt: skip

    def confusion(self, method: str, corpus: str) -> pd.DataFrame:
        rows = self.predictions[(self.predictions["method"] == method)
                                & (self.predictions["corpus"] == corpus)]  # fmt: skip
        classes = self.classes[corpus]
        matrix = M.confusion(rows["truth"], rows["prediction"], classes, include_unmapped=True)
        columns = classes + ([UNMAPPED] if matrix.shape[1] > len(classes) else [])
        return pd.DataFrame(matrix, index=classes, columns=columns)


def run_eval_ood(common: dict[str, Any], features: dict[str, Any], selm: dict[str, Any],
                 curate: dict[str, Any], eval_ood: dict[str, Any]) -> OODResult:  # fmt: skip
    """Score every method on every test corpus; writes predictions and ``ood.json``."""
    manifests, splits = read_curated(common)
    device = resolve_device(common["device"])
    model, tokenizer = load_trained(common, device)
    model.to(device).eval()
    trained = json.loads((resolve_path(common["output_root"]) / "selm" / "candidates.json")
                         .read_text())["categorical"]  # fmt: skip
    baseline, baseline_classes, _ = _baseline(common, features, selm, manifests, splits,
                                                    eval_ood)  # fmt: skip

    rows_out, result_metrics = [], {m: {} for m in METHODS}
    classes_by_corpus, excluded, unmapped = {}, {}, {}
    for corpus in eval_ood["test_corpora"]:
        if corpus not in manifests:
            raise EvalError(f"params.yaml 'eval_ood.test_corpora' lists '{corpus}', which the "
                            "curate stage did not produce (add it to curate.corpora)")  # fmt: skip
        class_set = curate["class_sets"].get(corpus)
        if not class_set:
            raise EvalError(f"params.yaml 'curate.class_sets' has no class set for '{corpus}'")
        classes = classes_of(class_set, curate["ravdess_calm"])
        to_class = class_map(class_set, curate["ravdess_calm"])
        check_vocabulary(corpus, classes, trained)
        rows, excluded[corpus] = evaluation_rows(manifests[corpus], corpus)
        classes_by_corpus[corpus] = classes
        feats = load_features(common, features, selm["backbone"], rows)
        frames = [feats[(corpus, u)] for u in rows["utterance_id"]]

        texts, generated, scored = selm_predict(model, tokenizer, frames, classes, to_class, selm,
                                                eval_ood, device)  # fmt: skip
        unmapped[corpus] = float(np.mean([p == UNMAPPED for p in generated]))
        train_to_test = {e: map_answer(e, to_class) for e in baseline_classes}
        train_to_test = {e: c for e, c in train_to_test.items() if c != UNMAPPED}
        classified = restricted_predictions(baseline, pool_frames(frames), baseline_classes,
                                            train_to_test, classes)  # fmt: skip
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
        for method, predicted in predictions.items():
            summary = M.summary(truth, predicted, classes)
            interval = M.bootstrap_ci(truth, predicted, rows["speaker"].to_numpy(), classes,
                                      n_boot=eval_ood["bootstrap"],
                                      seed=common["seed"])  # fmt: skip
            result_metrics[method][corpus] = {
                "accuracy": round(summary["accuracy"], 6),
                "unweighted_accuracy": round(summary["unweighted_accuracy"], 6),
                "macro_f1": round(summary["macro_f1"], 6),
                "n": int(summary["n"]),
                "ci95": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in interval.items()},
            }
            rows_out.append(pd.DataFrame({
                "corpus": corpus, "utterance_id": rows["utterance_id"], "speaker": rows["speaker"],
                "truth": truth, "method": method, "prediction": predicted,
                "generated": texts if method == "selm_generate" else "",
            }))  # fmt: skip
    predictions = pd.concat(rows_out, ignore_index=True)[PREDICTION_COLUMNS]
    for corpus in classes_by_corpus:
        rows, _ = evaluation_rows(manifests[corpus], corpus)
        check_predictions(predictions, rows, corpus)
    gains = relative_gains(result_metrics, list(classes_by_corpus))
    metrics = {
        **result_metrics,
        "relative_gain_over_best_baseline": gains,
        "unmapped_rate": {c: round(v, 6) for c, v in unmapped.items()},
        "excluded": excluded,
        "classes": classes_by_corpus,
    }
    folder = output_dir({"common": common}, "eval_ood")
    predictions.to_csv(folder / "predictions.csv", index=False)
    torch.save({"state": baseline.state_dict(), "classes": baseline_classes,
                "in_dim": baseline.net[0].in_features, "hidden": baseline.net[0].out_features,
                "dropout": baseline.net[2].p}, folder / "baseline.pt")  # fmt: skip
    return OODResult(predictions, metrics, classes_by_corpus, excluded, unmapped)


def load_baseline(common: dict[str, Any]) -> tuple[PooledClassifier, list[str]]:
    """The classification baseline the eval_ood stage trained, and its training classes."""
    path = resolve_path(common["output_root"]) / "eval_ood" / "baseline.pt"
    if not path.is_file():
        raise EvalError(f"{path} is missing: run dvc repro eval_ood")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    dim = saved["in_dim"]
    model = PooledClassifier(dim, len(saved["classes"]), saved["hidden"], saved["dropout"],
                             np.zeros(dim, np.float32), np.ones(dim, np.float32))  # fmt: skip
    model.load_state_dict(saved["state"])
    model.eval()
    return model, list(saved["classes"])


def relative_gains(result: dict[str, dict[str, Any]], corpora: list[str]) -> dict[str, Any]:
    """SELM's relative accuracy gain over the best baseline per corpus (the paper's headline)."""
    gains: dict[str, Any] = {}
    for corpus in corpora:
        best = max(BASELINES, key=lambda b: result[b][corpus]["accuracy"])
        gains[corpus] = {
            "best_baseline": best,
            **{m: round(M.relative_gain(result[m][corpus]["accuracy"],
                                        result[best][corpus]["accuracy"]), 6)
               for m in SELM_METHODS},
        }  # fmt: skip
    return gains


def _baseline(common, features, selm, manifests, splits, eval_ood):
    """Train the classification baseline on the SELM training corpora's categorical labels."""
    frames = []
    for corpus in selm["train_corpora"]:
        rows = usable(manifests[corpus]).merge(splits[corpus][["utterance_id", "split"]],
                                               on="utterance_id")  # fmt: skip
        rows = rows[~rows["emotion"].isin(NON_ANSWERS)]
        frames.append(rows[["corpus", "utterance_id", "emotion", "split"]])
    rows = pd.concat(frames, ignore_index=True)
    feats = load_features(common, features, selm["backbone"], rows)
    x = pool_frames([feats[(c, u)] for c, u in zip(rows["corpus"], rows["utterance_id"],
                                                      strict=True)])  # fmt: skip
    classes = sorted(rows["emotion"].unique())
    y = rows["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    train, val = (rows["split"] == "train").to_numpy(), (rows["split"] == "validation").to_numpy()
    spec = eval_ood["baseline"]
    config = BaselineConfig(hidden=spec["hidden"], dropout=float(spec["dropout"]),
                            epochs=spec["epochs"], learning_rate=float(spec["learning_rate"]),
                            seed=common["seed"])  # fmt: skip
    model, history = train_classifier(x[train], y[train], x[val], y[val], len(classes), config)
    return model, classes, history


def write_outputs(result: OODResult, metrics_path: Path, plot_path: Path) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(result.metrics, indent=2, sort_keys=True) + "\n")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"method": m, "corpus": c, "accuracy": result.metrics[m][c]["accuracy"]}
            for m in METHODS for c in result.classes]  # fmt: skip
    pd.DataFrame(rows).to_csv(plot_path, index=False)
