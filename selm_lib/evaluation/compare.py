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
