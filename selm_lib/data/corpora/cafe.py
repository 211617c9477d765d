"""CaFE (Canadian French): ``<Emotion>/<Intensity>/<SS>-<E>-<I>-<N>.wav``, e.g.
``Colère/Faible/01-C-1-1.wav`` (speaker 01, emotion letter C, intensity 1 = Faible / 2 = Fort,
sentence 1). ``Neutre/`` holds its files directly (no intensity folder). Emotion folders: Colère
(C), Dégoût (D), Joie (J), Neutre (N), Peur (P), Surprise (S), Tristesse (T).

The label is the letter in the name; it is checked against the emotion folder (accents compared
after Unicode normalisation, so NFD names from macOS archives also match). Gender is not encoded
in the names, so it is left empty. Confidence: medium-high (layout of the 48 kHz and 192 kHz
archives as distributed on Zenodo; the intensity digit/folder pairing is assumed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, unparsed, wav_files

NAME = re.compile(r"^(\d\d)-([CDJNPST])-([12])-(\d+)$")
FOLDERS = {
    "colère": "C",
    "dégoût": "D",
    "joie": "J",
    "neutre": "N",
    "peur": "P",
    "surprise": "S",
    "tristesse": "T",
}
INTENSITY = {"faible": "1", "fort": "2"}


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for path in wav_files(root):
        parts = [_key(p) for p in path.relative_to(root).parts[:-1]]
        folder_letter = next((FOLDERS[p] for p in parts if p in FOLDERS), None)
        folder_intensity = next((INTENSITY[p] for p in parts if p in INTENSITY), None)
        match = NAME.match(path.stem)
        if not match:
            yield unparsed(
                path, path.stem, "file name does not follow SS-E-I-N.wav (e.g. 01-C-1-1.wav)"
            )
            continue
        speaker, letter, intensity, sentence = match.groups()
        reason = ""
        if folder_letter is None:
            reason = "not inside an emotion folder (Colère, Dégoût, Joie, Neutre, Peur, ...)"
        elif folder_letter != letter:
            reason = f"emotion {letter} in the name but the folder is emotion {folder_letter}"
        elif folder_intensity is not None and folder_intensity != intensity:
            reason = (
                f"intensity {intensity} in the name but the folder is intensity {folder_intensity}"
            )
        yield Item(
            path=path,
            utterance_id=path.stem,
            speaker=f"cafe_{speaker}",
            label=letter,
            extra={"intensity": {"1": "low", "2": "high"}[intensity], "sentence": sentence},
            quarantine=reason,
        )


SCANNER = Scanner(
    name="cafe",
    title="CaFE",
    layout="ROOT/<Colère|Dégoût|Joie|Peur|Surprise|Tristesse>/<Faible|Fort>/SS-E-I-N.wav and "
    "ROOT/Neutre/SS-N-1-N.wav (e.g. Colère/Faible/01-C-1-1.wav)",
    find=find,
    required=(("Neutre", "Joie", "Peur", "Tristesse", "Surprise", "Col*re", "D*go*t"),),
)
