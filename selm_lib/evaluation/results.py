"""The OOD evaluation's result, as the ``eval_ood`` stage writes it and the report reads it: the
method names, the prediction table and :class:`OODResult` (no model code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.config import resolve_path
from selm_lib.evaluation import metrics as M

UNMAPPED = "<unmapped>"
METHODS = ("selm_generate", "selm_score", "classifier_baseline", "majority", "chance")
SELM_METHODS = ("selm_generate", "selm_score")
BASELINES = ("classifier_baseline", "majority", "chance")
PAIRED_BASELINES = ("classifier_baseline", "majority")  # what each SELM variant is paired with
PREDICTION_COLUMNS = [
    "corpus",
    "utterance_id",
    "speaker",
    "truth",
    "method",
    "prediction",
    "generated",
]


class EvalError(ValueError):
    """Bad evaluation input; names the corpus, the file or the params key."""


@dataclass
class OODResult:
    predictions: pd.DataFrame
    metrics: dict[str, Any]
    classes: dict[str, list[str]]
    excluded: dict[str, dict[str, int]]
    unmapped_rate: dict[str, float]

    def table(self, metric: str = "accuracy") -> pd.DataFrame:
        """Methods x corpora, the paper's shape."""
        return pd.DataFrame(
            {
                corpus: {m: self.metrics[m][corpus][metric] for m in METHODS}
                for corpus in self.classes
            }
        )

    @classmethod
    def load(
        cls, common: dict[str, Any], metrics_path: str | Path, corpora: list[str] | None = None
    ) -> OODResult:
        """What the eval_ood stage wrote: its predictions and ``ood.json``; corpora in the
        order of ``corpora`` (``eval_ood.test_corpora``; the JSON keys are sorted)."""
        predictions_path = resolve_path(common["output_root"]) / "eval_ood" / "predictions.csv"
        for path in (predictions_path, Path(metrics_path)):
            if not path.is_file():
                raise EvalError(f"{path} is missing: run dvc repro eval_ood")
        metrics = json.loads(Path(metrics_path).read_text())
        predictions = pd.read_csv(predictions_path, keep_default_na=False, dtype=str)
        order = corpora if corpora is not None else list(metrics["classes"])
        missing = [c for c in order if c not in metrics["classes"]]
        if missing:
            raise EvalError(f"{metrics_path} has no results for {missing}: run dvc repro eval_ood")
        classes = {c: metrics["classes"][c] for c in order}
        return cls(predictions, metrics, classes, metrics["excluded"], metrics["unmapped_rate"])

    def test_sets(self, class_sets: dict[str, str]) -> pd.DataFrame:
        """Per test corpus: its class set and classes, items evaluated, items excluded."""
        return pd.DataFrame(
            {
                corpus: {
                    "class set": class_sets[corpus],
                    "classes": ", ".join(classes),
                    "evaluated": self.metrics["selm_score"][corpus]["n"],
                    "quarantined": self.excluded[corpus]["quarantined"],
                    "outside class set": self.excluded[corpus]["outside_class_set"],
                }
                for corpus, classes in self.classes.items()
            }
        ).T

    def gains(self) -> pd.DataFrame:
        """Relative accuracy gain of each SELM variant over the corpus's best baseline, and the
        share of generated answers that named no test class."""
        gains = self.metrics["relative_gain_over_best_baseline"]
        return pd.DataFrame(
            {
                c: {
                    "best baseline": g["best_baseline"],
                    **{f"{m} gain": f"{100 * g[m]:+.1f} %" for m in SELM_METHODS},
                    "unmapped answers": f"{100 * self.unmapped_rate[c]:.1f} %",
                }
                for c, g in ((c, gains[c]) for c in self.classes)
            }
        )

    def interval(self, method: str, corpus: str, metric: str) -> str:
        """``value [low, high]`` of one method x corpus x metric."""
        values = self.metrics[method][corpus]
        low, high = values["ci95"][metric]
        return f"{values[metric]:.3f} [{low:.3f}, {high:.3f}]"

    def verdict(self, corpus: str) -> str:
        """One sentence: the headline SELM variant (``eval_ood.headline``, fixed in advance,
        never picked on the test set) against the classifier baseline and the majority class,
        from the paired bootstrap of the accuracy difference (the same speaker resamples for
        both methods) and McNemar's test on the same items (``ood.json``'s ``paired``)."""
        m = self.metrics
        head = m["headline"]
        acc = m[head][corpus]["accuracy"]
        low, high = m[head][corpus]["ci95"]["accuracy"]
        claims = []
        for base in PAIRED_BASELINES:
            pair = m["paired"][corpus][f"{head}_vs_{base}"]
            d, (lo, hi) = pair["accuracy"]["difference"], pair["accuracy"]["ci95"]
            relation = {"better": "better than", "worse": "worse than"}.get(
                pair["verdict"], "not distinguishable from"
            )
            claims.append(
                f"{relation} {base} ({m[base][corpus]['accuracy']:.3f}; difference {d:+.3f}, "
                f"95 % CI {lo:+.3f} to {hi:+.3f}, bootstrap p {pair['accuracy']['p_value']:.3f}, "
                f"McNemar p {pair['mcnemar']['p_value']:.3f})"
            )
        pair = m["paired"][corpus][f"{head}_vs_{PAIRED_BASELINES[0]}"]
        few = (
            f" With {pair['clusters']} speakers the intervals are coarse."
            if pair["few_clusters"]
            else ""
        )
        n_classes = len(self.classes[corpus])
        return (
            f"**{corpus}** ({m[head][corpus]['n']} items, {n_classes} classes, "
            f"chance {1 / n_classes:.2f}): {head} reaches accuracy {acc:.3f} (95 % CI "
            f"{low:.3f}-{high:.3f}), " + "; ".join(claims) + f".{few} "
            f"{100 * self.unmapped_rate[corpus]:.1f} % of generated answers were unmappable."
        )

    def confusion(self, method: str, corpus: str) -> pd.DataFrame:
        rows = self.predictions[
            (self.predictions["method"] == method) & (self.predictions["corpus"] == corpus)
        ]
        classes = self.classes[corpus]
        matrix = M.confusion(rows["truth"], rows["prediction"], classes, include_unmapped=True)
        columns = classes + ([UNMAPPED] if matrix.shape[1] > len(classes) else [])
        return pd.DataFrame(matrix, index=classes, columns=columns)
