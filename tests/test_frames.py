"""Lazy frame reading (selm_lib.features.frames over selm_lib.features.store): the same batches and
statistics as eager reading, damaged shards caught with a message that names the shard and the
stage, and bf16 autocast through every trainable on the CPU (``pytest -k bf16``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.features.frames import ArrayFrames, FrameSet, read_ahead
from selm_lib.features.store import CorruptStore, FeatureStore, shard_name, write_store

D = 6


def clips(n: int, seed: int = 0, dtype=np.float16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((int(rng.integers(1, 30)), D)) * 3 + i % 3).astype(dtype)
        for i in range(n)
    ]


def make_store(tmp_path, arrays, corpus="c1", shard_frames=40, name="bench") -> FeatureStore:
    items = ((f"{corpus}_{i:03d}", a) for i, a in enumerate(arrays))
    meta = {"corpus": corpus, "backbone_name": name, "layer": 4}
    folder = tmp_path / name / "layer_4" / corpus
    return write_store(folder, items, meta, shard_frames=shard_frames)


def test_lazy_batches_equal_eager_arrays(tmp_path):
    arrays = clips(23)
    store = make_store(tmp_path, arrays)
    assert store.meta["n_shards"] > 2  # clips spread over several shards
    ids = [f"c1_{i:03d}" for i in (5, 0, 22, 5, 13)]  # any order, repeats allowed
    lazy = FrameSet.of_store(store, ids)
    eager = ArrayFrames([arrays[int(u[3:])] for u in ids])
    np.testing.assert_array_equal(lazy.lengths, eager.lengths)
    for index in ([0, 1, 2], [4, 3], [2]):
        got, got_mask = lazy.batch(index)
        want, want_mask = eager.batch(index)
        assert got.dtype == np.float16  # stored precision until the device converts it
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_mask, want_mask)
    # get() (float32, the old eager reader) returns the same values
    np.testing.assert_array_equal(store.get("c1_013"), arrays[13].astype(np.float32))
    # truncation reads only the first frames
    cut = lazy.truncated(4)
    assert cut.lengths.max() == 4
    np.testing.assert_array_equal(cut[2], arrays[22][:4])


def test_streaming_statistics_equal_concatenation(tmp_path):
    arrays = clips(31, seed=3)
    frames = FrameSet.of_store(make_store(tmp_path, arrays), [f"c1_{i:03d}" for i in range(31)])
    mean, std = frames.moments()
    stacked = np.concatenate(arrays).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, stacked.std(axis=0), rtol=1e-10)
    pooled = frames.pooled()
    expected = np.stack(
        [
            np.concatenate([a.astype(np.float64).mean(0), a.astype(np.float64).std(0)])
            for a in arrays
        ]
    )
    np.testing.assert_allclose(pooled, expected.astype(np.float32), rtol=1e-6)


def test_selm_batches_from_stores_equal_in_memory_batches(tmp_path):
    from selm_lib.selm.batching import Encoded, collate, prefetch

    arrays = clips(9, seed=1)
    store = make_store(tmp_path, arrays)
    ids = [f"c1_{i:03d}" for i in range(9)]

    def encoded(frames):
        return Encoded(
            frames,
            [[1, 2]] * 9,
            [[3, 0]] * 9,
            np.ones(9, np.float32),
            ["categorical"] * 9,
            ["x"] * 9,
        )

    lazy, eager = encoded(FrameSet.of_store(store, ids)), encoded([a for a in arrays])
    order = [np.array([3, 1, 8]), np.array([0, 2]), np.array([7, 6, 5, 4])]
    for index, batch in prefetch(lazy, order, pad=0, device=torch.device("cpu")):
        want = collate(eager, index, 0, torch.device("cpu"))
        assert batch["features"].dtype == torch.float32
        for key in want:
            assert torch.equal(batch[key], want[key]), key


def test_read_ahead_keeps_order_and_raises_errors():
    assert [r for _, r in read_ahead(lambda x: x * x, range(7), depth=3)] == [
        x * x for x in range(7)
    ]

    def fail(x):
        if x == 2:
            raise ValueError("item 2")
        return x

    with pytest.raises(ValueError, match="item 2"):
        list(read_ahead(fail, range(5)))


def test_truncated_shard_names_the_shard_and_the_stage(tmp_path):
    store = make_store(tmp_path, clips(12))
    path = store.folder / shard_name(1)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptStore, match=r"shard_00001\.safetensors.*dvc repro features@bench"):
        FeatureStore.open(store.folder)
    path.unlink()
    with pytest.raises(CorruptStore, match="missing"):
        FeatureStore.open(store.folder)


def test_damaged_data_and_header_are_errors_not_numbers(tmp_path):
    store = make_store(tmp_path, clips(12))
    first = store.index.iloc[0]
    path = store.folder / shard_name(int(first["shard"]))
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[header : header + 2] = np.array([np.inf], np.float16).tobytes()  # first value of clip 0
    path.write_bytes(bytes(data))
    reopened = FeatureStore.open(store.folder)  # same size: opening cannot tell
    with pytest.raises(CorruptStore, match=r"non-finite.*features@bench"):
        reopened.read_row(0)
    with pytest.raises(CorruptStore, match="sha256"):
        reopened.verify()
    data[8:12] = b"\x00\xff\x00\xff"  # the JSON header itself
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStore, match="unreadable header"):
        FeatureStore.open(store.folder).read_row(0)


def test_a_store_of_the_old_format_asks_for_a_recompute(tmp_path):
    store = make_store(tmp_path, clips(3))
    meta = json.loads((store.folder / "meta.json").read_text())
    meta["format"] = 1
    (store.folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptStore, match="format 1.*dvc repro features@bench"):
        FeatureStore.open(store.folder)


def test_write_store_is_byte_reproducible(tmp_path):
    a = make_store(tmp_path / "a", clips(10))
    b = make_store(tmp_path / "b", clips(10))
    for name in ["index.csv", "meta.json", *(shard_name(i) for i in range(a.meta["n_shards"]))]:
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name
    # the hand-written shards are valid safetensors files
    from safetensors.numpy import load_file

    loaded = load_file(str(a.folder / shard_name(0)))["features"]
    assert loaded.dtype == np.float16 and loaded.shape[1] == D


# ----------------------------------------------------------------------------- bf16 on the CPU


class _DtypeSpy:
    """Records the output dtypes of every nn.Linear while active."""

    def __init__(self, module: torch.nn.Module):
        self.seen: set[torch.dtype] = set()
        self.handles = [
            m.register_forward_hook(lambda _m, _i, out: self.seen.add(out.dtype))
            for m in module.modules()
            if isinstance(m, torch.nn.Linear)
        ]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_bf16_probe_trains_and_scores_under_autocast(tmp_path):
    from selm_lib.serevals.probe import (
        FrameMLPHead,
        Normalizer,
        ProbeConfig,
        predict_logits,
        train_probe,
    )

    arrays = clips(40, seed=5, dtype=np.float32)
    labels = np.arange(40) % 3
    arrays = [a + 4.0 * labels[i] for i, a in enumerate(arrays)]
    store = make_store(tmp_path, arrays)
    frames = FrameSet.of_store(store, [f"c1_{i:03d}" for i in range(40)])
    config = ProbeConfig(
        epochs=15,
        batch_size=8,
        learning_rate=5e-3,
        weight_decay=0.0,
        label_smoothing=0.0,
        grad_clip=1.0,
        warmup=0.1,
        seed=0,
        hidden=16,
        dropout=0.0,
    )
    seen: set[torch.dtype] = set()
    original = FrameMLPHead.forward

    def spy(self, x, mask=None):
        out = original(self, x, mask)
        seen.add(out.dtype)
        return out

    norm = Normalizer.of(frames)
    FrameMLPHead.forward = spy
    try:
        head = train_probe(frames, labels, 3, config, normalizer=norm, bf16=True)
        logits = predict_logits(head, frames, normalizer=norm, bf16=True)
    finally:
        FrameMLPHead.forward = original
    assert torch.bfloat16 in seen  # autocast was on
    assert all(p.dtype == torch.float32 for p in head.parameters())  # float32 master weights
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    assert (logits.argmax(axis=1) == labels).mean() > 0.9
    fp32 = predict_logits(head, frames, normalizer=norm)
    assert (fp32.argmax(axis=1) == logits.argmax(axis=1)).mean() > 0.95


def test_bf16_baseline_trains_under_autocast():
    from selm_lib.evaluation.baseline import BaselineConfig, train_classifier

    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = (rng.standard_normal((300, 8)) + 2.5 * y[:, None]).astype(np.float32)
    config = BaselineConfig(
        hidden=16,
        dropout=0.0,
        epochs=20,
        batch_size=32,
        learning_rate=1e-2,
        weight_decay=0.0,
        patience=5,
        seed=0,
        balanced=True,
    )

    def trained(**kw):
        """train_classifier with every Linear output dtype seen during training recorded."""
        seen: set[torch.dtype] = set()

        def record(module, _inputs, out):
            if isinstance(module, torch.nn.Linear):
                seen.add(out.dtype)

        handle = torch.nn.modules.module.register_module_forward_hook(record)
        try:
            model, history = train_classifier(x[:200], y[:200], x[200:], y[200:], 3, config, **kw)
        finally:
            handle.remove()
        return model, history, seen

    _, _, fp32_seen = trained()
    model, history, seen = trained(bf16=True)
    assert fp32_seen == {torch.float32}  # autocast is off unless asked for on the CPU
    assert torch.bfloat16 in seen  # the training forward ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history[-1]["val_accuracy"] > 0.9 and np.isfinite(history[-1]["val_loss"])


def test_bf16_selm_training_and_class_scoring_on_the_cpu(tmp_path):
    from tests.test_train import make_encoded  # the training tests' tiny setup

    model, train, validation, candidates, pad = make_encoded(tmp_path)
    from selm_lib.selm.train import TrainConfig, evaluate, fit

    config = TrainConfig(
        epochs=1,
        batch_size=16,
        learning_rate=3e-3,
        lm_learning_rate=1e-4,
        weight_decay=0.0,
        warmup_ratio=0.1,
        grad_clip=1.0,
        patience=5,
        seed=0,
        eval_batch_size=16,
    )
    spy = _DtypeSpy(model)
    result = fit(
        model,
        train,
        validation,
        candidates,
        config,
        tmp_path / "ckpt",
        pad=pad,
        device=torch.device("cpu"),
        log=lambda *_: None,
        bf16=True,
        score_chunk=7,
    )
    spy.close()
    assert torch.bfloat16 in spy.seen
    assert all(p.dtype == torch.float32 for p in model.parameters())
    history = pd.DataFrame(result["history"])
    assert np.isfinite(history[["train_loss", "val_loss"]].to_numpy()).all()
    bf16 = evaluate(model, validation, candidates, pad, torch.device("cpu"), 16, bf16=True)
    fp32 = evaluate(model, validation, candidates, pad, torch.device("cpu"), 16)
    for view in fp32["loss"]:
        assert bf16["loss"][view] == pytest.approx(fp32["loss"][view], rel=0.05)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_empty_clips_and_non_finite_values_when_writing(tmp_path):
    # a clip longer than a shard, then an empty clip last: no empty shard, nothing crashes
    arrays = [np.ones((50, D), np.float16), np.zeros((0, D), np.float16)]
    store = make_store(tmp_path / "a", arrays, shard_frames=40)
    assert len(store) == 2 and store.read_row(1).shape == (0, D)
    only_empty = make_store(tmp_path / "b", [np.zeros((0, D), np.float16)])
    assert only_empty.read_row(0).shape == (0, D)
    with pytest.raises(ValueError, match="overflow float16"):
        make_store(tmp_path / "c", [np.full((3, D), 1e6)])


def test_a_frame_set_of_mixed_precisions_keeps_the_wider_one(tmp_path):
    half = make_store(tmp_path, clips(2), corpus="h")
    full = write_store(
        tmp_path / "bench" / "layer_4" / "f",
        [("f_000", np.full((3, D), 1.0 + 1e-4, np.float32))],
        {"corpus": "f", "backbone_name": "bench", "layer": 4},
        dtype="float32",
    )
    frames = FrameSet.from_keys({"h": half, "f": full}, [("h", "h_000"), ("f", "f_000")])
    batch, _ = frames.batch([0, 1])
    assert batch.dtype == np.float32 and batch[1, 0, 0] == np.float32(1.0 + 1e-4)
