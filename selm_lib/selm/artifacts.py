"""What the train_selm stage leaves behind, and how to rebuild it: the tokenizer, the model
configuration from the ``selm`` section, and the trained model read back from
``common.output_root/selm/``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from selm_lib.config import resolve_path, section_config
from selm_lib.data.labels import class_set_table
from selm_lib.selm.batching import TrainingError, answer_text
from selm_lib.selm.model import SELM, SELMConfig
from selm_lib.selm.tokenizer import load_tokenizer, train_bpe


def all_answer_words() -> list[str]:
    """Every class word of every evaluation class set: the tokenizer must know them all."""
    return sorted(set(class_set_table()["class"]) | set(class_set_table()["emotion"]))


def make_tokenizer(selm: dict[str, Any], triplets: pd.DataFrame) -> Any:
    if selm["tokenizer"] != "train":
        return load_tokenizer(selm["tokenizer"])
    texts = list(triplets["prompt"].unique()) + [
        answer_text(a) for a in triplets["answer"].unique()
    ]
    return train_bpe(
        texts,
        vocab_size=selm["tokenizer_vocab_size"],
        seed_words=all_answer_words() + list(selm["dimensional_words"]),
    )


def model_config(selm: dict[str, Any], audio_dim: int, seed: int) -> SELMConfig:
    """The model's whole configuration: the ``selm`` section's model keys, the feature width and
    the seed."""
    return section_config(SELMConfig, selm, audio_dim=audio_dim, seed=seed)


def load_trained(common: dict[str, Any], device: str | torch.device = "cpu") -> tuple[SELM, Any]:
    """The trained model and tokenizer written by the train_selm stage."""
    folder = resolve_path(common["output_root"]) / "selm"
    if not (folder / "model").is_dir():
        raise TrainingError(f"no trained SELM in {folder}: run dvc repro train_selm")
    return SELM.load(folder / "model", map_location=device), load_tokenizer(
        str(folder / "tokenizer")
    )
