"""Comparing two methods' results (no model code: reports import this cheaply)."""

from __future__ import annotations

from typing import Any


def crossing(
    summary: dict[str, Any], corpus: str, method: str, other: str = "classifier_baseline"
) -> str:
    """Where the mean curves of ``method`` and ``other`` over k cross on ``corpus`` (from
    :func:`aggregate`'s summary), in one sentence."""
    ks = sorted(int(k) for k in summary[corpus][method])
    diff = [
        summary[corpus][method][str(k)]["accuracy"]["mean"]
        - summary[corpus][other][str(k)]["accuracy"]["mean"]
        for k in ks
    ]
    ahead = [k for k, d in zip(ks, diff, strict=True) if d > 0]
    changes = [ks[i] for i in range(1, len(ks)) if (diff[i] > 0) != (diff[i - 1] > 0)]
    if not ahead:
        return f"{method} stays below {other} for every k."
    if len(ahead) == len(ks):
        return f"{method} stays above {other} for every k."
    return (
        f"{method} is above {other} at k = {ahead}; the curves cross at k = {changes} "
        "(means over seeds; overlapping intervals mean the order is not settled)."
    )


def fewshot_table(
    summary: dict[str, Any], corpora: list[str], methods: list[str], ks: list[int], metric: str
) -> Any:
    """(corpus, method) x k cells ``mean [low, high]`` of the few-shot aggregate."""
    import pandas as pd

    def cell(corpus: str, method: str, k: int) -> str:
        entry = summary[corpus][method][str(k)][metric]
        low, high = entry["ci95"]
        return f"{entry['mean']:.3f} [{low:.3f}, {high:.3f}]"

    return pd.DataFrame(
        {(c, m): {k: cell(c, m, k) for k in ks} for c in corpora for m in methods}
    ).T


def fewshot_sentences(
    summary: dict[str, Any],
    corpora: list[str],
    methods: list[str],
    ks: list[int],
    other: str = "classifier_baseline",
) -> list[str]:
    """Per corpus and SELM method: where its curve crosses ``other``'s, and its accuracy at the
    smallest and the largest k."""
    if other not in methods:
        return []
    low, high = str(min(ks)), str(max(ks))
    lines = []
    for corpus in corpora:
        for method in [m for m in methods if m != other]:
            at = {k: summary[corpus][method][k]["accuracy"]["mean"] for k in (low, high)}
            lines.append(
                f"**{corpus}**: {crossing(summary, corpus, method, other)} {method} goes from "
                f"{at[low]:.3f} at k = {low} to {at[high]:.3f} at k = {high}."
            )
    return lines
