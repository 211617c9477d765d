"""The SELM training loop on small synthetic encoded triplets: it learns, two seeded runs agree,
and a run interrupted after an epoch resumes to exactly the uninterrupted result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.config import ParamsError
from selm_lib.config.device import resolve_device
from selm_lib.selm import train as train_module
from selm_lib.selm.batching import Encoded, TrainingError, answer_text, encode_triplets
from selm_lib.selm.model import build_selm
from selm_lib.selm.tokenizer import train_bpe
from selm_lib.selm.train import TrainConfig, epoch_batches, evaluate, fit

from .test_model import tiny_config

ANSWERS = {"categorical": ["angry", "sad", "happy"], "sentiment": ["negative", "positive"]}
PROMPTS = {"categorical": "emotion:", "sentiment": "sentiment:"}


@pytest.fixture(scope="module")
def tokenizer():
    texts = list(PROMPTS.values()) + [answer_text(a) for v in ANSWERS.values() for a in v]
    return train_bpe(texts, vocab_size=300)


def synthetic_triplets(n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Features whose mean encodes the emotion; two views per clip."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (3, 37)).astype(np.float32)
    rows, feats = [], {}
    for i in range(n):
        k = i % 3
        frames = int(rng.integers(6, 15))
        feats[("toy", f"u{i}")] = centres[k] + 0.5 * rng.standard_normal((frames, 37)).astype(
            np.float32
        )
        emotion = ANSWERS["categorical"][k]
        sentiment = "positive" if emotion == "happy" else "negative"
        for view, answer in (("categorical", emotion), ("sentiment", sentiment)):
            rows.append(
                {
                    "corpus": "toy",
                    "utterance_id": f"u{i}",
                    "view": view,
                    "prompt": PROMPTS[view],
                    "answer": answer,
                    "weight": 1.0,
                }
            )
    return pd.DataFrame(rows), feats


def in_row_order(rows: pd.DataFrame, feats: dict) -> list[np.ndarray]:
    return [feats[k] for k in zip(rows["corpus"], rows["utterance_id"], strict=True)]


def make_encoded(_tmp_path=None):
    """A tiny model and encoded train/validation triplets (for tests in other modules)."""
    texts = list(PROMPTS.values()) + [answer_text(a) for v in ANSWERS.values() for a in v]
    tokenizer = train_bpe(texts, vocab_size=300)
    train, validation, candidates = setup(tokenizer)
    model = build_selm(tiny_config(dropout=0.1, seed=5, vocab_size=None), tokenizer)
    return model, train, validation, candidates, tokenizer.pad_token_id


def setup(tokenizer, seed: int = 3):
    train_rows, feats = synthetic_triplets(48, seed)
    val_rows, val_feats = synthetic_triplets(24, seed)  # same centres: same seed
    val_rows["utterance_id"] = "v" + val_rows["utterance_id"]
    feats |= {("toy", "v" + u): f for (_, u), f in val_feats.items()}
    train = encode_triplets(train_rows, in_row_order(train_rows, feats), tokenizer)
    validation = encode_triplets(val_rows, in_row_order(val_rows, feats), tokenizer)
    candidates = {
        v: [tokenizer.encode(answer_text(a)) + [tokenizer.eos_token_id] for a in sorted(answers)]
        for v, answers in ANSWERS.items()
    }
    return train, validation, candidates


def run(tokenizer, out_dir, epochs=4, stop_after=None, patience=10, fingerprint="", log=None):
    train, validation, candidates = setup(tokenizer)
    model = build_selm(tiny_config(dropout=0.1, seed=5, vocab_size=None), tokenizer)
    config = TrainConfig(
        epochs=epochs,
        batch_size=16,
        learning_rate=3e-3,
        lm_learning_rate=1e-4,
        weight_decay=0.01,
        warmup_ratio=0.1,
        grad_clip=1.0,
        patience=patience,
        seed=7,
        eval_batch_size=64,
    )
    result = fit(
        model,
        train,
        validation,
        candidates,
        config,
        out_dir,
        pad=tokenizer.pad_token_id,
        device=torch.device("cpu"),
        stop_after_epoch=stop_after,
        log=log or (lambda *_: None),
        fingerprint=fingerprint,
    )
    return model, result


def test_learns_above_chance_and_keeps_the_best_epoch(tokenizer, tmp_path):
    model, result = run(tokenizer, tmp_path, epochs=6)
    history = result["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    kept = history[result["best_epoch"] - 1]
    assert kept["val_loss"] == min(h["val_loss"] for h in history)
    assert (
        kept["val_accuracy_categorical"] > 0.6
    )  # the kept epoch's, not the best seen (chance 1/3)
    # the returned model holds the kept epoch's weights: scoring it again gives that epoch's numbers
    _, validation, candidates = setup(tokenizer)
    again = evaluate(model, validation, candidates, tokenizer.pad_token_id, torch.device("cpu"))
    assert again["accuracy"]["categorical"] == pytest.approx(kept["val_accuracy_categorical"])
    assert again["total_loss"] == pytest.approx(kept["val_loss"], rel=1e-5)


def test_two_seeded_runs_are_identical(tokenizer, tmp_path):
    _, a = run(tokenizer, tmp_path / "a", epochs=2)
    _, b = run(tokenizer, tmp_path / "b", epochs=2)
    assert a["history"] == b["history"]


def test_resume_after_interruption_matches(tokenizer, tmp_path):
    model_a, whole = run(tokenizer, tmp_path / "whole", epochs=3)
    _, first = run(tokenizer, tmp_path / "cut", epochs=3, stop_after=1)
    assert first["interrupted"] and len(first["history"]) == 1
    assert (tmp_path / "cut" / "last.pt").is_file()
    # what the checkpoint holds: trainable weights only (the frozen LM is rebuilt, not stored),
    # optimiser and schedule, the CPU generator and (None without CUDA) every CUDA generator,
    # which dropout on a GPU draws from
    saved = torch.load(tmp_path / "cut" / "last.pt", map_location="cpu", weights_only=False)
    assert set(saved) == {
        "model",
        "optimizer",
        "scheduler",
        "torch_rng",
        "cuda_rng",
        "state",
        "config",
        "fingerprint",
        "processes",  # how many wrote it (informational: a run resumes with any number)
    }
    assert saved["processes"] == 1
    assert saved["config"]["seed"] == 7 and saved["config"]["epochs"] == 3
    assert not any(k.startswith("lm.") for k in saved["model"])
    assert set(saved["model"]) == {n for n, p in model_a.named_parameters() if p.requires_grad}
    assert saved["state"]["epoch"] == 1 and len(saved["state"]["history"]) == 1
    assert saved["torch_rng"].dtype == torch.uint8
    assert saved["torch_rng"].shape == torch.get_rng_state().shape
    if torch.cuda.is_available():
        assert len(saved["cuda_rng"]) == torch.cuda.device_count()
    else:
        assert saved["cuda_rng"] is None
    model_b, resumed = run(tokenizer, tmp_path / "cut", epochs=3)
    assert resumed["history"] == whole["history"]
    for (name, a), (_, b) in zip(
        model_a.state_dict().items(), model_b.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_early_stopping_keeps_best(tokenizer, tmp_path):
    model, result = run(tokenizer, tmp_path, epochs=30, patience=1)
    losses = [h["val_loss"] for h in result["history"]]
    assert len(losses) < 30
    assert result["best_epoch"] == int(np.argmin(losses)) + 1
    assert result["best_epoch"] < len(losses)  # stopped after a worse epoch
    # the model returned holds the best epoch's weights, not the last epoch's
    _, validation, candidates = setup(tokenizer)
    again = evaluate(model, validation, candidates, tokenizer.pad_token_id, torch.device("cpu"))
    assert again["total_loss"] == pytest.approx(min(losses), rel=1e-5)
    assert again["total_loss"] != pytest.approx(losses[-1], rel=1e-5)


def test_a_checkpoint_of_other_parameters_is_refused(tokenizer, tmp_path):
    """A stage restarted with other params must not continue the old run: it says so and trains
    from the start, ending where a fresh run ends."""
    messages: list[str] = []
    run(tokenizer, tmp_path / "ckpt", epochs=3, stop_after=1, fingerprint="params-a")
    _, resumed = run(
        tokenizer, tmp_path / "ckpt", epochs=3, fingerprint="params-b", log=messages.append
    )
    assert any(m.startswith("not resuming") and "other parameters" in m for m in messages)
    _, fresh = run(tokenizer, tmp_path / "fresh", epochs=3, fingerprint="params-b")
    assert resumed["history"] == fresh["history"]
    messages.clear()
    run(tokenizer, tmp_path / "same", epochs=3, stop_after=1, fingerprint="params-b")
    run(tokenizer, tmp_path / "same", epochs=3, fingerprint="params-b", log=messages.append)
    assert any(m.startswith("resumed from") for m in messages)


def test_parameter_groups_decay_only_weight_matrices_and_give_the_lm_its_rate(tokenizer):
    from dataclasses import replace

    from selm_lib.selm.train import parameter_groups

    model = build_selm(tiny_config(dropout=0.1, seed=5, vocab_size=None), tokenizer)
    config = TrainConfig(
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        lm_learning_rate=1e-5,
        weight_decay=0.05,
        warmup_ratio=0.1,
        grad_clip=1.0,
        patience=1,
        seed=0,
        eval_batch_size=4,
    )
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model, config)
    assert all(g["lr"] == 1e-3 for g in groups)  # the LM is frozen: no LM group
    for group in groups:
        for parameter in group["params"]:
            name = names[id(parameter)]
            decays = parameter.ndim == 2 and "norm" not in name and "constants" not in name
            assert (group["weight_decay"] == 0.05) == (decays and "positions" not in name), name
    trainable = build_selm(
        replace(tiny_config(dropout=0.1, seed=5, vocab_size=None), lm_trainable=True), tokenizer
    )
    names = {id(p): n for n, p in trainable.named_parameters()}
    lm_groups = [
        g
        for g in parameter_groups(trainable, config)
        if names[id(g["params"][0])].startswith("lm.")
    ]
    assert {g["lr"] for g in lm_groups} == {1e-5}
    decayed = [names[id(p)] for g in lm_groups if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed and not any("wte" in n or "wpe" in n or "ln_" in n for n in decayed)


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = np.concatenate(list(epoch_batches(50, 8, seed=1, epoch=2)))
    b = np.concatenate(list(epoch_batches(50, 8, seed=1, epoch=2)))
    c = np.concatenate(list(epoch_batches(50, 8, seed=1, epoch=3)))
    assert (a == b).all() and not (a == c).all() and sorted(a) == list(range(50))


def test_missing_features_name_the_stage(tokenizer, tmp_path):
    from selm_lib.features.frames import open_frames
    from selm_lib.features.store import MissingFeatures

    rows, feats = synthetic_triplets(3, 0)
    features = {"backbones": {"w2v": {"source": "preset:tiny-wav2vec2", "layer": 4}}}
    with pytest.raises(MissingFeatures, match=r"dvc repro features@w2v"):
        open_frames({"output_root": str(tmp_path)}, features, "w2v", rows)
    with pytest.raises(TrainingError, match="same rows"):
        encode_triplets(rows, in_row_order(rows, feats)[:-1], tokenizer)


def test_device_auto_and_bad_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ParamsError, match="common.device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda" and resolve_device("cuda").type == "cuda"
    assert resolve_device("cpu").type == "cpu"  # an explicit cpu is kept on a GPU host


def test_encoded_shapes(tokenizer):
    train, _, _ = setup(tokenizer)
    assert isinstance(train, Encoded)
    assert all(ids[-1] == tokenizer.eos_token_id for ids in train.answer_ids)
    assert len(train.frames) == len(train) == len(train.prompt_ids) == len(train.views)


def test_resume_restores_the_cuda_generators(tokenizer, tmp_path, monkeypatch):
    """On a GPU host the checkpoint carries every CUDA generator and a resumed run restores them
    (dropout on the GPU draws from them); simulated here, since the tests run on CPU."""
    state = [torch.tensor([7, 1, 3], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(train_module, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    run(tokenizer, tmp_path, epochs=2, stop_after=1)
    saved = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert [t.tolist() for t in saved["cuda_rng"]] == [[7, 1, 3]]
    assert restored == []
    run(tokenizer, tmp_path, epochs=2)
    assert len(restored) == 1 and [t.tolist() for t in restored[0]] == [[7, 1, 3]]
