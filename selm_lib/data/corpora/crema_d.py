"""CREMA-D: ``AudioWAV/AAAA_SSS_EEE_LL.wav``, ``VideoDemographics.csv``, crowd votes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner, wav_files

NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}


def _demographics(root: Path) -> dict[str, dict[str, str]]:
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    sex = {"Male": "M", "Female": "F"}
    return {
        row["ActorID"]: {"gender": sex.get(row["Sex"], ""), "age": row["Age"]}
        for _, row in table.iterrows()
    }


def _votes(root: Path) -> dict[str, dict[str, str]]:
    path = root / "processedResults" / "tabulatedVotes.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {
        row["fileName"]: {"perceived": row["emoVote"], "agreement": row["agreement"]}
        for _, row in table.iterrows()
    }


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    demographics, votes = _demographics(root), _votes(root)
    for path in wav_files(root / "AudioWAV"):
        match = NAME.match(path.stem)
        if not match:
            yield Item(
                path, path.stem, "", quarantine="file name does not follow AAAA_SSS_EEE_LL.wav"
            )
            continue
        actor, sentence, emotion, level = match.groups()
        person = demographics.get(actor, {})
        vote = votes.get(path.stem, {})
        yield Item(
            path=path,
            utterance_id=path.stem,
            speaker=f"crema_d_{actor}",
            gender=person.get("gender", ""),
            label=emotion,  # the intended (acted) emotion; the crowd's perception is `perceived`
            extra={
                "sentence": sentence,
                "level": LEVELS.get(level, level),
                "age": person.get("age", ""),
                "perceived": vote.get("perceived", ""),
                "agreement": vote.get("agreement", ""),
            },
        )


SCANNER = Scanner(
    name="crema_d",
    title="CREMA-D",
    layout="ROOT/AudioWAV/AAAA_SSS_EEE_LL.wav, optional ROOT/VideoDemographics.csv and "
    "ROOT/processedResults/tabulatedVotes.csv",
    find=find,
    required=(("AudioWAV",),),
)
