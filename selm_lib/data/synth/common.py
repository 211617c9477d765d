"""Shared pieces of the synthetic corpus writers: the plan of one corpus, seeded generators,
rendering one clip with label noise, and writing wav and CSV files."""

from __future__ import annotations

import csv
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from selm_lib.data.synth.voice import (
    CorpusStyle,
    Speaker,
    emotion_table,
    make_speaker,
    make_style,
    render_utterance,
)


@dataclass(frozen=True)
class Plan:
    """Sizes and options of one corpus for one run."""

    speakers: int
    utterances_per_speaker: int
    duration_s: tuple[float, float]
    label_noise: float
    seed: int
    bad_files: bool


def corpus_rng(seed: int, corpus: str, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(corpus.encode()), *index])


def render_clip(
    emotion: str,
    speaker: Speaker,
    style: CorpusStyle,
    plan: Plan,
    rng: np.random.Generator,
    intensity: float = 1.0,
    emotions: tuple[str, ...] = (),
) -> tuple[np.ndarray, str]:
    """Render one clip. With probability ``label_noise`` the voice expresses another emotion
    than the label says (annotation noise). Returns (samples, emotion actually rendered)."""
    expressed = emotion
    if emotions and plan.label_noise > 0 and rng.random() < plan.label_noise:
        others = [e for e in emotions if e != emotion]
        expressed = others[int(rng.integers(len(others)))]
    duration = float(rng.uniform(*plan.duration_s))
    return render_utterance(
        expressed, speaker, style, duration, rng, intensity=intensity
    ), expressed


def write_wav(path: Path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype, format="WAV")


def spread(options: list[Any], count: int) -> list[Any]:
    """``count`` items cycling through ``options`` so every option is used about equally."""
    return [options[i % len(options)] for i in range(count)]


def make_speakers(corpus: str, ids: list[str], genders: list[str], seed: int) -> list[Speaker]:
    return [
        make_speaker(f"{corpus}_{sid}", g, corpus_rng(seed, corpus + ":speaker", i))
        for i, (sid, g) in enumerate(zip(ids, genders, strict=True))
    ]


def vad_ratings(emotion: str, scale: tuple[float, float], rng: np.random.Generator) -> list[float]:
    """Valence, arousal, dominance on the corpus's rating scale, with rater noise, half steps."""
    row = emotion_table()[emotion]
    low, high = scale
    values = []
    for key in ("valence", "arousal", "dominance"):
        unit = float(np.clip(row[key] + rng.normal(0, 0.08), 0, 1))
        values.append(round((low + unit * (high - low)) * 2) / 2)
    return values


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


STYLES_PATH = Path(__file__).resolve().parents[1] / "tables" / "synth_styles.yaml"


@lru_cache(maxsize=1)
def style_table() -> dict[str, dict[str, Any]]:
    """Corpus -> make_style arguments, from ``synth_styles.yaml`` (read once)."""
    return yaml.safe_load(STYLES_PATH.read_text())


def corpus_style(name: str, seed: int) -> CorpusStyle:
    """The recording style of synthetic corpus ``name``: its row of ``synth_styles.yaml``."""
    if name not in style_table():
        raise KeyError(f"no style for synthetic corpus '{name}' in {STYLES_PATH}")
    return make_style(name, seed=seed, **style_table()[name])


def write_float_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """A mono 32-bit float WAV written byte by byte: libsndfile adds a PEAK chunk with the
    current time to float files, which would make the synthetic corpora differ between runs."""
    data = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)  # IEEE float, mono
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
