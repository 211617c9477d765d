"""The Expresso dialogue modes and the DEMoS and MASC scanners, on tiny trees laid out by hand from
the reference notes (section 6: the Expresso README's layout, stereo dialogues with one actor per
channel; the folders and name rules the SER-Evals code reads for DEMoS and MASC), not from this
package's synthetic writers."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from selm_lib.config import ParamsError, load_params, validate
from selm_lib.data.audio import load_audio
from selm_lib.data.corpora.base import CorpusLayoutError, row_channel, usable
from selm_lib.data.corpora.registry import SCANNERS, scan

from .conftest import PROJECT

EXPRESSO_RATE = 48_000


def tone(seconds: float, rate: int, frequency: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write(root: Path, relative: str, samples: np.ndarray, rate: int = 16_000) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate)
    return path


def corrupt(root: Path, relative: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF not really a wave file")


def by_uid(manifest: pd.DataFrame) -> pd.DataFrame:
    assert not manifest["utterance_id"].duplicated().any()
    return manifest.set_index("utterance_id")


# --- Expresso -----------------------------------------------------------------------------------

# channel 1 and channel 2 of every stereo dialogue differ in pitch and level, so a reader that
# picks the wrong channel (or mixes them) is caught by the level alone
CHANNEL_AMPLITUDE = {1: 0.5, 2: 0.1}
READ = "audio_48khz/read"
CONV = "audio_48khz/conversational"
DIALOGUES = {  # file below conversational/ -> (channel-1 style, channel-2 style)
    "ex04-ex01/animal-animaldir/ex04-ex01_animal-animaldir_005.wav": ("animal", "animaldir"),
    "ex04-ex01/laughing/ex04-ex01_laughing_001.wav": ("laughing", "laughing"),
    "ex02-ex03/child-childdir/ex02-ex03_child-childdir_003.wav": ("child", "childdir"),
    "ex02-ex03/happy-awe/ex02-ex03_happy-awe_002.wav": ("happy", "awe"),
    "ex01-ex02/bored/ex01-ex02_bored_004.wav": ("bored", "bored"),
}


def stereo(seconds: float = 0.4) -> np.ndarray:
    first = tone(seconds, EXPRESSO_RATE, 220.0, CHANNEL_AMPLITUDE[1])
    second = tone(seconds, EXPRESSO_RATE, 630.0, CHANNEL_AMPLITUDE[2])
    return np.stack([first, second], axis=1)


@pytest.fixture(scope="module")
def expresso_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("expresso")
    mono = tone(0.4, EXPRESSO_RATE, 300.0, 0.3)
    write(root, f"{READ}/ex03/default/base/ex03_default_00003.wav", mono, EXPRESSO_RATE)
    write(root, f"{READ}/ex04/happy/base/ex04_happy_00085.wav", mono, EXPRESSO_RATE)
    for name in DIALOGUES:
        write(root, f"{CONV}/{name}", stereo(), EXPRESSO_RATE)
    write(root, f"{CONV}/ex03-ex04/calm/ex03-ex04_calm_007.wav", mono, EXPRESSO_RATE)  # mono
    three = np.stack([mono, mono, mono], axis=1)
    write(root, f"{CONV}/ex03-ex04/sad/ex03-ex04_sad_008.wav", three, EXPRESSO_RATE)
    corrupt(root, f"{CONV}/ex03-ex04/calm/ex03-ex04_calm_006.wav")
    return root


def test_expresso_split_is_the_default_and_gives_one_row_per_actor(expresso_root):
    manifest = scan("expresso", expresso_root)
    assert manifest.equals(scan("expresso", expresso_root, options={"dialogues": "split"}))
    rows = by_uid(manifest)
    expected = {
        # uid: (speaker, label, style, serevals8, channel)
        "ex04-ex01_animal-animaldir_005_ch1": ("ex04", "animal", "animal", "other", 1),
        "ex04-ex01_animal-animaldir_005_ch2": ("ex01", "animaldir", "animal_directed", "other", 2),
        "ex04-ex01_laughing_001_ch1": ("ex04", "laughing", "laughing", "happiness", 1),
        "ex04-ex01_laughing_001_ch2": ("ex01", "laughing", "laughing", "happiness", 2),
        "ex02-ex03_child-childdir_003_ch1": ("ex02", "child", "child", "other", 1),
        "ex02-ex03_child-childdir_003_ch2": ("ex03", "childdir", "child_directed", "other", 2),
        "ex02-ex03_happy-awe_002_ch1": ("ex02", "happy", "happy", "happiness", 1),
        "ex02-ex03_happy-awe_002_ch2": ("ex03", "awe", "awe", "surprise", 2),
        "ex01-ex02_bored_004_ch1": ("ex01", "bored", "bored", "neutral", 1),
        "ex01-ex02_bored_004_ch2": ("ex02", "bored", "bored", "neutral", 2),
    }
    for uid, (speaker, label, style, ser8, channel) in expected.items():
        row = rows.loc[uid]
        assert row["quarantine"] == "", (uid, row["quarantine"])
        assert (row["speaker"], row["label"], row["style"]) == (f"expresso_{speaker}", label, style)
        assert (row["serevals8"], row["channel"], row["channels"]) == (ser8, channel, 2), uid
        assert row["section"] == "conversational" and row["dialogue"] == uid[: -len("_ch1")]
    # read speech is mono: one row, every channel (empty)
    for uid, speaker, ser8 in (
        ("ex03_default_00003", "ex03", "neutral"),
        ("ex04_happy_00085", "ex04", "happiness"),
    ):
        row = rows.loc[uid]
        assert (row["speaker"], row["serevals8"], row["channel"]) == (
            f"expresso_{speaker}",
            ser8,
            "",
        )
        assert row["quarantine"] == "" and row["section"] == "read"
    # a mono file in a dialogue folder cannot be split; three channels are not a dialogue
    assert "cannot tell the speakers apart" in rows.loc["ex03-ex04_calm_007", "quarantine"]
    assert "3 channels in the dialogue" in rows.loc["ex03-ex04_sad_008", "quarantine"]
    # an unreadable dialogue keeps both halves, quarantined with the reason (never dropped)
    for half in ("_ch1", "_ch2"):
        assert "not readable as audio" in rows.loc[f"ex03-ex04_calm_006{half}", "quarantine"]
    conversational = manifest[manifest["section"] == "conversational"]
    assert len(conversational) == 2 * len(DIALOGUES) + 2 + 2
    assert len(usable(manifest)) == 2 * len(DIALOGUES) + 2


def test_expresso_split_channel_survives_the_csv(expresso_root, tmp_path):
    manifest = scan("expresso", expresso_root)
    path = tmp_path / "expresso.csv"
    manifest.to_csv(path, index=False)
    back = by_uid(pd.read_csv(path, keep_default_na=False))
    assert row_channel(back.loc["ex04-ex01_laughing_001_ch2", "channel"]) == 2
    assert row_channel(back.loc["ex03_default_00003", "channel"]) is None
    assert [row_channel(v) for v in ("", None, float("nan"), "1", 2, 2.0)] == [
        None,
        None,
        None,
        1,
        2,
        2,
    ]
    with pytest.raises(ValueError, match="manifest column 'channel'"):
        row_channel("left")


def test_expresso_split_rows_read_their_own_channel(expresso_root):
    rows = usable(scan("expresso", expresso_root))
    split = rows[rows["channel"] != ""]
    assert len(split) == 2 * len(DIALOGUES)
    for row in split.itertuples():
        audio = load_audio(row.path, channel=row_channel(row.channel))
        peak = float(np.abs(audio[400:-400]).max())  # away from the resampler's edges
        assert peak == pytest.approx(CHANNEL_AMPLITUDE[row.channel], abs=0.02), row.utterance_id


def test_expresso_mix_follows_serevals(expresso_root):
    rows = by_uid(scan("expresso", expresso_root, options={"dialogues": "mix"}))
    expected = {
        # uid: (speaker, label, serevals8): the first style of the paper's order in the name
        "ex04-ex01_animal-animaldir_005": ("ex04-ex01", "animal", "other"),
        "ex04-ex01_laughing_001": ("ex04-ex01", "laughing", "happiness"),
        "ex02-ex03_child-childdir_003": ("ex02-ex03", "child", "other"),
        "ex02-ex03_happy-awe_002": ("ex02-ex03", "awe", "surprise"),  # awe before happy
        "ex01-ex02_bored_004": ("ex01-ex02", "bored", "neutral"),
        "ex03-ex04_calm_007": ("ex03-ex04", "calm", "neutral"),  # mono: nothing to mix
    }
    for uid, (speaker, label, ser8) in expected.items():
        row = rows.loc[uid]
        assert row["quarantine"] == "", (uid, row["quarantine"])
        assert (row["speaker"], row["label"], row["serevals8"]) == (
            f"expresso_{speaker}",
            label,
            ser8,
        )
        assert row["channel"] == ""  # every channel, averaged to mono
    assert not any(uid.endswith(("_ch1", "_ch2")) for uid in rows.index)
    assert "not readable as audio" in rows.loc["ex03-ex04_calm_006", "quarantine"]
    assert rows.loc["ex04_happy_00085", "speaker"] == "expresso_ex04"  # read speech unchanged
    assert len(rows) == 2 + len(DIALOGUES) + 3


def test_expresso_mode_is_checked(expresso_root):
    with pytest.raises(ValueError, match="curate.expresso_dialogues.*split.*mix"):
        scan("expresso", expresso_root, options={"dialogues": "stereo"})


def test_expresso_dialogue_name_must_match_its_folders(tmp_path):
    data = stereo()
    write(tmp_path, f"{CONV}/ex01-ex02/sad-angry/ex01-ex02_sad-angry_001.wav", data, EXPRESSO_RATE)
    write(tmp_path, f"{CONV}/ex01-ex02/sad-angry/ex03-ex04_sad-angry_002.wav", data, EXPRESSO_RATE)
    write(tmp_path, f"{CONV}/ex01-ex02/sad-angry/ex01-ex02_happy_003.wav", data, EXPRESSO_RATE)
    write(tmp_path, f"{CONV}/ex01/sad/ex01_sad_004.wav", data, EXPRESSO_RATE)
    write(tmp_path, f"{CONV}/ex01-ex02/a-b-c/ex01-ex02_a-b-c_005.wav", data, EXPRESSO_RATE)
    rows = by_uid(scan("expresso", tmp_path))
    assert rows.loc["ex01-ex02_sad-angry_001_ch1", "label"] == "sad"
    assert rows.loc["ex01-ex02_sad-angry_001_ch2", "label"] == "angry"
    assert "pair ex01-ex02_" in rows.loc["ex03-ex04_sad-angry_002", "quarantine"]
    assert "style of its folder sad-angry/" in rows.loc["ex01-ex02_happy_003", "quarantine"]
    assert "ex01/ is not a speaker pair" in rows.loc["ex01_sad_004", "quarantine"]
    assert (
        "a-b-c/ is not one style or a style pair" in rows.loc["ex01-ex02_a-b-c_005", "quarantine"]
    )


def test_curate_key_is_in_the_schema():
    params = load_params(PROJECT / "params.yaml")
    assert params["curate"]["expresso_dialogues"] == "split"
    mixed = copy.deepcopy(params)
    mixed["curate"]["expresso_dialogues"] = "mix"
    validate(mixed)
    mixed["curate"]["expresso_dialogues"] = "stereo"
    with pytest.raises(ParamsError, match="curate.expresso_dialogues"):
        validate(mixed)


# --- DEMoS --------------------------------------------------------------------------------------

DEMOS_FILES = {  # below wav_DEMoS/ -> (speaker, gender, label, serevals8, selection)
    "DEMOS/PR_m_23_tri00a.wav": ("23", "M", "tri", "sadness", "PR"),
    "DEMOS/NP_f_61_gio02c.wav": ("61", "F", "gio", "happiness", "NP"),
    "DEMOS/NP_m_19_col09b.wav": ("19", "M", "col", "sadness", "NP"),  # guilt -> sadness
    "DEMOS/PR_f_22_rab18b.wav": ("22", "F", "rab", "anger", "PR"),
    "DEMOS/NP_m_62_sor13b.wav": ("62", "M", "sor", "surprise", "NP"),
    "DEMOS/NP_m_05_dis07b.wav": ("05", "M", "dis", "disgust", "NP"),
    "DEMOS/NP_f_55_pau00a.wav": ("55", "F", "pau", "fear", "NP"),
    "NEU/m_23_neu00a.wav": ("23", "M", "neu", "neutral", ""),
}


@pytest.fixture(scope="module")
def demos_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("DEMoS")
    clip = tone(0.4, 16_000, 240.0, 0.3)
    for name in DEMOS_FILES:
        write(root, f"wav_DEMoS/{name}", clip)
    corrupt(root, "wav_DEMoS/DEMOS/NP_m_07_sor05b.wav")
    write(root, "wav_DEMoS/DEMOS/tristezza_1.wav", clip)  # not the corpus's naming
    return root


@pytest.mark.parametrize("below", ["wav_DEMoS", ""])
def test_demos_speakers_and_labels(demos_root, below):
    rows = by_uid(scan("demos", demos_root / below))
    for name, (speaker, gender, label, ser8, selection) in DEMOS_FILES.items():
        row = rows.loc[Path(name).stem]
        assert row["quarantine"] == "", (name, row["quarantine"])
        assert (row["speaker"], row["gender"]) == (f"demos_{speaker}", gender)
        assert (row["label"], row["serevals8"], row["selection"]) == (label, ser8, selection)
    assert rows.loc["NP_m_19_col09b", "emotion"] == "guilty"
    assert "not readable as audio" in rows.loc["NP_m_07_sor05b", "quarantine"]
    assert "<f|m>_<speaker>_<emo>" in rows.loc["tristezza_1", "quarantine"]
    assert len(rows) == len(DEMOS_FILES) + 2


# --- MASC ---------------------------------------------------------------------------------------

MASC_FILES = {  # below MASC/data/ -> (speaker, label, serevals8)
    "f01/neutral/sentence/01.wav": ("f01", "neutral", "neutral"),
    "f01/elation/phrase/02.wav": ("f01", "elation", "happiness"),
    "m02/panic/sentence/03.wav": ("m02", "panic", "fear"),
    "m02/sadness/phrase/04.wav": ("m02", "sadness", "sadness"),
    "m02/Anger/sentence/05.wav": ("m02", "anger", "anger"),  # folder name lowercased
}


@pytest.fixture(scope="module")
def masc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("MASC")
    clip = tone(0.4, 22_050, 200.0, 0.3)
    for name in MASC_FILES:
        write(root, f"data/{name}", clip, 22_050)
    write(root, "data/m02/bored/sentence/06.wav", clip, 22_050)  # not a MASC emotion
    write(root, "data/stray.wav", clip, 22_050)  # no grandparent folder below data/
    corrupt(root, "data/f01/anger/sentence/07.wav")
    return root


@pytest.mark.parametrize("below", ["", "data"])
def test_masc_grandparent_label_and_speaker_folder(masc_root, below):
    rows = by_uid(scan("masc", masc_root / below))
    for name, (speaker, label, ser8) in MASC_FILES.items():
        row = rows.loc[name[: -len(".wav")]]
        assert row["quarantine"] == "", (name, row["quarantine"])
        assert (row["speaker"], row["label"], row["serevals8"]) == (f"masc_{speaker}", label, ser8)
        assert row["group"] == Path(name).parent.name
    assert "unknown label 'bored'" in rows.loc["m02/bored/sentence/06", "quarantine"]
    assert "grandparent folder" in rows.loc["stray", "quarantine"]
    assert "not readable as audio" in rows.loc["f01/anger/sentence/07", "quarantine"]


def test_masc_without_speaker_folders_is_speaker_unknown(tmp_path):
    write(tmp_path, "data/panic/sentence/01.wav", tone(0.4, 22_050, 200.0, 0.3), 22_050)
    row = by_uid(scan("masc", tmp_path)).loc["panic/sentence/01"]
    assert (row["quarantine"], row["speaker"], row["serevals8"]) == ("", "", "fear")


# --- shared -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demos", "masc"])
def test_wrong_root_names_layout_and_key(tmp_path, name):
    write(tmp_path, "wav/03a01Fa.wav", tone(0.4, 16_000, 200.0, 0.3))  # an EmoDB root by mistake
    with pytest.raises(CorpusLayoutError) as info:
        scan(name, tmp_path)
    message = str(info.value)
    assert f"curate.corpora.{name}.root" in message
    assert SCANNERS[name].layout in message and "not found" in message
    with pytest.raises(CorpusLayoutError, match="does not exist"):
        scan(name, tmp_path / "nowhere")
