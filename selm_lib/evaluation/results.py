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
# SELM class scoring after prior matching (selm_lib.evaluation.prior.match_priors), each a method
SCORE_VARIANTS = (
    "selm_score_uniform",  # the training answer prior removed
    "selm_score_em",  # a test prior estimated by EM from the unlabelled scores
    "selm_score_content_free",  # the scores of a content-free input subtracted
    "selm_score_oracle",  # the test labels' prior: an oracle, never a headline
)
ORACLES = ("selm_score_oracle",)
METHODS = (
    "selm_generate",
    "selm_score",
    *SCORE_VARIANTS,
    "classifier_baseline",
    "majority",
    "chance",
)
SELM_METHODS = ("selm_generate", "selm_score", *SCORE_VARIANTS)
BASELINES = ("classifier_baseline", "majority", "chance")
PAIRED_BASELINES = ("classifier_baseline", "majority")  # what each SELM variant is paired with
# ``eval_ood.headline: validation`` picks among these, by unweighted accuracy on the training
# corpora's validation split (selm_generate is not scored there; name it to use it).
HEADLINE_CANDIDATES = (
    "selm_score",
    "selm_score_uniform",
    "selm_score_em",
    "selm_score_content_free",
)
# Methods with class probabilities, whose calibration ood.json reports.
CALIBRATED = ("selm_score", *SCORE_VARIANTS, "classifier_baseline")
PREDICTION_COLUMNS = [
    "corpus",
    "utterance_id",
    "speaker",
    "truth",
    "method",
    "prediction",
    "generated",
]


def label(method: str) -> str:
    """A method's name for tables, the oracle marked as one."""
    return f"{method} (oracle: test labels' prior)" if method in ORACLES else method


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
        """Methods x corpora, the paper's shape (the oracle row named as such)."""
        return pd.DataFrame(
            {
                corpus: {label(m): self.metrics[m][corpus][metric] for m in METHODS}
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
                    **{f"{label(m)} gain": f"{100 * g[m]:+.1f} %" for m in SELM_METHODS if m in g},
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
        """One sentence: the headline SELM variant (``eval_ood.headline``: fixed in advance, or
        chosen on the training corpora's validation split; never picked on the test set)
        against the classifier baseline and the majority class,
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

    def headline_note(self) -> str:
        """How the headline variant was chosen (``ood.json`` ``headline_selection``)."""
        m = self.metrics
        selection = m.get("headline_selection", {"rule": "fixed"})
        if selection["rule"] != "validation":
            return f"Headline variant: **{m['headline']}**, fixed in advance (`eval_ood.headline`)."
        scores = ", ".join(
            f"{v} {selection['validation_unweighted_accuracy'][v]['mean']:.3f}"
            for v in selection["candidates"]
        )
        corpora = ", ".join(selection["corpora"])
        return (
            f"Headline variant: **{m['headline']}**, the best mean unweighted accuracy on the "
            f"validation split of the training corpora ({corpora}; `eval_ood.headline: "
            f"validation`; no test item is read for the choice): {scores}."
        )

    def comparisons(self, metric: str = "accuracy") -> pd.DataFrame:
        """The paired differences the forest plot shows: per corpus, the headline against the
        classifier baseline, and each prior matching against plain ``selm_score``; columns
        corpus, comparison, difference, low, high (95 % interval), p_value, verdict."""
        head = self.metrics["headline"]
        pairs = [(head, "classifier_baseline")] + [(v, "selm_score") for v in SCORE_VARIANTS]
        rows = []
        for corpus in self.classes:
            for a, b in pairs:
                entry = self.metrics["paired"][corpus][f"{a}_vs_{b}"]
                low, high = entry[metric]["ci95"]
                rows.append(
                    {
                        "corpus": corpus,
                        "comparison": f"{label(a)} - {b}",
                        "difference": entry[metric]["difference"],
                        "low": low,
                        "high": high,
                        "p_value": entry[metric]["p_value"],
                        "verdict": entry["verdict"],
                    }
                )
        return pd.DataFrame(rows)

    def prior_effects(self, metric: str = "unweighted_accuracy") -> pd.DataFrame:
        """Variants x corpora: each prior matching's ``metric`` on SELM class scoring, and its
        paired difference to plain ``selm_score`` with the 95 % interval."""
        table = {}
        for corpus in self.classes:
            column = {"selm_score": f"{self.metrics['selm_score'][corpus][metric]:.3f}"}
            for v in SCORE_VARIANTS:
                pair = self.metrics["paired"][corpus][f"{v}_vs_selm_score"][metric]
                low, high = pair["ci95"]
                column[label(v)] = (
                    f"{self.metrics[v][corpus][metric]:.3f} ({pair['difference']:+.3f} "
                    f"[{low:+.3f}, {high:+.3f}])"
                )
            table[corpus] = column
        return pd.DataFrame(table)

    def calibration_table(self, scope: str = "ood") -> pd.DataFrame:
        """(corpus, method) x ECE / NLL / Brier, raw and after temperature scaling (when
        ``eval_ood.temperature_scaling``), with the fitted temperature; ``scope``: ``ood`` or
        ``in_domain``."""
        section = self.metrics["calibration"]
        temperatures = section.get("temperatures", {})
        rows = {}
        for corpus, methods in section[scope].items():
            for method, entry in methods.items():
                row = {k: entry["raw"][k] for k in ("ece", "nll", "brier")}
                if "scaled" in entry:
                    row.update({f"{k} (T)": entry["scaled"][k] for k in ("ece", "nll", "brier")})
                    row["T"] = temperatures[method]["temperature"]
                rows[(corpus, label(method))] = row
        return pd.DataFrame(rows).T
