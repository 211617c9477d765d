"""RESD (Russian Emotional Speech Dialogs, Aniemore): parquet files as on the Hugging Face hub, and
wav files extracted from them.

Layout: ``ROOT/data/train-*.parquet`` and ``ROOT/data/test-*.parquet`` (any ``*.parquet`` below the
root is read, except under ``ROOT/wav/``), columns ``name``, ``path``, ``emotion`` and ``speech``
(the audio struct: ``bytes`` and ``path``). The split is the file name up to its first ``-``
(train / test; it becomes ``official_split``). Emotions anger, disgust, enthusiasm, fear,
happiness, neutral, sadness; SER-Evals maps enthusiasm to other (rules in ``label_map.csv``).

The package reads audio from wav files, so the audio must first be written out:
``python -m selm_lib.data.scan extract resd ROOT`` writes every row's audio to
``ROOT/wav/<split>/<name>.wav`` (the stored bytes as they are when they hold a wav file, else
decoded and written as wav). The scanner reads only the ``name`` and ``emotion`` columns (never
the audio bytes) and points each row at that wav; a row whose wav is absent is quarantined with the
instruction. The utterance id is ``<split>_<name>``.

Speaker: RESD ships no speaker ids. Where ``name`` starts with a number and ``_`` (taken to be the
dialog number, e.g. ``32_happiness_enthusiasm_h_121``) the speaker is that dialog,
``resd_d<number>``; else it is empty (unknown). A dialog holds two actors and the same actors
recur across dialogs, so dialog-disjoint splits are only an approximation of speaker-disjoint ones;
truly speaker-disjoint splits are not possible (use the official train/test split).

Confidence: medium. From memory, unchecked (no network access): the file names under ``data/``,
the column names, and above all the form of ``name`` (the dialog-number prefix).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed

SPLITS = ("train", "test", "validation")
EXTRACT_HINT = "python -m selm_lib.data.scan extract resd ROOT"
DIALOG = re.compile(r"^(\d+)_")
SAFE_NAME = re.compile(r"^[^/\\]+$")


def parquet_files(root: Path) -> list[Path]:
    """Every ``*.parquet`` below ``root``, sorted, except under ``root/wav``."""
    return sorted(
        path
        for path in root.rglob("*.parquet")
        if path.is_file() and path.relative_to(root).parts[0] != "wav"
    )


def split_of(parquet: Path) -> str:
    """``train`` / ``test`` / ``validation`` from a file name like ``train-00000-of-00001.parquet``
    ('' when the name does not start with one of them)."""
    head = parquet.name.split("-")[0].split(".")[0].lower()
    return head if head in SPLITS else ""


def wav_path(root: Path, split: str, name: str) -> Path:
    return root / "wav" / split / f"{name}.wav"


def _names(name_column: str, table: Any) -> list[str]:
    """The ``name`` column, or the stems of the ``path`` column where a file has no ``name``."""
    values = table.column(name_column).to_pylist()
    if name_column == "name":
        return [str(value or "").strip() for value in values]
    return [Path(str(value or "")).stem for value in values]


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for parquet in parquet_files(root):
        relative = parquet.relative_to(root).as_posix()
        try:
            columns = pq.read_schema(parquet).names
            name_column = "name" if "name" in columns else "path"
            if "emotion" not in columns or name_column not in columns:
                yield unparsed(parquet, parquet.stem, f"{relative} lacks the name/emotion columns")
                continue
            table = pq.read_table(parquet, columns=[name_column, "emotion"])
        except (pa.ArrowException, OSError) as error:
            yield unparsed(parquet, parquet.stem, f"cannot read {relative} ({error})")
            continue
        split = split_of(parquet)
        names = _names(name_column, table)
        for name, emotion in zip(names, table.column("emotion").to_pylist(), strict=True):
            label = str(emotion or "").strip().lower()
            dialog = DIALOG.match(name)
            speaker = f"resd_d{int(dialog.group(1))}" if dialog else ""
            if not split:
                yield unparsed(
                    parquet,
                    f"{parquet.stem}_{name}",
                    f"{relative}: the file name does not start with train- or test-",
                    speaker=speaker,
                    label=label,
                )
                continue
            if not name or not SAFE_NAME.match(name):
                yield unparsed(
                    parquet,
                    f"{split}_{name}",
                    f"name '{name}' in {relative} is not a usable file name",
                    speaker=speaker,
                    label=label,
                )
                continue
            path = wav_path(root, split, name)
            reason = "" if path.is_file() else f"audio not extracted: run {EXTRACT_HINT}"
            yield Item(
                path=path,
                utterance_id=f"{split}_{name}",
                speaker=speaker,
                label=label,
                extra={"official_split": split},
                quarantine=reason,
            )


def _wav_bytes(data: bytes) -> bytes | None:
    """``data`` itself when it is a wav file, else the audio decoded and re-encoded as wav (16-bit
    PCM); None when soundfile cannot read it."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        if info.format == "WAV":
            return data
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def extract(root: Path, overwrite: bool = False) -> str:
    """Write every row's audio to ``ROOT/wav/<split>/<name>.wav``; returns a summary line.

    Existing wav files are kept unless ``overwrite``. Rows without audio bytes, with an unusable
    name, in a parquet file whose split cannot be told, or whose bytes soundfile cannot decode are
    skipped and counted, as are unreadable parquet files (a scan lists all of them).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    written = kept = skipped = unreadable = 0
    for parquet in parquet_files(root):
        split = split_of(parquet)
        try:
            handle = pq.ParquetFile(parquet)
        except (pa.ArrowException, OSError):
            unreadable += 1
            continue
        columns = handle.schema_arrow.names
        name_column = "name" if "name" in columns else "path"
        if not split or "speech" not in columns or name_column not in columns:
            skipped += handle.metadata.num_rows
            continue
        for batch in handle.iter_batches(batch_size=64, columns=[name_column, "speech"]):
            names = _names(name_column, batch)
            for name, speech in zip(names, batch.column("speech").to_pylist(), strict=True):
                data = (speech or {}).get("bytes") if isinstance(speech, dict) else None
                if not name or not SAFE_NAME.match(name) or not data:
                    skipped += 1
                    continue
                path = wav_path(root, split, name)
                if path.is_file() and not overwrite:
                    kept += 1
                    continue
                wav = _wav_bytes(data)
                if wav is None:
                    skipped += 1
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(wav)
                written += 1
    return (
        f"RESD: wrote {written} wav files under {root / 'wav'}, kept {kept} already there, "
        f"skipped {skipped} rows (no audio bytes, unusable name or split, undecodable)"
        + (f"; {unreadable} parquet files could not be read" if unreadable else "")
    )


SCANNER = Scanner(
    name="resd",
    title="RESD",
    layout="ROOT/data/{train,test}-*.parquet (columns name, path, emotion, speech) with the audio "
    f"extracted to ROOT/wav/<split>/<name>.wav by '{EXTRACT_HINT}'",
    find=find,
    required=(("**/*.parquet",),),
    has_official_split=True,
    extract=extract,
)
