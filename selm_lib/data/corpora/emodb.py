"""EmoDB (Berlin): ``wav/SSTTTEV.wav``, e.g. ``03a01Fa.wav`` (speaker 03, text a01, emotion F)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, wav_files

NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")
MALE_SPEAKERS = {"03", "10", "11", "12", "15"}


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root / "wav"):
        match = NAME.match(path.stem)
        if not match:
            yield Item(path, path.stem, "", quarantine="file name does not follow SSTTTEV.wav")
            continue
        speaker, text, emotion, version = match.groups()
        yield Item(
            path=path,
            utterance_id=path.stem,
            speaker=f"emodb_{speaker}",
            gender="M" if speaker in MALE_SPEAKERS else "F",
            label=emotion,  # letter 6 of the name (German initial: W Wut, A Angst, ...)
            extra={"text": text, "version": version},
        )


SCANNER = Scanner(
    name="emodb",
    title="EmoDB",
    layout="ROOT/wav/SSTTTEV.wav (e.g. 03a01Fa.wav: speaker 03, text a01, emotion F, version a)",
    find=find,
    required=(("wav",),),
)
