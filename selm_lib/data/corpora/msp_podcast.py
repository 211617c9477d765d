"""MSP-Podcast: ``Audios/*.wav`` + ``Labels/labels_consensus.csv``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner, wav_files

SPLITS = {
    "Train": "train",
    "Development": "validation",
    "Test1": "test",
    "Test2": "test",
    "Test3": "test",
}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    labels_path = root / "Labels" / "labels_consensus.csv"
    table = pd.read_csv(labels_path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{labels_path}: missing columns {missing}; expected {list(COLUMNS)}")
    rows = {Path(r["FileName"]).stem: r for _, r in table.iterrows()}
    audio = {p.stem: p for p in wav_files(root / "Audios")}
    for utt in sorted(set(rows) | set(audio)):
        row = rows.get(utt)
        path = audio.get(utt, root / "Audios" / f"{utt}.wav")
        if row is None:
            yield Item(path, utt, "", quarantine="no row in Labels/labels_consensus.csv")
            continue
        speaker = row["SpkrID"].strip()
        yield Item(
            path=path,
            utterance_id=utt,
            # Unknown speakers stay empty: splits keep them in training, never across a split.
            speaker="" if speaker.lower() in ("", "unknown") else f"msp_podcast_{speaker}",
            gender={"male": "M", "female": "F"}.get(row["Gender"].strip().lower(), ""),
            label=row["EmoClass"],
            valence=_float(row["EmoVal"]),
            arousal=_float(row["EmoAct"]),
            dominance=_float(row["EmoDom"]),
            extra={"official_split": SPLITS.get(row["Split_Set"], row["Split_Set"])},
        )


SCANNER = Scanner(
    name="msp_podcast",
    title="MSP-Podcast",
    layout="ROOT/Audios/*.wav and ROOT/Labels/labels_consensus.csv (FileName, EmoClass, EmoAct, "
    "EmoVal, EmoDom, SpkrID, Gender, Split_Set)",
    find=find,
    required=(("Audios",), ("Labels/labels_consensus.csv",)),
    vad_scale=(1.0, 7.0),
    has_official_split=True,
)
