"""SER-Evals probe and out-of-domain scoring (Osman, Kaplan & Nadeem, arXiv 2408.07851).

Re-implemented from the protocol description (REFERENCE.md section 2), not from the authors' code:

- a per-frame MLP head whose logits are averaged over the valid frames of an utterance;
- the probe trainer (AdamW, OneCycle with warm-up, label smoothing, gradient clipping; the last
  epoch is kept);
- logit adjustment for label shift ``z' = z - log(pi_train + eps) + log(pi_test + eps)``, with
  the fix for classes absent from training (masked instead of given a ``-log(eps)`` bonus, which
  makes every MESD-trained model predict ``surprise``), and an EM estimate of the test prior
  (Saerens, Latinne & Decaestecker 2002) so that no test labels are needed, plain or MAP with a
  Dirichlet prior toward the training prior (``estimated_map``), fitted on the scored items
  only and reporting its convergence;
- OOD scores with the ``other`` class dropped.

The label-shift functions themselves (:func:`class_prior`, :func:`adjust_logits`,
:func:`fit_test_prior`, ...) live in :mod:`selm_lib.evaluation.prior`, shared with SELM's
prior-matched class scoring, and are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from selm_lib.config.device import autocast
from selm_lib.data.labels import SEREVALS_CLASSES
from selm_lib.evaluation import metrics
from selm_lib.evaluation.prior import (  # noqa: F401 (one implementation, re-exported here)
    EPS,
    EMResult,
    adjust_logits,
    class_prior,
    estimate_test_prior,
    fit_test_prior,
    softmax,
)
from selm_lib.features.frames import Frames, as_frames, read_ahead
from selm_lib.serevals.results import VARIANTS

CLASSES: tuple[str, ...] = SEREVALS_CLASSES  # one definition, in selm_lib.data.labels
OTHER_INDEX = CLASSES.index("other")


# ----------------------------------------------------------------------------- head


class FrameMLPHead(nn.Module):
    """``Linear(D, hidden) -> LayerNorm -> GELU -> Dropout -> Linear(hidden, C)`` on every frame;
    the utterance's logits are the mean over its valid frames."""

    def __init__(self, input_dim: int, n_classes: int, hidden: int = 512, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """frames (B, T, D), mask (B, T) with True on valid frames -> logits (B, C)."""
        logits = self.net(frames)  # (B, T, C)
        if mask is None:
            return logits.mean(dim=1)
        weight = mask.to(logits.dtype).unsqueeze(-1)  # (B, T, 1)
        count = weight.sum(dim=1).clamp_min(1.0)
        return (logits * weight).sum(dim=1) / count


def _device_batch(
    frames: Frames, index: Sequence[int], device: torch.device, normalizer: Normalizer | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (B, T, D) float32 frames on ``device`` (standardised there with
    ``normalizer``; padding stays zero) and the (B, T) valid-frame mask."""
    array, mask = frames.batch(index)
    x = torch.from_numpy(array).to(device, non_blocking=True).float()
    valid = torch.from_numpy(mask).to(device, non_blocking=True)
    if normalizer is not None:  # in place: one float32 copy of the batch, not four
        mean, std = normalizer.tensors(device)
        x.sub_(mean).div_(std).masked_fill_(~valid[..., None], 0.0)
    return x, valid


def warmup_share(total_steps: int, warmup: float) -> float:
    """``serevals.probe.warmup`` as OneCycle's ``pct_start``, nudged to two warm-up steps when
    it would make exactly one (torch's OneCycleLR divides by zero there, e.g. 10 steps at 0.1),
    or to none when there are fewer than three steps; a warm-up over every step leaves the last
    one to anneal (OneCycle's second phase must not be empty)."""
    if total_steps > 1:
        warmup = min(warmup, (total_steps - 1) / total_steps)
    if abs(total_steps * warmup - 1.0) < 1e-9:
        return 2.0 / total_steps if total_steps >= 3 else 0.0
    return warmup


@dataclass(frozen=True)
class Normalizer:
    """Per-dimension standardisation of one corpus's frames (``serevals.normalize: corpus``),
    from one streaming pass over its clips (:meth:`Frames.moments`)."""

    mean: np.ndarray  # (D,) float64
    std: np.ndarray  # (D,) float64, constant dimensions set to 1

    @classmethod
    def of(cls, frames: Frames) -> Normalizer:
        mean, std = frames.moments()
        return cls(mean, np.where(std > 1e-6, std, 1.0))  # a constant dimension stays zero

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=device)
        return mean, torch.as_tensor(self.std, dtype=torch.float32, device=device)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices sorted by frame count (stable) and cut into consecutive chunks of ``batch_size``."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class ProbeConfig:
    """Built from ``serevals.probe`` (:func:`selm_lib.config.section_config`)."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    label_smoothing: float
    grad_clip: float
    warmup: float
    seed: int
    hidden: int
    dropout: float


def train_probe(
    frames: Frames | Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    config: ProbeConfig,
    on_step: Callable[[dict[str, float]], None] | None = None,
    *,
    device: torch.device | None = None,
    normalizer: Normalizer | None = None,
    bf16: bool | None = None,
) -> FrameMLPHead:
    """Train the frame MLP head; returns the model after the last epoch, in eval mode, on
    ``device`` (default CPU).

    Batches group utterances of similar length (sorted by frame count, chunked); the batch order
    is shuffled every epoch with a generator seeded from ``config.seed``, so two runs with the same
    seed give the same weights. Each step's frames are read from the stores (a background thread
    reads the next batches), standardised on the device with ``normalizer`` and run under bf16
    autocast where :func:`selm_lib.config.device.autocast` says (float32 weights and loss). No
    step waits for the host unless ``on_step`` is given (for tests and diagnostics: it receives
    each step's learning rate, loss, and gradient norm before and after clipping).
    """
    frames = as_frames(frames)
    if len(frames) == 0:
        raise ValueError("no utterances given")
    dim = frames.dim
    device = device or torch.device("cpu")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(frames),):
        raise ValueError(f"labels must have shape ({len(frames)},), got {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes})")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head = FrameMLPHead(dim, n_classes, hidden=config.hidden, dropout=config.dropout).to(device)
    batches = length_batches(frames.lengths, config.batch_size)
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = max(config.epochs * len(batches), 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.learning_rate,
        total_steps=total_steps,
        pct_start=warmup_share(total_steps, config.warmup),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    target = torch.tensor(labels).to(device)
    order = [batches[b] for _ in range(config.epochs) for b in rng.permutation(len(batches))]
    head.train()
    read = read_ahead(lambda index: _device_batch(frames, index, device, normalizer), order)
    for index, (x, mask) in read:
        with autocast(device, bf16):
            logits = head(x, mask)
        loss = loss_fn(logits.float(), target[torch.from_numpy(index).to(device)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = None
        if config.grad_clip and config.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(head.parameters(), config.grad_clip)
        if on_step is not None:
            clipped = torch.norm(torch.stack([p.grad.norm() for p in head.parameters()]))
            on_step(
                {
                    "lr": optimizer.param_groups[0]["lr"],
                    "loss": float(loss.detach()),
                    "grad_norm": float(norm if norm is not None else clipped),
                    "clipped_norm": float(clipped),
                }
            )
        optimizer.step()
        scheduler.step()
    head.eval()
    return head


@torch.no_grad()
def predict_logits(
    head: FrameMLPHead,
    frames: Frames | Sequence[np.ndarray],
    batch_size: int = 64,
    *,
    normalizer: Normalizer | None = None,
    bf16: bool | None = None,
) -> np.ndarray:
    """(N, C) utterance logits, float32, in input order (inference batches are length-grouped),
    computed on the head's device."""
    frames = as_frames(frames)
    if len(frames) == 0:
        n_classes = head.net[-1].out_features
        return np.zeros((0, n_classes), dtype=np.float32)
    device = next(head.parameters()).device
    was_training = head.training
    head.eval()
    out: np.ndarray | None = None
    batches = length_batches(frames.lengths, batch_size)
    for index, (x, mask) in read_ahead(
        lambda i: _device_batch(frames, i, device, normalizer), batches
    ):
        with autocast(device, bf16):
            logits = head(x, mask).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(frames), logits.shape[1]), dtype=np.float32)
        out[index] = logits
    head.train(was_training)
    return out


# ----------------------------------------------------------------------------- priors


def adjusted_predictions(
    logits: np.ndarray,
    train_prior: np.ndarray,
    variant: str,
    *,
    test_labels: np.ndarray | None = None,
    other_index: int | None = None,
    mask_absent: bool = True,
    scored: np.ndarray | None = None,
    strength: float = 1.0,
    max_iter: int = 100,
    return_em: bool = False,
) -> np.ndarray | tuple[np.ndarray, EMResult | None]:
    """Predicted class indices (N,) under one adjustment variant: the argmax of
    :func:`adjusted_logits` (same arguments); with ``return_em`` the EM fit too."""
    out, em = adjusted_logits(
        logits,
        train_prior,
        variant,
        test_labels=test_labels,
        other_index=other_index,
        mask_absent=mask_absent,
        scored=scored,
        strength=strength,
        max_iter=max_iter,
    )
    chosen = np.argmax(out, axis=1)
    return (chosen, em) if return_em else chosen


def adjusted_logits(
    logits: np.ndarray,
    train_prior: np.ndarray,
    variant: str,
    *,
    test_labels: np.ndarray | None = None,
    other_index: int | None = None,
    mask_absent: bool = True,
    scored: np.ndarray | None = None,
    strength: float = 1.0,
    max_iter: int = 100,
) -> tuple[np.ndarray, EMResult | None]:
    """The (N, C) logits under one adjustment variant (masked classes ``-inf``) and the EM fit
    (None for the variants without one).

    - ``none``: raw logits (``other_index`` and, with ``mask_absent``, absent classes masked);
    - ``train_prior``: ``z - log pi_train``;
    - ``oracle``: the paper's formula with ``pi_test`` from ``test_labels`` (uses test labels:
      report it as an oracle);
    - ``estimated``: ``pi_test`` from EM on ``softmax(logits)`` (no emotion labels);
    - ``estimated_map``: ``pi_test`` from MAP-EM with a Dirichlet prior of ``strength`` toward
      the training prior (:func:`fit_test_prior`).

    ``scored`` (a boolean mask over the rows): the EM variants are fitted on those rows only,
    the items that are scored (in OOD scoring, those whose truth is not ``other``: the dropped
    items would otherwise pull the estimate toward whatever the probe makes of them). It uses
    which items are ``other``, no emotion label. Every row is still adjusted.
    """
    z = np.asarray(logits, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    n_classes = train_prior.shape[0]
    em: EMResult | None = None
    if variant == "none":
        out = z.copy()
        if mask_absent:
            out[:, train_prior <= 0] = -np.inf
        if other_index is not None:
            out[:, other_index] = -np.inf
    elif variant == "train_prior":
        out = adjust_logits(z, train_prior, mask_absent=mask_absent, other_index=other_index)
    elif variant == "oracle":
        if test_labels is None:
            raise ValueError("the oracle variant needs test_labels")
        test_prior = class_prior(test_labels, n_classes)
        if other_index is not None:  # ``other`` items are dropped from scoring
            test_prior = test_prior.copy()
            test_prior[other_index] = 0.0
            total = test_prior.sum()
            test_prior = test_prior / total if total > 0 else test_prior
        out = adjust_logits(
            z, train_prior, test_prior, mask_absent=mask_absent, other_index=other_index
        )
    elif variant in ("estimated", "estimated_map"):
        rows = z if scored is None else z[np.asarray(scored, dtype=bool)]
        if len(rows) == 0:
            raise ValueError("the EM variants need at least one scored row")
        probs = softmax(rows)
        fit_prior = train_prior.copy()
        if other_index is not None:
            probs[:, other_index] = 0.0
            fit_prior[other_index] = 0.0
            fit_prior = fit_prior / fit_prior.sum()
        em = fit_test_prior(
            probs,
            fit_prior,
            strength=float(strength) if variant == "estimated_map" else 0.0,
            max_iter=max_iter,
        )
        out = adjust_logits(
            z, train_prior, em.prior, mask_absent=mask_absent, other_index=other_index
        )
    else:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    return out, em


# ----------------------------------------------------------------------------- scores


def ood_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] = CLASSES,
    drop_other: bool = True,
) -> dict:
    """accuracy, unweighted_accuracy, macro_f1, weighted_f1 (and macro_precision, n) from
    ``selm_lib.evaluation.metrics.summary``, after dropping items whose truth is ``other``.

    With ``drop_other`` the ``other`` class also leaves the class list, so a prediction of
    ``other`` counts as a miss for the true class and as no class's false positive.
    """
    names = list(class_names)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred differ in length")
    classes = names
    if drop_other and "other" in names:
        keep = y_true != names.index("other")
        y_true, y_pred = y_true[keep], y_pred[keep]
        classes = [c for c in names if c != "other"]
    true = [names[i] for i in y_true]
    pred = [names[i] for i in y_pred]
    out = metrics.summary(true, pred, classes)
    return {
        k: out[k]
        for k in (
            "accuracy",
            "unweighted_accuracy",
            "macro_f1",
            "weighted_f1",
            "macro_precision",
            "n",
        )
        if k in out
    }
