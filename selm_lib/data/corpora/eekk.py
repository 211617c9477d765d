"""EEKK (Estonian) as the SER-Evals preparation lays it out: ``audio_folders/<label>/*.wav``.

The SER-Evals code reads ``EEKK/audio_folders/<label>/*.wav`` (one folder per label, no speaker in
the path), so point ``curate.corpora.eekk.root`` at that ``audio_folders`` folder. Labels
neutral, anger, joy (-> happiness), sadness. No speaker: splits are speaker-unknown.
Confidence: medium (from the SER-Evals code, not the corpus's own documentation).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import label_folders

RULE = label_folders()

SCANNER = Scanner(
    name="eekk",
    title="EEKK (SER-Evals audio_folders)",
    layout="ROOT/<neutral|anger|joy|sadness>/*.wav with ROOT = EEKK/audio_folders",
    find=RULE.find,
    required=(("neutral", "anger", "joy", "sadness"),),
)
