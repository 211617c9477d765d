"""ShEMO (Persian): ``female|male/<G><SS><E><UU>.wav``, e.g. ``female/F01A01.wav``.

Letter 1 is the gender (F/M), letters 2-3 the speaker, letter 4 the emotion (A anger, H happiness,
N neutral, S sadness, W surprise, F fear), letters 5-6 the utterance. Confidence: high for the
naming; the two gender folders are as distributed on GitHub/Kaggle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^([FM])(\d\d)([AHNSWF])(\d\d)$")
FOLDERS = {"female": "F", "male": "M"}


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for folder_name, folder_gender in FOLDERS.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        for path in wav_files(folder):
            match = NAME.match(path.stem)
            if not match:
                yield unparsed(
                    path,
                    path.stem,
                    "file name does not follow <F|M><SS><E><UU>.wav (e.g. F01A01.wav)",
                    gender=folder_gender,
                )
                continue
            gender, speaker, emotion, utterance = match.groups()
            reason = ""
            if gender != folder_gender:
                reason = f"gender {gender} in the name but the file is in {folder_name}/"
            yield Item(
                path=path,
                utterance_id=path.stem,
                speaker=f"shemo_{gender}{speaker}",
                gender=gender,
                label=emotion,
                extra={"utterance": utterance},
                quarantine=reason,
            )


SCANNER = Scanner(
    name="shemo",
    title="ShEMO",
    layout="ROOT/female|male/<F|M><speaker 2 digits><emotion A|H|N|S|W|F><utterance 2 digits>.wav "
    "(e.g. female/F01A01.wav)",
    find=find,
    required=(("female", "male"),),
)
