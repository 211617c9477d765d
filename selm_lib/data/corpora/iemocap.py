"""IEMOCAP: ``Session{n}/sentences/wav/<dialog>/<utt>.wav`` with labels in
``Session{n}/dialog/EmoEvaluation/<dialog>.txt``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, wav_files

# Summary line: "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]".
# Annotator lines ("C-E1:\t...", "A-E2:\t...") and comments do not match and are skipped.
SUMMARY = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\s+(?P<utt>Ses\d\d[FM]_\S+)\s+(?P<label>\w+)\s+"
    r"\[(?P<v>[\d.]+),\s*(?P<a>[\d.]+),\s*(?P<d>[\d.]+)\]"
)


def speaker_of(utterance_id: str) -> tuple[str, str]:
    """``Ses01F_impro01_M012`` -> (``Ses01M``, ``M``): session + first letter of the last token."""
    gender = utterance_id.rsplit("_", 1)[-1][0]
    return f"{utterance_id[:5]}{gender}", gender


def parse_emo_evaluation(path: Path) -> dict[str, dict[str, Any]]:
    """``{utterance: {label, valence, arousal, dominance, start, end}}`` of one EmoEvaluation
    file."""
    labels = {}
    for line in path.read_text(errors="replace").splitlines():
        match = SUMMARY.match(line.strip())
        if match:
            labels[match["utt"]] = {
                "label": match["label"],
                "valence": float(match["v"]),
                "arousal": float(match["a"]),
                "dominance": float(match["d"]),
                "start": float(match["start"]),
                "end": float(match["end"]),
            }
    return labels


def find(root: Path, options: dict[str, Any]) -> Iterator[Item]:
    for session in sorted(p for p in root.glob("Session[1-5]") if p.is_dir()):
        labels: dict[str, dict[str, Any]] = {}
        for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            labels.update(parse_emo_evaluation(txt))
        wav_root = session / "sentences" / "wav"
        seen = set()
        for path in wav_files(wav_root):
            utt = path.stem
            seen.add(utt)
            info = labels.get(utt)
            if not re.match(r"^Ses\d\d[FM]_", utt) or info is None:
                yield Item(path, utt, "", quarantine="no summary line in dialog/EmoEvaluation")
                continue
            yield _item(path, utt, info, session.name)
        for utt, info in sorted(labels.items()):  # labelled utterances whose wav is missing
            if utt not in seen:
                dialog = utt.rsplit("_", 1)[0]
                yield _item(wav_root / dialog / f"{utt}.wav", utt, info, session.name)


def _item(path: Path, utt: str, info: dict[str, Any], session: str) -> Item:
    speaker, gender = speaker_of(utt)
    return Item(
        path=path,
        utterance_id=utt,
        speaker=speaker,
        gender=gender,
        label=info["label"],
        valence=info["valence"],
        arousal=info["arousal"],
        dominance=info["dominance"],
        extra={"session": session, "improvised": "impro" in utt},
    )


SCANNER = Scanner(
    name="iemocap",
    title="IEMOCAP",
    layout="ROOT/Session{1..5}/sentences/wav/<dialog>/<utt>.wav with labels in "
    "ROOT/Session{n}/dialog/EmoEvaluation/<dialog>.txt",
    find=find,
    required=(("Session[1-5]/sentences/wav",), ("Session[1-5]/dialog/EmoEvaluation",)),
    vad_scale=(1.0, 5.0),
)
