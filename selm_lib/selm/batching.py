"""Triplets as model input: lazy cached features and token ids per triplet (:class:`Encoded`),
and padded, masked batches of them on a device (:func:`collate`, or :func:`prefetch` with
background reading). Shared by training, evaluation and few-shot adaptation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.features.frames import Frames, as_frames, read_ahead


class TrainingError(ValueError):
    """Bad training input; names the params key."""


@dataclass
class Encoded:
    """Triplets ready for the model: where their features are, and token ids, in triplet order.

    ``frames`` is lazy (:class:`selm_lib.features.frames.FrameSet`): a batch's frames are read
    from the feature stores when the batch is collated, so memory is O(batch). (A list of
    arrays, wrapped as :class:`selm_lib.features.frames.ArrayFrames`, also works.)"""

    def __post_init__(self) -> None:
        self.frames = as_frames(self.frames)

    frames: Frames
    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]  # answer tokens + end of text
    weights: np.ndarray  # view weight per triplet
    views: list[str]
    answers: list[str]

    def __len__(self) -> int:
        return len(self.prompt_ids)


def answer_text(answer: str) -> str:
    """Answers follow the prompt after a space, GPT-2 style (" angry")."""
    return " " + answer.strip()


def encode_triplets(
    triplets: pd.DataFrame, frames: Frames | Sequence[np.ndarray], tokenizer: Any
) -> Encoded:
    """Tokenise each triplet's prompt and answer; ``frames`` holds its features, in row order
    (:func:`selm_lib.features.frames.open_frames` over the same rows)."""
    if len(frames) != len(triplets):
        raise TrainingError(
            f"{len(frames)} feature clips for {len(triplets)} triplets: open the frames over the "
            "same rows (open_frames(..., triplets))"
        )
    eos = tokenizer.eos_token_id
    prompt_cache: dict[str, list[int]] = {}
    answer_cache: dict[str, list[int]] = {}
    prompts, answers = [], []
    for prompt, answer in zip(triplets["prompt"], triplets["answer"], strict=True):
        if prompt not in prompt_cache:
            prompt_cache[prompt] = tokenizer.encode(prompt)
        if answer not in answer_cache:
            answer_cache[answer] = tokenizer.encode(answer_text(answer)) + [eos]
        prompts.append(prompt_cache[prompt])
        answers.append(answer_cache[answer])
    return Encoded(
        frames,
        prompts,
        answers,
        triplets["weight"].to_numpy(dtype=np.float32),
        list(triplets["view"]),
        list(triplets["answer"]),
    )


def _pad(sequences: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.bool)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = True
    return ids, mask


def host_batch(data: Encoded, index: np.ndarray, pad: int, pin: bool = False) -> dict[str, Any]:
    """One padded batch on the host: features (B, T, D) in the storage dtype with a frame mask,
    prompts and answers with masks; pinned when ``pin`` (fast copies to a GPU)."""
    frames, mask = data.frames.batch(index)
    prompt_ids, prompt_mask = _pad([data.prompt_ids[i] for i in index], pad)
    answer_ids, answer_mask = _pad([data.answer_ids[i] for i in index], pad)
    batch = {
        "features": torch.from_numpy(frames),
        "feature_mask": torch.from_numpy(mask),
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "answer_ids": answer_ids,
        "answer_mask": answer_mask,
        "weights": torch.from_numpy(data.weights[np.asarray(index)]),
    }
    return {k: v.pin_memory() for k, v in batch.items()} if pin else batch


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move a host batch to ``device`` (asynchronously from pinned memory) and convert the
    stored features to float32 there."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    out["features"] = out["features"].float()
    return out


def collate(data: Encoded, index: np.ndarray, pad: int, device: torch.device) -> dict[str, Any]:
    """One padded batch on ``device`` (features float32)."""
    return to_device(host_batch(data, index, pad), device)


def prefetch(
    data: Encoded,
    batches: Iterable[np.ndarray],
    pad: int,
    device: torch.device,
    depth: int = 2,
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """``(index, device batch)`` for each index array of ``batches``, reading and padding the
    next ``depth`` batches in a background thread while the current one runs (pinned host
    memory on CUDA, so the copy overlaps compute)."""
    pin = device.type == "cuda"
    for index, batch in read_ahead(lambda i: host_batch(data, i, pad, pin), batches, depth):
        yield index, to_device(batch, device)
