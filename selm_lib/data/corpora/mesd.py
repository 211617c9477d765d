"""MESD (Mexican Spanish): ``<Emotion>_<V>_<C>_<word>.wav``, e.g. ``Anger_C_A_abajo.wav``.

Emotion prefixes Anger, Disgust, Fear, Happiness, Neutral, Sadness (no surprise); ``V`` is the
voice type (C child, F female adult, M male adult), ``C`` the word corpus (A/B), then the word
(Spanish, may hold accents). The names carry no individual speaker, so ``speaker`` is the voice
group (``mesd_F``, ``mesd_M``, ``mesd_C``): not usable for speaker-independent splits. Files may
sit in one folder or below it. Confidence: medium (the Mendeley release; the voice/corpus tokens
are as described in its README, word tokens are not checked).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^(Anger|Disgust|Fear|Happiness|Neutral|Sadness)_([CFM])_([AB])_(.+)$")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        match = NAME.match(path.stem)
        if not match:
            yield unparsed(
                path,
                path.stem,
                "file name does not follow <Emotion>_<C|F|M>_<A|B>_<word>.wav "
                "(e.g. Anger_C_A_abajo.wav)",
            )
            continue
        emotion, voice, corpus, word = match.groups()
        yield Item(
            path=path,
            utterance_id=path.stem,
            speaker=f"mesd_{voice}",  # voice group, not an individual speaker
            gender=voice if voice in "FM" else "",
            label=emotion,
            extra={"voice": {"C": "child", "F": "female", "M": "male"}[voice], "word": word},
        )


SCANNER = Scanner(
    name="mesd",
    title="MESD",
    layout="ROOT/**/<Emotion>_<C|F|M>_<A|B>_<word>.wav (e.g. Anger_C_A_abajo.wav; emotions "
    "Anger Disgust Fear Happiness Neutral Sadness)",
    find=find,
    required=(
        tuple(
            f"**/{e}_*.wav" for e in ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")
        ),
    ),
)
