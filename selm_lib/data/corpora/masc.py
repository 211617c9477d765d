"""MASC, the Mandarin Affective Speech Corpus (LDC2007S09; 68 speakers, 22.05 kHz):
``MASC/data/[<speaker>/]<emotion>/<group>/<name>.wav``.

The SER-Evals code reads ``MASC/data`` and takes the label from the name of each file's
grandparent folder: neutral, anger, elation (-> happiness), panic (-> fear), sadness; the same rule
here, with the folder name lowercased. Point ``curate.corpora.masc.root`` at ``MASC/data`` (or at
``MASC``, which holds ``data/``). The speaker is the folder above the emotion folder
(``masc_<folder>``) when there is one below ``data/``, else unknown (empty: splits of such a tree
are speaker-unknown); the parent folder (``<group>``, e.g. the phrase, sentence or paragraph
recordings) is kept in the ``group`` column. Utterance id: the file's path below ``data/``
without extension (unique whatever the file names repeat). A file with no grandparent folder below
``data/`` is quarantined, and so is one below a folder that is not an emotion (unknown label).
Confidence: medium-low. The grandparent rule is the SER-Evals code's; the corpus's own file-name
convention could not be checked, so where the speaker folder sits is an assumption (gender is
left empty).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

LAYOUT_HINT = (
    "not at [<speaker>/]<emotion>/<group>/<name>.wav below data/ (the label is the grandparent "
    "folder)"
)


def data_folder(root: Path) -> Path:
    """``root/data`` where the root is the corpus folder, else the root itself."""
    return root / "data" if (root / "data").is_dir() else root


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    data = data_folder(root)
    for path in wav_files(data):
        parts = path.relative_to(data).parts
        uid = path.relative_to(data).with_suffix("").as_posix()
        if len(parts) < 3:
            yield unparsed(path, uid, LAYOUT_HINT)
            continue
        emotion, group = parts[-3], parts[-2]
        speaker = f"masc_{parts[-4]}" if len(parts) >= 4 else ""
        yield Item(
            path=path,
            utterance_id=uid,
            speaker=speaker,
            label=emotion.lower(),
            extra={"group": group},
        )


SCANNER = Scanner(
    name="masc",
    title="MASC (Mandarin Affective Speech)",
    layout="ROOT/[<speaker>/]<neutral|anger|elation|panic|sadness>/<group>/<name>.wav with "
    "ROOT = MASC/data (the label is each file's grandparent folder)",
    find=find,
    required=(("data/*/*/*.wav", "data/*/*/*/*.wav", "*/*/*.wav", "*/*/*/*.wav"),),
)
