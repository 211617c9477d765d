"""Classification metrics for speech emotion recognition, with speaker-level bootstrap intervals.

Naming (REFERENCE.md section 4, pitfall 2; many repositories swap these):

* **WA** = :func:`accuracy`: the plain share of correct predictions.
* **UA** = :func:`unweighted_accuracy`: the mean per-class recall over the classes present in the
  truth (scikit-learn's ``balanced_accuracy_score``; SER-Evals' "macro recall").
* **macro-F1** = :func:`macro_f1`; SER-Evals also reports :func:`weighted_f1` and
  :func:`macro_precision`.

Unmapped predictions. A generative model (SELM) can answer something that maps to no class; pass
it as any value outside ``classes`` (``""``, ``"<unmapped>"``, ``None``). Such a prediction is
always an error: a false negative for the true class and a false positive for no class. In a
confusion matrix it lands in a trailing "unmapped" column (``include_unmapped=True``).

Every metric is computed from a confusion matrix (:func:`metrics_from_confusion`), which is what
lets :func:`bootstrap_ci` resample speakers by summing per-speaker confusion matrices instead of
re-scanning items. Runtime dependencies: numpy and pandas only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "METRIC_NAMES",
    "UNMAPPED",
    "accuracy",
    "bootstrap_ci",
    "chance_accuracy",
    "confusion",
    "macro_f1",
    "macro_precision",
    "majority_accuracy",
    "metrics_from_confusion",
    "per_class_recall",
    "relative_gain",
    "summary",
    "unweighted_accuracy",
    "weighted_f1",
]

#: Metrics that :func:`metrics_from_confusion` returns and :func:`bootstrap_ci` can resample.
METRIC_NAMES = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "macro_precision")

UNMAPPED = "<unmapped>"  # column label of the trailing confusion column, for tables and plots


# ----------------------------------------------------------------------------- validation


def _as_1d(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D object array (keeps strings as Python objects; no silent casting)."""
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of labels, not a single string")
    items = list(values)
    # fromiter keeps one element per label (np.asarray could widen tuple labels to 2-D)
    return np.fromiter(items, dtype=object, count=len(items))


def _check_classes(classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str):
        raise ValueError("classes must be a sequence of labels, not a single string")
    out = list(classes)
    if not out:
        raise ValueError("classes is empty: at least one class is needed")
    duplicates = sorted({str(c) for c, k in Counter(out).items() if k > 1})
    if duplicates:
        raise ValueError(f"classes contains duplicates: {duplicates}")
    return out


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = _as_1d(y_true, "y_true")
    pred = _as_1d(y_pred, "y_pred")
    if len(true) != len(pred):
        raise ValueError(
            f"y_true and y_pred differ in length: {len(true)} labels vs {len(pred)} predictions"
        )
    if len(true) == 0:
        raise ValueError("y_true and y_pred are empty: metrics need at least one item")
    return true, pred


def _encode(
    y_true: Any, y_pred: Any, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class indices of truth (all valid) and predictions (``C`` = unmapped), after validation."""
    class_list = _check_classes(classes)
    true, pred = _check_pair(y_true, y_pred)
    index = {c: i for i, c in enumerate(class_list)}
    n_classes = len(class_list)

    def lookup(value: Any) -> int:
        try:
            return index.get(value, n_classes)
        except TypeError:  # unhashable answer (e.g. a list): cannot be a class
            return n_classes

    true_idx = np.fromiter((lookup(v) for v in true), dtype=np.int64, count=len(true))
    pred_idx = np.fromiter((lookup(v) for v in pred), dtype=np.int64, count=len(pred))
    unknown = true_idx == n_classes
    if unknown.any():
        names = list(dict.fromkeys(repr(v) for v in true[unknown]))
        shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
        raise ValueError(
            f"y_true contains label(s) not in classes: {shown}; classes are {class_list}"
        )
    return true_idx, pred_idx, class_list


def _counts(true_idx: np.ndarray, pred_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C+1) counts; the last column holds unmapped predictions."""
    width = n_classes + 1
    flat = np.bincount(true_idx * width + pred_idx, minlength=n_classes * width)
    return flat.reshape(n_classes, width)


# ----------------------------------------------------------------------------- confusion


def confusion(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    classes: Sequence[str],
    *,
    include_unmapped: bool = False,
) -> np.ndarray:
    """Confusion counts: rows = true class, columns = predicted class, both in ``classes`` order.

    With ``include_unmapped=False`` (default) the result is (C, C) and every prediction must be one
    of ``classes``; a prediction outside them raises ``ValueError`` rather than being dropped
    silently (dropping would hide errors). With ``include_unmapped=True`` the result is (C, C+1)
    and the last column counts predictions outside ``classes`` (always present, possibly zeros),
    so row sums are the class supports either way.
    """
    true_idx, pred_idx, class_list = _encode(y_true, y_pred, classes)
    matrix = _counts(true_idx, pred_idx, len(class_list))
    if include_unmapped:
        return matrix
    n_unmapped = int(matrix[:, -1].sum())
    if n_unmapped:
        raise ValueError(
            f"{n_unmapped} prediction(s) are not in classes {class_list}; "
            "pass include_unmapped=True to count them in a trailing column"
        )
    return matrix[:, :-1]


def _batch_metrics(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """All :data:`METRIC_NAMES` for a stack of confusion matrices (B, C, C[+1]) at once.

    Per class c: support = row sum (unmapped column included, so unmapped predictions are misses),
    predicted = column sum over the C real classes (unmapped is a false positive for nobody).
    """
    counts = np.asarray(matrices, dtype=np.float64)
    n_classes = counts.shape[-2]
    diag = np.arange(n_classes)
    tp = counts[:, diag, diag]
    support = counts.sum(axis=2)
    predicted = counts[:, :, :n_classes].sum(axis=1)
    n = support.sum(axis=1)

    in_truth = support > 0
    seen = in_truth | (predicted > 0)  # sklearn averages over labels seen in truth or predictions
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(in_truth, tp / np.where(in_truth, support, 1.0), 0.0)
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1.0), 0.0)
        # 2PR/(P+R) == 2TP/(support+predicted); 0 when TP == 0 (zero_division=0)
        denom = support + predicted
        f1 = np.where(denom > 0, 2.0 * tp / np.where(denom > 0, denom, 1.0), 0.0)
        return {
            "accuracy": tp.sum(axis=1) / n,
            "unweighted_accuracy": recall.sum(axis=1) / in_truth.sum(axis=1),
            "macro_f1": f1.sum(axis=1) / seen.sum(axis=1),
            "weighted_f1": (f1 * support).sum(axis=1) / n,
            "macro_precision": precision.sum(axis=1) / seen.sum(axis=1),
        }


def metrics_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """:data:`METRIC_NAMES` plus ``n`` from a (C, C) or (C, C+1) confusion (rows = truth).

    A (C, C+1) matrix's last column is read as unmapped predictions (see :func:`confusion`).
    """
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[1] not in (counts.shape[0], counts.shape[0] + 1):
        raise ValueError(f"confusion must have shape (C, C) or (C, C+1), got {counts.shape}")
    if counts.shape[0] == 0:
        raise ValueError("confusion has no classes")
    if (counts < 0).any():
        raise ValueError("confusion counts must be non-negative")
    n = counts.sum()
    if n <= 0:
        raise ValueError("confusion is empty: metrics need at least one item")
    batch = _batch_metrics(counts[None])
    out: dict[str, float] = {name: float(batch[name][0]) for name in METRIC_NAMES}
    out["n"] = int(n) if float(n).is_integer() else float(n)
    return out


# ----------------------------------------------------------------------------- point metrics


def accuracy(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] | None = None
) -> float:
    """WA: the share of items predicted correctly; a prediction outside the classes is wrong.

    ``classes`` is optional here; when given, the truth is validated against it.
    """
    if classes is not None:
        true_idx, pred_idx, _ = _encode(y_true, y_pred, classes)
        return float(np.mean(true_idx == pred_idx))
    true, pred = _check_pair(y_true, y_pred)
    return float(np.mean([bool(t == p) for t, p in zip(true, pred, strict=True)]))


def _metric(y_true: Any, y_pred: Any, classes: Sequence[str], name: str) -> float:
    true_idx, pred_idx, class_list = _encode(y_true, y_pred, classes)
    return float(_batch_metrics(_counts(true_idx, pred_idx, len(class_list))[None])[name][0])


def unweighted_accuracy(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> float:
    """UA: mean recall over the classes *present in y_true* (classes absent from the truth have no
    recall and are skipped, as in scikit-learn's ``balanced_accuracy_score``, which this equals).
    Unmapped predictions are misses for their true class."""
    return _metric(y_true, y_pred, classes, "unweighted_accuracy")


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> float:
    """Mean F1 over the classes (within ``classes``) present in y_true or y_pred.

    scikit-learn semantics with ``zero_division=0``: a class that is predicted but never true
    scores 0 and counts; a class neither true nor predicted is left out of the mean. Unmapped
    predictions are false negatives for the true class and false positives for no class.
    """
    return _metric(y_true, y_pred, classes, "macro_f1")


def weighted_f1(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> float:
    """Per-class F1 weighted by true support (SER-Evals' "weighted F1"; sklearn ``"weighted"``)."""
    return _metric(y_true, y_pred, classes, "weighted_f1")


def macro_precision(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> float:
    """Mean precision over the classes seen in y_true or y_pred (SER-Evals' "macro precision");
    a class never predicted scores 0 (``zero_division=0``)."""
    return _metric(y_true, y_pred, classes, "macro_precision")


def per_class_recall(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict[str, float]:
    """Recall of every class in ``classes`` order; ``nan`` for a class absent from y_true
    (undefined, not 0, so that it cannot be mistaken for a class the model always misses)."""
    true_idx, pred_idx, class_list = _encode(y_true, y_pred, classes)
    matrix = _counts(true_idx, pred_idx, len(class_list))
    support = matrix.sum(axis=1)
    return {
        c: float(matrix[i, i] / support[i]) if support[i] else math.nan
        for i, c in enumerate(class_list)
    }


def summary(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict:
    """``accuracy`` (WA), ``unweighted_accuracy`` (UA), ``macro_f1``, ``weighted_f1``,
    ``macro_precision`` and ``n`` (item count), in one pass over the confusion matrix."""
    return metrics_from_confusion(confusion(y_true, y_pred, classes, include_unmapped=True))


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    groups: Sequence[Any],
    classes: Sequence[str],
    *,
    metrics: Sequence[str] = ("accuracy", "unweighted_accuracy", "macro_f1"),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric under a cluster bootstrap over speakers (``groups``).

    Items of one speaker are correlated, so resampling items would understate the uncertainty:
    each replicate draws as many speakers as there are, with replacement, and keeps all their
    items. Per-speaker (C, C+1) confusions are computed once and a replicate is a weighted sum of
    them (one matrix product for all replicates). Deterministic for a given ``seed``. With a single
    speaker every replicate is the data itself, so the interval collapses to the point estimate.
    """
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    true_idx, pred_idx, class_list = _encode(y_true, y_pred, classes)
    group_array = _as_1d(groups, "groups")
    if len(group_array) != len(true_idx):
        raise ValueError(
            f"groups has {len(group_array)} entries but there are {len(true_idx)} items"
        )
    group_idx, _ = pd.factorize(pd.Series(group_array), use_na_sentinel=True)
    if (group_idx < 0).any():
        raise ValueError("groups contains missing values: every item needs a speaker")

    n_classes = len(class_list)
    width = n_classes + 1
    n_groups = int(group_idx.max()) + 1
    cell = true_idx * width + pred_idx
    per_group = np.bincount(
        group_idx * (n_classes * width) + cell, minlength=n_groups * n_classes * width
    ).reshape(n_groups, n_classes * width)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(int(n_boot), n_groups))
    # multiplicity of each speaker in each replicate, then all replicate confusions in one product
    replicate = np.repeat(np.arange(int(n_boot)), n_groups)
    weights = np.bincount(replicate * n_groups + draws.ravel(), minlength=int(n_boot) * n_groups)
    summed = weights.reshape(int(n_boot), n_groups) @ per_group
    values = _batch_metrics(summed.reshape(int(n_boot), n_classes, width))

    tail = (1.0 - level) / 2.0
    out: dict[str, tuple[float, float]] = {}
    for name in metrics:
        lo, hi = np.nanquantile(values[name], [tail, 1.0 - tail])
        out[name] = (float(lo), float(hi))
    return out


# ----------------------------------------------------------------------------- reference points


def relative_gain(method: float, baseline: float) -> float:
    """``(method - baseline) / baseline``, e.g. 0.59 vs 0.50 -> 0.18 ("+18 % relative");
    ``nan`` when the baseline is 0 (a relative gain over nothing is undefined)."""
    if baseline == 0 or math.isnan(baseline) or math.isnan(method):
        return math.nan
    return (method - baseline) / baseline


def chance_accuracy(classes: Sequence[str]) -> float:
    """Accuracy of a uniform random guess: ``1 / C``."""
    return 1.0 / len(_check_classes(classes))


def majority_accuracy(y_true: Sequence[str]) -> float:
    """Accuracy of always predicting the most frequent true label (the share of that label)."""
    true = _as_1d(y_true, "y_true")
    if len(true) == 0:
        raise ValueError("y_true is empty: metrics need at least one item")
    return max(Counter(true.tolist()).values()) / len(true)
