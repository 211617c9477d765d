"""Training SELM on cached encoder features (the frozen encoder never runs per epoch).

AdamW with linear warm-up and cosine decay, gradient clipping, bf16 autocast on CUDA (float32
master weights, float32 log-softmax and loss), early stopping on the speaker-disjoint validation
loss. Batches are read from the feature stores and padded in a background thread
(:func:`selm_lib.selm.batching.prefetch`); losses are summed on the device and read once per
epoch, so no step waits for the host. A checkpoint is written atomically after every
epoch; an interrupted run resumes from it and ends exactly where an uninterrupted one would,
because the batch order of an epoch depends only on (seed, epoch) and the RNG states are saved.

Under torchrun (``common.nproc > 1``, :mod:`selm_lib.config.distributed`) the model is wrapped in
DistributedDataParallel: every global batch of ``train_selm.batch_size`` is split over the ranks
(:func:`rank_batches`), each rank's loss is divided by the weighted token count of the *whole*
batch, so the averaged gradient is the one a single process computes; rank 0 scores the
validation split and writes the checkpoints, which hold no per-rank state, so a run resumes
with any number of processes. Dropout draws differ per rank, so results match one process
within a tolerance, not bit for bit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.config import distributed as D
from selm_lib.config.device import autocast
from selm_lib.selm.batching import Encoded, collate, prefetch
from selm_lib.selm.decode import generate, score_classes


@dataclass
class TrainConfig:
    """Built from the ``train_selm`` section (:func:`selm_lib.config.section_config`)."""

    epochs: int
    batch_size: int
    learning_rate: float
    lm_learning_rate: float  # a trainable LM's own rate (selm.lm_trainable)
    weight_decay: float
    warmup_ratio: float
    grad_clip: float
    patience: int
    seed: int
    eval_batch_size: int


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: the mappers (and projection) at ``learning_rate`` with ``weight_decay``; a
    trainable LM (``selm.lm_trainable``) at ``lm_learning_rate``. Norms, biases and embeddings
    never decay. Empty groups are left out."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        in_lm = name.startswith("lm.")
        no_decay = parameter.ndim < 2 or "norm" in name or "ln_" in name or _is_embedding(name)
        groups.setdefault((in_lm, no_decay), []).append(parameter)
    out = []
    for (in_lm, no_decay), members in sorted(groups.items()):
        out.append(
            {
                "params": members,
                "lr": config.lm_learning_rate if in_lm else config.learning_rate,
                "weight_decay": 0.0 if no_decay else config.weight_decay,
            }
        )
    return out


def _is_embedding(name: str) -> bool:
    parts = name.split(".")
    return any(p in parts for p in ("wte", "wpe", "embeddings", "constants", "positions"))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> Iterator[np.ndarray]:
    """The batches of one epoch: a permutation that depends only on (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


# ------------------------------------------------------------------------------- the loop
def weighted_loss(output: Any, batch: dict[str, Any]) -> torch.Tensor:
    """Token-level cross-entropy with each triplet weighted by its view weight."""
    nll, tokens = weighted_sums(output, batch)
    return nll / tokens


def weighted_sums(output: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The two sums :func:`weighted_loss` divides: the weighted negative log-likelihood and the
    weighted answer-token count of a batch (a rank's share of one, under DDP)."""
    log_likelihood = output["log_likelihood"]  # (B,) summed over answer tokens
    tokens = batch["answer_mask"].sum(dim=1).to(log_likelihood.dtype)  # (B,)
    weights = batch["weights"].to(log_likelihood.dtype)
    return -(weights * log_likelihood).sum(), (weights * tokens).sum()


def rank_batches(
    batches: Iterator[np.ndarray], dist: D.Dist
) -> tuple[list[np.ndarray], list[bool]]:
    """Each global batch's share of this rank (every ``world``-th item from ``rank``), so the
    ranks together see exactly the batches one process sees. A rank left without items in a
    short last batch gets its first item with weight 0 (every rank must step together)."""
    shares, live = [], []
    for batch in batches:
        share = batch[dist.rank :: dist.world]
        shares.append(share if len(share) else batch[:1])
        live.append(bool(len(share)))
    return shares, live


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    return None


def _cuda_available() -> bool:
    """Whether CUDA generators exist to save and restore (a seam for the CPU tests)."""
    return torch.cuda.is_available()


def _schedule(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(round(total_steps * warmup_ratio)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a crash leaves either the old or the new checkpoint, never half


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: Encoded,
    candidates: dict[str, list[list[int]]],
    pad: int,
    device: torch.device,
    batch_size: int = 64,
    *,
    bf16: bool | None = None,
    score_chunk: int | None = None,
) -> dict[str, Any]:
    """Per-view validation loss and class-scoring accuracy (argmax over the view's answers), and
    ``total_loss``: the triplet-weighted token cross-entropy over every view, the same quantity
    :func:`weighted_loss` trains on (so early stopping and the curves compare like with like).

    Sums stay on the device (float64) and are read once per view. ``score_chunk`` bounds the
    (example x candidate) rows of one class-scoring pass (:func:`score_classes`)."""
    model.eval()
    views = np.asarray(data.views)
    out: dict[str, Any] = {"loss": {}, "accuracy": {}, "n": {}}
    total_nll, total_tokens = 0.0, 0.0
    for view in sorted(set(data.views)):
        idx = np.flatnonzero(views == view)
        # nll, tokens, correct, weighted nll, weighted tokens
        sums = torch.zeros(5, dtype=torch.float64, device=device)
        texts = [c for c in candidates[view]]
        truth_of = {tuple(c): i for i, c in enumerate(candidates[view])}
        chunks = [idx[s : s + batch_size] for s in range(0, len(idx), batch_size)]
        for index, batch in prefetch(data, chunks, pad, device):
            with autocast(device, bf16):
                output = model(**{k: v for k, v in batch.items() if k != "weights"})
                scores = score_classes(
                    model,
                    batch["features"],
                    batch["feature_mask"],
                    batch["prompt_ids"],
                    batch["prompt_mask"],
                    texts,
                    rows_per_chunk=score_chunk,
                )
            truth = torch.tensor([truth_of[tuple(data.answer_ids[i])] for i in index])
            weights = batch["weights"].double()
            nll_each = -output["log_likelihood"].double()
            tokens_each = batch["answer_mask"].sum(dim=1).double()
            sums += torch.stack(
                [
                    nll_each.sum(),
                    tokens_each.sum(),
                    (scores.argmax(dim=1) == truth.to(scores.device)).sum().double(),
                    (weights * nll_each).sum(),
                    (weights * tokens_each).sum(),
                ]
            )
        nll, tokens, correct, weighted_nll, weighted_tokens = (float(v) for v in sums.cpu())
        out["loss"][view] = nll / max(tokens, 1.0)
        out["accuracy"][view] = correct / max(len(idx), 1)
        out["n"][view] = int(len(idx))
        total_nll += weighted_nll
        total_tokens += weighted_tokens
    out["total_loss"] = total_nll / total_tokens if total_tokens > 0 else 0.0
    return out


def fit(
    model: torch.nn.Module,
    train: Encoded,
    validation: Encoded,
    candidates: dict[str, list[list[int]]],
    config: TrainConfig,
    out_dir: Path,
    *,
    pad: int,
    device: torch.device,
    stop_after_epoch: int | None = None,
    log: Any = print,
    bf16: bool | None = None,
    score_chunk: int | None = None,
    fingerprint: str = "",
) -> dict[str, Any]:
    """Train with early stopping; resume from ``out_dir/last.pt`` when it exists and was
    written with the same ``fingerprint`` (a digest of everything that shapes the run: the
    caller's parameters and data); a checkpoint of other parameters is refused with a message
    and training starts afresh.

    ``bf16`` (default: on CUDA only) runs the forward pass under bf16 autocast; ``score_chunk``
    is passed to the validation's class scoring.

    Writes ``last.pt`` (full state, after every epoch) and ``best.pt`` (trainable weights of the
    best validation epoch). ``stop_after_epoch`` simulates an interruption (tests). Returns the
    history and the best epoch; the model is left holding the best weights.
    """
    dist = D.context() if torch.distributed.is_initialized() else D.Dist()
    if not dist.main:
        log = _quiet  # rank 0 logs
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    step_model = model
    if dist.active:  # gradients averaged over the ranks; each rank holds a share of a batch
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = torch.optim.AdamW(parameter_groups(model, config))
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(steps_per_epoch * config.epochs, config.warmup_ratio)
    )
    state = {"epoch": 0, "history": [], "best_loss": float("inf"), "best_epoch": 0, "waited": 0}
    last, best = out_dir / "last.pt", out_dir / "best.pt"
    torch.manual_seed(config.seed + 7919 * dist.rank)  # rank 0 draws as one process does
    checkpoint = None
    if last.is_file():
        checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    if checkpoint is not None and checkpoint.get("fingerprint", "") != fingerprint:
        written = checkpoint.get("fingerprint", "")[:12] or "none"
        log(
            f"not resuming from {last}: it was written with other parameters or data "
            f"({written} != {fingerprint[:12] or 'none'}); training from the start"
        )
        checkpoint = None
        D.barrier()
        if dist.main:
            best.unlink(missing_ok=True)  # the refused run's best weights must never be loaded
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"], strict=False)
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["torch_rng"])
        if checkpoint.get("cuda_rng") is not None and _cuda_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])  # dropout on the GPU draws here
        state = checkpoint["state"]
        if dist.rank:  # the saved generator is rank 0's; the others draw their own
            torch.manual_seed(config.seed + 7919 * dist.rank + 104729 * state["epoch"])
        log(f"resumed from {last} after epoch {state['epoch']}")

    while state["epoch"] < config.epochs and state["waited"] < config.patience:
        epoch = state["epoch"] + 1
        model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # weighted nll, weighted tokens
        order = list(epoch_batches(len(train), config.batch_size, config.seed, epoch))
        live = [True] * len(order)
        if dist.active:
            order, live = rank_batches(iter(order), dist)
        for step, (_, batch) in enumerate(prefetch(train, order, pad, device)):
            if not live[step]:
                batch["weights"] = batch["weights"] * 0
            with autocast(device, bf16):
                output = step_model(**{k: v for k, v in batch.items() if k != "weights"})
                nll, n_tokens = weighted_sums(output, batch)
            if dist.active:
                # the batch's loss over every rank's tokens; DDP averages the gradients, so
                # scaling by the world size gives one process's gradient of the whole batch
                everyone = n_tokens.detach().double()
                torch.distributed.all_reduce(everyone)
                loss = nll * dist.world / everyone.to(nll.dtype)
            else:
                loss = nll / n_tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            # weighted tokens: the epoch's train loss is the same average as the validation loss
            sums += torch.stack([nll.detach().double(), n_tokens.detach().double()])
        if dist.active:
            torch.distributed.all_reduce(sums)
        total, tokens = (float(v) for v in sums.cpu())  # the epoch's one host synchronisation
        result = None
        if dist.main:  # one rank scores the validation split; every rank gets its result
            result = evaluate(
                model,
                validation,
                candidates,
                pad,
                device,
                config.eval_batch_size,
                bf16=bf16,
                score_chunk=score_chunk,
            )
        result = D.broadcast_object(result)
        record = {
            "epoch": epoch,
            "train_loss": total / max(tokens, 1.0),
            "val_loss": result["total_loss"],
            **{f"val_loss_{v}": x for v, x in result["loss"].items()},
            **{f"val_accuracy_{v}": x for v, x in result["accuracy"].items()},
            "learning_rate": scheduler.get_last_lr()[0],
        }
        state["history"].append(record)
        state["epoch"] = epoch
        improved = D.broadcast_object(
            result["total_loss"] < state["best_loss"] - 1e-6 or not best.is_file()
        )
        if improved:
            state.update(best_loss=result["total_loss"], best_epoch=epoch, waited=0)
            if dist.main:
                _atomic_save(trainable_state(model), best)
        else:
            state["waited"] += 1
        if dist.main:
            _atomic_save(
                {
                    "model": trainable_state(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if _cuda_available() else None,
                    "state": state,
                    "config": asdict(config),
                    "fingerprint": fingerprint,
                    "processes": dist.world,
                },
                last,
            )
        D.barrier()  # no rank runs ahead of the checkpoint of this epoch
        accuracy = ", ".join(f"{v} {a:.3f}" for v, a in result["accuracy"].items())
        log(
            f"epoch {epoch}: train {record['train_loss']:.4f} val {record['val_loss']:.4f} "
            f"acc {accuracy}"
        )
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return {"interrupted": True, **state}
    D.barrier()
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True), strict=False)
    return {"interrupted": False, **state}


@torch.no_grad()
def sample_generations(
    model: torch.nn.Module,
    data: Encoded,
    tokenizer: Any,
    pad: int,
    device: torch.device,
    per_view: int = 4,
) -> pd.DataFrame:
    """Greedy answers for the first ``per_view`` validation triplets of each view."""
    model.eval()
    rows = []
    views = np.asarray(data.views)
    for view in sorted(set(data.views)):
        index = np.flatnonzero(views == view)[:per_view]
        batch = collate(data, index, pad, device)
        ids = generate(
            model,
            batch["features"],
            batch["feature_mask"],
            batch["prompt_ids"],
            batch["prompt_mask"],
            max_new_tokens=8,
            num_beams=1,
            eos_token_id=tokenizer.eos_token_id,
        )
        for i, generated in zip(index, ids, strict=True):
            rows.append(
                {
                    "view": view,
                    "prompt": tokenizer.decode(data.prompt_ids[i]),
                    "reference": data.answers[i],
                    "generated": tokenizer.decode(generated, skip_special_tokens=True).strip(),
                }
            )
    return pd.DataFrame(rows)
