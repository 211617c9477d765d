"""SER-Evals probe, logit adjustment, EM prior estimate and OOD scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selm_lib.features.frames import ArrayFrames
from selm_lib.serevals import probe as se

C = len(se.CLASSES)
OTHER = se.CLASSES.index("other")
SURPRISE = se.CLASSES.index("surprise")


def probe_config(**overrides) -> se.ProbeConfig:
    """The paper's head and training (SER-Evals code), with test-sized overrides."""
    values = dict(
        epochs=100,
        batch_size=32,
        learning_rate=1e-4,
        weight_decay=0.1,
        label_smoothing=0.1,
        grad_clip=0.5,
        warmup=0.1,
        seed=34,
        hidden=37,
        dropout=0.1,
    )
    return se.ProbeConfig(**(values | overrides))


def _logits(n=50, seed=0):
    return np.random.default_rng(seed).normal(size=(n, C))


def test_classes_order():
    assert se.CLASSES == (
        "happiness",
        "sadness",
        "disgust",
        "fear",
        "surprise",
        "anger",
        "other",
        "neutral",
    )
    assert se.VARIANTS == ("none", "train_prior", "oracle", "estimated", "estimated_map")


def test_class_prior():
    prior = se.class_prior(np.array([0, 0, 1, 3]), 5)
    np.testing.assert_allclose(prior, [0.5, 0.25, 0, 0.25, 0])


def test_adjust_logits_matches_numpy():
    z = _logits()
    train = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    test = np.array([0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3])
    eps = 1e-12
    # train prior removed only
    np.testing.assert_allclose(se.adjust_logits(z, train), z - np.log(train + eps))
    # full formula
    full = z - np.log(train + eps) + np.log(test + eps)
    np.testing.assert_allclose(se.adjust_logits(z, train, test), full)
    # other masked
    got = se.adjust_logits(z, train, test, other_index=OTHER)
    assert np.all(got[:, OTHER] == -np.inf)
    keep = [i for i in range(C) if i != OTHER]
    np.testing.assert_allclose(got[:, keep], full[:, keep])
    # variants through adjusted_predictions
    labels = np.random.default_rng(1).choice(C, size=50, p=test)
    oracle_prior = np.bincount(labels, minlength=C) / 50
    expected = {
        "none": z,
        "train_prior": z - np.log(train + eps),
        "oracle": z - np.log(train + eps) + np.log(oracle_prior + eps),
    }
    for variant, ref in expected.items():
        pred = se.adjusted_predictions(z, train, variant, test_labels=labels)
        np.testing.assert_array_equal(pred, ref.argmax(axis=1))
    with pytest.raises(ValueError, match="test_labels"):
        se.adjusted_predictions(z, train, "oracle")
    with pytest.raises(ValueError, match="unknown variant"):
        se.adjusted_predictions(z, train, "bogus")


def test_estimated_variant_uses_em_prior():
    z = _logits(200, seed=3)
    train = np.full(C, 1 / C)
    prior = se.estimate_test_prior(se.softmax(z), train)
    ref = (z - np.log(train + 1e-12) + np.log(prior + 1e-12)).argmax(axis=1)
    np.testing.assert_array_equal(se.adjusted_predictions(z, train, "estimated"), ref)
    pred = se.adjusted_predictions(z, train, "estimated", other_index=OTHER)
    assert not np.any(pred == OTHER)


def test_absent_class_mask_and_mesd_collapse():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(500, C))
    train = np.full(C, 1.0)
    train[SURPRISE] = 0.0  # MESD: no surprise in training
    train /= train.sum()
    uniform = np.full(C, 1 / C)
    masked = se.adjust_logits(z, train, uniform, other_index=OTHER).argmax(axis=1)
    assert not np.any(masked == SURPRISE)
    assert not np.any(masked == OTHER)
    collapsed = se.adjust_logits(z, train, uniform, mask_absent=False, other_index=OTHER)
    assert np.mean(collapsed.argmax(axis=1) == SURPRISE) > 0.99
    for variant in se.VARIANTS:
        pred = se.adjusted_predictions(
            z, train, variant, test_labels=rng.integers(0, C, 500), other_index=OTHER
        )
        assert not np.any(pred == SURPRISE)
        assert not np.any(pred == OTHER)


def test_em_recovers_known_prior():
    rng = np.random.default_rng(7)
    k, dim, n = 4, 3, 20000
    means = rng.normal(scale=1.5, size=(k, dim))
    train_prior = np.array([0.25, 0.25, 0.25, 0.25])
    true_prior = np.array([0.55, 0.25, 0.15, 0.05])
    y = rng.choice(k, size=n, p=true_prior)
    x = means[y] + rng.normal(size=(n, dim))
    # calibrated posteriors of a model trained under train_prior (Gaussian likelihoods, unit cov)
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1)
    probs = se.softmax(log_lik + np.log(train_prior))
    estimate = se.estimate_test_prior(probs, train_prior)
    assert np.abs(estimate - true_prior).max() < 0.03
    assert estimate.sum() == pytest.approx(1.0)


def test_em_keeps_absent_class_at_zero():
    probs = se.softmax(_logits(100, seed=2))
    train = np.full(C, 1 / (C - 1))
    train[SURPRISE] = 0
    estimate = se.estimate_test_prior(probs, train)
    assert estimate[SURPRISE] == 0
    assert estimate.sum() == pytest.approx(1.0)


def test_ood_scores_drop_other():
    names = list(se.CLASSES)
    y_true = np.array([0, 1, OTHER, OTHER, 7])
    y_pred = np.array([0, 2, 0, 1, 7])
    scores = se.ood_scores(y_true, y_pred, names)
    assert scores["n"] == 3
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["unweighted_accuracy"] == pytest.approx(2 / 3)
    assert {"macro_f1", "weighted_f1"} <= set(scores)
    kept = se.ood_scores(y_true, y_pred, names, drop_other=False)
    assert kept["n"] == 5
    assert kept["accuracy"] == pytest.approx(2 / 5)


def test_head_ignores_padded_frames():
    torch.manual_seed(0)
    head = se.FrameMLPHead(6, C).eval()
    a = torch.randn(1, 3, 6)
    padded = torch.cat([a, 100 * torch.randn(1, 4, 6)], dim=1)
    mask = torch.tensor([[True] * 3 + [False] * 4])
    with torch.no_grad():
        ref = head(a, torch.ones(1, 3, dtype=torch.bool))
        got = head(padded, mask)
        manual = head.net(a).mean(dim=1)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got, manual)
    assert isinstance(head.net[1], torch.nn.LayerNorm)
    assert head.net[0].out_features == 512


def _toy(n=120, dim=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, dim))
    labels = rng.integers(0, k, n)
    frames = [
        (centers[y] + rng.normal(size=(int(rng.integers(2, 9)), dim))).astype(np.float32)
        for y in labels
    ]
    return frames, labels


def test_probe_learns_toy_problem_and_is_deterministic():
    frames, labels = _toy()
    config = probe_config(epochs=6, batch_size=16, learning_rate=3e-3, hidden=64, seed=5)
    head = se.train_probe(frames, labels, 3, config)
    logits = se.predict_logits(head, frames)
    assert logits.shape == (len(frames), 3)
    assert np.mean(logits.argmax(axis=1) == labels) > 0.9
    again = se.predict_logits(se.train_probe(frames, labels, 3, config), frames)
    np.testing.assert_array_equal(logits, again)
    other_seed = probe_config(epochs=6, batch_size=16, learning_rate=3e-3, hidden=64, seed=6)
    different = se.predict_logits(se.train_probe(frames, labels, 3, other_seed), frames)
    assert not np.array_equal(logits, different)


def test_predict_logits_keeps_input_order():
    frames, labels = _toy(n=20)
    head = se.train_probe(frames, labels, 3, probe_config(epochs=1, batch_size=8, seed=0))
    batch = se.predict_logits(head, frames, batch_size=7)
    one_by_one = np.concatenate([se.predict_logits(head, [f]) for f in frames])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-5)


def test_train_probe_rejects_bad_labels():
    frames, labels = _toy(n=10)
    with pytest.raises(ValueError):
        se.train_probe(frames, labels + 5, 3, probe_config(epochs=1))


def trace(config, frames, labels, n_classes=3):
    steps = []
    head = se.train_probe(frames, labels, n_classes, config, on_step=steps.append)
    return head, steps


def test_probe_uses_the_one_cycle_schedule():
    frames, labels = _toy(n=64)
    config = probe_config(epochs=5, batch_size=8, learning_rate=2e-3, warmup=0.2, seed=1)
    _, steps = trace(config, frames, labels)
    lrs = [s["lr"] for s in steps]
    total = len(lrs)
    assert total == 5 * 8  # 64 clips in batches of 8, 5 epochs
    peak = int(np.argmax(lrs))
    assert lrs[peak] == pytest.approx(2e-3)
    assert peak == round(0.2 * total) - 1  # warm-up over 20 % of the steps
    assert lrs[0] == pytest.approx(2e-3 / 25)  # OneCycle starts at max_lr / 25
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))  # rises
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))  # then decays
    assert lrs[-1] < 2e-3 / 1000


def test_probe_loss_is_label_smoothed_cross_entropy():
    frames, labels = _toy(n=16)
    config = probe_config(epochs=1, batch_size=16, dropout=0.0, label_smoothing=0.1, seed=3)
    _, steps = trace(config, frames, labels)
    torch.manual_seed(3)  # the head's initial weights, as train_probe draws them
    head = se.FrameMLPHead(8, 3, hidden=config.hidden, dropout=0.0)
    (index,) = se.length_batches([len(f) for f in frames], 16)
    x, mask = ArrayFrames(frames).batch(index)
    with torch.no_grad():
        logits = head(torch.from_numpy(x).float(), torch.from_numpy(mask))
    target = torch.tensor(labels[index])
    smoothed = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1)
    plain = torch.nn.functional.cross_entropy(logits, target)
    assert steps[0]["loss"] == pytest.approx(float(smoothed), rel=1e-5)
    assert abs(float(smoothed) - float(plain)) > 1e-3  # the smoothing is visible


def test_probe_clips_gradients_and_decays_weights():
    frames, labels = _toy(n=32)
    _, steps = trace(probe_config(epochs=2, batch_size=8, grad_clip=1e-3, seed=2), frames, labels)
    assert all(s["clipped_norm"] <= 1e-3 * (1 + 1e-4) for s in steps)
    assert max(s["grad_norm"] for s in steps) > 1e-2  # clipping did something
    base = dict(epochs=4, batch_size=8, learning_rate=5e-3, grad_clip=0.0, seed=2)
    decayed = se.train_probe(frames, labels, 3, probe_config(**base, weight_decay=0.5))
    plain = se.train_probe(frames, labels, 3, probe_config(**base, weight_decay=0.0))

    def norm(head):
        return float(sum(p.detach().pow(2).sum() for p in head.parameters() if p.dim() > 1))

    assert norm(decayed) < norm(plain)


def test_probe_trains_when_the_warmup_is_exactly_one_step():
    """One epoch of 10 batches at warmup 0.1 is one warm-up step, where torch's OneCycleLR
    divides by zero; the probe nudges it to two steps."""
    frames, labels = _toy(n=80)
    config = probe_config(epochs=1, batch_size=8, warmup=0.1, seed=0)
    head, steps = trace(config, frames, labels)
    assert len(steps) == 10 and steps[1]["lr"] == pytest.approx(config.learning_rate)
    assert se.warmup_share(10, 0.1) == pytest.approx(0.2) and se.warmup_share(40, 0.1) == 0.1


def test_warmup_share_never_lets_one_cycle_divide_by_zero():
    head = torch.nn.Linear(2, 2)
    for total in range(1, 40):
        for warmup in (0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5, 0.9, 1.0, 1 / total, min(1.0, 2 / total)):
            optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
            pct = se.warmup_share(total, warmup)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=1e-3, total_steps=total, pct_start=pct
            )
            for _ in range(total):
                optimizer.step()
                scheduler.step()
