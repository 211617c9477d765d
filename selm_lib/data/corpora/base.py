"""What every corpus scanner shares: the manifest format, layout errors and audio checks.

A scanner only knows its corpus's layout and naming; it yields :class:`Item` records. ``scan``
turns them into a manifest: labels mapped through ``label_map.csv``, every file opened and checked,
and unusable ones kept with the reason in ``quarantine`` (never silently dropped). A row reads
its whole file mixed to mono, or only the file's ``channel`` (1-based) where that column is set
(an Expresso dialogue holds one actor per channel); :func:`row_channel` reads that column back.
Where a corpus ships its annotators' votes, ``votes`` holds them as compact JSON in package
emotion names (:func:`votes_json`; empty where there are none); :func:`parse_votes` reads them back.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.audio import AudioCheck, check_audio
from selm_lib.data.labels import corpus_labels

MANIFEST_COLUMNS = [
    "path",
    "corpus",
    "utterance_id",
    "speaker",
    "gender",
    "label",
    "emotion",
    "sentiment",
    "valence",
    "arousal",
    "dominance",
    "duration_s",
    "sample_rate",
    "channels",
    "channel",  # the one channel a row reads (1-based; empty: all channels mixed to mono)
    "votes",  # annotators' votes, JSON {"<emotion>": count} (votes_json); empty: none
    "quarantine",
]


class CorpusLayoutError(FileNotFoundError):
    """The corpus root is missing or is not laid out as the corpus is distributed."""


@dataclass
class Item:
    """One file (or one labelled row) found by a scanner, before its audio is checked."""

    path: Path
    utterance_id: str
    speaker: str
    gender: str = ""
    label: str = ""
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    sentiment: str | None = None  # set where the corpus has its own sentiment label (MELD)
    # the one channel of a multichannel file this row reads (1-based; Expresso dialogues hold one
    # actor per channel); None: every channel, mixed to mono
    channel: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    quarantine: str = ""  # a reason found from names/labels alone (bad name, no label, ...)
    # the annotators' votes, {package emotion: count}, where the corpus ships them; None: none
    votes: dict[str, float] | None = None


@dataclass(frozen=True)
class Scanner:
    """A corpus's layout facts and the function that walks it."""

    name: str
    title: str
    layout: str  # the expected layout, quoted in errors
    find: Callable[[Path, dict[str, Any]], Iterable[Item]]
    # Each group lists glob patterns of which at least one must match under the root.
    required: tuple[tuple[str, ...], ...] = ()
    vad_scale: tuple[float, float] | None = None  # range of the corpus's V/A/D ratings
    has_official_split: bool = False
    # Writes the wav files a corpus needs from its distributed form
    # (``python -m selm_lib.data.scan extract NAME ROOT``): called as extract(root, overwrite=...),
    # returns a one-line summary. None where the distributed files are already wav.
    extract: Callable[..., str] | None = None

    def missing_parts(self, root: Path) -> list[str]:
        """The required layout parts absent under ``root`` (empty when the layout looks right)."""
        return [
            " or ".join(group)
            for group in self.required
            if not any(any(root.glob(pattern)) for pattern in group)
        ]


def unparsed(
    path: Path, uid: str, reason: str, *, speaker: str = "", gender: str = "", label: str = ""
) -> Item:
    """The record of a file whose name or place does not parse: kept, with ``reason`` as its
    quarantine (never silently dropped)."""
    return Item(path, uid, speaker, gender=gender, label=label, quarantine=reason)


def layout_error(scanner: Scanner, root: Path, problem: str, params_key: str) -> CorpusLayoutError:
    return CorpusLayoutError(
        f"{scanner.title} at '{root}': {problem}.\n"
        f"  Expected layout: {scanner.layout}\n"
        f"  Fix: set params.yaml key '{params_key}' to the folder that holds this layout "
        "(relative paths are under common.data_root)."
    )


def wav_files(folder: Path) -> Iterator[Path]:
    """Every ``*.wav`` below ``folder``, sorted, case-insensitive on the extension."""
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() == ".wav" and not path.is_dir():
            yield path


def wav_or_container(
    root: Path, container: str, keep: Callable[[Path], bool] | None = None
) -> Iterator[tuple[Path, Path]]:
    """``(wav path, source)`` per clip stem below ``root`` for corpora shipped in a container
    format (``container``, e.g. ``".avi"``) whose audio is extracted to a wav beside it: the source
    is the wav when it exists, else the container file (sorted; a container and its wav count
    once). ``keep`` filters the files considered."""
    found: dict[Path, Path] = {}
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in (".wav", container) or path.is_dir() or (keep and not keep(path)):
            continue
        wav = path.with_suffix(".wav") if suffix == container else path
        if suffix == ".wav" or wav not in found:
            found[wav] = path
    for wav in sorted(found):
        yield wav, found[wav]


def display_path(path: Path) -> str:
    """Relative to the working directory when below it (so manifests do not depend on where the
    project lives), else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def build_manifest(
    scanner: Scanner,
    items: Iterable[Item],
    *,
    min_duration_s: float = 0.2,
    silence_dbfs: float = -60.0,
    progress: bool = False,
) -> pd.DataFrame:
    """Map labels, check every file's audio, and return the manifest (sorted by utterance id)."""
    labels = corpus_labels(scanner.name)
    emotions = {entry["emotion"] for entry in labels.values()}
    rows = []
    items = list(items)
    iterator: Iterable[Item] = items
    if progress:
        from tqdm import tqdm

        iterator = tqdm(items, desc=f"scan {scanner.name}", unit="file", leave=False)
    checked: tuple[Path, AudioCheck] | None = None
    for item in iterator:
        # a corpus's ``*`` row of label_map.csv maps every label it does not list
        mapped = labels.get(item.label, labels.get("*"))
        reason = item.quarantine
        if mapped is None and not reason:
            known = ", ".join(sorted(labels))
            reason = f"unknown label '{item.label}' (known: {known})"
        if checked is None or checked[0] != item.path:  # one read for the rows of one file
            audio = check_audio(item.path, min_duration_s=min_duration_s, silence_dbfs=silence_dbfs)
            checked = (item.path, audio)
        check = checked[1]
        if not reason:
            reason = check.quarantine
        if not reason and item.channel is not None and item.channel > check.channels:
            reason = f"reads channel {item.channel} but the file has {check.channels}"
        if item.votes and not set(item.votes) <= emotions:
            raise ValueError(
                f"{scanner.title} scanner: votes of '{item.utterance_id}' name "
                f"{sorted(set(item.votes) - emotions)}, which are not emotions of its label map "
                f"(selm_lib/data/tables/label_map.csv: {sorted(emotions)})"
            )
        sentiment = (
            item.sentiment if item.sentiment is not None else (mapped or {}).get("sentiment", "")
        )
        rows.append(
            {
                "path": display_path(item.path),
                "corpus": scanner.name,
                "utterance_id": item.utterance_id,
                "speaker": item.speaker,
                "gender": item.gender,
                "label": item.label,
                "emotion": (mapped or {}).get("emotion", ""),
                "sentiment": sentiment,
                "valence": item.valence,
                "arousal": item.arousal,
                "dominance": item.dominance,
                "duration_s": round(check.duration_s, 4),
                "sample_rate": check.sample_rate,
                "channels": check.channels,
                "channel": item.channel if item.channel is not None else "",
                "votes": votes_json(item.votes),
                "quarantine": reason,
                "serevals8": (mapped or {}).get("serevals8", ""),
                **item.extra,
            }
        )
    manifest = pd.DataFrame(rows)
    if manifest.empty:
        manifest = pd.DataFrame(columns=MANIFEST_COLUMNS + ["serevals8"])
    manifest = manifest.sort_values(["utterance_id", "path"], kind="stable").reset_index(drop=True)
    return manifest


def row_channel(value: Any) -> int | None:
    """The ``channel`` cell of a manifest row as the 1-based channel to read, or None (empty,
    NaN or missing: mix every channel to mono). Accepts what a CSV round trip gives back
    (``""``, ``"2"``, ``2``, ``2.0``)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        channel = float(text)
    except ValueError:
        channel = 0.0
    if not channel.is_integer() or channel < 1:
        raise ValueError(
            f"manifest column 'channel' holds {value!r}: a channel number from 1, or empty to mix "
            "every channel to mono"
        )
    return int(channel)


# The manifest column ``votes``: one compact JSON object ``{"<emotion>": count, ...}`` per row, in
# package emotion names, keys sorted, no zero counts, counts rounded to 6 decimals (whole numbers
# written as integers), so the same votes always give the same bytes; '' = no votes. Counts may be
# fractional where annotators name several categories at once (IEMOCAP: each evaluator's
# categories share one vote).
VOTE_DECIMALS = 6


def votes_json(votes: Mapping[str, float] | None) -> str:
    """The ``votes`` cell of ``{emotion: count}`` ('' for None or no positive count)."""
    if not votes:
        return ""
    clean: dict[str, int | float] = {}
    for emotion, count in votes.items():
        if not isinstance(emotion, str) or not emotion:
            raise ValueError(f"votes: emotion names must be non-empty strings, got {emotion!r}")
        value = float(count)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"votes: count of '{emotion}' is {count!r}; counts are >= 0")
        value = round(value, VOTE_DECIMALS)
        if value == 0:
            continue
        clean[emotion] = int(value) if value.is_integer() else value
    if not clean:
        return ""
    return json.dumps(clean, sort_keys=True, separators=(",", ":"))


def parse_votes(cell: Any) -> dict[str, float]:
    """A ``votes`` cell back as ``{emotion: count}`` ({} for '', NaN or None). Accepts what a CSV
    round trip gives back."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return {}
    text = str(cell).strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"manifest column 'votes' holds {text[:80]!r}, which is not JSON ({error.msg}); "
            'expected {"<emotion>": count, ...} or empty. Rerun the curate stage to rewrite it.'
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v >= 0
        for k, v in value.items()
    ):
        raise ValueError(
            f"manifest column 'votes' holds {text[:80]!r}: expected a JSON object of "
            "non-negative counts by emotion, or empty. Rerun the curate stage to rewrite it."
        )
    return {k: float(v) for k, v in value.items()}


def usable(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows with an empty quarantine reason."""
    return manifest[manifest["quarantine"].fillna("") == ""]
