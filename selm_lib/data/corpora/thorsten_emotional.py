"""Thorsten emotional (German, one male speaker): ``<style>/<id>.wav``, e.g.
``amused/0a1b2c3d.wav``.

Style folders amused, angry, disgusted, drunk, neutral, sleepy, surprised, whisper (the folder is
the label; SER-Evals maps amused -> happiness and whisper, sleepy, drunk -> other). The same
sentence id recurs in every style folder, so the utterance id is ``<style>_<id>``. A wrapper folder
(e.g. ``thorsten-emotional_v02/``) below the root is accepted. Files outside a style folder or with
names holding characters other than letters, digits, ``_`` and ``-`` are quarantined.
Confidence: medium (the Zenodo "thorsten-emotional" release; file ids not checked further).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, wav_files

NAME = re.compile(r"^[\w-]+$")
STYLES = ("amused", "angry", "disgusted", "drunk", "neutral", "sleepy", "surprised", "whisper")


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        style = path.parent.name
        uid = f"{style}_{path.stem}"
        reason = ""
        if style not in STYLES:
            reason = f"not inside a style folder ({', '.join(STYLES)})"
        elif not NAME.match(path.stem):
            reason = "file name is not an id of letters, digits, '_' or '-'"
        yield Item(
            path=path,
            utterance_id=uid,
            speaker="thorsten_emotional_thorsten",
            gender="M",
            label=style,
            quarantine=reason,
        )


SCANNER = Scanner(
    name="thorsten_emotional",
    title="Thorsten emotional",
    layout="ROOT/[thorsten-emotional_vXX/]<amused|angry|disgusted|drunk|neutral|sleepy|surprised|"
    "whisper>/<id>.wav",
    find=find,
    required=(tuple(f"{prefix}{s}" for prefix in ("", "*/") for s in STYLES),),
)
