"""SUBESCO (Bangla): ``<G>_<SS>_<NAME>_S_<sentence>_<EMOTION>_<take>.wav``, e.g.
``F_02_MONIKA_S_1_ANGRY_1.wav``; the second-last token is the emotion (NEUTRAL ANGRY HAPPY DISGUST
FEAR SAD SURPRISE). The Zenodo archive holds the 7000 files in one folder; any folder depth below
the root is accepted. Confidence: high for the naming, medium for the folder (flat vs nested).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^([FM])_(\d\d)_([A-Z]+)_S_(\d+)_([A-Z]+)_(\d+)$")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        match = NAME.match(path.stem)
        if not match:
            yield unparsed(
                path,
                path.stem,
                "file name does not follow G_SS_NAME_S_N_EMOTION_T.wav "
                "(e.g. F_02_MONIKA_S_1_ANGRY_1.wav)",
            )
            continue
        gender, number, name, sentence, emotion, take = match.groups()
        yield Item(
            path=path,
            utterance_id=path.stem,
            speaker=f"subesco_{gender}{number}",
            gender=gender,
            label=emotion,
            extra={"speaker_name": name, "sentence": sentence, "take": take},
        )


SCANNER = Scanner(
    name="subesco",
    title="SUBESCO",
    layout="ROOT/**/G_SS_NAME_S_N_EMOTION_T.wav (e.g. F_02_MONIKA_S_1_ANGRY_1.wav; emotion "
    "NEUTRAL ANGRY HAPPY DISGUST FEAR SAD SURPRISE)",
    find=find,
    required=(("[FM]_*_S_*.wav", "**/[FM]_*_S_*.wav"),),
)
