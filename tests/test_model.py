"""SELM model: shapes, frozen/trainable LM, answer-only loss, padding invariance, overfitting,
save/load and seeding, on tiny random configs with odd sizes (no download).

The helpers at the top (tokenizer, config, batch, overfitted model) are shared with test_decode.py.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from selm_lib.selm import decode
from selm_lib.selm.model import (
    CONFIG_FILE,
    IGNORE_INDEX,
    SELM,
    TINY_PRESET,
    WEIGHTS_FILE,
    SELMConfig,
    build_selm,
    pool_frames,
)

EOS = "<|endoftext|>"
AUDIO_DIM = 37
TRAIN_TEXTS = [
    "emotion:",
    " angry",
    " happy",
    " Happy",
    " sad",
    " neutral",
    " fearful",
    " surprised",
    " disgusted",
    "sentiment:",
    " positive",
    " negative",
    "arousal valence dominance:",
    " low",
    " medium",
    " high",
]


# -------------------------------------------------------------------------------------------------
# Shared helpers


@lru_cache(maxsize=1)
def make_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (~110 tokens) trained on the prompt and answer words."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=[EOS], show_progress=False)
    tokenizer.train_from_iterator(TRAIN_TEXTS * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS)


def tiny_config(**overrides) -> SELMConfig:
    """Odd sizes so that shape bugs surface: D_audio 37, P 52, n_embd 60, L 5 / L_text 3."""
    values = dict(
        audio_dim=AUDIO_DIM,
        lm=TINY_PRESET,
        lm_trainable=False,
        tiny_lm={"n_embd": 60, "n_layer": 2, "n_head": 4, "n_positions": 64},
        audio_prefix_len=5,
        text_prefix_len=3,
        projection_dim=52,
        mapper_layers=2,
        mapper_heads=4,
        mapper_mlp_ratio=2.0,
        dropout=0.1,
        pooling="adaptive_avg",
        seed=0,
    )
    return SELMConfig(**(values | overrides))


def tiny_model(**overrides) -> SELM:
    return build_selm(tiny_config(**overrides), make_tokenizer())


def make_batch(
    answers: list[str],
    frames: list[int],
    prompts: list[str] | None = None,
    seed: int = 0,
    pad_value: float = 5.0,
) -> dict[str, torch.Tensor]:
    """Features (padded with ``pad_value`` garbage), prompt and answer (+ eos) ids and masks."""
    tokenizer = make_tokenizer()
    generator = torch.Generator().manual_seed(seed)
    B, T = len(answers), max(frames)
    features = torch.full((B, T, AUDIO_DIM), pad_value)
    feature_mask = torch.zeros(B, T, dtype=torch.bool)
    for b, n in enumerate(frames):
        features[b, :n] = torch.randn(n, AUDIO_DIM, generator=generator)
        feature_mask[b, :n] = True
    prompt = tokenizer(prompts or ["emotion:"] * B, return_tensors="pt", padding=True)
    answer = tokenizer([a + EOS for a in answers], return_tensors="pt", padding=True)
    return {
        "features": features,
        "feature_mask": feature_mask,
        "prompt_ids": prompt.input_ids,
        "prompt_mask": prompt.attention_mask.bool(),
        "answer_ids": answer.input_ids,
        "answer_mask": answer.attention_mask.bool(),
    }


def inputs_of(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The four conditioning tensors (what decode functions take)."""
    return (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])


OVERFIT_ANSWERS = [" angry", " happy", " angry", " happy"]


@lru_cache(maxsize=1)
def overfit_tiny() -> tuple[SELM, dict[str, torch.Tensor], float]:
    """A frozen-LM tiny SELM trained on one batch (4 examples, 2 answers); eval-mode loss after."""
    model = tiny_model()
    batch = make_batch(OVERFIT_ANSWERS, frames=[11, 7, 9, 5], seed=1)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(250):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        final_loss = model(**batch).loss.item()
    return model, batch, final_loss


# -------------------------------------------------------------------------------------------------
# Config


def test_config_json_round_trip() -> None:
    config = tiny_config(pooling="linear_interp", lm_trainable=True, vocab_size=111)
    restored = SELMConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert config.prefix_len == 8


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="valid keys"):
        SELMConfig.from_dict({"audio_dim": 3, "audio_prefix": 4})
    with pytest.raises(ValueError, match="pooling"):
        tiny_config(pooling="max")
    with pytest.raises(ValueError, match="build_selm"):
        SELM(tiny_config())  # the preset needs vocab_size, which build_selm fills in
    with pytest.raises(ValueError, match="mapper_heads"):
        tiny_model(mapper_heads=7)  # 60 is not divisible by 7


def test_seeded_builds_are_identical() -> None:
    first, second, other = tiny_model(), tiny_model(), tiny_model(seed=1)
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    assert all(torch.equal(first_state[k], second_state[k]) for k in first_state)
    assert not torch.equal(
        first_state["lm.transformer.wte.weight"], other.lm.transformer.wte.weight
    )
    assert first.config.vocab_size == len(make_tokenizer())


# -------------------------------------------------------------------------------------------------
# Forward and gradients


def test_forward_backward_shapes_with_frozen_lm() -> None:
    model = tiny_model()
    batch = make_batch([" sad", " happy neutral", " angry"], frames=[4, 13, 9])
    out = model(**batch)
    B, A = batch["answer_ids"].shape
    V = len(make_tokenizer())
    assert out.logits.shape == (B, A, V)
    assert out.log_likelihood.shape == (B,)
    assert out.token_log_probs.shape == (B, A)
    assert out["labels"].shape == (B, model.config.prefix_len + A)
    assert torch.isfinite(out.loss)
    out.loss.backward()

    for name, param in model.named_parameters():
        if name.startswith("lm."):
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    counts = model.parameter_counts()
    assert counts["frozen"] == sum(p.numel() for p in model.lm.parameters())
    assert counts["trainable"] + counts["frozen"] == sum(p.numel() for p in model.parameters())


def test_trainable_lm_receives_gradients() -> None:
    model = tiny_model(lm_trainable=True)
    model(**make_batch([" sad", " happy"], frames=[6, 8])).loss.backward()
    assert model.lm.transformer.wte.weight.grad is not None
    assert model.lm.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0
    assert model.parameter_counts()["frozen"] == 0


@pytest.mark.parametrize("lm_trainable", [False, True])
def test_frozen_lm_stays_in_eval_mode(lm_trainable: bool) -> None:
    model = tiny_model(lm_trainable=lm_trainable).train()
    assert model.audio_mapper.training
    assert model.lm.training is lm_trainable


def test_labels_cover_answer_tokens_only() -> None:
    model = tiny_model()
    answers = [" sad", " happy neutral"]
    short = make_batch(answers, frames=[5, 9])
    long = make_batch(answers, frames=[5, 9], prompts=["arousal valence dominance:", "sentiment:"])
    n_prefix = model.config.prefix_len
    counted = []
    for batch in (short, long):
        labels = model(**batch).labels
        assert (labels[:, :n_prefix] == IGNORE_INDEX).all()
        answer_labels = labels[:, n_prefix:]
        mask = batch["answer_mask"]
        assert torch.equal(answer_labels[mask], batch["answer_ids"][mask])
        assert (answer_labels[~mask] == IGNORE_INDEX).all()
        counted.append(labels != IGNORE_INDEX)
    # Another prompt changes what the model sees, not which positions carry loss.
    assert torch.equal(counted[0], counted[1])


def test_loss_is_cross_entropy_over_answer_positions() -> None:
    model = tiny_model().eval()
    batch = make_batch([" sad", " happy neutral", " angry"], frames=[4, 13, 9])
    with torch.no_grad():
        out = model(**batch)
        mask = batch["answer_mask"]
        manual = F.cross_entropy(out.logits[mask], batch["answer_ids"][mask])
        assert torch.allclose(out.loss, manual, atol=1e-6)
        per_token = -F.cross_entropy(
            out.logits.transpose(1, 2), batch["answer_ids"], reduction="none"
        )
        assert torch.allclose(out.log_likelihood, (per_token * mask).sum(1), atol=1e-5)

        # Reference: the whole sequence through GPT2LMHeadModel with transformers' own shifted loss.
        prefix = model.prefix_embeddings(*inputs_of(batch))
        embeds = torch.cat([prefix, model.token_embeddings(batch["answer_ids"])], dim=1)
        reference = model.lm(inputs_embeds=embeds, labels=out.labels).loss
    assert torch.allclose(out.loss, reference, atol=1e-5)


@pytest.mark.parametrize("pooling", ["adaptive_avg", "linear_interp"])
def test_padding_invariance(pooling: str) -> None:
    model = tiny_model(pooling=pooling).eval()
    alone = make_batch([" sad"], frames=[6], seed=3)
    # Batched with a longer example: more frames, a longer answer, a longer prompt.
    batched = make_batch(
        [" sad", " happy neutral"],
        frames=[6, 15],
        prompts=["emotion:", "arousal valence dominance:"],
        seed=3,
        pad_value=-40.0,
    )
    batched["features"][0, :6] = alone["features"][0]
    assert batched["answer_mask"][0].sum() < batched["answer_mask"].shape[1]  # really padded
    with torch.no_grad():
        single = model(**alone)
        pair = model(**batched)
    assert torch.allclose(single.log_likelihood[0], pair.log_likelihood[0], atol=1e-5)
    assert torch.allclose(
        single.token_log_probs[0],
        pair.token_log_probs[0, : alone["answer_ids"].shape[1]],
        atol=1e-5,
    )


def test_left_and_right_padded_prompts_agree() -> None:
    model = tiny_model().eval()
    tokenizer = make_tokenizer()
    batch = make_batch([" sad", " angry"], frames=[6, 8], prompts=["emotion:", "sentiment:"])
    ids = tokenizer("emotion:", return_tensors="pt").input_ids[0]
    pad = tokenizer.pad_token_id
    left = torch.cat([torch.full((3,), pad), ids])[None]
    left_mask = torch.cat([torch.zeros(3), torch.ones(len(ids))]).bool()[None]
    with torch.no_grad():
        reference = model.prefix_embeddings(*inputs_of(batch))[:1]
        shifted = model.prefix_embeddings(
            batch["features"][:1], batch["feature_mask"][:1], left, left_mask
        )
    assert torch.allclose(reference, shifted, atol=1e-5)


# -------------------------------------------------------------------------------------------------
# Pooling


@pytest.mark.parametrize("method", ["adaptive_avg", "linear_interp"])
def test_pooling_ignores_padding(method: str) -> None:
    x = torch.randn(2, 12, 3)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[0, 7:] = False
    garbage = x.clone()
    garbage[0, 7:] = 1e4
    for length in (1, 4, 10):  # fewer and more output frames than the 7 valid ones
        pooled = pool_frames(x, mask, length, method)
        assert pooled.shape == (2, length, 3)
        assert torch.allclose(pooled, pool_frames(garbage, mask, length, method))
        assert torch.allclose(pooled[:1], pool_frames(x[:1, :7], mask[:1, :7], length, method))
    # Ranking among valid frames: a hole in the mask is the same as removing the frame.
    holey = mask.clone()
    holey[1, 3] = False
    kept = torch.cat([x[1:, :3], x[1:, 4:]], dim=1)
    assert torch.allclose(
        pool_frames(x, holey, 5, method)[1:], pool_frames(kept, mask[1:, :11], 5, method)
    )
    assert (pool_frames(x, torch.zeros_like(mask), 4, method) == 0).all()


def test_pooling_values() -> None:
    x = torch.arange(8.0).view(1, 8, 1)
    mask = torch.ones(1, 8, dtype=torch.bool)
    assert pool_frames(x, mask, 4, "adaptive_avg").flatten().tolist() == [0.5, 2.5, 4.5, 6.5]
    expected = torch.nn.functional.adaptive_avg_pool1d(x.transpose(1, 2), 3).flatten()
    assert torch.allclose(pool_frames(x, mask, 3, "adaptive_avg").flatten(), expected)
    interp = pool_frames(x, mask, 15, "linear_interp").flatten()
    assert torch.allclose(interp, torch.linspace(0, 7, 15))


# -------------------------------------------------------------------------------------------------
# Overfitting, persistence


def test_tiny_model_overfits_one_batch() -> None:
    model, batch, final_loss = overfit_tiny()
    assert final_loss < 0.05
    tokenizer = make_tokenizer()
    generated = decode.generate(model, *inputs_of(batch), eos_token_id=tokenizer.eos_token_id)
    assert [decode.decode_text(tokenizer, ids) for ids in generated] == [
        a.strip() for a in OVERFIT_ANSWERS
    ]


def test_save_load_round_trip(tmp_path) -> None:
    model, batch, _ = overfit_tiny()
    model.save(tmp_path / "selm")
    assert (tmp_path / "selm" / CONFIG_FILE).is_file()
    loaded = SELM.load(tmp_path / "selm", map_location="cpu").eval()
    assert loaded.config == model.config
    assert any(k.startswith("lm.") for k in load_file(tmp_path / "selm" / WEIGHTS_FILE))
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)


@pytest.mark.parametrize("lm_trainable", [False, True])
def test_pretrained_lm_weights_saved_only_when_trained(tmp_path, lm_trainable: bool) -> None:
    tokenizer = make_tokenizer()
    gpt2_config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=60, n_layer=2, n_head=4, n_positions=64
    )
    torch.manual_seed(5)
    GPT2LMHeadModel(gpt2_config).save_pretrained(tmp_path / "gpt2")  # a local "pretrained" GPT-2
    config = tiny_config(lm=str(tmp_path / "gpt2"), lm_trainable=lm_trainable)
    model = build_selm(config, tokenizer).eval()
    with torch.no_grad():  # make the saved weights differ from a fresh build
        model.audio_mapper.positions.add_(1.0)
        model.lm.transformer.ln_f.bias.add_(float(lm_trainable))
    model.save(tmp_path / "selm")
    saved = load_file(tmp_path / "selm" / WEIGHTS_FILE)
    assert any(k.startswith("lm.") for k in saved) is lm_trainable
    loaded = SELM.load(tmp_path / "selm").eval()
    batch = make_batch([" sad", " happy"], frames=[6, 8])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)


def test_model_moves_with_dtype() -> None:
    model = tiny_model().eval().to(torch.float64)
    batch = make_batch([" sad", " happy"], frames=[6, 8])
    batch["features"] = batch["features"].double()
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.dtype == torch.float64 and torch.isfinite(out.loss)


def test_tokenizer_helpers_are_consistent() -> None:
    config = dataclasses.replace(tiny_config(), vocab_size=None)
    assert build_selm(config.to_dict(), make_tokenizer()).config.vocab_size == len(make_tokenizer())
