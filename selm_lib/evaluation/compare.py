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


def fewshot_paired_table(
    summary: dict[str, Any], corpora: list[str], methods: list[str], ks: list[int]
) -> Any:
    """(corpus, method) x k cells ``difference [low, high] verdict`` of each k against k = 0
    (accuracy; the aggregate's ``paired_vs_k0``: paired bootstrap over speakers, seeds pooled)."""
    import pandas as pd

    paired = summary["paired_vs_k0"]

    def cell(corpus: str, method: str, k: int) -> str:
        entry = paired[corpus][method][str(k)]
        d, (low, high) = entry["accuracy"]["difference"], entry["accuracy"]["ci95"]
        return f"{d:+.3f} [{low:+.3f}, {high:+.3f}] {entry['verdict']}"

    return pd.DataFrame(
        {
            (c, m): {k: cell(c, m, k) for k in ks if k > 0}
            for c in corpora
            for m in methods
            if m in paired.get(c, {})
        }
    ).T


def fewshot_significance_sentences(
    summary: dict[str, Any], corpora: list[str], methods: list[str]
) -> list[str]:
    """Per corpus and method: the smallest k from which adaptation is significantly better
    than k = 0 (it and every larger k), with a caution where the speakers are few."""
    lines = []
    for corpus in corpora:
        for method in methods:
            by_k = summary["paired_vs_k0"].get(corpus, {}).get(method)
            if not by_k:
                continue
            k = summary["significant_from_k"][corpus][method]
            few = any(entry["few_clusters"] for entry in by_k.values())
            clusters = max(entry["clusters"] for entry in by_k.values())
            text = (
                f"significantly better than k = 0 from k = {k} on (95 % paired interval of "
                "the accuracy difference above 0 at that k and every larger one)"
                if k is not None
                else "not significantly better than k = 0 from any k on"
            )
            caution = (
                f" With {clusters} evaluated speakers over the seeds the intervals are coarse."
                if few
                else ""
            )
            lines.append(f"**{corpus}**, {method}: {text}.{caution}")
    return lines


def selection_table(selected: dict[str, Any]) -> Any:
    """(corpus, method, k) rows: each chosen candidate of ``fewshot.select`` with the number of
    seeds that chose it (the aggregate's ``selected``)."""
    import pandas as pd

    rows = [
        {"corpus": c, "method": m, "k": int(k), "chosen": label, "seeds": n}
        for c, methods in selected.items()
        for m, by_k in methods.items()
        for k, labels in by_k.items()
        for label, n in labels.items()
    ]
    return pd.DataFrame(rows).sort_values(["corpus", "method", "k", "chosen"], ignore_index=True)
