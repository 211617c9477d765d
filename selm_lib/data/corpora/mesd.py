"""MESD (Mexican Spanish): ``<Emotion>_<V>_<C>_<word>.wav``, e.g. ``Anger_C_A_abajo.wav``.

Emotion prefixes Anger, Disgust, Fear, Happiness, Neutral, Sadness (no surprise); ``V`` is the
voice type (C child, F female adult, M male adult), ``C`` the word corpus (A/B), then the word
(Spanish, may hold accents). The names carry no individual speaker, so ``speaker`` is the voice
group (``mesd_F``, ``mesd_M``, ``mesd_C``): not usable for speaker-independent splits. Files may
sit in one folder or below it. Confidence: medium (the Mendeley release; the voice/corpus tokens
are as described in its README, word tokens are not checked).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Lookup, NameRule

RULE = NameRule(
    name_pattern=(
        r"(?P<label>Anger|Disgust|Fear|Happiness|Neutral|Sadness)_(?P<voice>[CFM])_(?P<set>[AB])"
        r"_(?P<word>.+)"
    ),
    bad_name="file name does not follow <Emotion>_<C|F|M>_<A|B>_<word>.wav "
    "(e.g. Anger_C_A_abajo.wav)",
    speaker="mesd_{voice}",  # voice group, not an individual speaker
    gender="{gender}",
    label="{label}",
    extra=(("voice", "{voice_name}"), ("word", "{word}")),
    lookups=(
        Lookup("gender", "voice", {"F": "F", "M": "M"}),
        Lookup("voice_name", "voice", {"C": "child", "F": "female", "M": "male"}),
    ),
)

SCANNER = Scanner(
    name="mesd",
    title="MESD",
    layout="ROOT/**/<Emotion>_<C|F|M>_<A|B>_<word>.wav (e.g. Anger_C_A_abajo.wav; emotions "
    "Anger Disgust Fear Happiness Neutral Sadness)",
    find=RULE.find,
    required=(
        tuple(
            f"**/{e}_*.wav" for e in ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")
        ),
    ),
)
