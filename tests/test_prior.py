"""Prior matching (selm_lib.evaluation.prior): EM recovers a known test prior, content-free
calibration removes a known bias of a scorer, the SELM variants of match_priors, and SER-Evals'
probe uses the same implementation."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.evaluation import prior as P

MEANS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])


def gaussian_log_likelihood(x: np.ndarray) -> np.ndarray:
    """log p(x | c) (up to a constant) of three unit-variance Gaussian classes."""
    return -0.5 * ((x[:, None, :] - MEANS[None]) ** 2).sum(axis=-1)


def sample(prior: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(len(prior), size=n, p=prior)
    return MEANS[y] + rng.normal(size=(n, 2)), y


@pytest.mark.parametrize("true_prior", [[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
def test_em_recovers_a_known_test_prior(true_prior):
    true_prior = np.array(true_prior)
    train_prior = np.array([0.2, 0.5, 0.3])
    x, _ = sample(true_prior, 30000, seed=3)
    # posteriors of an exact model trained under train_prior
    posterior = P.softmax(gaussian_log_likelihood(x) + np.log(train_prior))
    fit = P.fit_test_prior(posterior, train_prior)
    assert fit.converged and fit.n_fit == 30000
    np.testing.assert_allclose(fit.prior, true_prior, atol=0.02)
    # the MAP estimate sits between the training prior and the EM estimate, and never below
    # pi_train * s / (1 + s)
    mapped = P.fit_test_prior(posterior, train_prior, strength=1.0).prior
    low, high = np.minimum(fit.prior, train_prior), np.maximum(fit.prior, train_prior)
    assert (mapped >= low - 1e-9).all() and (mapped <= high + 1e-9).all()
    assert (mapped >= train_prior / 2 - 1e-12).all()
    assert np.abs(mapped - train_prior).sum() > 0.05  # it still moves toward the test prior


def test_content_free_calibration_removes_a_known_bias():
    """A fake scorer whose class scores carry a constant bias: its argmax is mostly the biased
    class; subtracting its scores of a content-free (all-zero) input removes the bias and
    recovers the argmax of the unbiased scores."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(3, 5))
    bias = np.array([4.0, 0.0, -1.0])

    def scorer(clips: np.ndarray) -> np.ndarray:  # (N, T, D) frames -> (N, C) scores
        return clips.mean(axis=1) @ weights.T + bias

    clips = rng.normal(size=(400, 7, 5))
    clean = clips.mean(axis=1) @ weights.T
    biased = scorer(clips)
    assert (biased.argmax(1) == 0).mean() > 0.9  # the bias dominates
    content_free = scorer(np.zeros((1, 7, 5)))[0]
    adjusted = P.content_free_adjust(biased, content_free)
    assert (adjusted.argmax(1) == clean.argmax(1)).all()
    np.testing.assert_allclose(  # exactly the clean scores up to a constant per row
        adjusted - adjusted[:, :1], clean - clean[:, :1], atol=1e-9
    )
    with pytest.raises(ValueError, match="do not match"):
        P.content_free_adjust(biased, content_free[:2])


def test_match_priors_variants():
    train_prior = np.array([0.7, 0.2, 0.1])
    x, y = sample(np.array([1 / 3, 1 / 3, 1 / 3]), 6000, seed=5)
    clean = gaussian_log_likelihood(x)
    scores = clean + np.log(train_prior)  # a model that learned the training prior
    matched = P.match_priors(scores, train_prior, np.log(train_prior), labels=y, strength=0.0)
    assert set(matched.scores) == set(P.SCORE_VARIANTS)
    # uniform: the training prior removed exactly (up to eps)
    np.testing.assert_allclose(matched.scores["uniform"], clean, atol=1e-9)
    # content-free scores equal to the log prior: the same correction
    np.testing.assert_allclose(matched.scores["content_free"], clean, atol=1e-9)
    # the oracle prior is the labels' prior; EM finds about the same from unlabelled scores
    np.testing.assert_allclose(matched.priors["oracle"], np.bincount(y) / len(y))
    np.testing.assert_allclose(matched.priors["em"], matched.priors["oracle"], atol=0.03)

    def ua(s):
        pred = s.argmax(1)
        return np.mean([(pred[y == c] == c).mean() for c in range(3)])

    assert ua(matched.scores["uniform"]) > ua(scores) + 0.05  # the test set is balanced
    assert ua(matched.scores["em"]) > ua(scores) + 0.05
    record = matched.record()
    assert record["em"]["converged"] and record["priors"]["train"] == [0.7, 0.2, 0.1]
    assert "oracle" not in P.match_priors(scores, train_prior, np.zeros(3)).scores  # no labels
    with pytest.raises(ValueError, match="positive for every class"):
        P.match_priors(scores, np.array([0.8, 0.2, 0.0]), np.zeros(3))


def test_probe_uses_the_shared_implementation():
    from selm_lib.serevals import probe

    for name in (
        "class_prior",
        "adjust_logits",
        "softmax",
        "EMResult",
        "fit_test_prior",
        "estimate_test_prior",
        "EPS",
    ):
        assert getattr(probe, name) is getattr(P, name), name
