"""CMU-MOSEI (and CMU-MOSI) in the MMSA release layout: ``label.csv`` + ``Raw/<video>/<clip>``.

``label.csv`` has columns video_id, clip_id, text, label (sentiment score -3..3), label_T,
label_A, label_V, annotation (Positive / Neutral / Negative) and mode (train / valid / test). The
clips are mp4 files at ``Raw/<video_id>/<clip_id>.mp4``; extract mono 16 kHz wav next to them
(``ffmpeg -i 3.mp4 -ac 1 -ar 16000 3.wav``). Rows whose wav is absent are quarantined with that
instruction. The speaker is not annotated: the video id stands for it (one speaker per video, so
video-disjoint splits are speaker-disjoint as far as the corpus can tell).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner

MODES = {"train": "train", "valid": "validation", "test": "test"}
COLUMNS = ("video_id", "clip_id", "label", "annotation", "mode")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    labels_path = root / "label.csv"
    table = pd.read_csv(labels_path, dtype=str, keep_default_na=False, encoding_errors="replace")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{labels_path}: missing columns {missing}; expected {list(COLUMNS)}")
    for _, row in table.iterrows():
        video, clip = row["video_id"].strip(), row["clip_id"].strip()
        folder = root / "Raw" / video
        path = folder / f"{clip}.wav"
        reason = ""
        if not path.is_file() and (folder / f"{clip}.mp4").is_file():
            reason = (
                f"audio not extracted: run ffmpeg -i {clip}.mp4 -ac 1 -ar 16000 {clip}.wav "
                f"in Raw/{video}/"
            )
        try:
            score = float(row["label"])
        except ValueError:
            score = None
        yield Item(
            path=path,
            utterance_id=f"{video}_{clip}",
            speaker=f"cmu_mosei_{video}",
            label=row["annotation"].strip(),
            valence=score,  # the sentiment score, -3 (negative) .. 3 (positive)
            extra={
                "official_split": MODES.get(row["mode"], row["mode"]),
                "transcript": row.get("text", ""),
            },
            quarantine=reason,
        )


SCANNER = Scanner(
    name="cmu_mosei",
    title="CMU-MOSEI",
    layout="ROOT/label.csv (MMSA release: video_id, clip_id, text, label, annotation, mode) with "
    "wav files extracted from the clips at ROOT/Raw/<video_id>/<clip_id>.wav",
    find=find,
    required=(("label.csv",), ("Raw",)),
    has_official_split=True,
)
