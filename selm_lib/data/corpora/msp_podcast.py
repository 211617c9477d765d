"""MSP-Podcast: ``Audios/*.wav`` + ``Labels/labels_consensus.csv``, optional per-annotator votes in
``Labels/labels_detailed.csv``.

The detailed table has one row per (file, annotator). Release 1.11 and later write it as
``FileName,EmoDetail`` with ``EmoDetail`` = ``"WORKER00014; Neutral; Concerned,Amused; A:4.0;
V:4.0; D:4.0;"`` (annotator; primary emotion; secondary emotions; ratings); earlier releases as
separate columns, the primary emotion in ``EmoClass_Major``. The primary emotions (Angry, Sad,
Happy, Surprise, Fear, Disgust, Contempt, Neutral, Other or ``Other-<word>``, or their one-letter
codes) become ``votes``, one per row. No detailed table: no votes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora.base import Item, Scanner, wav_files
from selm_lib.data.labels import corpus_labels

SPLITS = {
    "Train": "train",
    "Development": "validation",
    "Test1": "test",
    "Test2": "test",
    "Test3": "test",
}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
# An annotator's primary emotion (lowercased) -> the corpus's label code (label_map.csv).
PRIMARY = {
    "angry": "A",
    "sad": "S",
    "happy": "H",
    "surprise": "U",
    "fear": "F",
    "disgust": "D",
    "contempt": "C",
    "neutral": "N",
    "other": "O",
}


def _primary_code(name: str) -> str | None:
    key = name.strip().lower()
    if key.startswith("other"):  # "Other-Curious", "Other: bored", ...
        return "O"
    if len(key) == 1 and key.upper() in PRIMARY.values():
        return key.upper()
    return PRIMARY.get(key)


def detailed_votes(path: Path) -> dict[str, dict[str, float]]:
    """``{utterance: {package emotion: count}}`` from ``labels_detailed.csv`` (one vote per row;
    {} when the file is absent)."""
    if not path.is_file():
        return {}
    header = pd.read_csv(path, nrows=0).columns
    if "FileName" in header and "EmoDetail" in header:
        table = pd.read_csv(
            path, usecols=["FileName", "EmoDetail"], dtype=str, keep_default_na=False
        )
        primary = table["EmoDetail"].str.split(";").str[1].fillna("").str.strip()
    elif "FileName" in header and "EmoClass_Major" in header:
        table = pd.read_csv(
            path, usecols=["FileName", "EmoClass_Major"], dtype=str, keep_default_na=False
        )
        primary = table["EmoClass_Major"].str.strip()
    else:
        raise ValueError(
            f"{path}: columns {list(header)} are not a per-annotator label table; expected "
            "FileName and EmoDetail (release 1.11 and later: 'WORKER; Primary; Secondary; A:; V:; "
            "D:;') or FileName and EmoClass_Major (earlier releases). Fix: restore the file from "
            "the corpus, or remove it to scan without annotator votes."
        )
    codes = primary.map(_primary_code)
    if codes.isna().any():
        row = int(codes.isna().to_numpy().argmax())
        raise ValueError(
            f"{path}: row {row + 2} ({table['FileName'].iloc[row]}): primary emotion "
            f"{primary.iloc[row]!r} is not one of {', '.join(k.capitalize() for k in PRIMARY)} "
            "(or Other-<word>, or a one-letter code)"
        )
    emotions = {code: entry["emotion"] for code, entry in corpus_labels("msp_podcast").items()}
    frame = pd.DataFrame(
        {"utt": table["FileName"].map(lambda n: Path(n).stem), "emotion": codes.map(emotions)}
    )
    counts = frame.groupby(["utt", "emotion"], sort=True).size()
    votes: dict[str, dict[str, float]] = {}
    for (utt, emotion), count in counts.items():
        votes.setdefault(utt, {})[emotion] = float(count)
    return votes


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    labels_path = root / "Labels" / "labels_consensus.csv"
    table = pd.read_csv(labels_path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{labels_path}: missing columns {missing}; expected {list(COLUMNS)}")
    rows = {Path(r["FileName"]).stem: r for _, r in table.iterrows()}
    votes = detailed_votes(root / "Labels" / "labels_detailed.csv")
    audio = {p.stem: p for p in wav_files(root / "Audios")}
    for utt in sorted(set(rows) | set(audio)):
        row = rows.get(utt)
        path = audio.get(utt, root / "Audios" / f"{utt}.wav")
        if row is None:
            yield Item(path, utt, "", quarantine="no row in Labels/labels_consensus.csv")
            continue
        speaker = row["SpkrID"].strip()
        yield Item(
            path=path,
            utterance_id=utt,
            # Unknown speakers stay empty: splits keep them in training, never across a split.
            speaker="" if speaker.lower() in ("", "unknown") else f"msp_podcast_{speaker}",
            gender={"male": "M", "female": "F"}.get(row["Gender"].strip().lower(), ""),
            label=row["EmoClass"],
            valence=_float(row["EmoVal"]),
            arousal=_float(row["EmoAct"]),
            dominance=_float(row["EmoDom"]),
            extra={"official_split": SPLITS.get(row["Split_Set"], row["Split_Set"])},
            votes=votes.get(utt),
        )


SCANNER = Scanner(
    name="msp_podcast",
    title="MSP-Podcast",
    layout="ROOT/Audios/*.wav and ROOT/Labels/labels_consensus.csv (FileName, EmoClass, EmoAct, "
    "EmoVal, EmoDom, SpkrID, Gender, Split_Set), optional ROOT/Labels/labels_detailed.csv "
    "(per-annotator rows: FileName, EmoDetail)",
    find=find,
    required=(("Audios",), ("Labels/labels_consensus.csv",)),
    vad_scale=(1.0, 7.0),
    has_official_split=True,
)
