"""Synthetic SER-Evals corpora: each writer's files are read by its scanner, cleanly."""

from __future__ import annotations

import pytest

from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import scan
from selm_lib.data.labels import corpus_labels
from selm_lib.data.synth.common import Plan, corpus_style, style_table
from selm_lib.data.synth.registry import WRITERS, write_corpus
from selm_lib.data.synth.serevals_layouts import SEREVALS_WRITERS

NAMES = sorted(SEREVALS_WRITERS)


def _plan(bad_files: bool = True) -> Plan:
    return Plan(
        speakers=3,
        utterances_per_speaker=5,
        duration_s=(0.55, 0.7),
        label_noise=0.0,
        seed=7,
        bad_files=bad_files,
    )


def test_registered_in_writers():
    for name, entry in SEREVALS_WRITERS.items():
        assert WRITERS[name] == entry


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(tmp_path, name):
    root = write_corpus(name, tmp_path / "a", _plan())
    manifest = scan(name, root)
    bad = manifest[manifest["quarantine"] != ""]
    assert len(bad) == 1, bad[["utterance_id", "quarantine"]].to_string()
    good = usable(manifest)
    labels = corpus_labels(name)
    assert set(good["label"]) == set(labels)  # every label of the corpus, none unknown
    counts = good["label"].value_counts()
    assert counts.max() - counts.min() <= 2  # about equally
    assert (good["emotion"] != "").all() and (good["serevals8"] != "").all()
    assert not good["utterance_id"].duplicated().any()
    assert set(good["sample_rate"]) == {style_table()[name]["sample_rate"]}
    assert (good["duration_s"] > 0.5).all()

    again = write_corpus(name, tmp_path / "b", _plan())
    files = sorted(p.relative_to(root) for p in root.rglob("*.wav"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.wav"))
    for rel in files[:: max(1, len(files) // 5)]:
        assert (root / rel).read_bytes() == (again / rel).read_bytes()


@pytest.mark.parametrize("name", ["emovo", "thorsten_emotional"])
def test_no_bad_file_without_bad_files(tmp_path, name):
    manifest = scan(name, write_corpus(name, tmp_path, _plan(bad_files=False)))
    assert (manifest["quarantine"] == "").all()


def test_speaker_counts_and_genders(tmp_path):
    plan = Plan(8, 2, (0.55, 0.6), 0.0, 3, False)
    emovo = scan("emovo", write_corpus("emovo", tmp_path, plan))
    assert emovo["speaker"].nunique() == 6  # capped at the real six actors
    assert set(emovo["gender"]) == {"F", "M"}
    casia = scan("casia", write_corpus("casia", tmp_path, plan))
    assert casia["speaker"].nunique() == 4
    thorsten = scan("thorsten_emotional", write_corpus("thorsten_emotional", tmp_path, plan))
    assert set(thorsten["speaker"]) == {"thorsten_emotional_thorsten"} and len(thorsten) == 16


def test_corpora_differ_in_language_and_channel():
    styles = [corpus_style(name, 7) for name in NAMES]
    assert len({s.name for s in styles}) == len(NAMES)
    assert len({s.language.name for s in styles}) == len(NAMES)
    assert len({s.language.vowels for s in styles}) == len(NAMES)
    assert len({s.mic_eq for s in styles}) == len(NAMES)
    channels = {(s.sample_rate, s.noise_snr_db, s.reverb_rt60_s, s.bandpass_hz) for s in styles}
    assert len(channels) == len(NAMES)
