"""MEAD (audio-visual, English): per actor ``<actor>/audio/<emotion>/level_<n>/<NNN>.m4a``, e.g.
``M003/audio/angry/level_1/001.m4a``.

Actors are ``M<NNN>`` (male) and ``W<NNN>`` (female, gender ``F``); the actor folders sit directly
under the root (``ROOT/M003/audio/...``, each actor's ``audio.tar`` unpacked in its folder) or
below one wrapper folder. Emotion folders angry, contempt, disgusted, fear, happy, neutral, sad,
surprised; intensity ``level_1`` .. ``level_3`` (neutral has level_1 only). The emotion folder is
the label; SER-Evals maps contempt to disgust (rules in ``label_map.csv``). The ``video`` folders
are ignored. Speaker = the actor id (``mead_<actor>``); utterance id
``<actor>_<emotion>_<level>_<NNN>``.

soundfile cannot read m4a: extract a wav beside each file with the same stem, e.g.
``ffmpeg -i 001.m4a -ac 1 -ar 16000 001.wav``; an m4a without its wav is quarantined with that
command. Confidence: medium-high for the actor/audio/emotion/level nesting (as the MEAD download
unpacks), medium for the exact folder spellings (from memory, unchecked).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_or_container

ACTOR = re.compile(r"^([MW])(\d{3})$")
LEVEL = re.compile(r"^level_(\d+)$")
NAME = re.compile(r"^\d+$")
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
LAYOUT_HINT = "not at <actor>/audio/<emotion>/level_<n>/<NNN>.m4a"


def _below_audio(root: Path) -> Callable[[Path], bool]:
    return lambda path: "audio" in path.relative_to(root).parts[:-1]


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for wav, source in wav_or_container(root, ".m4a", _below_audio(root)):
        parts = source.relative_to(root).parts
        audio = len(parts) - 1 - parts[::-1].index("audio")  # the last "audio" folder
        actor_match = ACTOR.match(parts[audio - 1]) if audio >= 1 else None
        below = parts[audio + 1 : -1]
        if actor_match is None or len(below) != 2:
            yield unparsed(wav, "/".join(parts[:-1] + (wav.stem,)), LAYOUT_HINT)
            continue
        actor = parts[audio - 1]
        emotion, level_folder = below
        uid = f"{actor}_{emotion}_{level_folder}_{wav.stem}"
        speaker = f"mead_{actor}"
        gender = {"M": "M", "W": "F"}[actor_match.group(1)]
        level = LEVEL.match(level_folder)
        if level is None or not NAME.match(wav.stem):
            yield unparsed(
                wav,
                uid,
                "not at <actor>/audio/<emotion>/level_<n>/<NNN>.m4a (level folder or number)",
                speaker=speaker,
                gender=gender,
                label=emotion,
            )
            continue
        reason = ""
        if source.suffix.lower() == ".m4a":
            folder = "/".join(parts[:-1])
            reason = (
                f"audio not extracted: run ffmpeg -i {source.name} -ac 1 -ar 16000 {wav.name} "
                f"in {folder}/"
            )
        yield Item(
            path=wav,
            utterance_id=uid,
            speaker=speaker,
            gender=gender,
            label=emotion,
            extra={"intensity": level.group(1)},
            quarantine=reason,
        )


SCANNER = Scanner(
    name="mead",
    title="MEAD",
    layout="ROOT/<M003|W009|...>/audio/<angry|contempt|disgusted|fear|happy|neutral|sad|surprised>/"
    "level_<n>/<NNN>.m4a with a wav of the same stem beside each file",
    find=find,
    required=(("[MW][0-9][0-9][0-9]/audio", "*/[MW][0-9][0-9][0-9]/audio"),),
)
