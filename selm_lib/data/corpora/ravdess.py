"""RAVDESS: ``Audio_Speech_Actors_01-24/Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (and the song set)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, wav_files

NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
SPEECH_DIR, SONG_DIR = "Audio_Speech_Actors_01-24", "Audio_Song_Actors_01-24"
ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")


def _actor_folders(root: Path, include_song: bool) -> list[tuple[Path, str]]:
    """(folder, vocal channel) pairs; the speech zip may also be unpacked straight into ``root``."""
    folders = []
    for sub, channel in ((SPEECH_DIR, "speech"), (SONG_DIR, "song")):
        if channel == "song" and not include_song:
            continue
        base = root / sub
        if base.is_dir():
            folders += [(p, channel) for p in sorted(base.iterdir()) if ACTOR_DIR.match(p.name)]
    if not folders:  # Audio_Speech_Actors_01-24.zip unpacks to Actor_XX/ directly
        folders = [(p, "speech") for p in sorted(root.iterdir()) if ACTOR_DIR.match(p.name)]
    return folders


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for folder, channel in _actor_folders(root, options.get("include_song", False)):
        folder_actor = ACTOR_DIR.match(folder.name).group(1)
        for path in wav_files(folder):
            match = NAME.match(path.stem)
            if not match:
                yield Item(
                    path,
                    path.stem,
                    f"ravdess_{folder_actor}",
                    quarantine=("file name does not follow MM-VV-EE-II-SS-RR-AA.wav"),
                )
                continue
            modality, vocal, emotion, intensity, statement, repetition, actor = match.groups()
            reason = ""
            if actor != folder_actor:
                reason = f"actor {actor} in the name but the file is in {folder.name}"
            elif modality != "03":
                reason = f"modality {modality} is not audio-only (03)"
            elif vocal != {"speech": "01", "song": "02"}[channel]:
                reason = f"vocal channel {vocal} does not match folder ({channel})"
            yield Item(
                path=path,
                utterance_id=path.stem,
                speaker=f"ravdess_{actor}",
                gender="M" if int(actor) % 2 == 1 else "F",  # odd actors male, even female
                label=emotion,
                extra={
                    "vocal_channel": channel,
                    "intensity": {"01": "normal", "02": "strong"}.get(intensity, intensity),
                    "statement": statement,
                    "repetition": repetition,
                },
                quarantine=reason,
            )


SCANNER = Scanner(
    name="ravdess",
    title="RAVDESS",
    layout=f"ROOT/{SPEECH_DIR}/Actor_XX/03-01-EE-II-SS-RR-XX.wav (speech; song in {SONG_DIR}/), "
    "or the speech zip unpacked as ROOT/Actor_XX/",
    find=find,
    required=(("Audio_Speech_Actors_01-24", "Audio_Song_Actors_01-24", "Actor_[0-9][0-9]"),),
)
