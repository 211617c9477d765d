"""Decoding: prefix, greedy and beam search (KV cache), class scoring, text helpers."""

from __future__ import annotations

import pytest
import torch

from selm_lib.selm import decode
from tests.test_model import (
    OVERFIT_ANSWERS,
    inputs_of,
    make_batch,
    make_tokenizer,
    overfit_tiny,
    tiny_model,
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def eos(tokenizer) -> int:
    return tokenizer.eos_token_id


def test_prefix_shape_and_mask() -> None:
    model = tiny_model().eval()
    batch = make_batch([" sad", " happy"], frames=[6, 9])
    with torch.no_grad():
        embeds, mask = decode.prefix(model, *inputs_of(batch))
    assert embeds.shape == (2, model.config.prefix_len, model.lm.config.n_embd)
    assert mask.shape == (2, model.config.prefix_len) and mask.all()


def test_score_classes_matches_forward(tokenizer) -> None:
    model = tiny_model()
    texts = [" sad", " happy neutral", " angry", " arousal valence dominance:"]
    candidates = decode.encode_candidates(tokenizer, texts)
    assert all(c[-1] == tokenizer.eos_token_id for c in candidates)
    batch = make_batch(
        [" sad"] * 3, frames=[4, 12, 7], prompts=["emotion:", "sentiment:", "emotion:"]
    )
    model.train()  # scoring must switch dropout off by itself and restore the mode
    scores = decode.score_classes(model, *inputs_of(batch), candidates)
    assert model.training
    assert scores.shape == (3, len(texts))

    model.eval()
    with torch.no_grad():
        for c, text in enumerate(texts):
            answer = make_batch([text] * 3, frames=[4, 12, 7])
            batch["answer_ids"], batch["answer_mask"] = answer["answer_ids"], answer["answer_mask"]
            expected = model(**batch).log_likelihood
            assert torch.allclose(scores[:, c], expected, atol=1e-4), text

    # Bounded passes (one example x one candidate at a time, and an uneven split) score the same.
    for rows in (1, 5):
        chunked = decode.score_classes(model, *inputs_of(batch), candidates, rows_per_chunk=rows)
        assert torch.allclose(chunked, scores, atol=1e-5), rows
    mean = decode.score_classes(model, *inputs_of(batch), candidates, normalize="mean")
    lengths = torch.tensor([len(c) for c in candidates], dtype=torch.float)
    assert torch.allclose(mean, scores / lengths, atol=1e-5)
    with pytest.raises(ValueError, match="normalize"):
        decode.score_classes(model, *inputs_of(batch), candidates, normalize="max")


def test_score_classes_picks_the_trained_answer(tokenizer) -> None:
    model, batch, _ = overfit_tiny()
    texts = [" angry", " happy", " sad", " neutral", " happy neutral"]
    scores = decode.score_classes(
        model, *inputs_of(batch), decode.encode_candidates(tokenizer, texts)
    )
    assert [texts[i] for i in scores.argmax(dim=1).tolist()] == OVERFIT_ANSWERS


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_stops_at_eos(tokenizer, eos, num_beams: int) -> None:
    model, batch, _ = overfit_tiny()
    generated = decode.generate(
        model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=8, num_beams=num_beams
    )
    expected = [tokenizer.encode(a) for a in OVERFIT_ANSWERS]
    assert generated == expected  # the answer, cut before eos, nothing after
    again = decode.generate(
        model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=8, num_beams=num_beams
    )
    assert again == generated


def sequence_scores(model, batch, sequences: list[list[int]]) -> torch.Tensor:
    """(B, N) summed log-probability of each token sequence given each example (teacher forced)."""
    return decode.score_classes(model, *inputs_of(batch), sequences)


def test_untrained_generation_respects_limits_and_is_stepwise_argmax(tokenizer, eos) -> None:
    model = tiny_model()
    batch = make_batch([" sad"] * 3, frames=[4, 12, 7], seed=2)
    for num_beams in (1, 2):
        generated = decode.generate(
            model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=5, num_beams=num_beams
        )
        assert len(generated) == 3
        assert all(len(ids) <= 5 and eos not in ids for ids in generated)
    greedy = decode.generate(model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=5)
    vocab = len(tokenizer)
    for b, ids in enumerate(greedy):
        one = {k: v[b : b + 1] for k, v in batch.items()}
        # every generated token is the most likely next token after the ones before it, and an
        # answer shorter than the limit stops where end of text is the most likely next token
        steps = ids + ([eos] if len(ids) < 5 else [])
        for t, token in enumerate(steps):
            scores = sequence_scores(model, one, [ids[:t] + [v] for v in range(vocab)])[0]
            assert int(scores.argmax()) == token, (b, t)
    with pytest.raises(ValueError, match="max_new_tokens"):
        decode.generate(model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=0)


def test_length_penalty_ranks_the_surviving_beams_by_mean_log_probability(tokenizer, eos) -> None:
    """The search is the same for every length penalty; the final pick is the survivor with the
    best sum (penalty 0) or best per-token mean (penalty 1), lengths counting the eos. A bias on
    the eos logit makes answers of different lengths compete (random models rarely stop)."""
    bias = torch.zeros(len(tokenizer))
    bias[eos] = 3.0
    differs = 0
    for seed in range(12):
        model = tiny_model(seed=seed)
        model.lm.lm_head.register_forward_hook(lambda module, args, out: out + bias.to(out.dtype))
        batch = make_batch([" sad"] * 2, frames=[5, 9], seed=seed)
        run = {"eos_token_id": eos, "max_new_tokens": 4, "num_beams": 4}
        plain = decode.beam_search(model, *inputs_of(batch), **run, length_penalty=0.0)
        mean = decode.beam_search(model, *inputs_of(batch), **run, length_penalty=1.0)
        for b in range(2):
            one = {k: v[b : b + 1] for k, v in batch.items()}
            picks = [
                plain[b] + [eos] if len(plain[b]) < 4 else plain[b],
                mean[b] + [eos] if len(mean[b]) < 4 else mean[b],
            ]
            total = sequence_scores(model, one, picks)[0]
            lengths = torch.tensor([float(len(p)) for p in picks])
            assert total[0] >= total[1] - 1e-5  # penalty 0 keeps the larger sum
            assert (total / lengths)[1] >= (total / lengths)[0] - 1e-5  # penalty 1 the larger mean
            differs += plain[b] != mean[b]
    assert differs > 0  # the penalty changed at least one pick


@pytest.mark.parametrize("seed", [0, 1])
def test_one_beam_equals_greedy(eos, seed: int) -> None:
    model = tiny_model(seed=seed)
    batch = make_batch([" sad"] * 3, frames=[4, 12, 7], seed=seed)
    greedy = decode.generate(model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=6)
    beam = decode.beam_search(
        model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=6, num_beams=1
    )
    assert beam == greedy


def test_full_width_beam_search_is_exact(eos) -> None:
    """With as many beams as tokens, two steps of beam search find the best two-token answer."""
    model = tiny_model(seed=3)
    batch = make_batch([" sad"] * 2, frames=[5, 9], seed=4)
    V = model.lm.config.vocab_size
    found = decode.beam_search(
        model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=2, num_beams=V
    )
    greedy = decode.generate(model, *inputs_of(batch), eos_token_id=eos, max_new_tokens=2)
    # Every answer of at most two steps: eos alone, or two tokens of which the second may be eos.
    every = [[eos]] + [[first, second] for first in range(V) if first != eos for second in range(V)]
    exhaustive = decode.score_classes(model, *inputs_of(batch), every, rows_per_chunk=4096)

    def score(b: int, ids: list[int]) -> float:
        candidate = ids + [eos] if len(ids) < 2 else ids
        return decode.score_classes(
            model, *(t[b : b + 1] for t in inputs_of(batch)), [candidate]
        ).item()

    for b in range(2):
        best = exhaustive[b].max().item()
        assert score(b, found[b]) == pytest.approx(best, abs=1e-4)
        assert score(b, greedy[b]) <= best + 1e-4


def test_decode_text(tokenizer, eos) -> None:
    ids = tokenizer.encode(" Happy") + [eos]
    assert decode.decode_text(tokenizer, ids) == "happy"
    assert decode.decode_text(tokenizer, []) == ""


def test_score_classes_is_exact_under_eager_attention(tokenizer) -> None:
    """The packed candidates' block mask must hold under every attention implementation (eager
    attention adds the mask to the scores, so it must be an additive float mask)."""
    model = tiny_model()
    model.lm.config._attn_implementation = "eager"
    texts = [" sad", " happy neutral", " angry"]
    candidates = decode.encode_candidates(tokenizer, texts)
    batch = make_batch([" sad"] * 2, frames=[4, 9])
    scores = decode.score_classes(model, *inputs_of(batch), candidates)
    model.eval()
    with torch.no_grad():
        for c, text in enumerate(texts):
            answer = make_batch([text] * 2, frames=[4, 9])
            batch["answer_ids"], batch["answer_mask"] = answer["answer_ids"], answer["answer_mask"]
            expected = model(**batch).log_likelihood
            assert torch.allclose(scores[:, c], expected, atol=1e-4), text
