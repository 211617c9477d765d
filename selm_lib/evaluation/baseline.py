"""The classification baseline SELM is compared against: the same frozen, cached encoder features
and the same training corpora, but the traditional formulation, a small classifier over a fixed
set of categorical labels.

Frames are pooled to mean and standard deviation (one clip at a time from the feature stores,
:meth:`selm_lib.features.frames.FrameSet.pooled`), then a two-layer MLP predicts the emotion. It
trains and predicts on ``common.device`` (bf16 autocast on CUDA, float32 weights and loss).
At test time its logits are restricted to the test corpus's classes (each class's logit is that of
the training emotion it stands for), the same restriction SELM's class scoring gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from selm_lib.config.device import autocast
from selm_lib.features.frames import Frames, as_frames


def pool_frames(frames: Frames | Sequence[np.ndarray]) -> np.ndarray:
    """(N, 2D): per-utterance mean and standard deviation over frames, read clip by clip."""
    return as_frames(frames).pooled()


def baseline_balanced(policy: str, selm: dict) -> bool:
    """``eval_ood.baseline.class_weights``: ``same_as_selm`` (default) weights the baseline's
    classes the way SELM's triplets are weighted (balanced exactly when
    ``selm.balance_answers``), so the comparison treats class priors the same way for both;
    ``balanced`` / ``natural`` force one."""
    return {"balanced": True, "natural": False}.get(policy, bool(selm["balance_answers"]))


@dataclass
class BaselineConfig:
    """Built from ``eval_ood.baseline`` (:func:`selm_lib.config.section_config`)."""

    hidden: int
    dropout: float
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    seed: int
    balanced: bool  # class-balanced loss weights (else the natural class distribution)


class PooledClassifier(nn.Module):
    """Standardised pooled features -> Linear -> GELU -> Dropout -> Linear (class logits)."""

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden: int,
        dropout: float,
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        super().__init__()
        # Feature standardisation is part of the model so a saved model needs nothing else.
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2D) -> (B, C)
        return self.net((x - self.mean) / self.std)


def train_classifier(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    n_classes: int,
    config: BaselineConfig,
    device: torch.device | None = None,
    bf16: bool | None = None,
) -> tuple[PooledClassifier, list[dict[str, float]]]:
    """Cross-entropy (class-balanced weights when ``config.balanced``, else the natural class
    distribution), AdamW, early stopping on validation loss, on
    ``device`` (default CPU; bf16 autocast per :func:`selm_lib.config.device.autocast`). The
    validation loss is read once per epoch; steps never wait for the host."""
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    mean = train_x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = (train_x.std(axis=0, dtype=np.float64) + 1e-5).astype(np.float32)
    model = PooledClassifier(train_x.shape[1], n_classes, config.hidden, config.dropout, mean, std)
    model.to(device)
    counts = np.bincount(train_y, minlength=n_classes).astype(np.float32)
    weights = None
    if config.balanced:  # every class counts equally (the natural corpora are mostly neutral)
        weights = torch.from_numpy(counts.sum() / np.maximum(counts, 1) / n_classes).to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    tx, ty = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y.astype(np.int64))
    vx, vy = torch.from_numpy(val_x).to(device), torch.from_numpy(val_y.astype(np.int64))
    ty, vy = ty.to(device), vy.to(device)
    best, best_state, waited, history = float("inf"), None, 0, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = np.random.default_rng([config.seed, epoch]).permutation(len(tx))
        for start in range(0, len(order), config.batch_size):
            index = torch.from_numpy(order[start : start + config.batch_size]).to(device)
            with autocast(device, bf16):
                logits = model(tx[index])
            loss = loss_fn(logits.float(), ty[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            with autocast(device, bf16):
                logits = model(vx).float()
            val_loss = float(loss_fn(logits, vy))
            val_acc = float((logits.argmax(dim=1) == vy).float().mean())
        history.append({"epoch": epoch, "val_loss": val_loss, "val_accuracy": val_acc})
        if val_loss < best - 1e-6:
            best, waited = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


@torch.no_grad()
def _logits(model: PooledClassifier, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, C_train) float32 logits, 4096 clips per pass on the model's device."""
    device = model.mean.device
    if not len(x):
        return np.zeros((0, n_classes), np.float32)
    return np.concatenate(
        [
            model(torch.from_numpy(x[s : s + 4096]).to(device)).float().cpu().numpy()
            for s in range(0, len(x), 4096)
        ]
    )


def _allowed(train_classes: list[str], test_map: dict[str, str], test_classes: list[str]):
    allowed = np.array([e in test_map and test_map[e] in test_classes for e in train_classes])
    if not allowed.any():
        raise ValueError("no training emotion maps into the test class set")
    return allowed


def restricted_predictions(
    model: PooledClassifier,
    x: np.ndarray,
    train_classes: list[str],
    test_map: dict[str, str],
    test_classes: list[str],
) -> np.ndarray:
    """Predicted test classes: argmax over the training emotions that map into the test set.

    ``test_map`` maps a training emotion to its test class (e.g. excited -> happy for IEMOCAP);
    emotions outside the test class set are masked out.
    """
    logits = _logits(model, x, len(train_classes))  # (N, C_train)
    allowed = _allowed(train_classes, test_map, test_classes)
    logits = np.where(allowed[None, :], logits, -np.inf)
    return np.array([test_map[train_classes[i]] for i in logits.argmax(axis=1)], dtype=object)


def restricted_logits(
    model: PooledClassifier,
    x: np.ndarray,
    train_classes: list[str],
    test_map: dict[str, str],
    test_classes: list[str],
) -> np.ndarray:
    """(N, C_test) float64 log-probabilities over the test classes (for calibration).

    The softmax over the training emotions that map into the test set (the others masked, as in
    :func:`restricted_predictions`); a test class several emotions map to (IEMOCAP happy from
    happy and excited) gets the sum of their probabilities (a log-sum-exp of their logits). A
    test class no training emotion maps to gets ``-inf`` (probability 0). Where one emotion
    stands for each class its argmax is :func:`restricted_predictions`' prediction.
    """
    logits = _logits(model, x, len(train_classes)).astype(np.float64)
    allowed = _allowed(train_classes, test_map, test_classes)
    logits = np.where(allowed[None, :], logits, -np.inf)
    top = logits.max(axis=1, keepdims=True) if len(logits) else np.zeros((0, 1))
    log_norm = top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    log_probs = logits - log_norm  # (N, C_train) log-softmax over the allowed emotions
    out = np.full((len(x), len(test_classes)), -np.inf)
    for j, test_class in enumerate(test_classes):
        members = [
            i for i, e in enumerate(train_classes) if allowed[i] and test_map[e] == test_class
        ]
        if members:
            block = log_probs[:, members]
            peak = block.max(axis=1, keepdims=True)
            out[:, j] = (peak + np.log(np.exp(block - peak).sum(axis=1, keepdims=True)))[:, 0]
    return out
