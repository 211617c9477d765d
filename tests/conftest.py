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
