"""Shared fixtures: smoke-sized synthetic corpora written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from selm_lib.data.synth.common import Plan
from selm_lib.data.synth.registry import WRITERS, write_corpus

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def smoke_plan(name: str, seed: int = 34) -> Plan:
    return Plan(
        speakers=10 if name == "iemocap" else 4,
        utterances_per_speaker=6,
        duration_s=(0.6, 0.9),
        label_noise=0.0,
        seed=seed,
        bad_files=True,
    )


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every synthetic layout, smoke sized, under one folder (folder names as in WRITERS)."""
    root = tmp_path_factory.mktemp("synthetic")
    for name in WRITERS:
        write_corpus(name, root, smoke_plan(name))
    return root


def corpus_dir(root: Path, name: str) -> Path:
    return root / WRITERS[name][0]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(
            f"{SHARED} is absent: the shared reference fixtures exist in the development and CI "
            "checkouts only, not in a user's clone"
        )
    return SHARED


@pytest.fixture(scope="session")
def odd_wav2vec2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random wav2vec2 of odd sizes (hidden 36, 3 heads, 5 layers, CNN width 33), saved with
    ``save_pretrained`` as a real checkpoint folder, so tests load it through the real
    ``from_pretrained`` path of a local source and shape bugs cannot hide behind round sizes."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("odd_wav2vec2")
    config = Wav2Vec2Config(
        hidden_size=36,
        num_hidden_layers=5,
        num_attention_heads=3,
        intermediate_size=70,
        conv_dim=(33,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=3,
        feat_extract_norm="group",
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
        layerdrop=0.0,
    )
    torch.manual_seed(7)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=False
    ).save_pretrained(folder)
    return folder
