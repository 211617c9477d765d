"""Scanners described as data (selm_lib.data.corpora.named) and the generic label-folder layout,
on file lists written by hand from the layouts the corpora (or SER-Evals) distribute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.named import Agreement, Lookup, NameRule
from selm_lib.data.corpora.registry import scan


def write_tree(root: Path, files: list[str]) -> Path:
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000).astype(np.float32)
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), tone, 16000)
    return root


def test_label_folders_baum1_every_unknown_folder_is_other(tmp_path):
    # REFERENCE section 6: BAUM1/audio_folders/<Label>/*.wav, label = the parent folder name
    root = write_tree(
        tmp_path / "BAUM1" / "audio_folders",
        [
            "Anger/S001_003.wav",
            "Happiness/S002_010.wav",
            "Neutral/S003_001.wav",
            "Boredom/S004_002.wav",
            "Happiness/nested/S005_004.wav",
            "Happiness/other/S005_004.wav",  # the same name in another subfolder
        ],
    )
    manifest = scan("baum1", root)
    by_id = manifest.set_index("utterance_id")
    assert sorted(by_id.index) == [
        "Anger/S001_003",
        "Boredom/S004_002",
        "Happiness/S002_010",
        "Happiness/nested/S005_004",
        "Happiness/other/S005_004",
        "Neutral/S003_001",
    ]
    assert by_id.loc["Boredom/S004_002", "serevals8"] == "other"  # the label map's * row
    assert by_id.loc["Anger/S001_003", "serevals8"] == "anger"
    assert by_id.loc["Happiness/nested/S005_004", "label"] == "Happiness"  # any depth below
    assert set(manifest["speaker"]) == {""}  # no speaker in this layout
    assert len(usable(manifest)) == 6


def test_label_folders_eekk_unknown_folder_is_quarantined(tmp_path):
    root = write_tree(
        tmp_path / "EEKK" / "audio_folders",
        ["anger/a1.wav", "joy/j1.wav", "neutral/n1.wav", "sadness/s1.wav", "surprise/x1.wav"],
    )
    manifest = scan("eekk", root).set_index("utterance_id")
    assert manifest.loc["joy/j1", "serevals8"] == "happiness"
    assert manifest.loc["surprise/x1", "quarantine"].startswith("unknown label 'surprise'")


RULE = NameRule(
    folders={"female": "F", "male": "M"},
    name_pattern=r"(?P<gender>[FM])(?P<speaker>\d\d)(?P<label>[AN])",
    bad_name="bad name",
    speaker="toy_{gender}{speaker}",
    gender="{gender}",
    label="{label}",
    uid="{folder!u:.1}-{stem}",
    extra=(("kind", "{kind}"),),
    lookups=(Lookup("kind", "label", {"A": "acted"}, "natural"),),
    agree=(Agreement("{gender}", "{folder_value}", "{gender} in {folder}/"),),
    unparsed_fields={"gender": "{folder_value}"},
)


def test_name_rule_parses_checks_the_folder_and_keeps_bad_names(tmp_path):
    root = write_tree(tmp_path, ["female/F01A.wav", "male/F02N.wav", "male/oops.wav", "x/M03A.wav"])
    items = {i.utterance_id: i for i in RULE.find(root, {})}
    assert set(items) == {"F-F01A", "M-F02N", "oops"}  # x/ is not a walked folder
    good = items["F-F01A"]
    assert (good.speaker, good.gender, good.label, good.quarantine) == ("toy_F01", "F", "A", "")
    assert good.extra == {"kind": "acted"}
    assert items["M-F02N"].quarantine == "F in male/" and items["M-F02N"].extra == {
        "kind": "natural"
    }
    bad = items["oops"]
    assert (bad.quarantine, bad.gender, bad.speaker) == ("bad name", "M", "")
