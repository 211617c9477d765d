"""CASIA (Mandarin, the public 1200-utterance subset): ``<speaker>/<emotion>/<NNN>.wav``, e.g.
``liuchanhg/angry/201.wav``.

Four speaker folders (liuchanhg, wangzhe, zhaoquanyin, ZhaoZuoxiang); emotion folders angry, fear,
happy, neutral, sad, surprise; numeric file names (repeated across speakers and emotions, so the
utterance id is ``<speaker>_<emotion>_<NNN>``). Gender is not in the naming: left empty. Other
speaker folder names are accepted (the archive circulates in variants); the emotion folder is the
label, and an unknown one is quarantined. Confidence: medium (no official distribution).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^\d+$")
EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        parts = path.relative_to(root).parts
        if len(parts) != 3:
            yield unparsed(path, path.stem, "not at <speaker>/<emotion>/<NNN>.wav below the root")
            continue
        speaker, emotion, _ = parts
        uid = f"{speaker}_{emotion}_{path.stem}"
        reason = ""
        if not NAME.match(path.stem):
            reason = "file name is not a number (<speaker>/<emotion>/<NNN>.wav)"
        yield Item(
            path=path,
            utterance_id=uid,
            speaker=f"casia_{speaker}",
            label=emotion,
            quarantine=reason,
        )


SCANNER = Scanner(
    name="casia",
    title="CASIA",
    layout="ROOT/<speaker>/<angry|fear|happy|neutral|sad|surprise>/<NNN>.wav "
    "(e.g. liuchanhg/angry/201.wav)",
    find=find,
    required=(tuple(f"*/{e}" for e in EMOTIONS),),
)
