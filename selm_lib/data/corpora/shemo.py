"""ShEMO (Persian): ``female|male/<G><SS><E><UU>.wav``, e.g. ``female/F01A01.wav``.

Letter 1 is the gender (F/M), letters 2-3 the speaker, letter 4 the emotion (A anger, H happiness,
N neutral, S sadness, W surprise, F fear), letters 5-6 the utterance. Confidence: high for the
naming; the two gender folders are as distributed on GitHub/Kaggle.
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Agreement, NameRule

RULE = NameRule(
    folders={"female": "F", "male": "M"},
    name_pattern=r"(?P<gender>[FM])(?P<speaker>\d\d)(?P<label>[AHNSWF])(?P<utterance>\d\d)",
    bad_name="file name does not follow <F|M><SS><E><UU>.wav (e.g. F01A01.wav)",
    speaker="shemo_{gender}{speaker}",
    gender="{gender}",
    label="{label}",
    extra=(("utterance", "{utterance}"),),
    agree=(
        Agreement(
            "{gender}", "{folder_value}", "gender {gender} in the name but the file is in {folder}/"
        ),
    ),
    unparsed_fields={"gender": "{folder_value}"},
)

SCANNER = Scanner(
    name="shemo",
    title="ShEMO",
    layout="ROOT/female|male/<F|M><speaker 2 digits><emotion A|H|N|S|W|F><utterance 2 digits>.wav "
    "(e.g. female/F01A01.wav)",
    find=RULE.find,
    required=(("female", "male"),),
)
