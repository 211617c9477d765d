"""IEMOCAP: ``Session{n}/sentences/wav/<dialog>/<utt>.wav`` with labels in
``Session{n}/dialog/EmoEvaluation/<dialog>.txt``.

Each summary line is followed by the evaluators' lines: ``C-E<k>:<TAB><Category>; [...]<TAB>(...)``
are the categorical ratings of external evaluator k, ``C-F1`` / ``C-M1`` the actors' own ratings
of their turn, and ``A-...`` lines dimensional (valence, activation, dominance) ratings. The
manifest's ``votes`` count the external evaluators only (the summary label is theirs; the
self-ratings come from the actor who knew the intended emotion), each evaluator with one vote
split evenly over the categories they named: ``Frustration; Anger;`` gives 0.5 to frustrated and
0.5 to angry, so every evaluator weighs the same however many categories they tick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, Scanner, wav_files
from selm_lib.data.labels import corpus_labels

# Summary line: "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]".
# Annotator lines ("C-E1:\t...", "A-E2:\t...") and comments do not match it.
SUMMARY = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\s+(?P<utt>Ses\d\d[FM]_\S+)\s+(?P<label>\w+)\s+"
    r"\[(?P<v>[\d.]+),\s*(?P<a>[\d.]+),\s*(?P<d>[\d.]+)\]"
)
# An external evaluator's categorical line: "C-E3:\tFrustration; Anger;\t(annoyed)".
EVALUATOR = re.compile(r"^C-E\d+:\s*(?P<categories>[^(]*?)\s*(?:\(.*\))?\s*$")
# The evaluators' category names (lowercased) -> the corpus's label codes (label_map.csv).
# "Other" may carry the evaluator's own word ("Other:curious").
CATEGORIES = {
    "neutral": "neu",
    "neutral state": "neu",
    "happiness": "hap",
    "excited": "exc",
    "sadness": "sad",
    "anger": "ang",
    "frustration": "fru",
    "surprise": "sur",
    "fear": "fea",
    "disgust": "dis",
    "other": "oth",
}


def speaker_of(utterance_id: str) -> tuple[str, str]:
    """``Ses01F_impro01_M012`` -> (``Ses01M``, ``M``): session + first letter of the last token."""
    gender = utterance_id.rsplit("_", 1)[-1][0]
    return f"{utterance_id[:5]}{gender}", gender


def category_code(name: str) -> str | None:
    """An evaluator's category name -> the corpus label code (None when unknown)."""
    key = " ".join(name.strip().lower().split())
    if key.startswith("other"):
        return "oth"
    return CATEGORIES.get(key)


def parse_emo_evaluation(path: Path) -> dict[str, dict[str, Any]]:
    """``{utterance: {label, valence, arousal, dominance, start, end, votes}}`` of one
    EmoEvaluation file; ``votes`` is ``{package emotion: count}`` of the external evaluators
    (empty when the file has no ``C-E`` lines for the utterance)."""
    emotions = {code: entry["emotion"] for code, entry in corpus_labels("iemocap").items()}
    labels: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        match = SUMMARY.match(line)
        if match:
            current = labels[match["utt"]] = {
                "label": match["label"],
                "valence": float(match["v"]),
                "arousal": float(match["a"]),
                "dominance": float(match["d"]),
                "start": float(match["start"]),
                "end": float(match["end"]),
                "votes": {},
            }
            continue
        rating = EVALUATOR.match(line)
        if not rating:
            continue  # self-ratings (C-F1, C-M1), dimensional ratings (A-...), comments, blanks
        if current is None:
            raise ValueError(
                f"{path}: line {number}: evaluator line {line!r} before any summary line "
                "('[START - END]\t<utterance>\t<label>\t[V, A, D]')"
            )
        names = [n for n in (p.strip() for p in rating["categories"].split(";")) if n]
        codes = [category_code(n) for n in names]
        if None in codes:
            unknown = names[codes.index(None)]
            raise ValueError(
                f"{path}: line {number}: evaluator category {unknown!r} is not an IEMOCAP "
                f"category (known: {', '.join(sorted(set(CATEGORIES) - {'neutral state'}))}, "
                "Other:<word>)"
            )
        for code in codes:  # one vote per evaluator, shared by the categories they named
            emotion = emotions[code]
            current["votes"][emotion] = current["votes"].get(emotion, 0.0) + 1.0 / len(codes)
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
        votes=info["votes"] or None,
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
