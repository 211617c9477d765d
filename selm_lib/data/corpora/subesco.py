"""SUBESCO (Bangla): ``<G>_<SS>_<NAME>_S_<sentence>_<EMOTION>_<take>.wav``, e.g.
``F_02_MONIKA_S_1_ANGRY_1.wav``; the second-last token is the emotion (NEUTRAL ANGRY HAPPY DISGUST
FEAR SAD SURPRISE). The Zenodo archive holds the 7000 files in one folder; any folder depth below
the root is accepted. Confidence: high for the naming, medium for the folder (flat vs nested).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import NameRule

RULE = NameRule(
    name_pattern=(
        r"(?P<gender>[FM])_(?P<number>\d\d)_(?P<name>[A-Z]+)_S_(?P<sentence>\d+)_(?P<label>[A-Z]+)"
        r"_(?P<take>\d+)"
    ),
    bad_name="file name does not follow G_SS_NAME_S_N_EMOTION_T.wav "
    "(e.g. F_02_MONIKA_S_1_ANGRY_1.wav)",
    speaker="subesco_{gender}{number}",
    gender="{gender}",
    label="{label}",
    extra=(("speaker_name", "{name}"), ("sentence", "{sentence}"), ("take", "{take}")),
)

SCANNER = Scanner(
    name="subesco",
    title="SUBESCO",
    layout="ROOT/**/G_SS_NAME_S_N_EMOTION_T.wav (e.g. F_02_MONIKA_S_1_ANGRY_1.wav; emotion "
    "NEUTRAL ANGRY HAPPY DISGUST FEAR SAD SURPRISE)",
    find=RULE.find,
    required=(("[FM]_*_S_*.wav", "**/[FM]_*_S_*.wav"),),
)
