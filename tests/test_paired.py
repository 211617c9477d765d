"""Paired comparisons (selm_lib.evaluation.paired): the vectorised paired bootstrap equals a
brute-force loop over the same resamples, McNemar equals a hand-computed table, and the verdict
follows the interval."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.evaluation.metrics import summary
from selm_lib.evaluation.paired import compare, mcnemar, paired_bootstrap

CLASSES = ["angry", "happy", "sad"]


def toy(n_speakers=6, per=8, seed=0, skill_a=0.8, skill_b=0.5):
    rng = np.random.default_rng(seed)
    truth, a, b, groups = [], [], [], []
    for s in range(n_speakers):
        for _ in range(per):
            t = CLASSES[int(rng.integers(3))]
            wrong = [c for c in CLASSES if c != t]
            truth.append(t)
            a.append(t if rng.random() < skill_a else wrong[int(rng.integers(2))])
            b.append(t if rng.random() < skill_b else wrong[int(rng.integers(2))])
            groups.append(f"spk{s}")
    return truth, a, b, groups


@pytest.mark.parametrize("metric", ["accuracy", "unweighted_accuracy", "macro_f1"])
def test_paired_bootstrap_equals_a_brute_force_loop(metric):
    truth, a, b, groups = toy()
    n_boot, seed = 200, 5
    fast = paired_bootstrap(truth, a, b, groups, CLASSES, metric=metric, n_boot=n_boot, seed=seed)
    # the same draws, one replicate at a time, both systems on the same resampled speakers
    speakers = sorted(set(groups), key=groups.index)  # factorize order: first appearance
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(speakers), size=(n_boot, len(speakers)))
    diffs = []
    for row in draws:
        items = [i for s in row for i in range(len(truth)) if groups[i] == speakers[s]]
        t, pa, pb = ([xs[i] for i in items] for xs in (truth, a, b))
        diffs.append(summary(t, pa, CLASSES)[metric] - summary(t, pb, CLASSES)[metric])
    diffs = np.asarray(diffs)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert fast["ci95"] == pytest.approx((lo, hi), abs=1e-12)
    point = summary(truth, a, CLASSES)[metric] - summary(truth, b, CLASSES)[metric]
    assert fast["difference"] == pytest.approx(point)
    p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    assert fast["p_value"] == pytest.approx(max(min(p, 1.0), 1 / n_boot))


def test_mcnemar_against_a_hand_computed_table():
    # 10 items: a right & b wrong on 6, b right & a wrong on 1, both right on 3
    truth = ["x"] * 10
    a = ["x"] * 6 + ["y"] + ["x"] * 3
    b = ["y"] * 6 + ["x"] + ["x"] * 3
    out = mcnemar(truth, a, b)
    assert (out["a_only"], out["b_only"], out["exact"]) == (6, 1, True)
    # exact two-sided binomial: 2 * P(X <= 1 | n=7, p=1/2) = 2 * (1 + 7) / 128
    assert out["p_value"] == pytest.approx(16 / 128)
    # large discordant counts: chi-square with continuity correction, (|30-10|-1)^2/40 = 9.025
    big = mcnemar(["x"] * 40, ["x"] * 30 + ["y"] * 10, ["y"] * 30 + ["x"] * 10)
    assert big["statistic"] == pytest.approx(9.025) and not big["exact"]
    assert big["p_value"] == pytest.approx(0.002663, abs=1e-5)
    assert mcnemar(truth, a, a)["p_value"] == 1.0


def test_verdicts_follow_the_interval_and_few_clusters_are_flagged():
    truth, a, b, groups = toy(n_speakers=30, per=20, skill_a=0.9, skill_b=0.4)
    result = compare(truth, a, b, groups, CLASSES, n_boot=300)
    assert result["verdict"] == "better" and result["accuracy"]["ci95"][0] > 0
    assert result["mcnemar"]["p_value"] < 0.001 and not result["few_clusters"]
    assert compare(truth, b, a, groups, CLASSES, n_boot=300)["verdict"] == "worse"
    same = compare(truth, a, a, groups, CLASSES, n_boot=300)
    assert same["verdict"] == "not distinguishable" and same["accuracy"]["difference"] == 0
    few = compare(*toy(n_speakers=5), CLASSES, n_boot=100)
    assert few["few_clusters"] and few["clusters"] == 5
