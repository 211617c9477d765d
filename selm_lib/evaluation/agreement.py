"""Agreement with the annotators' label distributions, beside the hard-label metrics.

Where a corpus ships its annotators' votes (the manifest column ``votes``: CREMA-D's crowd,
IEMOCAP's evaluators, MSP-Podcast's detailed labels), each test item has a human distribution over
the evaluation classes: its votes mapped through the corpus's class map
(:func:`selm_lib.data.labels.class_map`), votes for emotions outside the class set dropped and the
rest renormalised. Items without any in-set vote are left out and counted. Against it:

- **JSD**: Jensen-Shannon divergence (base 2, so in [0, 1]) between the predicted class
  distribution and the human one; 0 = identical, 1 = disjoint supports.
- **soft accuracy**: the human vote share of the predicted class (1 when every annotator named
  it, 0 when none did); the mean is the expected accuracy against one random annotator.
- **human ceiling**: the mean share of the plurality class, the best soft accuracy any one hard
  prediction per item can reach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selm_lib.data.corpora.base import parse_votes

DECIMALS = 6


def human_distribution(
    votes: Mapping[str, float] | str | None, classes: Sequence[str], class_map: Mapping[str, str]
) -> tuple[np.ndarray | None, float]:
    """``(distribution over classes, in-set vote mass)`` of one item's votes (a ``votes`` cell or
    ``{emotion: count}``); the distribution is None when no vote falls in the class set."""
    counts = parse_votes(votes) if not isinstance(votes, Mapping) else dict(votes)
    index = {c: i for i, c in enumerate(classes)}
    mass = np.zeros(len(classes))
    for emotion, count in counts.items():
        target = class_map.get(emotion)
        if target is not None and target in index:
            mass[index[target]] += float(count)
    total = float(mass.sum())
    if total <= 0:
        return None, 0.0
    return mass / total, total


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence, base 2, between the rows of ``p`` and ``q`` (each row a
    distribution); in [0, 1]."""
    p = np.atleast_2d(np.asarray(p, dtype=float))
    q = np.atleast_2d(np.asarray(q, dtype=float))
    if p.shape != q.shape:
        raise ValueError(f"js_divergence: shapes {p.shape} and {q.shape} differ")
    m = 0.5 * (p + q)
    return np.clip(0.5 * _kl2(p, m) + 0.5 * _kl2(q, m), 0.0, 1.0)


def _kl2(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Row-wise KL(a || m) in bits, 0 log 0 = 0 (m > 0 wherever a > 0, as m = (a + b) / 2)."""
    terms = np.zeros_like(a)
    positive = a > 0
    terms[positive] = a[positive] * np.log2(a[positive] / m[positive])
    return terms.sum(axis=1)


@dataclass
class AgreementItems:
    """Per-item scores of the items with in-set votes (``scored`` marks them among all items)."""

    scored: np.ndarray  # bool [n]: the item has at least one vote in the class set
    human: np.ndarray  # [k, C] human distributions of the scored items
    soft: np.ndarray  # [k] human share of the predicted class
    ceiling: np.ndarray  # [k] human share of the plurality class
    jsd: np.ndarray | None  # [k] JSD(predicted, human); None without predicted distributions
    mass: np.ndarray  # [k] in-set vote mass (number of annotators, fractional for IEMOCAP)
    no_votes: int  # items with no votes at all
    out_of_set: int  # items whose votes all name emotions outside the class set


def _check_probs(pred_probs: Any, n: int, classes: Sequence[str]) -> np.ndarray:
    probs = np.asarray(pred_probs, dtype=float)
    if probs.ndim != 2 or probs.shape != (n, len(classes)):
        raise ValueError(
            f"agreement: pred_probs has shape {probs.shape}; expected ({n}, {len(classes)}): one "
            f"row per item, one column per class in the order {list(classes)}"
        )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(
            "agreement: pred_probs must be finite and non-negative (class probabilities)"
        )
    sums = probs.sum(axis=1, keepdims=True)
    if (sums <= 0).any():
        raise ValueError("agreement: a row of pred_probs sums to 0; it is not a distribution")
    return probs / sums


def agreement_items(
    votes: Sequence[Any],
    pred_probs: Any | None,
    pred_labels: Sequence[str | int],
    classes: Sequence[str],
    class_map: Mapping[str, str],
) -> AgreementItems:
    """The per-item scores behind :func:`agreement_summary` (same arguments), for intervals."""
    votes, pred_labels = list(votes), list(pred_labels)  # positions, whatever a Series's index
    n = len(votes)
    if len(pred_labels) != n:
        raise ValueError(f"agreement: {n} vote cells but {len(pred_labels)} predicted labels")
    if len(set(classes)) != len(classes) or not len(classes):
        raise ValueError(f"agreement: classes {list(classes)} must be non-empty and distinct")
    probs = _check_probs(pred_probs, n, classes) if pred_probs is not None else None
    index = {c: i for i, c in enumerate(classes)}
    scored = np.zeros(n, dtype=bool)
    human, soft, mass, rows = [], [], [], []
    no_votes = out_of_set = 0
    for i, cell in enumerate(votes):
        counts = parse_votes(cell) if not isinstance(cell, Mapping) else dict(cell)
        if not counts:
            no_votes += 1
            continue
        distribution, total = human_distribution(counts, classes, class_map)
        if distribution is None:
            out_of_set += 1
            continue
        scored[i] = True
        rows.append(i)
        human.append(distribution)
        mass.append(total)
        label = pred_labels[i]
        if isinstance(label, int | np.integer) and not isinstance(label, bool):
            label = classes[int(label)] if 0 <= int(label) < len(classes) else None
        soft.append(distribution[index[label]] if label in index else 0.0)
    human_matrix = np.array(human, dtype=float).reshape(len(rows), len(classes))
    jsd = None
    if probs is not None:
        jsd = js_divergence(probs[rows], human_matrix) if rows else np.zeros(0)
    return AgreementItems(
        scored=scored,
        human=human_matrix,
        soft=np.array(soft, dtype=float),
        ceiling=human_matrix.max(axis=1) if rows else np.zeros(0),
        jsd=jsd,
        mass=np.array(mass, dtype=float),
        no_votes=no_votes,
        out_of_set=out_of_set,
    )


def _mean(values: np.ndarray | None) -> float | None:
    if values is None or not len(values):
        return None
    return round(float(np.mean(values)), DECIMALS)


def agreement_summary(
    votes: Sequence[Any],
    pred_probs: Any | None,
    pred_labels: Sequence[str | int],
    classes: Sequence[str],
    class_map: Mapping[str, str],
) -> dict[str, Any]:
    """Agreement of one method's predictions on one corpus with the annotators, JSON-ready.

    ``votes``: the manifest's ``votes`` cells (or ``{emotion: count}`` dicts) of the test items;
    ``pred_probs``: [n, C] predicted class distributions, columns in ``classes`` order (rows are
    renormalised; None where the method gives only labels: ``jsd`` is then None);
    ``pred_labels``: the predicted class of each item, by name or by column index (a label
    outside ``classes``, such as an unparsable generated answer, has human share 0);
    ``class_map``: ``{emotion: class}`` of the corpus's class set
    (:func:`selm_lib.data.labels.class_map`).

    Returns ``items``, ``scored`` (items with an in-set vote), ``excluded_no_votes``,
    ``excluded_out_of_set``, ``mean_votes`` (in-set votes per scored item), ``jsd``,
    ``soft_accuracy``, ``human_ceiling`` (means over the scored items, 6 decimals; None when
    nothing is scored) and ``classes``.
    """
    scores = agreement_items(votes, pred_probs, pred_labels, classes, class_map)
    return {
        "items": len(votes),
        "scored": int(scores.scored.sum()),
        "excluded_no_votes": scores.no_votes,
        "excluded_out_of_set": scores.out_of_set,
        "mean_votes": _mean(scores.mass),
        "jsd": _mean(scores.jsd),
        "soft_accuracy": _mean(scores.soft),
        "human_ceiling": _mean(scores.ceiling),
        "classes": list(classes),
    }
