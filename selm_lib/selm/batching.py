"""Triplets as model input: cached features and token ids per triplet (:class:`Encoded`), and
padded, masked batches of them on a device (:func:`collate`). Shared by training, evaluation and
few-shot adaptation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch


class TrainingError(ValueError):
    """Bad training input; names the params key."""


@dataclass
class Encoded:
    """Triplets ready for the model: features and token ids, in triplet order."""

    features: list[np.ndarray]  # each (frames, D) float32
    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]  # answer tokens + end of text
    weights: np.ndarray  # view weight per triplet
    views: list[str]
    answers: list[str]


def answer_text(answer: str) -> str:
    """Answers follow the prompt after a space, GPT-2 style (" angry")."""
    return " " + answer.strip()


def encode_triplets(
    triplets: pd.DataFrame, features: dict[tuple[str, str], np.ndarray], tokenizer: Any
) -> Encoded:
    """Look up each triplet's cached features and tokenise its prompt and answer."""
    eos = tokenizer.eos_token_id
    prompt_cache: dict[str, list[int]] = {}
    answer_cache: dict[str, list[int]] = {}
    feats, prompts, answers = [], [], []
    for corpus, utterance, prompt, answer in zip(
        triplets["corpus"],
        triplets["utterance_id"],
        triplets["prompt"],
        triplets["answer"],
        strict=True,
    ):
        key = (corpus, utterance)
        if key not in features:
            raise TrainingError(
                f"no cached features for {corpus}/{utterance}: rerun the features stage "
                "(dvc repro features@<selm.backbone>)"
            )
        feats.append(features[key])
        if prompt not in prompt_cache:
            prompt_cache[prompt] = tokenizer.encode(prompt)
        if answer not in answer_cache:
            answer_cache[answer] = tokenizer.encode(answer_text(answer)) + [eos]
        prompts.append(prompt_cache[prompt])
        answers.append(answer_cache[answer])
    return Encoded(
        feats,
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


def collate(data: Encoded, index: np.ndarray, pad: int, device: torch.device) -> dict[str, Any]:
    """One padded batch: features (B, T, D) with a frame mask, prompts and answers with masks."""
    feats = [data.features[i] for i in index]
    frames = max(f.shape[0] for f in feats)
    batch = np.zeros((len(feats), frames, feats[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(feats), frames), dtype=bool)
    for i, f in enumerate(feats):
        batch[i, : f.shape[0]] = f
        mask[i, : f.shape[0]] = True
    prompt_ids, prompt_mask = _pad([data.prompt_ids[i] for i in index], pad)
    answer_ids, answer_mask = _pad([data.answer_ids[i] for i in index], pad)
    return {
        "features": torch.from_numpy(batch).to(device),
        "feature_mask": torch.from_numpy(mask).to(device),
        "prompt_ids": prompt_ids.to(device),
        "prompt_mask": prompt_mask.to(device),
        "answer_ids": answer_ids.to(device),
        "answer_mask": answer_mask.to(device),
        "weights": torch.from_numpy(data.weights[index]).to(device),
    }
