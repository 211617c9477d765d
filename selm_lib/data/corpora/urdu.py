"""URDU: ``<Angry|Happy|Neutral|Sad>/S<G><N>_F<file>_<E><NNN>.wav``, e.g.
``Angry/SM1_F10_A010.wav``.

The label is the folder name (SER-Evals reads it from the path). The first token ``S<G><N>`` is the
speaker (G = M/F gender, N the speaker number) as described in the dataset's README (Latif et al.);
the second ``F<n>`` a file number; the third the emotion letter (A H N S) and a number, which must
match the folder. Confidence: medium. The task brief called the speaker token the 2nd; the public
description reads ``SM1`` = speaker, male, 1, so the 1st token is used here.
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import Agreement, NameRule

FOLDERS = {"Angry": "A", "Happy": "H", "Neutral": "N", "Sad": "S"}
RULE = NameRule(
    folders=FOLDERS,
    name_pattern=r"S(?P<gender>[MF])(?P<number>\d+)_F(?P<file>\d+)_(?P<letter>[AHNS])(?P<take>\d+)",
    bad_name="file name does not follow S<G><N>_F<n>_<E><NNN>.wav (e.g. SM1_F10_A010.wav)",
    speaker="urdu_S{gender}{number}",
    gender="{gender}",
    label="{folder}",
    extra=(("file", "{file}"),),
    agree=(
        Agreement(
            "{letter}",
            "{folder_value}",
            "emotion letter {letter} in the name but the file is in {folder}/",
        ),
    ),
    unparsed_fields={"label": "{folder}"},
)

SCANNER = Scanner(
    name="urdu",
    title="URDU",
    layout="ROOT/<Angry|Happy|Neutral|Sad>/S<M|F><N>_F<n>_<A|H|N|S><NNN>.wav "
    "(e.g. Angry/SM1_F10_A010.wav)",
    find=RULE.find,
    required=(tuple(FOLDERS),),
)
