"""Decoding a SELM: greedy and beam-search generation, and class scoring by log-likelihood.

Two ways to turn a SELM into a classifier (``../shared/REFERENCE.md`` section 1):

* ``generate`` writes the answer text; mapping it to a class may fail (unmappable outputs);
* ``score_classes`` scores every class verbalisation ``e`` by ``log p(e | x, w)`` and the argmax is
  the ``e* = argmax_e p(e | x, w)`` of the paper: never unmappable.

All functions run the LM's KV cache over the prefix once per batch: the prefix
``[audio ; text prompt]`` dominates the sequence, the answers are a few tokens. Class scoring
shares that cache between all candidates (packed continuations with a block mask). The prefix is
never padded, so every example's tokens sit at the same positions and no
padding mask is needed. The functions switch the model to eval
mode (no dropout, deterministic) under ``torch.no_grad`` and restore its mode afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedTokenizerBase

from selm_lib.selm.model import SELM

NORMALIZATIONS = ("sum", "mean")


@contextmanager
def _inference(model: SELM) -> Iterator[None]:
    """Eval mode and no gradients for the duration; the caller's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def prefix(
    model: SELM,
    features: torch.Tensor,
    feature_mask: torch.Tensor,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LM prefix embeddings (B, L + L_text, d_lm) and its mask (all True: never padded)."""
    embeds = model.prefix_embeddings(features, feature_mask, prompt_ids, prompt_mask)
    mask = torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
    return embeds, mask


def _run_lm(model: SELM, embeds: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """Feed (N, S, d) embeddings after what ``cache`` holds; returns hidden states (N, S, d)."""
    start = cache.get_seq_length()
    positions = torch.arange(start, start + embeds.shape[1], device=embeds.device)[None]  # (1, S)
    model.check_length(start + embeds.shape[1])
    out = model.lm.transformer(
        inputs_embeds=embeds, past_key_values=cache, position_ids=positions, use_cache=True
    )
    return out.last_hidden_state


def _next_log_probs(model: SELM, hidden: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (N, V), float32, of the token after the last position of (N, S, d)."""
    return F.log_softmax(model.lm.lm_head(hidden[:, -1]).float(), dim=-1)


def _start(model: SELM, *batch: torch.Tensor) -> tuple[torch.Tensor, DynamicCache]:
    """Run the prefix once: log-probs of the first answer token (B, V) and the filled cache."""
    embeds, _ = prefix(model, *batch)
    cache = DynamicCache(config=model.lm.config)
    return _next_log_probs(model, _run_lm(model, embeds, cache)), cache


def _cut_at_eos(rows: torch.Tensor, eos_token_id: int) -> list[list[int]]:
    """Token rows (N, S) -> lists that stop before the first eos."""
    out = []
    for row in rows.tolist():
        out.append(row[: row.index(eos_token_id)] if eos_token_id in row else row)
    return out


def generate(
    model: SELM,
    features: torch.Tensor,
    feature_mask: torch.Tensor,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    *,
    eos_token_id: int,
    max_new_tokens: int = 8,
    num_beams: int = 1,
    length_penalty: float = 0.0,
) -> list[list[int]]:
    """Answer token ids per example, without the final eos: greedy or beam search.

    ``num_beams=1`` is greedy; more beams call ``beam_search`` (see there for the scoring).
    Generation stops at eos or after ``max_new_tokens`` tokens. Deterministic.
    """
    _check_generation_args(max_new_tokens, num_beams)
    if num_beams > 1:
        return beam_search(
            model,
            features,
            feature_mask,
            prompt_ids,
            prompt_mask,
            eos_token_id=eos_token_id,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            length_penalty=length_penalty,
        )
    with _inference(model):
        log_probs, cache = _start(model, features, feature_mask, prompt_ids, prompt_mask)
        finished = torch.zeros(log_probs.shape[0], dtype=torch.bool, device=log_probs.device)
        tokens = []
        for step in range(max_new_tokens):
            token = log_probs.argmax(dim=-1)  # (B,)
            token = token.masked_fill(finished, eos_token_id)  # a finished row only repeats eos
            tokens.append(token)
            finished |= token == eos_token_id
            if finished.all() or step == max_new_tokens - 1:
                break
            embeds = model.token_embeddings(token[:, None])  # (B, 1, d)
            log_probs = _next_log_probs(model, _run_lm(model, embeds, cache))
        rows = torch.stack(tokens, dim=1)  # (B, steps)
    return _cut_at_eos(rows, eos_token_id)


def _check_generation_args(max_new_tokens: int, num_beams: int) -> None:
    if max_new_tokens < 1 or num_beams < 1:
        raise ValueError(
            f"max_new_tokens ({max_new_tokens}) and num_beams ({num_beams}) must be >= 1"
        )


def beam_search(
    model: SELM,
    features: torch.Tensor,
    feature_mask: torch.Tensor,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    *,
    eos_token_id: int,
    max_new_tokens: int = 8,
    num_beams: int = 3,
    length_penalty: float = 0.0,
) -> list[list[int]]:
    """Batched beam search; answer token ids per example, without the final eos.

    Beams are ranked by their summed log-probability during the search. A beam that emitted eos
    stays in the beam with its score frozen (it can only extend with eos at no cost), so finished
    and open hypotheses compete on the same footing. The final pick among the ``num_beams``
    survivors divides each score by ``length ** length_penalty`` (length counts the eos):
    ``0.0`` (default) is plain log-probability, which suits short class words; ``1.0`` is the
    per-token mean. With ``num_beams=1`` this is exactly greedy decoding.
    """
    _check_generation_args(max_new_tokens, num_beams)
    with _inference(model):
        log_probs, cache = _start(model, features, feature_mask, prompt_ids, prompt_mask)
        B, V = log_probs.shape
        K = num_beams
        device = log_probs.device
        # Every beam starts as a copy of its example's prefix; only beam 0 is live at first so the
        # first step picks K distinct tokens instead of K copies of the same one.
        cache.batch_repeat_interleave(K)
        log_probs = log_probs.repeat_interleave(K, dim=0)  # (B*K, V)
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0
        finished = torch.zeros(B * K, dtype=torch.bool, device=device)
        lengths = torch.zeros(B * K, device=device)
        sequences = torch.zeros(B * K, 0, dtype=torch.long, device=device)
        eos_only = torch.full((V,), float("-inf"), device=device)
        eos_only[eos_token_id] = 0.0
        example_offset = torch.arange(B, device=device)[:, None] * K  # (B, 1)

        for step in range(max_new_tokens):
            log_probs = torch.where(finished[:, None], eos_only, log_probs)  # (B*K, V)
            candidates = (scores.view(B * K, 1) + log_probs).view(B, K * V)
            scores, flat_index = candidates.topk(K, dim=-1)  # (B, K)
            origin = (example_offset + flat_index // V).view(-1)  # (B*K,) beam each came from
            token = (flat_index % V).view(-1)  # (B*K,)
            lengths = lengths[origin] + (~finished[origin]).float()
            finished = finished[origin] | (token == eos_token_id)
            sequences = torch.cat([sequences[origin], token[:, None]], dim=1)  # (B*K, step+1)
            if finished.all() or step == max_new_tokens - 1:
                break
            cache.reorder_cache(origin)
            embeds = model.token_embeddings(token[:, None])  # (B*K, 1, d)
            log_probs = _next_log_probs(model, _run_lm(model, embeds, cache))

        final = scores.view(-1) / lengths.clamp(min=1.0) ** length_penalty  # (B*K,)
        best = final.view(B, K).argmax(dim=-1) + example_offset.view(-1)  # (B,)
        rows = sequences[best]  # (B, steps)
    return _cut_at_eos(rows, eos_token_id)


def score_classes(
    model: SELM,
    features: torch.Tensor,
    feature_mask: torch.Tensor,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    candidates: Sequence[Sequence[int]],
    *,
    normalize: str = "sum",
    rows_per_chunk: int | None = None,
) -> torch.Tensor:
    """Log-likelihood (B, C), float32, of every candidate verbalisation given each example.

    ``candidates[c]`` are the token ids of class ``c``'s answer *including* the trailing eos (the
    same text the model was trained on, e.g. ``" angry"`` + eos). ``normalize="sum"`` (default) is
    ``log p(e | x, w)``; ``"mean"`` divides by the candidate's token count.

    The prefix runs once per batch and its KV cache is shared, never copied per candidate: the
    candidates' tokens (all but each one's last) are packed side by side into one continuation
    per example, each at the positions right after the prefix, with a block mask so that a
    candidate's tokens see the prefix and their own earlier tokens only. ``rows_per_chunk``
    bounds the (example x packed token) positions of one LM pass, which bounds the memory of the
    pass (its logits are positions x vocabulary): candidates, and if need be examples, are split
    into groups that fit (default: everything in one pass).
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize '{normalize}' must be one of {NORMALIZATIONS}")
    if not candidates or any(len(c) == 0 for c in candidates):
        raise ValueError("every candidate needs at least one token (its eos)")
    if rows_per_chunk is not None and rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk ({rows_per_chunk}) must be >= 1")
    with _inference(model):
        first_log_probs, cache = _start(model, features, feature_mask, prompt_ids, prompt_mask)
        B = first_log_probs.shape[0]
        device = first_log_probs.device
        budget = rows_per_chunk or B * sum(max(len(c) - 1, 1) for c in candidates)
        rows = []
        for lo, hi, groups in _score_plan(candidates, B, budget):
            columns = [
                _score_group(
                    model,
                    first_log_probs[lo:hi],
                    _slice_cache(model, cache, lo, hi),
                    candidates[a:b],
                    device,
                )
                for a, b in groups
            ]
            rows.append(torch.cat(columns, dim=1))
        scores = torch.cat(rows, dim=0)  # (B, C)
        if normalize == "mean":
            lengths = torch.tensor([len(c) for c in candidates], device=device, dtype=torch.float)
            scores = scores / lengths
    return scores


def _score_plan(
    candidates: Sequence[Sequence[int]], B: int, budget: int
) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Example ranges ``[lo, hi)`` and, for each, candidate ranges whose packed tokens times the
    examples stay within ``budget`` positions (at least one candidate per group)."""
    widest = max(max(len(c) - 1, 1) for c in candidates)
    per_pass = max(1, min(B, budget // widest))  # examples that fit one candidate at a time
    plan = []
    for lo in range(0, B, per_pass):
        hi = min(B, lo + per_pass)
        groups, start, used = [], 0, 0
        for c, tokens in enumerate(candidates):
            need = (hi - lo) * max(len(tokens) - 1, 1)
            if c > start and used + need > budget:
                groups.append((start, c))
                start, used = c, 0
            used += need
        groups.append((start, len(candidates)))
        plan.append((lo, hi, groups))
    return plan


def _slice_cache(model: SELM, cache: DynamicCache, lo: int, hi: int) -> DynamicCache:
    """A cache over the prefix of examples ``[lo, hi)``, built on views of the shared tensors
    (no copy; the LM's append for a candidate group makes one (examples, prefix + group) copy per
    group, never one per candidate)."""
    return DynamicCache(
        [(layer.keys[lo:hi], layer.values[lo:hi]) for layer in cache.layers],
        config=model.lm.config,
    )


def _score_group(
    model: SELM,
    first_log_probs: torch.Tensor,
    cache: DynamicCache,
    group: Sequence[Sequence[int]],
    device: torch.device,
) -> torch.Tensor:
    """Summed log-probs (B, Cg) of the candidates in ``group`` after the cached prefix.

    The group's continuations are packed into one sequence per example after the prefix in
    ``cache`` (a fresh cache per group, see :func:`_slice_cache`)."""
    B = first_log_probs.shape[0]
    first = torch.tensor([c[0] for c in group], device=device)
    total = first_log_probs[:, first]  # (B, Cg) the first token, from the prefix's last slot
    inputs = [list(c[:-1]) for c in group]  # tokens fed: all but the last of each candidate
    if all(len(t) == 0 for t in inputs):
        return total
    P = cache.get_seq_length()
    flat, owner, offset = [], [], []
    for c, tokens in enumerate(inputs):
        flat += tokens
        owner += [c] * len(tokens)
        offset += list(range(len(tokens)))
    Q = len(flat)
    owner_t = torch.tensor(owner, device=device)
    offset_t = torch.tensor(offset, device=device)
    # Query q sees the prefix and the earlier tokens of its own candidate (block-causal).
    same = (owner_t[:, None] == owner_t[None, :]) & (offset_t[None, :] <= offset_t[:, None])
    allowed = torch.cat([torch.ones(Q, P, dtype=torch.bool, device=device), same], dim=1)
    model.check_length(P + int(offset_t.max()) + 1)
    embeds = model.token_embeddings(torch.tensor(flat, device=device)[None].expand(B, -1))
    # Additive float mask (0 = attend, dtype minimum = masked): every attention implementation
    # reads it the same way (eager attention adds a boolean mask instead of masking with it).
    bias = torch.zeros(Q, P + Q, dtype=embeds.dtype, device=device)
    bias = bias.masked_fill(~allowed, torch.finfo(embeds.dtype).min)
    out = model.lm.transformer(
        inputs_embeds=embeds,
        past_key_values=cache,
        position_ids=(P + offset_t)[None].expand(B, -1),
        attention_mask=bias[None, None].expand(B, 1, Q, P + Q),
        use_cache=True,
    )
    log_probs = F.log_softmax(model.lm.lm_head(out.last_hidden_state).float(), dim=-1)  # (B,Q,V)
    targets = torch.tensor(
        [group[c][k + 1] for c, k in zip(owner, offset, strict=True)], device=device
    )
    picked = log_probs.gather(-1, targets[None, :, None].expand(B, -1, 1)).squeeze(-1)  # (B, Q)
    rest = torch.zeros(B, len(group), device=device, dtype=picked.dtype)
    rest.index_add_(1, owner_t, picked)
    return total + rest


def encode_candidates(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Candidate ids for ``score_classes``: each text (as trained, e.g. ``" angry"``) + eos."""
    return [
        tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        for text in texts
    ]


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Generated ids -> stripped lower-case text (special tokens dropped)."""
    return tokenizer.decode(list(ids), skip_special_tokens=True).strip().lower()
