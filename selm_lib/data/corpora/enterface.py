"""eNTERFACE'05 (audio-visual, English): ``subject <N>/<emotion>/sentence <M>/s<N>_<code>_<M>.avi``,
e.g. ``subject 1/anger/sentence 1/s1_an_1.avi``.

Emotion folders anger, disgust, fear, happiness, sadness, surprise with file codes an, di, fe, ha,
sa, su; no neutral. Subject 6 lacks the ``sentence <M>`` level (``subject 6/anger/s6_an_1.avi``):
both depths are accepted, and a wrapper folder above the ``subject <N>`` folders too. The label is
the emotion folder word (SER-Evals reads it from the path); the code in the file name is
cross-checked, and a mismatch (or a subject number in the name that differs from the folder) is
quarantined with the reason. Speaker = the subject number (``enterface_<N>``); gender is not in the
layout, so it is left empty.

The clips are .avi: extract mono 16 kHz wav beside each one with the same stem, e.g.
``ffmpeg -i s1_an_1.avi -ac 1 -ar 16000 s1_an_1.wav``; an .avi without its wav is quarantined with
that command. Confidence: medium (from memory, unchecked: the folder words, the ``subject <N>`` /
``sentence <M>`` spelling with a space, and the code letters; the archive is known to hold a few
misnamed files, which end up quarantined).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_or_container

SUBJECT = re.compile(r"^subject\s*(\d+)$", re.IGNORECASE)
SENTENCE = re.compile(r"^sentence\s*(\d+)$", re.IGNORECASE)
NAME = re.compile(r"^s_?(\d+)_([a-z]{2})_(\d+)$", re.IGNORECASE)
CODES = {
    "anger": "an",
    "disgust": "di",
    "fear": "fe",
    "happiness": "ha",
    "sadness": "sa",
    "surprise": "su",
}
LAYOUT_HINT = "not at subject <N>/<emotion>/[sentence <M>/]s<N>_<code>_<M>.avi"


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for wav, source in wav_or_container(root, ".avi"):
        parts = source.relative_to(root).parts
        index = next((i for i, part in enumerate(parts) if SUBJECT.match(part)), None)
        if index is None:
            yield unparsed(wav, wav.stem, LAYOUT_HINT)
            continue
        subject = str(int(SUBJECT.match(parts[index]).group(1)))
        speaker = f"enterface_{subject}"
        below = parts[index + 1 : -1]
        if not below or len(below) > 2 or (len(below) == 2 and not SENTENCE.match(below[1])):
            yield unparsed(wav, wav.stem, LAYOUT_HINT, speaker=speaker)
            continue
        emotion = below[0].lower()
        match = NAME.match(wav.stem)
        if not match:
            yield unparsed(
                wav,
                wav.stem,
                "file name does not follow s<N>_<code>_<M> (e.g. s1_an_1.avi)",
                speaker=speaker,
                label=emotion,
            )
            continue
        name_subject, code, sentence = match.groups()
        code = code.lower()
        reason = ""
        if emotion in CODES and code != CODES[emotion]:
            reason = (
                f"code {code} in the name but the file is in {below[0]}/ (code {CODES[emotion]})"
            )
        elif str(int(name_subject)) != subject:
            reason = f"subject {int(name_subject)} in the name but the file is in {parts[index]}/"
        elif len(below) == 2 and str(int(SENTENCE.match(below[1]).group(1))) != str(int(sentence)):
            reason = f"sentence {sentence} in the name but the file is in {below[1]}/"
        elif source.suffix.lower() == ".avi":
            folder = "/".join(parts[:-1])
            reason = (
                f"audio not extracted: run ffmpeg -i {source.name} -ac 1 -ar 16000 {wav.name} "
                f"in {folder}/"
            )
        yield Item(
            path=wav,
            utterance_id=wav.stem,
            speaker=speaker,
            label=emotion,
            extra={"sentence": str(int(sentence))},
            quarantine=reason,
        )


SCANNER = Scanner(
    name="enterface",
    title="eNTERFACE'05",
    layout="ROOT/subject <N>/<anger|disgust|fear|happiness|sadness|surprise>/sentence <M>/"
    "s<N>_<an|di|fe|ha|sa|su>_<M>.avi with a wav of the same stem beside each clip (subject 6: "
    "no sentence folder)",
    find=find,
    required=(("subject *", "*/subject *"),),
)
