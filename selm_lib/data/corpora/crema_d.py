"""CREMA-D: ``AudioWAV/AAAA_SSS_EEE_LL.wav``, ``VideoDemographics.csv``, crowd votes.

``processedResults/tabulatedVotes.csv`` has three rows per clip, one per rating mode: its first
(unnamed) column is ``100000 * queryType + clipNum``, queryType 1 = voice only, 2 = face only,
3 = audio-visual. The scanner keeps the voice-only row, the raters who heard what an audio model
hears: its counts A D F H N S become ``votes`` (package emotion names), its ``emoVote`` (the
plurality label(s), e.g. ``N:S`` on a tie) ``perceived`` and its ``agreement`` ``agreement``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner, wav_files
from selm_lib.data.labels import corpus_labels

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


# vote columns of tabulatedVotes.csv -> the corpus's label codes (label_map.csv)
VOTE_CODES = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
VOICE_ONLY = 1  # queryType of the voice-only ratings


def _votes(root: Path) -> dict[str, dict[str, Any]]:
    """``{fileName: {"perceived", "agreement", "votes"}}`` from the voice-only rows ({} when the
    file is absent)."""
    path = root / "processedResults" / "tabulatedVotes.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    needed = ["fileName", "emoVote", "agreement", *VOTE_CODES]
    missing = [c for c in needed if c not in table.columns]
    if missing or not len(table.columns) or table.columns[0] in needed:
        raise ValueError(
            f"{path}: not the CREMA-D vote table (missing columns {missing or 'none'}; its first "
            "column must be the unnamed id 100000*queryType + clipNum). Expected the header of "
            'the distributed processedResults/tabulatedVotes.csv: "",A,D,F,H,N,S,fileName,'
            "numResponses,agreement,emoVote,... Fix: restore that file from the corpus, or remove "
            "it to scan without crowd votes."
        )
    ids = pd.to_numeric(table[table.columns[0]], errors="coerce")
    if ids.isna().any():
        bad = table.loc[ids.isna(), table.columns[0]].iloc[0]
        raise ValueError(
            f"{path}: id {bad!r} in the first column is not a number (100000*queryType + clipNum)"
        )
    voice = table[(ids // 100000) == VOICE_ONLY]
    if voice["fileName"].duplicated().any():
        name = voice.loc[voice["fileName"].duplicated(), "fileName"].iloc[0]
        raise ValueError(f"{path}: '{name}' has more than one voice-only row (id 1xxxxx)")
    emotions = {
        code: corpus_labels("crema_d")[label]["emotion"] for code, label in VOTE_CODES.items()
    }
    result: dict[str, dict[str, Any]] = {}
    for record in voice[needed].to_dict("records"):
        counts = {}
        for code, emotion in emotions.items():
            text = record[code].strip()
            if not text.isdigit():
                raise ValueError(
                    f"{path}: '{record['fileName']}' has vote count {record[code]!r} in column "
                    f"{code}; counts are whole numbers >= 0"
                )
            counts[emotion] = int(text)
        result[record["fileName"]] = {
            "perceived": record["emoVote"],
            "agreement": record["agreement"],
            "votes": counts,
        }
    return result


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
            votes=vote.get("votes"),
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
