"""URDU: ``<Angry|Happy|Neutral|Sad>/S<G><N>_F<file>_<E><NNN>.wav``, e.g.
``Angry/SM1_F10_A010.wav``.

The label is the folder name (SER-Evals reads it from the path). The first token ``S<G><N>`` is the
speaker (G = M/F gender, N the speaker number) as described in the dataset's README (Latif et al.);
the second ``F<n>`` a file number; the third the emotion letter (A H N S) and a number, which must
match the folder. Confidence: medium. The task brief called the speaker token the 2nd; the public
description reads ``SM1`` = speaker, male, 1, so the 1st token is used here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")
FOLDERS = {"Angry": "A", "Happy": "H", "Neutral": "N", "Sad": "S"}


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for folder_name, folder_letter in FOLDERS.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        for path in wav_files(folder):
            match = NAME.match(path.stem)
            if not match:
                yield unparsed(
                    path,
                    path.stem,
                    "file name does not follow S<G><N>_F<n>_<E><NNN>.wav (e.g. SM1_F10_A010.wav)",
                    label=folder_name,
                )
                continue
            gender, number, file_no, letter, take = match.groups()
            reason = ""
            if letter != folder_letter:
                reason = f"emotion letter {letter} in the name but the file is in {folder_name}/"
            yield Item(
                path=path,
                utterance_id=path.stem,
                speaker=f"urdu_S{gender}{number}",
                gender=gender,
                label=folder_name,
                extra={"file": file_no},
                quarantine=reason,
            )


SCANNER = Scanner(
    name="urdu",
    title="URDU",
    layout="ROOT/<Angry|Happy|Neutral|Sad>/S<M|F><N>_F<n>_<A|H|N|S><NNN>.wav "
    "(e.g. Angry/SM1_F10_A010.wav)",
    find=find,
    required=(tuple(FOLDERS),),
)
