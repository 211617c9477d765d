"""Calibration of class probabilities (numpy only): expected calibration error, negative
log-likelihood, Brier score, reliability tables and temperature scaling.

Conventions:

* probabilities are an ``(N, C)`` matrix whose rows sum to 1 over the *scored* class set, and
  labels are indices into that set; an item whose truth is outside the set cannot be scored
  (a ``ValueError`` says so: drop such items before, as the OOD evaluation does);
* ECE is the top-label ECE (Guo et al. 2017): the items are put in ``bins`` equal-width bins of
  their top probability (bin ``b`` holds confidences in ``(b / bins, (b + 1) / bins]``, the first
  also holds 0), and ``ECE = sum_b n_b / N * |accuracy_b - confidence_b|``;
* NLL is the mean of ``-log p(truth)``; Brier is the multi-class Brier score, the sum over
  classes of ``(p_c - [c == truth])**2``, averaged over items (0 is perfect, 2 the worst);
* temperature scaling divides logits by one ``T > 0`` fitted on held-out (validation) items by
  minimising their NLL over ``log T`` with a golden-section search on a fixed interval and a
  fixed number of steps (deterministic; the NLL of ``z / T`` is unimodal in ``log T``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_BINS = 15
LOG_T_RANGE = (float(np.log(0.02)), float(np.log(50.0)))  # the searched temperatures
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def label_indices(truth: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Truth strings -> indices into ``classes``; a label outside the class set is an error."""
    position = {c: i for i, c in enumerate(classes)}
    outside = sorted({str(t) for t in truth if t not in position})
    if outside:
        raise ValueError(
            f"truth label(s) {outside} are outside the scored class set {list(classes)}: "
            "calibration scores items of the class set only (drop the others first)"
        )
    return np.array([position[t] for t in truth], dtype=np.int64)


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"probabilities {p.shape} and labels {y.shape} do not match")
    if p.shape[0] == 0:
        raise ValueError("no items to score")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be class indices (see label_indices)")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {p.shape[1]}): an item whose truth is outside the scored "
            "class set cannot be calibrated"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("each row of probabilities must be finite, non-negative and sum to 1")
    return p, y.astype(np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (``-inf`` logits stay ``-inf``)."""
    z = np.asarray(logits, dtype=np.float64)
    top = np.max(z, axis=1, keepdims=True)
    shifted = z - top
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)``, float64."""
    if not temperature > 0:
        raise ValueError(f"the temperature must be > 0, got {temperature}")
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, list]:
    """Per equal-width confidence bin: its edges, item count, mean top probability and accuracy
    of the top label (``None`` for an empty bin)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p, y = _check(probs, labels)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    index = _bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    right = np.bincount(index, weights=correct, minlength=bins)
    return {
        "lower": [b / bins for b in range(bins)],
        "upper": [(b + 1) / bins for b in range(bins)],
        "count": [int(c) for c in count],
        "confidence": [float(s / c) if c else None for s, c in zip(conf_sum, count, strict=True)],
        "accuracy": [float(r / c) if c else None for r, c in zip(right, count, strict=True)],
    }


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Top-label expected calibration error over ``bins`` equal-width bins."""
    table = reliability(probs, labels, bins)
    n = sum(table["count"])
    return float(
        sum(
            c / n * abs(a - f)
            for c, a, f in zip(table["count"], table["accuracy"], table["confidence"], strict=True)
            if c
        )
    )


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the truth (a zero probability counts as 1e-300)."""
    p, y = _check(probs, labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-300, None))))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: sum over classes of the squared error, mean over items."""
    p, y = _check(probs, labels)
    target = np.zeros_like(p)
    target[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - target) ** 2, axis=1)))


def _blocks(
    logits: np.ndarray | Sequence[np.ndarray], labels: np.ndarray | Sequence[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One or several (logits, labels) blocks (several: corpora with their own class sets)."""
    if isinstance(logits, np.ndarray) and logits.ndim == 2:
        logits, labels = [logits], [labels]
    blocks = []
    for z, y in zip(logits, labels, strict=True):
        z = np.asarray(z, dtype=np.float64)
        _check(np.exp(log_softmax(z)), y)
        blocks.append((z, np.asarray(y, dtype=np.int64)))
    if not blocks:
        raise ValueError("no items to fit a temperature on")
    return blocks


def _nll_at(blocks: list[tuple[np.ndarray, np.ndarray]], log_t: float) -> float:
    t = float(np.exp(log_t))
    total, n = 0.0, 0
    for z, y in blocks:
        logp = log_softmax(z / t)
        total -= float(np.sum(logp[np.arange(len(y)), y]))
        n += len(y)
    return total / n


@dataclass(frozen=True)
class Temperature:
    """A fitted temperature and the NLL of the fitting items before (T = 1) and after."""

    temperature: float
    nll_before: float
    nll_after: float
    n_fit: int
    at_bound: bool  # the optimum sits at an end of the searched range

    def record(self) -> dict[str, Any]:
        return {
            "temperature": round(self.temperature, 6),
            "nll_before": round(self.nll_before, 6),
            "nll_after": round(self.nll_after, 6),
            "n_fit": int(self.n_fit),
            "at_bound": bool(self.at_bound),
        }


def fit_temperature(
    logits: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    *,
    steps: int = 80,
    log_range: tuple[float, float] = LOG_T_RANGE,
) -> Temperature:
    """The ``T`` that minimises the NLL of ``softmax(logits / T)`` on these items.

    ``logits`` (N, C) with ``labels`` (N,), or lists of such blocks (pooled: every item counts
    once, each block with its own class set). Golden-section search over ``log T`` in
    ``log_range`` for ``steps`` steps (80 steps narrow the bracket of about 8 in log T to
    about 1e-16): deterministic, no tolerance to tune.
    """
    blocks = _blocks(logits, labels)
    lo, hi = log_range
    a, b = lo + (1 - _GOLDEN) * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = _nll_at(blocks, a), _nll_at(blocks, b)
    for _ in range(int(steps)):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - _GOLDEN) * (hi - lo)
            fa = _nll_at(blocks, a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = _nll_at(blocks, b)
    best = (lo + hi) / 2
    span = log_range[1] - log_range[0]
    return Temperature(
        temperature=float(np.exp(best)),
        nll_before=_nll_at(blocks, 0.0),
        nll_after=_nll_at(blocks, best),
        n_fit=sum(len(y) for _, y in blocks),
        at_bound=bool(min(best - log_range[0], log_range[1] - best) < 1e-3 * span),
    )


def calibration_record(
    logits: np.ndarray, labels: np.ndarray, *, temperature: float = 1.0, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """ECE, NLL, Brier and the reliability table of ``softmax(logits / temperature)``, floats
    rounded to 6 places (the stage's metrics files are byte-stable)."""
    p = probabilities(logits, temperature)
    table = reliability(p, labels, bins)
    return {
        "ece": round(ece(p, labels, bins), 6),
        "nll": round(nll(p, labels), 6),
        "brier": round(brier(p, labels), 6),
        "n": int(len(labels)),
        "reliability": {
            k: [None if v is None else (round(v, 6) if isinstance(v, float) else v) for v in vals]
            for k, vals in table.items()
        },
    }
