"""The feature cache: content, skip/recompute rules, determinism, batching by length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import MANIFEST_COLUMNS
from selm_lib.features.backbones import BackboneSpec, load_backbone
from selm_lib.features.extract import (
    cache_key,
    compute_all,
    compute_features,
    manifest_hash,
    plan_batches,
)
from selm_lib.features.store import FeatureStore, store_folder

SR = 16_000


def write_corpus(folder: Path, count: int, seed: int = 0, corpus: str = "toy") -> pd.DataFrame:
    """``count`` wav clips of 0.5-3 s (tones and noise bursts) and their manifest; the last row is
    quarantined (its file is never read)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        samples = int(rng.uniform(0.5, 3.0) * SR) + int(rng.integers(0, 320))
        t = np.arange(samples) / SR
        tone = np.sin(2 * np.pi * rng.uniform(90, 400) * t) * (0.5 + 0.5 * np.sin(3 * t))
        audio = (0.2 * tone + 0.02 * rng.standard_normal(samples)).astype(np.float32)
        path = folder / f"utt{i:03d}.wav"
        sf.write(path, audio, SR, subtype="FLOAT")
        rows.append(
            {
                "path": str(path),
                "corpus": corpus,
                "utterance_id": f"{corpus}_{i:03d}",
                "speaker": f"s{i % 3}",
                "duration_s": round(samples / SR, 4),
                "sample_rate": SR,
                "channels": 1,
                "quarantine": "silent (digital silence < -60 dBFS)" if i == count - 1 else "",
            }
        )
    frame = pd.DataFrame(rows)
    for column in MANIFEST_COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[MANIFEST_COLUMNS]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> pd.DataFrame:
    return write_corpus(tmp_path_factory.mktemp("audio"), count=13)


@pytest.fixture(scope="module")
def w2v(odd_wav2vec2_dir):
    """A local checkpoint folder of odd sizes, through the real loading path."""
    backbone = load_backbone(BackboneSpec(str(odd_wav2vec2_dir), layer=3), device="cpu")
    assert backbone.hidden_size == 36 and backbone.num_layers == 5
    return backbone


def files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_compute_reopen_and_get_equal_direct_encode(w2v, corpus, tmp_path):
    folder = tmp_path / "store"
    store, stats = compute_features(
        w2v, corpus, folder, backbone_name="w2v", batch_seconds=8, progress=False
    )
    usable = corpus[corpus["quarantine"] == ""]
    assert not stats["skipped"] and stats["clips"] == len(usable) == 12
    assert stats["batches"] >= 2 and stats["audio_seconds"] > 0
    reopened = FeatureStore.open(folder)
    assert list(reopened.index["utterance_id"]) == list(usable["utterance_id"])  # manifest order
    assert reopened.meta["n_utterances"] == 12 and reopened.meta["hidden_size"] == 36
    assert reopened.meta["layer"] == 3 and reopened.meta["corpus"] == "toy"
    assert reopened.meta["frame_rate"] == 50.0 and reopened.meta["dtype"] == "float16"
    assert reopened.meta["n_frames"] == int(reopened.index["frames"].sum())
    assert "toy_012" not in reopened.utterance_ids  # quarantined
    from selm_lib.data.audio import load_audio

    direct = w2v.encode([load_audio(p) for p in usable["path"]])
    cached = reopened.get_many(usable["utterance_id"])
    for a, b in zip(direct, cached, strict=True):
        assert b.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=2e-3 * max(1.0, float(np.abs(a).max())), rtol=1e-2)
    pooled = reopened.pooled()
    assert pooled.shape == (12, 36) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[4], cached[4].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(reopened.pooled(["toy_004"])[0], pooled[4])
    with pytest.raises(KeyError, match="toy_012"):
        reopened.get("toy_012")


def test_second_call_skips_and_touches_nothing(w2v, corpus, tmp_path):
    folder = tmp_path / "store"
    compute_features(w2v, corpus, folder, backbone_name="w2v", progress=False)
    before = files(folder)
    store, stats = compute_features(w2v, corpus, folder, backbone_name="w2v", progress=False)
    assert stats["skipped"] is True and stats["batches"] == 0
    assert files(folder) == before  # same bytes and same mtimes
    assert len(store) == 12


def test_manifest_or_layer_change_recomputes(w2v, corpus, tmp_path):
    folder = tmp_path / "store"
    _, first = compute_features(w2v, corpus, folder, backbone_name="w2v", progress=False)
    key = FeatureStore.open(folder).meta["key"]

    changed = corpus.copy()
    changed.loc[3, "quarantine"] = "too short"  # one row fewer usable
    store, stats = compute_features(w2v, changed, folder, backbone_name="w2v", progress=False)
    assert not stats["skipped"] and len(store) == 11 and store.meta["key"] != key

    other_layer = load_backbone(BackboneSpec("preset:tiny-wav2vec2", layer=1), device="cpu")
    store, stats = compute_features(
        other_layer, corpus, folder, backbone_name="w2v", progress=False
    )
    assert not stats["skipped"] and store.meta["layer"] == 1 and len(store) == 12
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folders left


def test_manifest_hash_ignores_labels_and_survives_csv(corpus, tmp_path):
    relabelled = corpus.copy()
    relabelled["label"] = "angry"
    assert manifest_hash(relabelled) == manifest_hash(corpus)
    corpus.to_csv(tmp_path / "toy.csv", index=False)
    assert manifest_hash(pd.read_csv(tmp_path / "toy.csv", keep_default_na=False)) == (
        manifest_hash(corpus)
    )
    longer = corpus.copy()
    longer.loc[0, "duration_s"] += 0.5
    assert manifest_hash(longer) != manifest_hash(corpus)
    spec = BackboneSpec("preset:tiny-wav2vec2", layer=3)
    assert cache_key(spec, "a") != cache_key(BackboneSpec(spec.source, layer=4), "a")
    assert cache_key(spec, "a") != cache_key(spec, "b")
    assert cache_key(spec, "a") != cache_key(spec, "a", dtype="float32")


def test_byte_identical_across_computes(w2v, corpus, tmp_path):
    kwargs = {"backbone_name": "w2v", "shard_frames": 400, "progress": False}
    a, _ = compute_features(w2v, corpus, tmp_path / "a", **kwargs)
    b, _ = compute_features(w2v, corpus, tmp_path / "b", **kwargs)
    assert a.meta["n_shards"] > 1  # small shards: clips spread over several files
    names = sorted(p.name for p in (tmp_path / "a").iterdir() if p.name != "stats.json")
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir() if p.name != "stats.json")
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for uid in a.utterance_ids:
        np.testing.assert_array_equal(a.get(uid), b.get(uid))


def test_empty_usable_manifest_is_an_error(w2v, corpus, tmp_path):
    quarantined = corpus.assign(quarantine="not readable as audio")
    with pytest.raises(
        ValueError, match=r"corpus 'toy': no usable rows.*artifacts/manifests/toy"
    ) as info:
        compute_features(w2v, quarantined, tmp_path / "store", backbone_name="w2v")
    assert "params.yaml 'curate.corpora.toy.root'" in str(info.value)
    assert not (tmp_path / "store").exists()


def test_never_replaces_a_folder_that_is_not_a_store(w2v, corpus, tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a feature store"):
        compute_features(w2v, corpus, tmp_path / "store", backbone_name="w2v", progress=False)
    assert (tmp_path / "store" / "notes.txt").read_text() == "mine"


def test_length_batching_keeps_padding_small(tmp_path):
    manifest = write_corpus(tmp_path / "audio", count=41, seed=5)
    backbone = load_backbone(BackboneSpec("preset:tiny-hubert", layer=2), device="cpu")
    _, stats = compute_features(
        backbone,
        manifest,
        tmp_path / "store",
        backbone_name="hubert",
        batch_seconds=12,
        progress=False,
    )
    assert stats["clips"] == 40 and stats["batches"] > 3
    assert stats["padding_fraction"] < 0.1
    # The same batch sizes in manifest order would pad far more: sorting is what keeps it small.
    lengths = manifest["duration_s"].to_numpy()[:40] * SR
    sizes = [len(b) for b in plan_batches(list(lengths), 12 * SR)]
    starts = np.cumsum([0, *sizes])
    naive = [lengths[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    naive_padding = 1 - sum(b.sum() for b in naive) / sum(len(b) * b.max() for b in naive)
    assert naive_padding > 2 * stats["padding_fraction"]


def test_plan_batches_budget_and_padding_cap():
    lengths = [5, 1, 3, 2, 100, 4, 10, 10, 11, 10]
    for max_padding in (1.0, 0.1):
        batches = plan_batches(lengths, batch_samples=44, max_padding=max_padding)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for batch in batches:
            sizes = [lengths[i] for i in batch]
            assert len(batch) == 1 or len(batch) * max(sizes) <= 44
            assert 1 - sum(sizes) / (len(sizes) * max(sizes)) <= max_padding
    assert plan_batches(lengths, 44, max_padding=1.0)[0] == [1, 3, 2, 5, 0]  # 1,2,3,4,5
    assert plan_batches(lengths, 44, max_padding=0.1)[-2] == [6, 7, 9, 8]  # 10,10,10,11
    # Whisper-like cost: every clip costs one window, so the padding cap never splits.
    assert plan_batches([1, 5, 9], 30, cost=lambda n: 10, max_padding=0.0) == [[0, 1, 2]]


def test_layer_all_and_whisper_stores(corpus, tmp_path):
    small = corpus.iloc[:4]
    every = load_backbone(BackboneSpec("preset:tiny-data2vec-audio", layer="all"), device="cpu")
    store, _ = compute_features(every, small, tmp_path / "all", backbone_name="d2v", progress=False)
    first = store.get(small["utterance_id"].iloc[0])
    assert first.shape[0] == every.num_layers + 1 and first.shape[2] == every.hidden_size
    assert store.pooled().shape == (4, every.num_layers + 1, every.hidden_size)
    np.testing.assert_allclose(store.pooled()[0], first.mean(axis=1), atol=1e-5)

    whisper = load_backbone(BackboneSpec("preset:tiny-whisper", layer="last"), device="cpu")
    store, stats = compute_features(
        whisper, small, tmp_path / "whisper", backbone_name="whisper", progress=False
    )
    assert stats["batches"] == 2  # 60 s of budget = two 30 s windows per batch
    for uid, frames in zip(store.index["utterance_id"], store.index["frames"], strict=True):
        samples = int(round(float(small.set_index("utterance_id").loc[uid, "duration_s"]) * SR))
        assert frames == samples // 320


def test_compute_all_from_params(corpus, tmp_path, capsys):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    corpus.to_csv(manifests / "toy.csv", index=False)
    other = corpus.iloc[:3].assign(corpus="mini")
    other["utterance_id"] = other["utterance_id"].str.replace("toy", "mini")
    other.to_csv(manifests / "mini.csv", index=False)
    params = {
        "backbones": {"tiny_w2v": {"source": "preset:tiny-wav2vec2", "layer": 4}},
        "batch_seconds": 60,
        "chunk_seconds": 20,
        "max_padding": 0.1,
        "shard_frames": 500_000,
        "dtype": "float16",
    }
    root = tmp_path / "features"
    table = compute_all(
        params, manifests_dir=manifests, output_root=root, device="cpu", progress=False
    )
    assert list(table["corpus"]) == ["mini", "toy"] and not table["skipped"].any()
    assert (store_folder(root, "tiny_w2v", 4, "toy") / "meta.json").is_file()
    assert FeatureStore.open(root / "tiny_w2v" / "layer_4" / "mini").meta["n_utterances"] == 3
    assert "features tiny_w2v toy: 12 clips" in capsys.readouterr().err
    again = compute_all(
        params, manifests_dir=manifests, output_root=root, device="cpu", progress=False
    )
    assert again["skipped"].all()

    from selm_lib.features.backbones import BackboneError

    params["backbones"]["tiny_w2v"]["layers"] = 4
    with pytest.raises(BackboneError, match=r"features\.backbones\.tiny_w2v\.layers"):
        compute_all(params, manifests_dir=manifests, output_root=root, device="cpu")


def test_a_row_with_a_channel_encodes_only_that_channel(tmp_path):
    """A stereo dialogue split into one row per actor (manifest column ``channel``) is encoded
    from that channel alone; an empty channel mixes the file to mono, as before."""
    from selm_lib.data.audio import load_audio

    rng = np.random.default_rng(0)
    stereo = np.stack([np.sin(np.arange(24000) / 9.0) * 0.4, rng.normal(0, 0.1, 24000)], axis=1)
    path = tmp_path / "dialogue.wav"
    sf.write(path, stereo.astype(np.float32), SR, subtype="FLOAT")
    rows = []
    for uid, channel in (("d_ch1", "1"), ("d_ch2", "2"), ("d_mix", "")):
        row = {c: "" for c in MANIFEST_COLUMNS}
        row.update(
            path=str(path),
            corpus="dia",
            utterance_id=uid,
            duration_s=1.5,
            sample_rate=SR,
            channels=2,
            channel=channel,
        )
        rows.append(row)
    manifest = pd.DataFrame(rows)[MANIFEST_COLUMNS]
    backbone = load_backbone(BackboneSpec("preset:logmel", layer="last"), device="cpu")
    store, _ = compute_features(
        backbone,
        manifest,
        tmp_path / "store",
        backbone_name="lm",
        progress=False,
        batch_seconds=0.01,
    )
    for uid, channel in (("d_ch1", 1), ("d_ch2", 2), ("d_mix", None)):
        (direct,) = backbone.encode([load_audio(path, channel=channel)])
        np.testing.assert_array_equal(store.get(uid), direct.astype(np.float16))
    assert not np.array_equal(store.get("d_ch1"), store.get("d_ch2"))
    assert manifest_hash(manifest) != manifest_hash(manifest.assign(channel=""))
