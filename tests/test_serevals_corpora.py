"""The SER-Evals corpus scanners on tiny hand-named files in each corpus's distributed layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import CorpusLayoutError
from selm_lib.data.corpora.registry import SCANNERS, scan
from selm_lib.data.labels import SEREVALS_CLASSES, label_table

CORPORA = (
    "emovo",
    "cafe",
    "shemo",
    "subesco",
    "mesd",
    "aesdd",
    "urdu",
    "casia",
    "thorsten_emotional",
)
AUDIO = (0.1 * np.sin(np.arange(4800) / 5)).astype(np.float32)  # 0.3 s at 16 kHz


def write(root: Path, *relative: str) -> None:
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, AUDIO, 16000)


def scanned(name: str, root: Path) -> pd.DataFrame:
    return scan(name, root).set_index("utterance_id")


def check(row: pd.Series, speaker: str, gender: str, label: str, emotion: str, ser8: str) -> None:
    assert row["quarantine"] == ""
    assert (row["speaker"], row["gender"], row["label"]) == (speaker, gender, label)
    assert (row["emotion"], row["serevals8"]) == (emotion, ser8)


def test_all_registered():
    assert set(CORPORA) <= set(SCANNERS)


def test_emovo(tmp_path):
    write(tmp_path, "f1/dis-f1-b1.wav", "m3/pau-m3-l4.wav", "m2/sor-m2-n5.wav")
    write(tmp_path, "m2/rab-m3-d1.wav", "f2/anger_f2.wav", "f3/xyz-f3-b1.wav")
    m = scanned("emovo", tmp_path)
    check(m.loc["dis-f1-b1"], "emovo_f1", "F", "dis", "disgusted", "disgust")
    check(m.loc["pau-m3-l4"], "emovo_m3", "M", "pau", "fearful", "fear")
    check(m.loc["sor-m2-n5"], "emovo_m2", "M", "sor", "surprised", "surprise")
    assert m.loc["sor-m2-n5", "sentence"] == "n5"
    assert "is in m2/" in m.loc["rab-m3-d1", "quarantine"]
    assert "<emo>-<speaker>-<sentence>" in m.loc["anger_f2", "quarantine"]
    assert "unknown label 'xyz'" in m.loc["xyz-f3-b1", "quarantine"]


def test_shemo(tmp_path):
    write(tmp_path, "female/F01A01.wav", "male/M12F03.wav", "male/M05W10.wav")
    write(tmp_path, "female/M02H01.wav", "male/M1A01.wav")
    m = scanned("shemo", tmp_path)
    check(m.loc["F01A01"], "shemo_F01", "F", "A", "angry", "anger")
    check(m.loc["M12F03"], "shemo_M12", "M", "F", "fearful", "other")  # fear -> other
    check(m.loc["M05W10"], "shemo_M05", "M", "W", "surprised", "surprise")
    assert "is in female/" in m.loc["M02H01", "quarantine"]
    assert "F01A01" in m.loc["M1A01", "quarantine"]


def test_subesco(tmp_path):
    write(tmp_path, "F_02_MONIKA_S_1_ANGRY_1.wav", "M_10_ARIF_S_10_NEUTRAL_5.wav")
    write(tmp_path, "F_01_OISHI_S_3_SURPRISE_2.wav", "F_02_MONIKA_ANGRY.wav")
    m = scanned("subesco", tmp_path)
    check(m.loc["F_02_MONIKA_S_1_ANGRY_1"], "subesco_F02", "F", "ANGRY", "angry", "anger")
    check(m.loc["M_10_ARIF_S_10_NEUTRAL_5"], "subesco_M10", "M", "NEUTRAL", "neutral", "neutral")
    row = m.loc["F_01_OISHI_S_3_SURPRISE_2"]
    check(row, "subesco_F01", "F", "SURPRISE", "surprised", "surprise")
    assert (row["speaker_name"], row["sentence"], row["take"]) == ("OISHI", "3", "2")
    assert "G_SS_NAME_S_N_EMOTION_T" in m.loc["F_02_MONIKA_ANGRY", "quarantine"]


def test_cafe(tmp_path):
    write(tmp_path, "Colère/Faible/01-C-1-1.wav", "Dégoût/Fort/12-D-2-6.wav")
    write(tmp_path, "Neutre/03-N-1-2.wav", "Joie/Fort/04-J-1-1.wav", "Peur/Faible/05-T-1-1.wav")
    write(tmp_path, "Tristesse/Faible/sad.wav")
    m = scanned("cafe", tmp_path)
    check(m.loc["01-C-1-1"], "cafe_01", "", "C", "angry", "anger")
    check(m.loc["12-D-2-6"], "cafe_12", "", "D", "disgusted", "disgust")
    check(m.loc["03-N-1-2"], "cafe_03", "", "N", "neutral", "neutral")
    assert m.loc["12-D-2-6", "intensity"] == "high"
    assert "intensity 1 in the name" in m.loc["04-J-1-1", "quarantine"]
    assert "emotion T in the name" in m.loc["05-T-1-1", "quarantine"]
    assert "SS-E-I-N" in m.loc["sad", "quarantine"]


def test_cafe_decomposed_accents(tmp_path):
    import unicodedata

    write(tmp_path, unicodedata.normalize("NFD", "Colère") + "/Fort/02-C-2-3.wav")
    check(scanned("cafe", tmp_path).loc["02-C-2-3"], "cafe_02", "", "C", "angry", "anger")


def test_mesd(tmp_path):
    write(tmp_path, "MESD/Anger_C_A_abajo.wav", "MESD/Happiness_F_B_ñoño.wav")
    write(tmp_path, "MESD/Neutral_M_A_casa.wav", "MESD/Surprise_F_A_casa.wav")
    m = scanned("mesd", tmp_path)
    check(m.loc["Anger_C_A_abajo"], "mesd_C", "", "Anger", "angry", "anger")
    check(m.loc["Happiness_F_B_ñoño"], "mesd_F", "F", "Happiness", "happy", "happiness")
    check(m.loc["Neutral_M_A_casa"], "mesd_M", "M", "Neutral", "neutral", "neutral")
    assert m.loc["Anger_C_A_abajo", "voice"] == "child"
    assert "<Emotion>_<C|F|M>" in m.loc["Surprise_F_A_casa", "quarantine"]  # no surprise


def test_aesdd(tmp_path):
    write(tmp_path, "anger/a01 (1).wav", "sadness/s20 (5).wav", "fear/f05(3).wav")
    write(tmp_path, "happiness/h07 (2)b.wav", "disgust/a02 (4).wav", "disgust/d1 1.wav")
    m = scanned("aesdd", tmp_path)
    check(m.loc["a01_1"], "aesdd_1", "", "a", "angry", "anger")
    check(m.loc["s20_5"], "aesdd_5", "", "s", "sad", "sadness")
    check(m.loc["f05_3"], "aesdd_3", "", "f", "fearful", "fear")
    check(m.loc["h07_2b"], "aesdd_2", "", "h", "happy", "happiness")
    assert "is in disgust/" in m.loc["a02_4", "quarantine"]
    assert "<e><NN> (<speaker>)" in m.loc["disgust/d1 1", "quarantine"]
    assert "neutral" not in set(m["serevals8"])


def test_urdu(tmp_path):
    write(tmp_path, "Angry/SM1_F10_A010.wav", "Sad/SF3_F2_S002.wav", "Happy/SM1_F3_A003.wav")
    write(tmp_path, "Neutral/neutral01.wav")
    m = scanned("urdu", tmp_path)
    check(m.loc["SM1_F10_A010"], "urdu_SM1", "M", "Angry", "angry", "anger")
    check(m.loc["SF3_F2_S002"], "urdu_SF3", "F", "Sad", "sad", "sadness")
    assert "is in Happy/" in m.loc["SM1_F3_A003", "quarantine"]
    assert "S<G><N>_F<n>" in m.loc["neutral01", "quarantine"]


def test_casia(tmp_path):
    write(tmp_path, "liuchanhg/angry/201.wav", "wangzhe/surprise/250.wav")
    write(tmp_path, "ZhaoZuoxiang/neutral/201.wav", "wangzhe/bored/201.wav")
    write(tmp_path, "wangzhe/sad/take.wav", "stray.wav")
    m = scanned("casia", tmp_path)
    check(m.loc["liuchanhg_angry_201"], "casia_liuchanhg", "", "angry", "angry", "anger")
    check(m.loc["wangzhe_surprise_250"], "casia_wangzhe", "", "surprise", "surprised", "surprise")
    check(
        m.loc["ZhaoZuoxiang_neutral_201"], "casia_ZhaoZuoxiang", "", "neutral", "neutral", "neutral"
    )
    assert "unknown label 'bored'" in m.loc["wangzhe_bored_201", "quarantine"]
    assert "not a number" in m.loc["wangzhe_sad_take", "quarantine"]
    assert "<speaker>/<emotion>/<NNN>" in m.loc["stray", "quarantine"]


def test_thorsten_emotional(tmp_path):
    base = "thorsten-emotional_v02"
    write(tmp_path, f"{base}/amused/0a1b.wav", f"{base}/whisper/0a1b.wav")
    write(tmp_path, f"{base}/angry/x-1_2.wav", f"{base}/happy/0a1b.wav", f"{base}/neutral/a b.wav")
    m = scanned("thorsten_emotional", tmp_path)
    speaker = "thorsten_emotional_thorsten"
    check(m.loc["amused_0a1b"], speaker, "M", "amused", "happy", "happiness")
    check(m.loc["whisper_0a1b"], speaker, "M", "whisper", "other", "other")
    check(m.loc["angry_x-1_2"], speaker, "M", "angry", "angry", "anger")
    assert "not inside a style folder" in m.loc["happy_0a1b", "quarantine"]
    assert "not an id" in m.loc["neutral_a b", "quarantine"]


@pytest.mark.parametrize("name", CORPORA)
def test_wrong_root_names_layout_and_key(tmp_path, name):
    write(tmp_path, "wav/03a01Fa.wav")  # an EmoDB root given by mistake
    with pytest.raises(CorpusLayoutError) as info:
        scan(name, tmp_path)
    message = str(info.value)
    assert f"curate.corpora.{name}.root" in message
    assert SCANNERS[name].layout in message and "not found" in message
    with pytest.raises(CorpusLayoutError, match="does not exist"):
        scan(name, tmp_path / "nowhere")


def test_label_rows_follow_serevals_and_sentiment():
    table = label_table()
    ours = table[table["corpus"].isin(CORPORA)]
    assert set(ours["corpus"]) == set(CORPORA)
    assert set(ours["serevals8"]) <= set(SEREVALS_CLASSES)
    assert (ours["serevals8"] != "").all()
    others = table[~table["corpus"].isin(CORPORA) & (table["emotion"] != "")]
    existing = others.groupby("emotion")["sentiment"].first()
    for row in ours.itertuples():
        if row.emotion in existing:
            assert row.sentiment == existing[row.emotion], row
    # the REFERENCE rules that are not one-to-one
    rule = ours.set_index(["corpus", "label"])["serevals8"]
    assert rule["shemo", "F"] == "other"
    assert "surprise" not in set(rule["mesd"])
    assert "neutral" not in set(rule["aesdd"])
    assert len(rule["subesco"]) == 7 and len(rule["emovo"]) == 7 and len(rule["cafe"]) == 7
