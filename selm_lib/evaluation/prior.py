"""Label-shift corrections on score matrices (numpy only), shared by SER-Evals' probes and SELM.

- :func:`class_prior`, :func:`adjust_logits` (``z - log(pi_train + eps) + log(pi_test + eps)``,
  with classes absent from training masked), :func:`softmax`;
- :func:`fit_test_prior`: the EM estimate of the test prior from unlabelled posteriors
  (Saerens, Latinne & Decaestecker 2002), plain or MAP with a Dirichlet prior toward the
  training prior, reporting its convergence (:class:`EMResult`);
- :func:`content_free_adjust`: content-free calibration (Zhao et al. 2021; for audio LMs Ma et
  al., arXiv 2311.09363): the log-posterior the model gives an input without content is
  subtracted from every item's scores, i.e. logit adjustment with the content-free posterior in
  place of the training prior;
- :func:`match_priors`: the SELM class-scoring variants of the OOD evaluation built from these
  (training prior removed, EM test prior, content-free, oracle test prior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-12

# The prior-matched variants of SELM class scoring, in the order the reports list them. The
# oracle reads the test labels: a reference line, never a method a headline can use.
SCORE_VARIANTS = ("uniform", "em", "content_free", "oracle")
ORACLE_VARIANTS = ("oracle",)


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies (counts / total); classes never seen get 0."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("no labels given")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if counts.size > n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes})")
    return counts / counts.sum()


def adjust_logits(
    logits: np.ndarray,
    train_prior: np.ndarray,
    test_prior: np.ndarray | None = None,
    *,
    mask_absent: bool = True,
    other_index: int | None = None,
    eps: float = EPS,
) -> np.ndarray:
    """Logit adjustment for label shift.

    ``test_prior=None``: ``z - log(pi_train + eps)`` (train prior removed only, i.e. a uniform
    target prior). Otherwise ``z - log(pi_train + eps) + log(pi_test + eps)``.
    ``mask_absent=True`` sets classes with zero train prior to ``-inf`` (the paper's formula gives
    them ``-log(eps) ~ +27.6`` and with it the MESD collapse; ``mask_absent=False`` reproduces it).
    ``other_index`` is masked to ``-inf`` too.
    """
    z = np.asarray(logits, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != train_prior.shape[0]:
        raise ValueError(f"logits {z.shape} do not match a prior of {train_prior.shape[0]} classes")
    out = z - np.log(train_prior + eps)
    if test_prior is not None:
        test_prior = np.asarray(test_prior, dtype=np.float64)
        if test_prior.shape != train_prior.shape:
            raise ValueError("train and test priors differ in length")
        out = out + np.log(test_prior + eps)
    if mask_absent:
        out[:, train_prior <= 0] = -np.inf
    if other_index is not None:
        out[:, other_index] = -np.inf
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, float64 (a 1-D vector or an (N, C) matrix)."""
    z = np.asarray(scores, dtype=np.float64)
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class EMResult:
    """An EM fit of the test prior: the estimate, whether the updates fell below ``tol`` within
    ``max_iter`` iterations, how many iterations ran and how many items it was fitted on."""

    prior: np.ndarray
    converged: bool
    iterations: int
    n_fit: int

    def record(self) -> dict[str, object]:
        """The JSON-ready part (for a backbone item's meta ``em`` entries)."""
        return {
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "n_fit": int(self.n_fit),
        }


def fit_test_prior(
    probs: np.ndarray,
    train_prior: np.ndarray,
    *,
    strength: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> EMResult:
    """EM estimate of the test prior from posteriors of a model trained under ``train_prior``
    (Saerens, Latinne & Decaestecker 2002). Classes with train prior 0 stay at 0.

    ``strength > 0`` makes it MAP-EM under a Dirichlet prior centred on the training prior,
    ``alpha_k - 1 = strength * N * pi_train_k`` (``N`` the number of items fitted): each M-step
    becomes ``pi_k = (mean_i w_ik + strength * pi_train_k) / (1 + strength)``, so ``strength``
    is the weight of the training prior in units of the test set's size (1: as much as the
    test set; the estimate never falls below ``pi_train_k * strength / (1 + strength)``, which
    bounds a collapse onto one class). ``strength = 0`` is plain (maximum-likelihood) EM.

    Returns the estimate, whether it converged (largest change below ``tol``) within
    ``max_iter`` iterations, and the iteration count.
    """
    probs = np.asarray(probs, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != train_prior.shape[0] or probs.shape[0] == 0:
        raise ValueError(f"probs {probs.shape} do not match {train_prior.shape[0]} classes")
    if strength < 0:
        raise ValueError(f"the Dirichlet strength must be >= 0, got {strength}")
    present = train_prior > 0
    base = np.where(present, probs, 0.0)
    base = base / np.clip(base.sum(axis=1, keepdims=True), 1e-300, None)
    prior = np.where(present, train_prior, 0.0)
    prior = prior / prior.sum()
    ratio_denominator = np.where(present, prior, 1.0)
    estimate = prior.copy()
    converged, iterations = False, 0
    for iterations in range(1, int(max_iter) + 1):  # noqa: B007 (the count is returned)
        weighted = base * (estimate / ratio_denominator)
        weighted /= np.clip(weighted.sum(axis=1, keepdims=True), 1e-300, None)
        new = (weighted.mean(axis=0) + strength * prior) / (1.0 + strength)
        new[~present] = 0.0
        converged = bool(np.max(np.abs(new - estimate)) < tol)
        estimate = new
        if converged:
            break
    return EMResult(estimate / estimate.sum(), converged, iterations, probs.shape[0])


def estimate_test_prior(
    probs: np.ndarray,
    train_prior: np.ndarray,
    *,
    strength: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> np.ndarray:
    """The prior of :func:`fit_test_prior` alone (plain EM at ``strength = 0``)."""
    return fit_test_prior(probs, train_prior, strength=strength, max_iter=max_iter, tol=tol).prior


def content_free_adjust(scores: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Content-free calibration of an (N, C) score matrix: ``s - log softmax(s_cf)``.

    ``content_free`` (C,) are the scores the same model gives an input without content. Its
    softmax is the class prior the model falls back on when the input says nothing; removing it
    is logit adjustment with that prior in place of the training prior (the argmax equals that
    of ``s - s_cf``; the log-softmax keeps the scores log-probability-like)."""
    s = np.asarray(scores, dtype=np.float64)
    cf = np.asarray(content_free, dtype=np.float64)
    if s.ndim != 2 or cf.shape != (s.shape[1],):
        raise ValueError(f"content-free scores {cf.shape} do not match scores {s.shape}")
    if not np.all(np.isfinite(cf)):
        raise ValueError("content-free scores must be finite")
    return s - log_softmax(cf)[None, :]


@dataclass(frozen=True)
class PriorMatched:
    """SELM class scores under each prior matching (variant -> (N, C) adjusted scores), the
    priors used, and the EM fit."""

    scores: dict[str, np.ndarray]
    priors: dict[str, np.ndarray]
    em: EMResult

    def record(self) -> dict[str, object]:
        """The JSON-ready part: the priors (rounded) and the EM convergence."""
        return {
            "priors": {k: [round(float(v), 6) for v in p] for k, p in sorted(self.priors.items())},
            "em": self.em.record(),
        }


def match_priors(
    scores: np.ndarray,
    train_prior: np.ndarray,
    content_free: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    strength: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> PriorMatched:
    """The prior-matched variants of class scores ``scores`` (N, C), log-likelihoods of a model
    whose training answers had the prior ``train_prior`` (C,) over these classes:

    - ``uniform``: ``s - log pi_train`` (the training prior removed);
    - ``em``: ``s - log pi_train + log pi_em``, ``pi_em`` fitted by (MAP-)EM on ``softmax(s)``
      of these items, no labels (``strength``: see :func:`fit_test_prior`);
    - ``content_free``: :func:`content_free_adjust` with ``content_free`` (C,);
    - ``oracle`` (only when ``labels``, class indices, are given): ``s - log pi_train +
      log pi_test`` with the test labels' prior; it reads the labels, so it is an oracle.

    Every class needs a positive training prior (a class never trained has no prior to remove).
    """
    s = np.asarray(scores, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if s.ndim != 2 or train_prior.shape != (s.shape[1],):
        raise ValueError(f"a training prior {train_prior.shape} does not match scores {s.shape}")
    if np.any(train_prior <= 0) or not np.isclose(train_prior.sum(), 1.0):
        raise ValueError("the training prior must be positive for every class and sum to 1")
    if s.shape[0] == 0:
        raise ValueError("no items to match priors on")
    em = fit_test_prior(softmax(s), train_prior, strength=strength, max_iter=max_iter, tol=tol)
    cf_prior = softmax(np.asarray(content_free, dtype=np.float64)[None, :])[0]
    out = {
        "uniform": adjust_logits(s, train_prior, mask_absent=False),
        "em": adjust_logits(s, train_prior, em.prior, mask_absent=False),
        "content_free": content_free_adjust(s, content_free),
    }
    priors = {"train": train_prior, "em": em.prior, "content_free": cf_prior}
    if labels is not None:
        oracle = class_prior(labels, s.shape[1])
        out["oracle"] = adjust_logits(s, train_prior, oracle, mask_absent=False)
        priors["oracle"] = oracle
    return PriorMatched(out, priors, em)
