"""EMOVO (Italian): ``<speaker>/<emo>-<speaker>-<sentence>.wav``, e.g. ``f1/dis-f1-b1.wav``.

Six actors in folders ``f1 f2 f3 m1 m2 m3`` (the letter is the gender); the name prefix is the
emotion: dis gio neu pau rab sor tri. Layout as distributed (the ``documents`` folder is ignored).
Confidence: high.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^([a-z]{3})-([fm][1-3])-([a-z]\d)$")
SPEAKER_DIR = re.compile(r"^[fm][1-3]$")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and SPEAKER_DIR.match(p.name)):
        for path in wav_files(folder):
            match = NAME.match(path.stem)
            if not match:
                yield unparsed(
                    path,
                    path.stem,
                    "file name does not follow <emo>-<speaker>-<sentence>.wav",
                    speaker=f"emovo_{folder.name}",
                    gender=folder.name[0].upper(),
                )
                continue
            emotion, speaker, sentence = match.groups()
            reason = ""
            if speaker != folder.name:
                reason = f"speaker {speaker} in the name but the file is in {folder.name}/"
            yield Item(
                path=path,
                utterance_id=path.stem,
                speaker=f"emovo_{speaker}",
                gender=speaker[0].upper(),
                label=emotion,
                extra={"sentence": sentence},
                quarantine=reason,
            )


SCANNER = Scanner(
    name="emovo",
    title="EMOVO",
    layout="ROOT/<f1..f3|m1..m3>/<emo>-<speaker>-<sentence>.wav (e.g. f1/dis-f1-b1.wav; "
    "emo one of dis gio neu pau rab sor tri)",
    find=find,
    required=(("f[1-3]", "m[1-3]"),),
)
