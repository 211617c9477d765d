"""Scanners against the distributed layouts as the corpora (and SER-Evals) describe them, with file
lists written by hand from the reference notes (section 2: SER-Evals label rules; section 3: the
RAVDESS, IEMOCAP and EmoDB layouts; section 6: Expresso), not from this package's synthetic
writers, so a wrong idea of a layout cannot pass on both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import scan


def tree(root: Path, files: list[str], seconds: float = 0.5) -> Path:
    tone = (0.3 * np.sin(2 * np.pi * 180 * np.arange(int(16000 * seconds)) / 16000)).astype(
        np.float32
    )
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), tone, 16000)
    return root


def by_file(manifest) -> dict[str, dict]:
    return {
        Path(p).name: row
        for p, row in zip(manifest["path"], manifest.to_dict("records"), strict=True)
    }


def test_emodb_letter_six_and_speakers(tmp_path):
    # wav/SSTTTEV.wav: speaker SS (male 03 10 11 12 15), text TTT, emotion letter E, version V
    root = tree(
        tmp_path,
        [
            "wav/03a01Fa.wav",
            "wav/08b02Wb.wav",
            "wav/16a05Lc.wav",
            "wav/10a04Ta.wav",
            "wav/12b09Nb.wav",
            "wav/11a02Ea.wav",
            "wav/09a07Ab.wav",
        ],
    )
    rows = by_file(scan("emodb", root))
    expected = {
        "03a01Fa.wav": ("happiness", "M"),
        "08b02Wb.wav": ("anger", "F"),
        "16a05Lc.wav": ("sadness", "F"),
        "10a04Ta.wav": ("sadness", "M"),
        "12b09Nb.wav": ("neutral", "M"),
        "11a02Ea.wav": ("disgust", "M"),
        "09a07Ab.wav": ("fear", "F"),
    }
    for name, (label, gender) in expected.items():
        assert (rows[name]["serevals8"], rows[name]["gender"]) == (label, gender), name
    assert rows["03a01Fa.wav"]["speaker"].endswith("03")


def test_ravdess_name_fields(tmp_path):
    # Actor_XX/MM-VV-EE-II-SS-RR-AA.wav: MM 03 audio, VV 01 speech, EE emotion, AA actor (odd male)
    files = [
        "Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.wav",
        "Audio_Speech_Actors_01-24/Actor_02/03-01-02-01-02-02-02.wav",
        "Audio_Speech_Actors_01-24/Actor_02/03-01-01-01-01-01-02.wav",
        "Audio_Speech_Actors_01-24/Actor_03/01-01-03-01-01-01-03.wav",
    ]
    rows = by_file(scan("ravdess", tree(tmp_path, files)))
    angry = rows["03-01-05-02-01-01-01.wav"]
    assert (angry["emotion"], angry["gender"], angry["intensity"]) == ("angry", "M", "strong")
    assert rows["03-01-02-01-02-02-02.wav"]["emotion"] == "calm"
    assert rows["03-01-01-01-01-01-02.wav"]["gender"] == "F"
    assert "modality 01" in rows["01-01-03-01-01-01-03.wav"]["quarantine"]  # video, not audio


def test_iemocap_skips_annotator_lines(tmp_path):
    # Session{n}/dialog/EmoEvaluation/<dialog>.txt: summary lines, then per-evaluator lines
    tree(
        tmp_path,
        [
            "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav",
            "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav",
        ],
    )
    evaluation = tmp_path / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[4.0000, 3.5000, 3.0000]\n"
        "C-E1:\tExcited;\t()\nA-E1:\tval 4; act 4; dom  3;\t()\n"
    )
    rows = by_file(scan("iemocap", tmp_path))
    first, second = rows["Ses01F_impro01_F000.wav"], rows["Ses01F_impro01_M001.wav"]
    assert (first["label"], first["speaker"], first["gender"]) == ("neu", "Ses01F", "F")
    assert (second["label"], second["speaker"], second["gender"]) == ("exc", "Ses01M", "M")
    assert float(second["valence"]) == 4.0 and float(second["dominance"]) == 3.0


def test_serevals_label_rules(tmp_path):
    """One file per rule of the SER-Evals label table (source label -> 8 classes)."""
    cases = {
        "emovo": {
            "f1/pau-f1-b1.wav": "fear",
            "m2/rab-m2-l3.wav": "anger",
            "f3/sor-f3-n2.wav": "surprise",
            "m1/gio-m1-d1.wav": "happiness",
        },
        "shemo": {
            "female/F01A01.wav": "anger",
            "male/M05W12.wav": "surprise",
            "male/M02F03.wav": "other",
            "female/F03N07.wav": "neutral",
        },  # fear -> other
        "subesco": {
            "F_02_MONIKA_S_1_ANGRY_1.wav": "anger",
            "M_05_RAHIM_S_3_SAD_2.wav": "sadness",
            "F_01_ANIKA_S_2_SURPRISE_5.wav": "surprise",
        },
        "aesdd": {
            "anger/a01 (1).wav": "anger",
            "fear/f12 (3).wav": "fear",
            "happiness/h05 (2).wav": "happiness",
        },
        "mesd": {
            "Anger_C_A_abajo.wav": "anger",
            "Happiness_F_B_agua.wav": "happiness",
            "Neutral_M_A_barco.wav": "neutral",
        },
        "urdu": {"Angry/SM1_F10_A010.wav": "anger", "Neutral/SF3_F2_N002.wav": "neutral"},
        "casia": {"liuchanhg/surprise/201.wav": "surprise", "wangzhe/fear/202.wav": "fear"},
        "thorsten_emotional": {
            "amused/0a1b.wav": "happiness",
            "whisper/77ff.wav": "other",
            "sleepy/1c2d.wav": "other",
            "neutral/aa00.wav": "neutral",
        },
    }
    for corpus, files in cases.items():
        manifest = scan(corpus, tree(tmp_path / corpus, list(files)))
        assert len(usable(manifest)) == len(files), (corpus, manifest["quarantine"].tolist())
        got = dict(zip(manifest["path"], manifest["serevals8"], strict=True))
        for name, label in files.items():
            match = [v for k, v in got.items() if k.endswith(name)]
            assert match == [label], (corpus, name, match)


def test_expresso_read_speech(tmp_path):
    # audio_48khz/read/<speaker>/<style>/<subset>/<speaker>_<style>[_<subset>]_<NNNNN>.wav
    files = [
        "audio_48khz/read/ex03/default/base/ex03_default_00003.wav",
        "audio_48khz/read/ex03/default/longform/ex03_default_longform_00001.wav",
        "audio_48khz/read/ex04/happy/base/ex04_happy_00085.wav",
    ]
    manifest = scan("expresso", tree(tmp_path, files))
    rows = by_file(manifest)
    assert rows["ex03_default_00003.wav"]["serevals8"] == "neutral"
    assert rows["ex04_happy_00085.wav"]["serevals8"] == "happiness"
    assert rows["ex04_happy_00085.wav"]["speaker"].endswith("ex04")
    assert len(usable(manifest)) == 3
