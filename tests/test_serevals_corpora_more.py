"""The RESD, eNTERFACE'05, MEAD and Expresso scanners on tiny hand-made layouts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import CorpusLayoutError
from selm_lib.data.corpora.registry import SCANNERS, scan
from selm_lib.data.labels import SEREVALS_CLASSES, label_table
from selm_lib.data.scan import main as corpora_cli

CORPORA = ("resd", "enterface", "mead", "expresso")
AUDIO = (0.1 * np.sin(np.arange(4800) / 5)).astype(np.float32)  # 0.3 s at 16 kHz
NOT_EXTRACTED = "audio not extracted: run python -m selm_lib.data.scan extract resd ROOT"


def write(root: Path, *relative: str, rate: int = 16000) -> None:
    """0.3 s wav files at ``rate`` (a multiple of 16 kHz)."""
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.repeat(AUDIO, rate // 16000), rate)


def touch(root: Path, *relative: str) -> None:
    """A stand-in for a video or m4a file (never opened)."""
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not audio soundfile can read")


def scanned(name: str, root: Path) -> pd.DataFrame:
    return scan(name, root).set_index("utterance_id")


def check(row: pd.Series, speaker: str, gender: str, label: str, emotion: str, ser8: str) -> None:
    assert row["quarantine"] == ""
    assert (row["speaker"], row["gender"], row["label"]) == (speaker, gender, label)
    assert (row["emotion"], row["serevals8"]) == (emotion, ser8)


def test_all_registered():
    assert set(CORPORA) <= set(SCANNERS)
    assert SCANNERS["resd"].has_official_split and SCANNERS["resd"].extract is not None


# --- RESD ---------------------------------------------------------------------------------------


def audio_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    sf.write(out, AUDIO, 16000, format=fmt)
    return out.getvalue()


def write_parquet(path: Path, rows: list[tuple[str, str, bytes | None]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    speech_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "name": [name for name, _, _ in rows],
            "path": [f"{name}.wav" for name, _, _ in rows],
            "emotion": [emotion for _, emotion, _ in rows],
            "speech": pa.array(
                [{"bytes": data, "path": f"{name}.wav"} for name, _, data in rows],
                type=speech_type,
            ),
        }
    )
    pq.write_table(table, path)


@pytest.fixture
def resd_root(tmp_path: Path) -> Path:
    wav, flac = audio_bytes("WAV"), audio_bytes("FLAC")
    write_parquet(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        [
            ("32_happiness_enthusiasm_h_121", "enthusiasm", wav),
            ("5_anger_fear_a_1", "anger", flac),  # not wav: decoded and re-written
            ("nodialog", "neutral", wav),
            ("bad/name", "fear", wav),
        ],
    )
    write_parquet(
        tmp_path / "data" / "test-00000-of-00001.parquet",
        [("7_sadness_disgust_s_3", "sadness", wav), ("7_sadness_disgust_d_4", "Disgust", wav)],
    )
    return tmp_path


def test_resd_before_extraction_every_row_says_how(resd_root, monkeypatch):
    read_columns = []
    real_read_table = pq.read_table

    def spy(source, *args, columns=None, **kwargs):
        read_columns.append(columns)
        return real_read_table(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", spy)
    m = scanned("resd", resd_root)
    assert read_columns and all(c is not None and "speech" not in c for c in read_columns)
    assert m.loc["train_32_happiness_enthusiasm_h_121", "quarantine"] == NOT_EXTRACTED
    assert m.loc["test_7_sadness_disgust_s_3", "quarantine"] == NOT_EXTRACTED
    assert "not a usable file name" in m.loc["train_bad/name", "quarantine"]
    assert m.loc["train_32_happiness_enthusiasm_h_121", "path"].endswith(
        "wav/train/32_happiness_enthusiasm_h_121.wav"
    )


def test_resd_extract_then_rows_are_usable(resd_root, capsys):
    assert corpora_cli(["extract", "resd", str(resd_root)]) == 0
    assert "wrote 5 wav files" in capsys.readouterr().out
    for split, name in (("train", "5_anger_fear_a_1"), ("test", "7_sadness_disgust_d_4")):
        path = resd_root / "wav" / split / f"{name}.wav"
        assert sf.info(str(path)).format == "WAV"
        data, rate = sf.read(str(path), dtype="float32")
        assert rate == 16000 and len(data) == len(AUDIO)
    m = scanned("resd", resd_root)
    check(
        m.loc["train_32_happiness_enthusiasm_h_121"],
        "resd_d32",
        "",
        "enthusiasm",
        "excited",
        "other",
    )
    check(m.loc["train_5_anger_fear_a_1"], "resd_d5", "", "anger", "angry", "anger")
    check(m.loc["train_nodialog"], "", "", "neutral", "neutral", "neutral")  # no dialog number
    check(m.loc["test_7_sadness_disgust_s_3"], "resd_d7", "", "sadness", "sad", "sadness")
    check(m.loc["test_7_sadness_disgust_d_4"], "resd_d7", "", "disgust", "disgusted", "disgust")
    assert m.loc["train_5_anger_fear_a_1", "official_split"] == "train"
    assert m.loc["test_7_sadness_disgust_s_3", "official_split"] == "test"
    assert "not a usable file name" in m.loc["train_bad/name", "quarantine"]
    # a second run keeps what is there
    assert corpora_cli(["extract", "resd", str(resd_root)]) == 0
    assert "wrote 0 wav files, kept 5" in capsys.readouterr().out.replace(
        f" under {resd_root / 'wav'}", ""
    )


def test_resd_unknown_split_and_unreadable_files_are_quarantined(resd_root, capsys):
    write_parquet(resd_root / "data" / "extra.parquet", [("9_fear_x_1", "fear", b"")])
    (resd_root / "data" / "test-00001-of-00002.parquet").write_bytes(b"not parquet")
    m = scanned("resd", resd_root)
    assert "does not start with train- or test-" in m.loc["extra_9_fear_x_1", "quarantine"]
    assert "cannot read data/test-00001" in m.loc["test-00001-of-00002", "quarantine"]
    assert corpora_cli(["extract", "resd", str(resd_root)]) == 0
    assert "1 parquet files could not be read" in capsys.readouterr().out
    assert not (resd_root / "wav" / "extra").exists()


def test_resd_empty_root_names_the_key(tmp_path, capsys):
    with pytest.raises(CorpusLayoutError) as info:
        scan("resd", tmp_path)
    assert "curate.corpora.resd.root" in str(info.value)
    assert SCANNERS["resd"].layout in str(info.value)
    assert corpora_cli(["extract", "resd", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


# --- eNTERFACE'05 -------------------------------------------------------------------------------


def test_enterface(tmp_path):
    base = "enterface database"
    touch(tmp_path, f"{base}/subject 1/anger/sentence 1/s1_an_1.avi")
    write(tmp_path, f"{base}/subject 1/anger/sentence 1/s1_an_1.wav")
    write(tmp_path, f"{base}/subject 6/happiness/s6_ha_2.wav")  # subject 6: no sentence level
    write(tmp_path, f"{base}/subject 12/surprise/sentence 5/s12_su_5.wav")
    touch(tmp_path, f"{base}/subject 2/disgust/sentence 3/s2_di_3.avi")  # wav not extracted
    write(tmp_path, f"{base}/subject 3/fear/sentence 1/s3_sa_1.wav")  # code mismatch
    write(tmp_path, f"{base}/subject 4/sadness/sentence 2/s5_sa_2.wav")  # subject mismatch
    write(tmp_path, f"{base}/subject 1/sadness/sentence 1/clip.wav")  # bad name
    write(tmp_path, f"{base}/subject 1/neutral/sentence 1/s1_ne_1.wav")  # no neutral
    write(tmp_path, f"{base}/stray.wav")
    m = scanned("enterface", tmp_path)
    check(m.loc["s1_an_1"], "enterface_1", "", "anger", "angry", "anger")
    check(m.loc["s6_ha_2"], "enterface_6", "", "happiness", "happy", "happiness")
    check(m.loc["s12_su_5"], "enterface_12", "", "surprise", "surprised", "surprise")
    assert m.loc["s12_su_5", "sentence"] == "5"
    assert list(m.index).count("s1_an_1") == 1  # the .avi and its wav are one clip
    assert m.loc["s1_an_1", "path"].endswith(".wav")
    assert m.loc["s2_di_3", "quarantine"] == (
        "audio not extracted: run ffmpeg -i s2_di_3.avi -ac 1 -ar 16000 s2_di_3.wav "
        f"in {base}/subject 2/disgust/sentence 3/"
    )
    assert m.loc["s2_di_3", "speaker"] == "enterface_2"
    assert "code sa in the name but the file is in fear/" in m.loc["s3_sa_1", "quarantine"]
    assert "subject 5 in the name" in m.loc["s5_sa_2", "quarantine"]
    assert "s<N>_<code>_<M>" in m.loc["clip", "quarantine"]
    assert "unknown label 'neutral'" in m.loc["s1_ne_1", "quarantine"]
    assert "subject <N>/<emotion>" in m.loc["stray", "quarantine"]
    assert "neutral" not in set(m["serevals8"])


# --- MEAD ---------------------------------------------------------------------------------------


def test_mead(tmp_path):
    touch(tmp_path, "M003/audio/angry/level_1/001.m4a", "M003/video/front/angry/level_1/001.mp4")
    write(tmp_path, "M003/audio/angry/level_1/001.wav", "W009/audio/contempt/level_3/002.wav")
    write(tmp_path, "W009/audio/neutral/level_1/010.wav", "M003/audio/surprised/level_2/005.wav")
    touch(tmp_path, "M003/audio/neutral/level_1/003.m4a")  # not extracted
    write(tmp_path, "M003/audio/happy/strong/004.wav")  # not a level folder
    write(tmp_path, "X01/audio/sad/level_1/001.wav")  # not an actor id
    m = scanned("mead", tmp_path)
    check(m.loc["M003_angry_level_1_001"], "mead_M003", "M", "angry", "angry", "anger")
    row = m.loc["W009_contempt_level_3_002"]
    check(row, "mead_W009", "F", "contempt", "contempt", "disgust")  # contempt -> disgust
    assert row["intensity"] == "3"
    check(m.loc["W009_neutral_level_1_010"], "mead_W009", "F", "neutral", "neutral", "neutral")
    row = m.loc["M003_surprised_level_2_005"]
    check(row, "mead_M003", "M", "surprised", "surprised", "surprise")
    assert m.loc["M003_neutral_level_1_003", "quarantine"] == (
        "audio not extracted: run ffmpeg -i 003.m4a -ac 1 -ar 16000 003.wav "
        "in M003/audio/neutral/level_1/"
    )
    assert "level folder" in m.loc["M003_happy_strong_004", "quarantine"]
    assert "<actor>/audio/<emotion>" in m.loc["X01/audio/sad/level_1/001", "quarantine"]
    assert len(m) == 7  # the video folder is ignored


def test_mead_below_a_wrapper_folder(tmp_path):
    write(tmp_path, "MEAD/M012/audio/fear/level_2/020.wav")
    row = scanned("mead", tmp_path).loc["M012_fear_level_2_020"]
    check(row, "mead_M012", "M", "fear", "fearful", "fear")


# --- Expresso -----------------------------------------------------------------------------------


def test_expresso(tmp_path):
    read = "audio_48khz/read"
    conv = "audio_48khz/conversational"
    files = (
        f"{read}/ex01/default/base/ex01_default_00001.wav",
        f"{read}/ex01/laughing/base/ex01_laughing_00002.wav",
        f"{read}/ex03/whisper/longform/ex03_whisper_longform_00001.wav",
        f"{read}/ex04/happy/emphasis/ex04_happy_00003.wav",
        f"{read}/ex02/confused/ex02_confused_00007.wav",  # no subset folder
        f"{read}/ex01/sad/base/ex02_sad_00001.wav",  # speaker mismatch
        f"{read}/ex01/sad/base/sad_one.wav",  # bad name
        f"{read}/ex01/yodel/base/ex01_yodel_00001.wav",  # not an Expresso style
        f"{conv}/ex01-ex02/awe/ex01-ex02_awe_001_channel1.wav",
        f"{conv}/ex01-ex02/awe/ex01-ex02_awe_001_channel2.wav",
        f"{conv}/ex03-ex04/non_verbal/ex03-ex04_non_verbal_002_channel2.wav",
        f"{conv}/ex01-ex02/animal_directed/ex01-ex02_animaldir_004_channel1.wav",
        f"{conv}/ex03-ex04/calm/ex03-ex04_calm_005_channel1.wav",
        f"{conv}/ex03-ex04/bored/ex03-ex04_bored_006_channel2.wav",
        f"{conv}/ex03-ex04/bored/ex03-ex04_bored_003.wav",  # no channel: speaker unknown
        f"{conv}/ex03-ex04/calm/ex01-ex02_calm_003_channel1.wav",  # pair mismatch
        f"{conv}/ex01-ex02/angry/ex01-ex02_sad_007_channel1.wav",  # style mismatch
        "audio_48khz/stray.wav",
    )
    write(tmp_path, *files, rate=48000)
    m = scanned("expresso", tmp_path)
    check(m.loc["ex01_default_00001"], "expresso_ex01", "", "default", "neutral", "neutral")
    check(m.loc["ex01_laughing_00002"], "expresso_ex01", "", "laughing", "happy", "happiness")
    check(m.loc["ex03_whisper_longform_00001"], "expresso_ex03", "", "whisper", "other", "other")
    check(m.loc["ex04_happy_00003_emphasis"], "expresso_ex04", "", "happy", "happy", "happiness")
    check(m.loc["ex02_confused_00007"], "expresso_ex02", "", "confused", "other", "other")
    check(m.loc["ex01-ex02_awe_001_channel1"], "expresso_ex01", "", "awe", "surprised", "surprise")
    check(m.loc["ex01-ex02_awe_001_channel2"], "expresso_ex02", "", "awe", "surprised", "surprise")
    row = m.loc["ex03-ex04_non_verbal_002_channel2"]
    check(row, "expresso_ex04", "", "nonverbal", "other", "other")
    assert (row["section"], row["style"]) == ("conversational", "non_verbal")
    row = m.loc["ex01-ex02_animaldir_004_channel1"]
    check(row, "expresso_ex01", "", "animaldir", "other", "other")
    check(m.loc["ex03-ex04_calm_005_channel1"], "expresso_ex03", "", "calm", "calm", "neutral")
    check(m.loc["ex03-ex04_bored_006_channel2"], "expresso_ex04", "", "bored", "bored", "neutral")
    assert m.loc["ex01_default_00001", "sample_rate"] == 48000
    assert "speaker ex02 in the name" in m.loc["ex02_sad_00001", "quarantine"]
    assert "<exNN>_<style>_<NNNNN>" in m.loc["sad_one", "quarantine"]
    assert "unknown label 'yodel'" in m.loc["ex01_yodel_00001", "quarantine"]
    assert "cannot tell the speaker" in m.loc["ex03-ex04_bored_003", "quarantine"]
    assert m.loc["ex03-ex04_bored_003", "speaker"] == ""
    assert "pair ex03-ex04_" in m.loc["ex01-ex02_calm_003_channel1", "quarantine"]
    assert "style of its folder angry/" in m.loc["ex01-ex02_sad_007_channel1", "quarantine"]
    assert "read/<speaker>" in m.loc["stray", "quarantine"]


def test_expresso_root_may_be_audio_48khz(tmp_path):
    write(tmp_path, "read/ex02/sad/base/ex02_sad_00004.wav", rate=48000)
    row = scanned("expresso", tmp_path).loc["ex02_sad_00004"]
    check(row, "expresso_ex02", "", "sad", "sad", "sadness")


# --- shared -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORPORA)
def test_empty_or_wrong_root_names_layout_and_key(tmp_path, name):
    with pytest.raises(CorpusLayoutError) as info:
        scan(name, tmp_path)
    message = str(info.value)
    assert f"curate.corpora.{name}.root" in message
    assert SCANNERS[name].layout in message and "not found" in message
    write(tmp_path, "wav/03a01Fa.wav")  # an EmoDB root given by mistake
    with pytest.raises(CorpusLayoutError, match="not found"):
        scan(name, tmp_path)
    with pytest.raises(CorpusLayoutError, match="does not exist"):
        scan(name, tmp_path / "nowhere")


def test_label_rows_follow_serevals_and_sentiment():
    table = label_table()
    ours = table[table["corpus"].isin(CORPORA)]
    assert set(ours["corpus"]) == set(CORPORA)
    assert set(ours["serevals8"]) <= set(SEREVALS_CLASSES)
    assert not ours.duplicated(["corpus", "label"]).any()
    others = table[~table["corpus"].isin(CORPORA) & (table["emotion"] != "")]
    existing = others.groupby("emotion")["sentiment"].first()
    for row in ours.itertuples():
        assert row.emotion in existing, row  # the package's emotion vocabulary
        assert row.sentiment == existing[row.emotion], row
    rule = ours.set_index(["corpus", "label"])["serevals8"]
    assert rule["resd", "enthusiasm"] == "other" and len(rule["resd"]) == 7
    assert rule["mead", "contempt"] == "disgust" and len(rule["mead"]) == 8
    assert "neutral" not in set(rule["enterface"]) and len(rule["enterface"]) == 6
    expresso = rule["expresso"]
    for style in ("default", "calm", "bored"):
        assert expresso[style] == "neutral"
    assert expresso["awe"] == "surprise" and expresso["laughing"] == "happiness"
    conversational = (
        "angry animal animaldir awe bored calm child childdir confused default desire disgusted "
        "enunciated fast fearful happy laughing narration nonverbal projected sad sarcastic "
        "singing sleepy sympathetic whisper"
    ).split()
    assert len(conversational) == 26 and set(conversational) <= set(expresso.index)
    assert (expresso == "other").sum() >= 15  # most styles -> other
