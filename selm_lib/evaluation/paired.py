"""Paired comparisons of two systems scored on the same items: a cluster bootstrap of the
*difference* (the same speaker resamples for both systems) with its interval and a p-value, and
McNemar's test on the items both systems labelled.

A claim that one method beats another rests on :func:`compare`: ``better`` / ``worse`` when the
95 % interval of the difference excludes 0, else ``not distinguishable``. With few clusters (the
speakers: IEMOCAP has 10, in 5 sessions) the bootstrap interval is coarse, and :func:`compare`
says so (``few_clusters``).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from selm_lib.evaluation.metrics import METRIC_NAMES, _batch_metrics, _encode

FEW_CLUSTERS = 20  # below this many speakers a bootstrap interval is coarse; reports say so


def _per_group(true_idx, pred_idx, group_idx, n_groups, n_classes) -> np.ndarray:
    width = n_classes + 1
    cell = true_idx * width + pred_idx
    return np.bincount(
        group_idx * (n_classes * width) + cell, minlength=n_groups * n_classes * width
    ).reshape(n_groups, n_classes * width)


def paired_bootstrap(
    y_true: Sequence[str],
    pred_a: Sequence[str],
    pred_b: Sequence[str],
    groups: Sequence[Any],
    classes: Sequence[str],
    *,
    metric: str = "accuracy",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """``metric(a) - metric(b)`` on the data, its percentile interval and a two-sided p-value
    under a cluster bootstrap over ``groups`` in which every replicate resamples the same
    speakers for both systems (so their correlation cancels in the difference).

    The p-value is ``2 * min(P*(d <= 0), P*(d >= 0))`` over the replicates (at least
    ``1 / n_boot``, at most 1): the smallest two-sided level at which the interval would
    exclude 0."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRIC_NAMES)}")
    true_a, idx_a, class_list = _encode(y_true, pred_a, classes)
    _, idx_b, _ = _encode(y_true, pred_b, classes)
    group_idx, _ = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))
    if len(group_idx) != len(true_a) or (group_idx < 0).any():
        raise ValueError("groups must give every item a speaker")
    n_groups, n_classes = int(group_idx.max()) + 1, len(class_list)
    width = n_classes + 1
    table_a = _per_group(true_a, idx_a, group_idx, n_groups, n_classes)
    table_b = _per_group(true_a, idx_b, group_idx, n_groups, n_classes)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(int(n_boot), n_groups))
    replicate = np.repeat(np.arange(int(n_boot)), n_groups)
    weights = np.bincount(replicate * n_groups + draws.ravel(), minlength=int(n_boot) * n_groups)
    weights = weights.reshape(int(n_boot), n_groups)

    def values(table: np.ndarray, w: np.ndarray) -> np.ndarray:
        summed = w @ table
        return _batch_metrics(summed.reshape(len(w), n_classes, width))[metric]

    ones = np.ones((1, n_groups), dtype=np.int64)
    point = float(values(table_a, ones)[0] - values(table_b, ones)[0])
    diffs = values(table_a, weights) - values(table_b, weights)
    diffs = diffs[~np.isnan(diffs)]
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [tail, 1.0 - tail])
    p = 2.0 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0)))
    return {
        "difference": point,
        "ci95": (float(lo), float(hi)),
        "p_value": float(min(1.0, max(p, 1.0 / len(diffs)))),
        "clusters": n_groups,
    }


def mcnemar(y_true: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str]) -> dict[str, Any]:
    """McNemar's test on the discordant items: ``a_only`` (a right, b wrong) and ``b_only``.
    Exact two-sided binomial p-value when ``a_only + b_only < 25``, else the chi-square test
    with continuity correction."""
    truth = np.asarray(y_true, dtype=object)
    right_a = np.asarray(pred_a, dtype=object) == truth
    right_b = np.asarray(pred_b, dtype=object) == truth
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n = a_only + b_only
    if n == 0:
        return {"a_only": 0, "b_only": 0, "statistic": 0.0, "p_value": 1.0, "exact": True}
    if n < 25:
        k = min(a_only, b_only)
        p = min(1.0, 2.0 * sum(comb(n, i) for i in range(k + 1)) / 2**n)
        return {
            "a_only": a_only,
            "b_only": b_only,
            "statistic": float(k),
            "p_value": p,
            "exact": True,
        }
    statistic = (abs(a_only - b_only) - 1.0) ** 2 / n
    p = float(stats.chi2.sf(statistic, df=1))
    return {
        "a_only": a_only,
        "b_only": b_only,
        "statistic": float(statistic),
        "p_value": p,
        "exact": False,
    }


def compare(
    y_true: Sequence[str],
    pred_a: Sequence[str],
    pred_b: Sequence[str],
    groups: Sequence[Any],
    classes: Sequence[str],
    *,
    metrics: Sequence[str] = ("accuracy", "unweighted_accuracy"),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap per metric, McNemar's test, and the verdict on ``metrics[0]``:
    ``better`` / ``worse`` when its interval excludes 0, else ``not distinguishable``."""
    out: dict[str, Any] = {}
    for metric in metrics:
        result = paired_bootstrap(
            y_true, pred_a, pred_b, groups, classes, metric=metric, n_boot=n_boot, seed=seed
        )
        out[metric] = {
            "difference": round(result["difference"], 6),
            "ci95": [round(v, 6) for v in result["ci95"]],
            "p_value": round(result["p_value"], 6),
        }
        out["clusters"] = result["clusters"]
    test = mcnemar(y_true, pred_a, pred_b)
    out["mcnemar"] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in test.items()}
    lo, hi = out[metrics[0]]["ci95"]
    out["verdict"] = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable"
    out["few_clusters"] = out["clusters"] < FEW_CLUSTERS
    return out
