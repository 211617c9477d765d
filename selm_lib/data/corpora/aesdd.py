"""AESDD (Greek): ``<emotion>/<e><NN> (<speaker>).wav``, e.g. ``anger/a01 (1).wav``.

Emotion folders anger, disgust, fear, happiness, sadness (no neutral); the first letter of the
name (a d f h s) is the emotion and must match the folder; ``NN`` is the sentence and the number in
parentheses the speaker. The space before the parenthesis is optional and a trailing lowercase
letter (an extra take, e.g. ``a05 (3)b.wav``) is accepted. Gender is not in the names. Confidence:
medium (the "Acted Emotional Speech Dynamic Database" archive as distributed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^([adfhs])(\d\d) ?\((\d+)\)([a-z]?)$")
FOLDERS = {"anger": "a", "disgust": "d", "fear": "f", "happiness": "h", "sadness": "s"}


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
                    f"{folder_name}/{path.stem}",
                    "file name does not follow <e><NN> (<speaker>).wav (e.g. a01 (1).wav)",
                )
                continue
            letter, sentence, speaker, take = match.groups()
            reason = ""
            if letter != folder_letter:
                reason = f"emotion letter {letter} in the name but the file is in {folder_name}/"
            yield Item(
                path=path,
                utterance_id=f"{letter}{sentence}_{speaker}{take}",
                speaker=f"aesdd_{speaker}",
                label=letter,
                extra={"sentence": sentence, "take": take},
                quarantine=reason,
            )


SCANNER = Scanner(
    name="aesdd",
    title="AESDD",
    layout="ROOT/<anger|disgust|fear|happiness|sadness>/<a|d|f|h|s><NN> (<speaker>).wav "
    "(e.g. anger/a01 (1).wav)",
    find=find,
    required=(tuple(FOLDERS),),
)
