"""DEMoS (Italian, elicited emotions): ``wav_DEMoS/DEMOS/<sel>_<g>_<NN>_<emo><take>.wav`` and the
neutral clips in ``wav_DEMoS/NEU/``, e.g. ``DEMOS/PR_m_23_tri00a.wav``.

The corpus's file-name legend: the first two letters say whether the clip was selected as
prototypical (``PR``) or not (``NP``); the first letter after the first ``_`` is the speaker's
gender (``f`` / ``m``), the number after the second ``_`` the speaker, and the three letters after
the last ``_`` the emotion: col (guilt), dis, gio, pau, rab, sor, tri, neu. As in the SER-Evals
code the label is the first three letters, lowercased, of the last ``_`` token (guilt -> sadness
in ``label_map.csv``). The selection prefix is optional (the neutral clips in ``NEU/`` may lack
it) and kept in the ``selection`` column; the rest of the last token (e.g. ``00a``) is ``take``.
Point ``curate.corpora.demos.root`` at ``wav_DEMoS`` (its parent ``DEMoS`` works too); every wav
below it is read. Speaker = ``demos_<NN>`` (68 speakers), gender ``F`` / ``M``. Confidence:
medium-high for the names (the corpus's legend, names as listed by public recipes), medium for
the ``NEU/`` names (assumed to follow the same ``<g>_<NN>_neu<take>`` tokens).
"""

from __future__ import annotations

from selm_lib.data.corpora.base import Scanner
from selm_lib.data.corpora.named import NameRule

RULE = NameRule(
    name_pattern=(
        r"(?i)(?:(?P<selection>[a-z]+)_)?(?P<gender>[fm])_(?P<speaker>\d+)_"
        r"(?P<label>[a-z]{3})(?P<take>[a-z0-9]*)"
    ),
    bad_name="file name does not follow [NP_|PR_]<f|m>_<speaker>_<emo><take>.wav "
    "(e.g. PR_m_23_tri00a.wav)",
    speaker="demos_{speaker}",
    gender="{gender!u}",
    label="{label!l}",
    extra=(("selection", "{selection!u}"), ("take", "{take}")),
)

SCANNER = Scanner(
    name="demos",
    title="DEMoS",
    layout="ROOT/DEMOS/<NP|PR>_<f|m>_<NN>_<emo><take>.wav and ROOT/NEU/<f|m>_<NN>_neu<take>.wav "
    "with ROOT = DEMoS/wav_DEMoS (e.g. DEMOS/PR_m_23_tri00a.wav; emo one of col dis gio pau rab "
    "sor tri neu)",
    find=RULE.find,
    required=(("DEMOS", "NEU", "wav_DEMoS", "*_[fm]_*_*.wav", "[fm]_*_*.wav"),),
)
