"""EmoDB (Berlin): ``wav/SSTTTEV.wav``, e.g. ``03a01Fa.wav`` (speaker 03, text a01, emotion F)."""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Lookup, NameRule

RULE = NameRule(
    folders={"wav": ""},
    name_pattern=r"(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<label>[A-Z])(?P<version>[a-z])",
    bad_name="file name does not follow SSTTTEV.wav",
    speaker="emodb_{speaker}",
    gender="{gender}",
    label="{label}",  # letter 6 of the name (German initial: W Wut, A Angst, ...)
    extra=(("text", "{text}"), ("version", "{version}")),
    lookups=(Lookup("gender", "speaker", dict.fromkeys(("03", "10", "11", "12", "15"), "M"), "F"),),
)

SCANNER = Scanner(
    name="emodb",
    title="EmoDB",
    layout="ROOT/wav/SSTTTEV.wav (e.g. 03a01Fa.wav: speaker 03, text a01, emotion F, version a)",
    find=RULE.find,
    required=(("wav",),),
)
