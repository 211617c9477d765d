from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import MANIFEST_COLUMNS, CorpusLayoutError, usable
from selm_lib.data.corpora.iemocap import parse_emo_evaluation, speaker_of
from selm_lib.data.corpora.registry import SCANNERS, scan
from selm_lib.data.scan import main as scan_cli
from selm_lib.data.synth.registry import WRITERS

from .conftest import corpus_dir


@pytest.mark.parametrize("name", sorted(set(SCANNERS) & set(WRITERS)))
def test_scanner_reads_its_synthetic_layout(synthetic_root, name):
    manifest = scan(name, corpus_dir(synthetic_root, name))
    assert list(manifest.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    good = usable(manifest)
    assert len(good) > 10
    if name == "cmu_mosei":  # sentiment labels only
        assert set(good["sentiment"]) <= {"positive", "neutral", "negative"}
        assert (good["emotion"] == "").all()
    else:
        assert (good["emotion"] != "").all()
    assert (good["sample_rate"] > 0).all() and (good["duration_s"] > 0.5).all()
    assert manifest["corpus"].eq(name).all()
    # the synthetic corpora carry deliberately broken files: each is listed, none dropped
    assert (manifest["quarantine"] != "").sum() >= 1


def test_ravdess_fields(synthetic_root):
    manifest = usable(scan("ravdess", corpus_dir(synthetic_root, "ravdess")))
    row = manifest.iloc[0]
    actor = int(row["utterance_id"].split("-")[-1])
    assert row["speaker"] == f"ravdess_{actor:02d}"
    assert row["gender"] == ("M" if actor % 2 else "F")
    assert set(manifest["sample_rate"]) == {48000}
    assert manifest.loc[manifest["label"] == "02", "emotion"].eq("calm").all()


def test_ravdess_zip_layout_and_bad_names(tmp_path):
    folder = tmp_path / "Actor_03"
    folder.mkdir()
    audio = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    sf.write(folder / "03-01-05-02-01-01-03.wav", audio, 16000)
    sf.write(folder / "03-01-05-02-01-01-04.wav", audio, 16000)  # actor mismatch
    sf.write(folder / "angry_take.wav", audio, 16000)  # not the naming scheme
    sf.write(folder / "03-01-09-01-01-01-03.wav", audio, 16000)  # emotion code 09 unknown
    manifest = scan("ravdess", tmp_path).set_index("utterance_id")
    assert manifest.loc["03-01-05-02-01-01-03", "quarantine"] == ""
    assert manifest.loc["03-01-05-02-01-01-03", "emotion"] == "angry"
    assert "Actor_03" in manifest.loc["03-01-05-02-01-01-04", "quarantine"]
    assert "MM-VV-EE" in manifest.loc["angry_take", "quarantine"]
    assert "unknown label '09'" in manifest.loc["03-01-09-01-01-01-03", "quarantine"]


def test_iemocap_summary_lines_and_annotators(tmp_path):
    text = (
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01M_script01_1_M012\texc\t[4.0000, 3.5000, 3.0000]\n"
        "C-E1:\tExcited;\t()\n"
    )
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(text)
    labels = parse_emo_evaluation(path)
    assert set(labels) == {"Ses01F_impro01_F000", "Ses01M_script01_1_M012"}
    assert labels["Ses01M_script01_1_M012"]["label"] == "exc"
    assert labels["Ses01M_script01_1_M012"]["valence"] == 4.0
    assert labels["Ses01M_script01_1_M012"]["arousal"] == 3.5
    assert labels["Ses01F_impro01_F000"]["votes"] == {"neutral": 2.0}  # C-E2, C-E3; not A-E3
    assert labels["Ses01M_script01_1_M012"]["votes"] == {"excited": 1.0}
    assert speaker_of("Ses01F_impro01_M012") == ("Ses01M", "M")
    assert speaker_of("Ses03M_script01_1_F000") == ("Ses03F", "F")


def test_iemocap_synthetic_has_vad_and_ten_speakers(synthetic_root):
    manifest = usable(scan("iemocap", corpus_dir(synthetic_root, "iemocap")))
    assert manifest["speaker"].nunique() == 10
    assert manifest[["valence", "arousal", "dominance"]].notna().all().all()
    assert manifest["valence"].between(1, 5).all()
    bad = scan("iemocap", corpus_dir(synthetic_root, "iemocap"))
    assert bad.loc[bad["quarantine"] != "", "quarantine"].str.startswith("truncated").any()


def test_crema_d_demographics(synthetic_root):
    manifest = scan("crema_d", corpus_dir(synthetic_root, "crema_d"))
    good = usable(manifest)
    assert set(good["gender"]) <= {"M", "F"} and (good["gender"] != "").all()
    assert (good["age"].astype(str) != "").all()
    empty = manifest.set_index("utterance_id").loc["1076_MTI_SAD_XX"]
    assert empty["quarantine"] == "empty file (0 bytes)"


def test_msp_podcast_bad_files_and_unknown_speaker(synthetic_root):
    manifest = scan("msp_podcast", corpus_dir(synthetic_root, "msp_podcast")).set_index(
        "utterance_id"
    )
    # the reason does not embed the path, so manifests do not depend on where the project lives
    reason = manifest.loc["MSP-PODCAST_9001_0001", "quarantine"]
    assert reason == "not readable as audio (Format not recognised.)"
    assert "non-finite" in manifest.loc["MSP-PODCAST_9001_0002", "quarantine"]
    assert "silent" in manifest.loc["MSP-PODCAST_9001_0003", "quarantine"]
    good = usable(manifest.reset_index())
    assert good["arousal"].between(1, 7).all()
    assert set(good["official_split"]) <= {"train", "validation", "test"}


def test_meld_sentiment_from_csv_and_unextracted_audio(synthetic_root):
    manifest = scan("meld", corpus_dir(synthetic_root, "meld"))
    good = usable(manifest)
    assert set(good["sentiment"]) <= {"positive", "neutral", "negative"}
    assert (good["channels"] == 2).all()  # stereo on disk, mixed down at load time
    missing = manifest[manifest["utterance_id"] == "train_dia9999_utt0"].iloc[0]
    assert "ffmpeg" in missing["quarantine"]


def test_missing_root_names_layout_and_key(tmp_path):
    with pytest.raises(CorpusLayoutError) as info:
        scan("crema_d", tmp_path / "nowhere")
    message = str(info.value)
    assert "curate.corpora.crema_d.root" in message
    assert "AudioWAV/AAAA_SSS_EEE_LL.wav" in message
    assert "does not exist" in message


def test_wrong_layout_names_missing_part(tmp_path):
    (tmp_path / "wavs").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"not found: Session\[1-5\]/sentences/wav"):
        scan("iemocap", tmp_path)


def test_empty_layout_is_an_error(tmp_path):
    (tmp_path / "AudioWAV").mkdir()
    with pytest.raises(CorpusLayoutError, match="holds no audio files"):
        scan("crema_d", tmp_path)


def test_scan_cli(synthetic_root, tmp_path, capsys):
    out = tmp_path / "manifest.csv"
    code = scan_cli(["scan", "emodb", str(corpus_dir(synthetic_root, "emodb")), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "usable" in printed and "quarantine (" in printed
    manifest = pd.read_csv(out, keep_default_na=False)
    assert set(MANIFEST_COLUMNS) <= set(manifest.columns)
    assert len(manifest) > 0


def test_scan_cli_wrong_root(tmp_path, capsys):
    assert scan_cli(["scan", "ravdess", str(tmp_path / "x")]) == 2
    assert "Expected layout" in capsys.readouterr().err


def test_cmu_mosei_mmsa_layout(synthetic_root):
    manifest = scan("cmu_mosei", corpus_dir(synthetic_root, "cmu_mosei"))
    good = usable(manifest)
    assert good["valence"].between(-3, 3).all()
    assert set(good["official_split"]) <= {"train", "validation", "test"}
    # one speaker per video
    assert (
        good["speaker"] == "cmu_mosei_" + good["utterance_id"].str.rsplit("_", n=1).str[0]
    ).all()
    bad = manifest[manifest["quarantine"] != ""]
    assert bad["quarantine"].str.contains("ffmpeg -i 999.mp4").any()


def test_ravdess_song_is_scanned_only_when_asked(tmp_path):
    audio = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    speech = tmp_path / "Audio_Speech_Actors_01-24" / "Actor_02"
    song = tmp_path / "Audio_Song_Actors_01-24" / "Actor_02"
    speech.mkdir(parents=True)
    song.mkdir(parents=True)
    sf.write(speech / "03-01-03-01-01-01-02.wav", audio, 16000)
    sf.write(song / "03-02-03-01-01-01-02.wav", audio, 16000)
    sf.write(song / "03-01-04-01-01-01-02.wav", audio, 16000)  # a speech code in the song folder
    assert list(scan("ravdess", tmp_path)["vocal_channel"]) == ["speech"]
    both = scan("ravdess", tmp_path, options={"include_song": True}).set_index("utterance_id")
    assert both.loc["03-02-03-01-01-01-02", "vocal_channel"] == "song"
    assert both.loc["03-02-03-01-01-01-02", "gender"] == "F"
    assert "does not match folder (song)" in both.loc["03-01-04-01-01-01-02", "quarantine"]


# ------------------------------------------------------------------- annotators' votes (`votes`)
# The header of CREMA-D's processedResults/tabulatedVotes.csv as distributed (R's write.csv).
CREMA_VOTES_HEADER = (
    '"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote","meanEmoResp",'
    '"meanAngerResp","meanDisgustResp","meanFearResp","meanHappyResp","meanNeutralResp",'
    '"meanSadResp","medianEmoResp","meanEmoRespNorm","meanAngerRespNorm","meanDisgustRespNorm",'
    '"meanFearRespNorm","meanHappyRespNorm","meanNeutralRespNorm","meanSadRespNorm",'
    '"medianEmoRespNorm"'
)


def crema_vote_line(row_id: int, counts: str, name: str, emo_vote: str) -> str:
    numbers = [int(c) for c in counts.split()]
    total = sum(numbers)
    agreement = max(numbers) / total
    tail = ",".join(["60"] * 16)
    return (
        f'"{row_id}",{",".join(map(str, numbers))},"{name}",{total},{agreement},"{emo_vote}",{tail}'
    )


def write_crema(root, names, table_lines):
    audio = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    (root / "AudioWAV").mkdir(parents=True)
    for name in names:
        sf.write(root / "AudioWAV" / f"{name}.wav", audio, 16000)
    if table_lines is not None:
        (root / "processedResults").mkdir()
        (root / "processedResults" / "tabulatedVotes.csv").write_text("\n".join(table_lines) + "\n")


def test_crema_d_votes_come_from_the_voice_only_rows(tmp_path):
    # three rows per clip: id 100000*queryType + clip, 1 = voice, 2 = face, 3 = audio-visual
    lines = [
        CREMA_VOTES_HEADER,
        crema_vote_line(100001, "0 0 0 1 10 0", "1001_IEO_NEU_XX", "N"),
        crema_vote_line(100002, "2 0 0 4 4 0", "1001_IEO_HAP_HI", "H:N"),
        crema_vote_line(200001, "0 0 0 0 9 0", "1001_IEO_NEU_XX", "N"),
        crema_vote_line(200002, "0 0 0 9 0 0", "1001_IEO_HAP_HI", "H"),
        crema_vote_line(300001, "0 0 0 0 11 0", "1001_IEO_NEU_XX", "N"),
        crema_vote_line(300002, "0 0 0 10 0 0", "1001_IEO_HAP_HI", "H"),
    ]
    write_crema(tmp_path, ["1001_IEO_NEU_XX", "1001_IEO_HAP_HI", "1002_DFA_SAD_XX"], lines)
    manifest = scan("crema_d", tmp_path).set_index("utterance_id")
    assert manifest.loc["1001_IEO_NEU_XX", "votes"] == '{"happy":1,"neutral":10}'
    assert manifest.loc["1001_IEO_HAP_HI", "votes"] == '{"angry":2,"happy":4,"neutral":4}'
    assert manifest.loc["1001_IEO_HAP_HI", "perceived"] == "H:N"  # the voice raters' tie
    assert float(manifest.loc["1001_IEO_HAP_HI", "agreement"]) == 0.4
    assert manifest.loc["1002_DFA_SAD_XX", "votes"] == ""  # no row for it
    # the column survives a CSV round trip unchanged
    out = tmp_path / "manifest.csv"
    manifest.reset_index().to_csv(out, index=False)
    back = pd.read_csv(out, keep_default_na=False).set_index("utterance_id")
    assert back["votes"].to_dict() == manifest["votes"].to_dict()


def test_crema_d_without_vote_table_has_no_votes(tmp_path):
    write_crema(tmp_path, ["1001_IEO_NEU_XX"], None)
    manifest = scan("crema_d", tmp_path)
    assert list(manifest["votes"]) == [""] and list(manifest["perceived"]) == [""]


def test_crema_d_vote_table_without_counts_names_the_file(tmp_path):
    write_crema(
        tmp_path, ["1001_IEO_NEU_XX"], ['"","fileName","emoVote"', '"1","1001_IEO_NEU_XX","N"']
    )
    with pytest.raises(ValueError, match=r"tabulatedVotes.csv: not the CREMA-D vote table.*'A'"):
        scan("crema_d", tmp_path)


def iemocap_tree(root, text: str, utterances: list[str]):
    audio = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    for utt in utterances:
        path = root / "Session1/sentences/wav" / utt.rsplit("_", 1)[0] / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, 16000)
    evaluation = root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    evaluation.parent.mkdir(parents=True, exist_ok=True)
    evaluation.write_text(text)
    return evaluation


def test_iemocap_votes_from_external_evaluators(tmp_path):
    # each C-E evaluator has one vote, shared by the categories named; the actor's own C-F1 /
    # C-M1 rating and the dimensional A- lines are not votes
    text = (
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tang\t[1.5000, 4.0000, 4.5000]\n"
        "C-E1:\tFrustration; Anger;\t()\n"
        "C-E3:\tAnger;\t(annoyed)\n"
        "C-E4:\tOther:sarcastic;\t()\n"
        "C-F1:\tNeutral;\t(curious)\n"
        "A-E3:\tval 2; act 4; dom  4;\t()\n"
        "A-F1:\tval 1; act 5; dom  5;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M000\texc\t[4.0000, 3.5000, 3.0000]\n"
        "C-E2:\tExcited; Happiness; Surprise;\t()\nC-E3:\tNeutral state;\t()\n"
        "C-M1:\tExcited;\t()\n\n"
        "[12.0000 - 13.0000]\tSes01F_impro01_F001\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "A-E1:\tval 3; act 2; dom  2;\t()\n"
    )
    iemocap_tree(
        tmp_path, text, ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_F001"]
    )
    manifest = scan("iemocap", tmp_path).set_index("utterance_id")
    assert manifest.loc["Ses01F_impro01_F000", "votes"] == (
        '{"angry":1.5,"frustrated":0.5,"other":1}'
    )
    assert manifest.loc["Ses01F_impro01_M000", "votes"] == (
        '{"excited":0.333333,"happy":0.333333,"neutral":1,"surprised":0.333333}'
    )
    assert manifest.loc["Ses01F_impro01_F001", "votes"] == ""  # no categorical evaluators
    assert manifest.loc["Ses01F_impro01_F000", "label"] == "ang"


def test_iemocap_unknown_evaluator_category_names_file_and_line(tmp_path):
    text = (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nC-E3:\tBored;\t()\n"
    )
    iemocap_tree(tmp_path, text, ["Ses01F_impro01_F000"])
    with pytest.raises(ValueError, match=r"Ses01F_impro01.txt: line 3: .*'Bored'"):
        scan("iemocap", tmp_path)


def msp_tree(root, detailed: str | None):
    audio = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    (root / "Audios").mkdir(parents=True)
    (root / "Labels").mkdir()
    rows = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for name, label in (("MSP-PODCAST_0001_0001", "A"), ("MSP-PODCAST_0001_0002", "X")):
        sf.write(root / "Audios" / f"{name}.wav", audio, 16000)
        rows.append(f"{name}.wav,{label},4.0,3.0,4.5,12,Female,Test1")
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(rows) + "\n")
    if detailed is not None:
        (root / "Labels" / "labels_detailed.csv").write_text(detailed)


def test_msp_podcast_votes_from_detailed_labels(tmp_path):
    # release 1.11: FileName, EmoDetail = "WORKER; primary; secondary; A:; V:; D:;"
    detailed = (
        "FileName,EmoDetail\n"
        'MSP-PODCAST_0001_0001.wav,"WORKER00014; Angry; Angry,Frustrated; A:5.0; V:2.0; D:5.0;"\n'
        'MSP-PODCAST_0001_0001.wav,"WORKER00230; Angry; Annoyed; A:6.0; V:2.0; D:5.0;"\n'
        'MSP-PODCAST_0001_0001.wav,"WORKER00231; Contempt; ; A:4.0; V:3.0; D:5.0;"\n'
        'MSP-PODCAST_0001_0002.wav,"WORKER00014; Other-Curious; Curious; A:4.0; V:4.0; D:4.0;"\n'
        'MSP-PODCAST_0001_0002.wav,"WORKER00101; Neutral; Neutral; A:4.0; V:4.0; D:4.0;"\n'
    )
    msp_tree(tmp_path, detailed)
    manifest = scan("msp_podcast", tmp_path).set_index("utterance_id")
    assert manifest.loc["MSP-PODCAST_0001_0001", "votes"] == '{"angry":2,"contempt":1}'
    assert manifest.loc["MSP-PODCAST_0001_0002", "votes"] == '{"neutral":1,"other":1}'


def test_msp_podcast_votes_older_layout_absent_file_and_bad_columns(tmp_path):
    older = (
        "FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom\n"
        "MSP-PODCAST_0001_0001.wav,WORKER1,Angry,Angry,5,2,5\n"
        "MSP-PODCAST_0001_0001.wav,WORKER2,S,Sad,3,2,3\n"
    )
    msp_tree(tmp_path / "old", older)
    manifest = scan("msp_podcast", tmp_path / "old").set_index("utterance_id")
    assert manifest.loc["MSP-PODCAST_0001_0001", "votes"] == '{"angry":1,"sad":1}'
    assert manifest.loc["MSP-PODCAST_0001_0002", "votes"] == ""
    msp_tree(tmp_path / "none", None)
    assert (scan("msp_podcast", tmp_path / "none")["votes"] == "").all()
    msp_tree(tmp_path / "bad", "FileName,Worker,Label\nMSP-PODCAST_0001_0001.wav,W1,Angry\n")
    with pytest.raises(ValueError, match=r"labels_detailed.csv: columns .* EmoDetail"):
        scan("msp_podcast", tmp_path / "bad")
    msp_tree(
        tmp_path / "word", 'FileName,EmoDetail\nMSP-PODCAST_0001_0001.wav,"W1; Bored; ; A:1;"\n'
    )
    with pytest.raises(ValueError, match=r"labels_detailed.csv: row 2 .*'Bored'"):
        scan("msp_podcast", tmp_path / "word")
