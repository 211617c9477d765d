"""Expresso (English, 4 speakers ex01-ex04, 48 kHz wav): read and improvised conversational speech
in speaking styles.

Layout (the root holds ``audio_48khz/``, or is that folder):

- read: ``audio_48khz/read/<speaker>/<style>/<subset>/<speaker>_<style>_<NNNNN>.wav``, e.g.
  ``read/ex01/happy/base/ex01_happy_00001.wav``; ``subset`` is ``base``, ``longform`` or
  ``emphasis`` (any name is accepted, and so is a file directly in the style folder). The name
  must start with the folder's speaker and style (extra tokens before the number are accepted,
  e.g. ``ex01_default_emphasis_00001``).
- conversational: ``audio_48khz/conversational/<spkA>-<spkB>/<style>/<spkA>-<spkB>_<style>_<NNN>
  _channel<1|2>.wav``; channel 1 is spkA, channel 2 spkB. A name without ``channel1`` /
  ``channel2`` (the speaker cannot be told), or whose pair or style differ from its folders, is
  quarantined with the reason.

The style folder is the label, lowercased with ``_``, ``-`` and spaces removed (``non_verbal`` ->
``nonverbal``; ``animal_directed`` / ``child_directed`` -> ``animaldir`` / ``childdir``). Label
rules from SER-Evals (26 styles; default, calm, bored -> neutral; awe -> surprise; laughing ->
happiness; most -> other), plus happy, sad, angry, disgusted, fearful to their classes; every
style is listed in ``label_map.csv`` (an unlisted one is quarantined as an unknown label).
Speaker = ``expresso_<exNN>``; gender left empty (not in the layout). Conversational files are
long; the 30 s truncation happens downstream. Utterance id: the file stem (read files outside
``base`` get ``_<subset>`` appended unless the name already says it).

Confidence: medium-low on the details (from memory, unchecked): the ``audio_48khz`` folder, the
``base``/``longform``/``emphasis`` subsets, the exact style spellings and the conversational
channel naming. The lenient parsing above is meant to absorb variants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

SPEAKER = re.compile(r"^ex\d\d$")
PAIR = re.compile(r"^(ex\d\d)-(ex\d\d)$")
READ_NAME = re.compile(r"^(ex\d\d)_(.+)_(\d+)$")
CHANNEL = re.compile(r"(?:^|_)(?:channel|ch)([12])(?:_|$)")
ALIASES = {"animaldirected": "animaldir", "childdirected": "childdir"}
SECTIONS = ("read", "conversational")
LAYOUT_HINT = (
    "not at read/<speaker>/<style>/[<subset>/]<name>.wav or "
    "conversational/<spkA>-<spkB>/<style>/<name>.wav below audio_48khz/"
)


def canonical(style: str) -> str:
    """The label of a style folder: lowercased, without ``_``, ``-`` and spaces, aliases folded."""
    key = re.sub(r"[-_ ]", "", style.lower())
    return ALIASES.get(key, key)


def _read(path: Path, after: tuple[str, ...]) -> Item:
    speaker_folder, style = after[0], after[1]
    subset = after[2] if len(after) == 4 else ""
    label = canonical(style)
    uid = path.stem
    if subset and subset != "base" and subset.lower() not in path.stem.lower().split("_"):
        uid = f"{path.stem}_{subset}"
    speaker = f"expresso_{speaker_folder}" if SPEAKER.match(speaker_folder) else ""
    match = READ_NAME.match(path.stem)
    if not SPEAKER.match(speaker_folder) or not match:
        return unparsed(
            path,
            uid,
            "not at read/<exNN>/<style>/[<subset>/]<exNN>_<style>_<NNNNN>.wav",
            speaker=speaker,
            label=label,
        )
    name_speaker, middle, _ = match.groups()
    reason = ""
    if name_speaker != speaker_folder:
        reason = f"speaker {name_speaker} in the name but the file is in {speaker_folder}/"
    elif not canonical(middle).startswith(label):
        reason = f"style '{middle}' in the name but the file is in {style}/"
    return Item(
        path=path,
        utterance_id=uid,
        speaker=speaker,
        label=label,
        extra={"section": "read", "style": style, "subset": subset},
        quarantine=reason,
    )


def _conversational(path: Path, after: tuple[str, ...]) -> Item:
    pair, style = after[0], after[1]
    label = canonical(style)
    pair_match = PAIR.match(pair)
    if not pair_match:
        return unparsed(
            path,
            path.stem,
            "not at conversational/<exNN>-<exNN>/<style>/<name>.wav",
            label=label,
        )
    rest = path.stem[len(pair) + 1 :] if path.stem.startswith(f"{pair}_") else ""
    channel = CHANNEL.search(rest)
    reason = ""
    speaker = ""
    if not rest:
        reason = f"name does not start with the pair {pair}_ of its folder"
    elif not canonical(rest).startswith(label):
        reason = f"the name does not carry the style of its folder {style}/"
    elif channel is None:
        reason = "cannot tell the speaker: no _channel1 / _channel2 in the name"
    else:
        speaker = f"expresso_{pair_match.group(int(channel.group(1)))}"
    return Item(
        path=path,
        utterance_id=path.stem,
        speaker=speaker,
        label=label,
        extra={"section": "conversational", "style": style, "subset": ""},
        quarantine=reason,
    )


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        parts = path.relative_to(root).parts
        index = next((i for i, part in enumerate(parts) if part in SECTIONS), None)
        after = parts[index + 1 :] if index is not None else ()
        if index is not None and parts[index] == "read" and len(after) in (3, 4):
            yield _read(path, after)
        elif index is not None and parts[index] == "conversational" and len(after) == 3:
            yield _conversational(path, after)
        else:
            yield unparsed(path, path.stem, LAYOUT_HINT)


SCANNER = Scanner(
    name="expresso",
    title="Expresso",
    layout="ROOT/audio_48khz/read/<exNN>/<style>/<base|longform|emphasis>/<exNN>_<style>_<NNNNN>.wav"
    " and ROOT/audio_48khz/conversational/<exNN>-<exNN>/<style>/<exNN>-<exNN>_<style>_<NNN>"
    "_channel<1|2>.wav (ROOT may also be audio_48khz itself)",
    find=find,
    required=(
        ("audio_48khz/read", "audio_48khz/conversational", "read/ex*", "conversational/ex*-ex*"),
    ),
)
