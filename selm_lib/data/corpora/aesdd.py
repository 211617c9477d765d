"""AESDD (Greek): ``<emotion>/<e><NN> (<speaker>).wav``, e.g. ``anger/a01 (1).wav``.

Emotion folders anger, disgust, fear, happiness, sadness (no neutral); the first letter of the
name (a d f h s) is the emotion and must match the folder; ``NN`` is the sentence and the number in
parentheses the speaker. The space before the parenthesis is optional and a trailing lowercase
letter (an extra take, e.g. ``a05 (3)b.wav``) is accepted. Gender is not in the names. Confidence:
medium (the "Acted Emotional Speech Dynamic Database" archive as distributed).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Agreement, NameRule

FOLDERS = {"anger": "a", "disgust": "d", "fear": "f", "happiness": "h", "sadness": "s"}
RULE = NameRule(
    folders=FOLDERS,
    name_pattern=r"(?P<letter>[adfhs])(?P<sentence>\d\d) ?\((?P<speaker>\d+)\)(?P<take>[a-z]?)",
    bad_name="file name does not follow <e><NN> (<speaker>).wav (e.g. a01 (1).wav)",
    speaker="aesdd_{speaker}",
    label="{letter}",
    uid="{letter}{sentence}_{speaker}{take}",
    extra=(("sentence", "{sentence}"), ("take", "{take}")),
    agree=(
        Agreement(
            "{letter}",
            "{folder_value}",
            "emotion letter {letter} in the name but the file is in {folder}/",
        ),
    ),
    unparsed_fields={"uid": "{folder}/{stem}"},
)

SCANNER = Scanner(
    name="aesdd",
    title="AESDD",
    layout="ROOT/<anger|disgust|fear|happiness|sadness>/<a|d|f|h|s><NN> (<speaker>).wav "
    "(e.g. anger/a01 (1).wav)",
    find=RULE.find,
    required=(tuple(FOLDERS),),
)
