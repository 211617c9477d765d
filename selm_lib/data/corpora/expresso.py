"""Expresso (English, 4 speakers ex01-ex04, 48 kHz wav): read and improvised conversational speech
in speaking styles.

Layout as distributed (the dataset's README; the root holds ``audio_48khz/``, or is that folder):

- read (mono): ``audio_48khz/read/<speaker>/<style>/<subset>/<speaker>_<style>_<NNNNN>.wav``,
  e.g. ``read/ex03/default/base/ex03_default_00003.wav``; ``subset`` is ``base`` or
  ``longform`` (any name is accepted, and so is a file directly in the style folder). The name
  must start with the folder's speaker and style (extra tokens before the number are accepted,
  e.g. ``ex03_default_emphasis_00010``).
- conversational (stereo, **one actor per channel**):
  ``audio_48khz/conversational/<spk1>-<spk2>/<style1>-<style2>/<spk1>-<spk2>_<style1>-<style2>
  _<NNN>.wav``, e.g. ``ex04-ex01/animal-animaldir/ex04-ex01_animal-animaldir_005.wav``: channel 1
  is ``spk1`` speaking in ``style1``, channel 2 ``spk2`` in ``style2``; a style folder with one
  style (``laughing/``) means both channels have it.

``curate.expresso_dialogues`` (the scanner option ``dialogues``) says what a dialogue becomes:

- ``split`` (default): two rows, ``<stem>_ch1`` and ``<stem>_ch2``, each with its own speaker,
  style and ``channel`` (the manifest column the audio reader takes the channel from). A mono
  file in a dialogue folder cannot be split (the speaker cannot be told) and a file with more
  than two channels is not a dialogue: both are quarantined.
- ``mix``: the SER-Evals code's reading: one row mixed to mono (empty ``channel``), labelled
  with the first style of :data:`STYLES` (in that order) that occurs in the lowercased file
  name, so a style-pair file gets the first style that matches (``animal-animaldir`` ->
  ``animal``); the speaker is the pair (``expresso_<spk1>-<spk2>``), so a speaker-disjoint split
  over mixed dialogues is disjoint by pair, not by actor (SER-Evals splits at random anyway).

A file already cut to one actor (``..._<NNN>_channel<1|2>.wav``) is one row in both modes, with
that channel's speaker and style. A dialogue whose name does not start with its pair and style
folders is quarantined with the reason; so is one in a folder that is not a pair ``exNN-exNN``.

Labels are the styles folded to one spelling (lowercased, without ``_``, ``-`` and spaces;
``animal_directed`` / ``animaldir`` -> ``animaldir``): the keys of ``label_map.csv``, where every
style is listed (an unlisted one is quarantined as an unknown label). The ``style`` column holds
the full style name (``animaldir`` -> ``animal_directed``, ``nonverbal`` -> ``non_verbal``).
Label rules from SER-Evals: default, calm, bored -> neutral; awe -> surprise; laughing ->
happiness; most -> other; plus happy, sad, angry, disgusted, fearful to their classes. Speaker =
``expresso_<exNN>``; gender left empty (not in the layout). Conversational files are long; the
30 s truncation happens downstream. Utterance id: the file stem (read files outside ``base`` get
``_<subset>`` appended unless the name already says it; split dialogues ``_ch1`` / ``_ch2``).
The ``dialogue`` column names the source dialogue of conversational rows.

Confidence: high for the layout and channel assignment (the dataset's README), medium for the
full list of style abbreviations used in folder names (``animaldir`` and ``childdir`` are
documented; other spellings are folded by the same rule).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile as sf

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

# The 26 styles in the order of the SER-Evals style map (mix mode: the first one in a file name).
STYLES = (
    "angry",
    "animal",
    "animal_directed",
    "awe",
    "bored",
    "calm",
    "child",
    "child_directed",
    "confused",
    "default",
    "desire",
    "disgusted",
    "enunciated",
    "fast",
    "fearful",
    "happy",
    "laughing",
    "narration",
    "non_verbal",
    "projected",
    "sad",
    "sarcastic",
    "singing",
    "sleepy",
    "sympathetic",
    "whisper",
)
DIALOGUE_MODES = ("split", "mix")
SPEAKER = re.compile(r"^ex\d\d$")
PAIR = re.compile(r"^(ex\d\d)-(ex\d\d)$")
READ_NAME = re.compile(r"^(ex\d\d)_(.+)_(\d+)$")
CHANNEL = re.compile(r"(?:^|_)(?:channel|ch)([12])(?:_|$)")
ALIASES = {"animaldirected": "animaldir", "childdirected": "childdir"}
SECTIONS = ("read", "conversational")
LAYOUT_HINT = (
    "not at read/<speaker>/<style>/[<subset>/]<name>.wav or "
    "conversational/<spk1>-<spk2>/<style1>[-<style2>]/<name>.wav below audio_48khz/"
)
DIALOGUE_HINT = "not at conversational/<exNN>-<exNN>/<style1>[-<style2>]/<name>.wav"


def canonical(style: str) -> str:
    """The label of a style: lowercased, without ``_``, ``-`` and spaces, aliases folded."""
    key = re.sub(r"[-_ ]", "", style.lower())
    return ALIASES.get(key, key)


FULL_NAMES = {canonical(style): style for style in STYLES}


def full_name(label: str) -> str:
    """The style's name as the dataset lists it (``animaldir`` -> ``animal_directed``)."""
    return FULL_NAMES.get(label, label)


def first_style(file_name: str) -> str | None:
    """The first style of :data:`STYLES` that occurs in the lowercased name (SER-Evals' rule)."""
    lowered = file_name.lower()
    return next((style for style in STYLES if style in lowered), None)


def dialogue_mode(options: dict[str, Any]) -> str:
    mode = options.get("dialogues", "split")
    if mode not in DIALOGUE_MODES:
        raise ValueError(
            f"params.yaml 'curate.expresso_dialogues' is {mode!r}; use split (one row per "
            "channel, each actor with its own style) or mix (SER-Evals: mono mixdown, first "
            "style in the file name)"
        )
    return mode


def _channel_count(path: Path) -> int | None:
    """Channels the header declares; None when the file cannot be opened (the audio check then
    quarantines it with the reason)."""
    try:
        return int(sf.info(str(path)).channels)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None


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
        extra=_extra("read", label, subset=subset),
        quarantine=reason,
    )


def _extra(section: str, label: str, subset: str = "", dialogue: str = "") -> dict[str, str]:
    return {"section": section, "style": full_name(label), "subset": subset, "dialogue": dialogue}


def _conversational(path: Path, after: tuple[str, ...], mode: str) -> Iterator[Item]:
    pair, style_folder = after[0], after[1]
    styles = style_folder.split("-")
    labels = [canonical(style) for style in (styles * 2 if len(styles) == 1 else styles)]
    pair_match = PAIR.match(pair)
    if not pair_match:
        yield unparsed(path, path.stem, f"{DIALOGUE_HINT} ({pair}/ is not a speaker pair)")
        return
    if len(labels) != 2:
        problem = f"{DIALOGUE_HINT} ({style_folder}/ is not one style or a style pair)"
        yield unparsed(path, path.stem, problem)
        return
    speakers = pair_match.groups()
    stem = path.stem
    rest = stem[len(pair) + 1 :] if stem.startswith(f"{pair}_") else ""
    reason = ""
    if not rest:
        reason = f"name does not start with the pair {pair}_ of its folder"
    elif not canonical(rest).startswith(canonical(style_folder)):
        reason = f"the name does not carry the style of its folder {style_folder}/"
    if reason:
        extra = _extra("conversational", labels[0], dialogue=stem)
        yield Item(path, stem, "", label=labels[0], extra=extra, quarantine=reason)
        return

    named = CHANNEL.search(rest)
    if named:  # already cut to one actor: ..._channel1.wav / ..._channel2.wav
        index = int(named.group(1)) - 1
        speaker, label = f"expresso_{speakers[index]}", labels[index]
        yield Item(
            path, stem, speaker, label=label, extra=_extra("conversational", label, dialogue=stem)
        )
        return

    if mode == "mix":
        matched = first_style(path.name)
        label = canonical(matched) if matched else labels[0]  # no style in the name: channel 1's
        extra = _extra("conversational", label, dialogue=stem)
        yield Item(path, stem, f"expresso_{pair}", label=label, extra=extra)
        return

    channels = _channel_count(path)
    if channels is not None and channels != 2:
        found = "a mono file" if channels == 1 else f"{channels} channels"
        reason = (
            f"cannot tell the speakers apart: {found} in the dialogue folder {pair}/, while "
            "curate.expresso_dialogues: split reads one actor per channel of a stereo file "
            "(name a file cut to one actor ..._channel1.wav / ..._channel2.wav, or set "
            "curate.expresso_dialogues: mix)"
        )
        extra = _extra("conversational", labels[0], dialogue=stem)
        yield Item(path, stem, "", label=labels[0], extra=extra, quarantine=reason)
        return
    # two rows, one per actor (an unreadable file too: the audio check quarantines both halves)
    for number, (speaker, label) in enumerate(zip(speakers, labels, strict=True), start=1):
        yield Item(
            path=path,
            utterance_id=f"{stem}_ch{number}",
            speaker=f"expresso_{speaker}",
            label=label,
            channel=number,
            extra=_extra("conversational", label, dialogue=stem),
        )


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    mode = dialogue_mode(options)
    for path in wav_files(root):
        parts = path.relative_to(root).parts
        index = next((i for i, part in enumerate(parts) if part in SECTIONS), None)
        after = parts[index + 1 :] if index is not None else ()
        if index is not None and parts[index] == "read" and len(after) in (3, 4):
            yield _read(path, after)
        elif index is not None and parts[index] == "conversational" and len(after) == 3:
            yield from _conversational(path, after, mode)
        else:
            yield unparsed(path, path.stem, LAYOUT_HINT)


SCANNER = Scanner(
    name="expresso",
    title="Expresso",
    layout="ROOT/audio_48khz/read/<exNN>/<style>/<base|longform>/<exNN>_<style>_<NNNNN>.wav"
    " and ROOT/audio_48khz/conversational/<exNN>-<exNN>/<style1>[-<style2>]/<exNN>-<exNN>_"
    "<style1>[-<style2>]_<NNN>.wav (stereo, one actor per channel; ROOT may also be audio_48khz "
    "itself)",
    find=find,
    required=(
        ("audio_48khz/read", "audio_48khz/conversational", "read/ex*", "conversational/ex*-ex*"),
    ),
)
