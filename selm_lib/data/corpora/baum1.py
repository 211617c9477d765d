"""BAUM-1 (Turkish) as the SER-Evals preparation lays it out: ``audio_folders/<Label>/*.wav``.

The SER-Evals code reads ``BAUM1/audio_folders/<Label>/*.wav``, its authors' own preparation of
the corpus (one folder per label, no speaker in the path), so point ``curate.corpora.baum1.root``
at that ``audio_folders`` folder. Labels Happiness, Sadness, Disgust, Fear, Surprise, Anger,
Neutral; any other folder name maps to ``other`` (``*`` row of ``label_map.csv``). No speaker:
splits of this corpus are speaker-unknown. Confidence: medium (from the SER-Evals code, not the
corpus's own documentation).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import label_folders

RULE = label_folders()

SCANNER = Scanner(
    name="baum1",
    title="BAUM-1 (SER-Evals audio_folders)",
    layout="ROOT/<Label>/*.wav with ROOT = BAUM1/audio_folders (e.g. Anger/S001_012.wav); "
    "labels Happiness Sadness Disgust Fear Surprise Anger Neutral, others -> other",
    find=RULE.find,
    required=(("*/*.wav", "*/**/*.wav"),),
)
