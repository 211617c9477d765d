"""EMOVO (Italian): ``<speaker>/<emo>-<speaker>-<sentence>.wav``, e.g. ``f1/dis-f1-b1.wav``.

Six actors in folders ``f1 f2 f3 m1 m2 m3`` (the letter is the gender); the name prefix is the
emotion: dis gio neu pau rab sor tri. Layout as distributed (the ``documents`` folder is ignored).
Confidence: high.
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Agreement, NameRule

RULE = NameRule(
    folders=r"[fm][1-3]",
    name_pattern=r"(?P<label>[a-z]{3})-(?P<speaker>[fm][1-3])-(?P<sentence>[a-z]\d)",
    bad_name="file name does not follow <emo>-<speaker>-<sentence>.wav",
    speaker="emovo_{speaker}",
    gender="{speaker!u:.1}",
    label="{label}",
    extra=(("sentence", "{sentence}"),),
    agree=(
        Agreement(
            "{speaker}", "{folder}", "speaker {speaker} in the name but the file is in {folder}/"
        ),
    ),
    unparsed_fields={"speaker": "emovo_{folder}", "gender": "{folder!u:.1}"},
)

SCANNER = Scanner(
    name="emovo",
    title="EMOVO",
    layout="ROOT/<f1..f3|m1..m3>/<emo>-<speaker>-<sentence>.wav (e.g. f1/dis-f1-b1.wav; "
    "emo one of dis gio neu pau rab sor tri)",
    find=RULE.find,
    required=(("f[1-3]", "m[1-3]"),),
)
