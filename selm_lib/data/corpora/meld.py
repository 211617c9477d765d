"""MELD: the three ``*_sent_emo.csv`` files and wav files extracted from the clips.

MELD ships mp4 clips (``dia{D}_utt{U}.mp4``). Extract mono 16 kHz wav next to them with the same
stem, e.g. ``ffmpeg -i dia0_utt0.mp4 -ac 1 -ar 16000 dia0_utt0.wav``; rows whose wav is absent are
quarantined with that instruction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner

# (CSV, folder of the clips as MELD.Raw unpacks them, split name)
SPLITS = (
    ("train_sent_emo.csv", "train_splits", "train"),
    ("dev_sent_emo.csv", "dev_splits_complete", "validation"),
    ("test_sent_emo.csv", "output_repeated_splits_test", "test"),
)


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for csv_name, folder, split in SPLITS:
        csv_path = root / csv_name
        if not csv_path.is_file():
            continue
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding_errors="replace")
        for _, row in table.iterrows():
            stem = f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}"
            path = root / folder / f"{stem}.wav"
            reason = ""
            if not path.is_file() and (root / folder / f"{stem}.mp4").is_file():
                reason = (
                    f"audio not extracted: run ffmpeg -i {stem}.mp4 -ac 1 -ar 16000 "
                    f"{stem}.wav in {folder}/"
                )
            yield Item(
                path=path,
                utterance_id=f"{split}_{stem}",  # dialogue ids restart in every split
                speaker=f"meld_{row['Speaker'].strip()}",
                label=row["Emotion"].strip(),
                sentiment=row["Sentiment"].strip(),
                extra={"official_split": split, "transcript": row["Utterance"]},
                quarantine=reason,
            )


SCANNER = Scanner(
    name="meld",
    title="MELD",
    layout="ROOT/{train,dev,test}_sent_emo.csv with wav files extracted from the clips at "
    "ROOT/train_splits/dia{D}_utt{U}.wav, ROOT/dev_splits_complete/..., "
    "ROOT/output_repeated_splits_test/...",
    find=find,
    required=(("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"),),
    has_official_split=True,
)
