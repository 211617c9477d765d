"""The contamination ledger: the table, the matching rule over checkpoint names and local
folders, the cells it flags, and the published tables' flag drawn from it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from selm_lib.data import contamination as ct  # noqa: E402
from selm_lib.data.corpora.registry import SCANNERS  # noqa: E402
from selm_lib.serevals import figures as sf  # noqa: E402

SEREVALS_CORPORA = [
    "aesdd", "baum1", "cafe", "casia", "demos", "eekk", "emodb", "emovo", "enterface",
    "expresso", "masc", "mead", "meld", "mesd", "resd", "shemo", "subesco",
    "thorsten_emotional", "urdu",
]  # fmt: skip


def test_ledger_rows_name_package_corpora_and_say_how_complete_they_are():
    ledger = ct.read_ledger()
    assert {e.coverage for e in ledger} <= set(ct.COVERAGE)
    for entry in ledger:
        assert set(entry.corpora) <= set(SCANNERS), entry  # package corpus names only
        assert entry.source and entry.note  # where it comes from and what is uncertain
    by_name = {e.pattern: e for e in ledger}
    assert {"ravdess", "crema_d", "iemocap"} <= set(by_name["*emotion2vec_plus*"].corpora)
    assert by_name["*emotion2vec_plus*"].coverage == "lower_bound"
    assert set(by_name["*emotionwhisper*"].corpora) == set(SEREVALS_CORPORA)
    assert by_name["*paraclap*"].corpora == ("msp_podcast",)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("emotion2vec/emotion2vec_plus_large", "emotion2vec_plus_large"),
        ("/models/emotion2vec-plus-base/", "emotion2vec-plus-base"),
        ("preset:tiny-wavlm", "tiny-wavlm"),
        ("C:\\models\\ParaCLAP", "ParaCLAP"),
        (
            "/hf/hub/models--emotion2vec--emotion2vec_plus_seed/snapshots/0a1b2c",
            "emotion2vec_plus_seed",
        ),
    ],
)
def test_checkpoint_name_is_the_last_component_or_the_cache_name(source, name):
    assert ct.checkpoint_name(source) == name


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("emotion2vec/emotion2vec_plus_large", ["iemocap", "ravdess"]),  # a Hugging Face name
        ("/data/ckpt/emotion2vec-plus-base", ["iemocap", "ravdess"]),  # a local folder, dashes
        ("Emotion2Vec+Large", ["iemocap", "ravdess"]),  # '+' reads as 'plus', case ignored
        ("emotion2vecpluslarge", ["iemocap", "ravdess"]),  # the published tables' flattening
        ("/hf/models--emotion2vec--emotion2vec_plus_large/snapshots/abc", ["iemocap", "ravdess"]),
        ("emotion2vec/emotion2vec_base", []),  # not emotion2vec+
        ("/runs/emotion2vec_plus_tests/wavlm-large", []),  # a parent folder never counts
        ("microsoft/wavlm-large", []),
        ("preset:tiny-wavlm", []),
        ("someone/ParaCLAP", []),  # trained on msp_podcast, not among these corpora
    ],
)
def test_contaminated_cells_by_the_matching_rule(source, expected):
    corpora = ["emodb", "iemocap", "ravdess", "iemocap", "msp_podcast_absent"]
    assert ct.contaminated_cells(source, corpora) == expected


def test_contaminated_cells_keep_the_given_order_and_cover_every_ledger_row():
    assert ct.contaminated_cells("someone/paraclap", ["iemocap", "msp_podcast"]) == ["msp_podcast"]
    assert ct.contaminated_cells("emotionwhisper", ["urdu", "emodb", "ravdess"]) == [
        "urdu",
        "emodb",
    ]
    assert "lower bound" in ct.describe("emotion2vec/emotion2vec_plus_base")
    assert ct.describe("facebook/hubert-large-ll60k") == ""


def test_a_bad_ledger_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "ledger.csv"
    bad.write_text("pattern,corpora\nx*,emodb\n")
    with pytest.raises(ct.ContaminationError, match=r"ledger\.csv: missing column"):
        ct.read_ledger(bad)
    bad.write_text(",".join(ct.COLUMNS) + "\nx*,X,emodb,sure,s,n\n")
    with pytest.raises(ct.ContaminationError, match="line 2: coverage is 'sure'"):
        ct.read_ledger(bad)
    bad.write_text(",".join(ct.COLUMNS) + "\nx*,X,,lower_bound,s,n\n")
    with pytest.raises(ct.ContaminationError, match="at least one corpus"):
        ct.read_ledger(bad)
    good = tmp_path / "good.csv"
    good.write_text(",".join(ct.COLUMNS) + "\n*mine*,mine,emodb;urdu,conservative,s,n\n")
    ledger = ct.read_ledger(good)
    assert ct.contaminated_cells("/x/my-mine-v2", ["urdu", "emodb", "cafe"], ledger) == [
        "urdu",
        "emodb",
    ]


def test_published_contamination_comes_from_the_ledger():
    table = pd.DataFrame(
        [[0.5, 0.2], [0.3, 0.6]], index=["emovo", "mesd"], columns=["emovo", "mesd"]
    )
    flagged = sf.contaminated_backbones(
        {"emotionwhisper": table, "openaiwhisperlargev3": table, "emotion2vecpluslarge": table}
    )
    # emotion2vec+ is in the ledger but on none of this table's corpora
    assert list(flagged) == ["emotionwhisper"]
    assert "Whisper fine-tuned for emotion" in flagged["emotionwhisper"]
    note = sf.contamination_note(flagged, excluded=True)
    assert "`emotionwhisper`" in note and "kept out of every average" in note
    plt.close("all")
