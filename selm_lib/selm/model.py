"""SELM: speech emotion recognition as conditional text generation (a Pengi-like reconstruction).

The language model reads ``[audio prefix (L) ; text-prompt prefix (L_text) ; answer tokens]`` and is
trained with next-token cross-entropy on the answer tokens only::

    features (B, T, D_audio) --AudioProjection--> (B, T, P) --AudioMapper--> (B, L, d_lm)
    prompt ids (B, W) --GPT-2 wte--> (B, W, d_lm) --TextMapper--> (B, L_text, d_lm)
    [audio prefix ; text prefix ; answer embeddings] --GPT-2--> logits of the answer tokens

The paper publishes no code; the design follows the same group's Pengi (see
``../shared/REFERENCE.md`` section 1). Where this file departs from Pengi it says why in a comment.
Decoding (greedy, beam search, class scoring) lives in ``selm_lib.selm.decode``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

TINY_PRESET = "preset:tiny-gpt2"
POOLINGS = ("adaptive_avg", "linear_interp")
CONFIG_FILE = "selm_config.json"
WEIGHTS_FILE = "selm.safetensors"
TINY_INIT_STD = 0.2  # init std of the tiny preset LM (see _build_lm)
IGNORE_INDEX = -100  # label of positions that carry no loss (the transformers convention)


# -------------------------------------------------------------------------------------------------
# Config


@dataclass
class SELMConfig:
    """The whole contract of a SELM model; ``to_dict`` / ``from_dict`` round-trip through JSON."""

    audio_dim: int  # D of the cached encoder features
    lm: str  # TINY_PRESET (random, seeded) or a local GPT-2 name / folder
    lm_trainable: bool  # False: GPT-2 frozen (gradients still flow through it)
    tiny_lm: dict  # the tiny preset's GPT-2 sizes (n_embd, n_layer, n_head, n_positions)
    audio_prefix_len: int  # L audio tokens
    text_prefix_len: int  # L_text text-prompt tokens
    projection_dim: int  # P, width of the audio projection
    mapper_layers: int  # depth of each mapper transformer (Pengi: 4 layers, 8 heads, mlp x2)
    mapper_heads: int
    mapper_mlp_ratio: float
    dropout: float
    pooling: str  # variable-length sequence -> L frames: adaptive_avg | linear_interp
    seed: int
    vocab_size: int | None = None  # the tokenizer's size, set by build_selm; real GPT-2 ignores it

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"SELMConfig.pooling '{self.pooling}' must be one of {POOLINGS}")
        for name in ("audio_dim", "audio_prefix_len", "text_prefix_len", "projection_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"SELMConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def is_tiny_preset(self) -> bool:
        return self.lm == TINY_PRESET

    @property
    def prefix_len(self) -> int:
        """Prefix positions before the answer: audio prefix + text prefix."""
        return self.audio_prefix_len + self.text_prefix_len

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SELMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown SELMConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)


# -------------------------------------------------------------------------------------------------
# Building blocks


class AudioProjection(nn.Module):
    """Two linear layers with GELU, a residual and a layer norm (Pengi's projection)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_dim, out_dim)
        self.linear2 = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.linear1(x)  # (B, T, P)
        h2 = self.dropout(self.linear2(F.gelu(h1)))  # (B, T, P)
        return self.norm(h1 + h2)  # (B, T, P)


def pool_frames(x: torch.Tensor, mask: torch.Tensor, length: int, method: str) -> torch.Tensor:
    """Resample the valid frames of each sequence to ``length`` frames; padding never leaks in.

    ``adaptive_avg`` averages the valid frames over ``length`` equal time segments (the segments of
    ``adaptive_avg_pool1d``, so a short sequence repeats frames); ``linear_interp`` samples the
    valid frames at ``length`` evenly spaced points with linear interpolation (ends included).
    Both are one matrix product with a (B, length, T) weight that is zero on padded frames; frames
    are ranked among the valid ones, so the mask need not be a prefix. An example with no valid
    frame pools to zeros.
    """
    mask = mask.bool()
    rank = mask.long().cumsum(dim=1) - 1  # (B, T) index of a frame among the valid ones
    count = mask.sum(dim=1, keepdim=True)  # (B, 1) valid frames
    out_index = torch.arange(length, device=x.device)[None, :]  # (1, L)
    if method == "adaptive_avg":
        start = (out_index * count) // length  # (B, L)
        end = ((out_index + 1) * count + length - 1) // length  # (B, L), ceil division
        inside = (rank[:, None, :] >= start[..., None]) & (rank[:, None, :] < end[..., None])
        weights = (inside & mask[:, None, :]).float()  # (B, L, T)
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1.0)
    elif method == "linear_interp":
        step = (count - 1).clamp(min=0).float() / max(length - 1, 1)  # (B, 1)
        points = out_index.float() * step if length > 1 else (count - 1).float() / 2  # (B, L)
        distance = (rank[:, None, :].float() - points[..., None]).abs()  # (B, L, T)
        weights = (1.0 - distance).clamp(min=0.0) * mask[:, None, :].float()  # (B, L, T)
    else:
        raise ValueError(f"pooling '{method}' must be one of {POOLINGS}")
    return torch.bmm(weights.to(x.dtype), x)  # (B, L, D)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with a key padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(
                f"the LM width {dim} is not divisible by SELMConfig.mapper_heads={heads}: "
                "pick a head count that divides it"
            )
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        B, S, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)  # 3 x (B, S, D)
        q, k, v = (t.view(B, S, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        attn_mask = key_mask[:, None, None, :]  # (B, 1, 1, S), True = may be attended to
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, S, D/H)
        y = y.transpose(1, 2).reshape(B, S, D)  # (B, S, D)
        return self.resid_dropout(self.proj(y))


class MapperBlock(nn.Module):
    """Pre-norm transformer block: attention then MLP, each with a residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)  # (B, S, D)
        return x + self.mlp(self.norm2(x))  # (B, S, D)


class MapperTransformer(nn.Module):
    """Inputs followed by ``n_const`` learned constant tokens; returns the outputs at the constants.

    The constants are the queries that become the LM prefix (Pengi/ClipCap's mapping transformer).
    """

    def __init__(self, config: SELMConfig, dim: int, n_const: int) -> None:
        super().__init__()
        self.constants = nn.Parameter(torch.randn(n_const, dim) * 0.02)  # (N, D)
        self.blocks = nn.ModuleList(
            MapperBlock(dim, config.mapper_heads, config.mapper_mlp_ratio, config.dropout)
            for _ in range(config.mapper_layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        n_const = self.constants.shape[0]
        constants = self.constants.to(x.dtype).expand(B, -1, -1)  # (B, N, D)
        h = torch.cat([x, constants], dim=1)  # (B, S + N, D)
        const_mask = torch.ones(B, n_const, dtype=torch.bool, device=x.device)
        key_mask = torch.cat([mask.bool(), const_mask], dim=1)  # (B, S + N)
        for block in self.blocks:
            h = block(h, key_mask)
        return h[:, S:]  # (B, N, D)


class AudioMapper(nn.Module):
    """Projected frames (B, T, P) + mask -> L audio prefix tokens (B, L, d_lm).

    Pengi maps one pooled vector with ``Linear(d_in -> L * d_lm)``; here the sequence is pooled to
    L frames instead (SELM keeps the time axis), so a learned position embedding tells the
    transformer the order of the L frames, which a shared Linear(P -> d_lm) would otherwise lose.
    """

    def __init__(self, config: SELMConfig, lm_dim: int) -> None:
        super().__init__()
        self.length = config.audio_prefix_len
        self.pooling = config.pooling
        self.to_lm = nn.Linear(config.projection_dim, lm_dim)
        self.positions = nn.Parameter(torch.randn(config.audio_prefix_len, lm_dim) * 0.02)
        self.transformer = MapperTransformer(config, lm_dim, config.audio_prefix_len)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = pool_frames(x, mask, self.length, self.pooling)  # (B, L, P)
        h = self.to_lm(pooled) + self.positions.to(pooled.dtype)  # (B, L, d_lm)
        frame_mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)  # all pooled
        return self.transformer(h, frame_mask)  # (B, L, d_lm)


class TextMapper(nn.Module):
    """Prompt token embeddings (B, W, d_lm) + mask -> L_text text prefix tokens (B, L_text, d_lm).

    The caller looks the prompt up in GPT-2's own embedding tables (token + position, so word order
    is visible to this order-blind transformer); a frozen LM gets no gradient from it.
    """

    def __init__(self, config: SELMConfig, lm_dim: int) -> None:
        super().__init__()
        self.transformer = MapperTransformer(config, lm_dim, config.text_prefix_len)

    def forward(self, prompt_embeds: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        return self.transformer(prompt_embeds, prompt_mask)  # (B, L_text, d_lm)


# -------------------------------------------------------------------------------------------------
# The model


@dataclass
class SELMOutput:
    """What ``SELM.forward`` returns; also readable as a dict (``out["loss"]``).

    ``logits[:, j]`` scores answer token ``j`` (already shifted: it is the LM output at the
    position before that token), so a padded answer position is simply masked out.
    """

    loss: torch.Tensor  # () mean cross-entropy over the real answer tokens
    logits: torch.Tensor  # (B, A, V)
    log_likelihood: torch.Tensor  # (B,) summed log p(answer | prefix) per example, float32
    token_log_probs: torch.Tensor  # (B, A) log p of each answer token, 0 on padding, float32
    labels: torch.Tensor  # (B, prefix_len + A) answer ids, IGNORE_INDEX on prefix and padding

    def __getitem__(self, key: str) -> torch.Tensor:
        return getattr(self, key)


def _build_lm(config: SELMConfig) -> GPT2LMHeadModel:
    if config.is_tiny_preset:
        if not config.vocab_size:
            raise ValueError(
                f"SELMConfig.vocab_size is required with lm='{TINY_PRESET}': use "
                "build_selm(config, tokenizer), which sets it to len(tokenizer)"
            )
        # GPT-2's usual init (std 0.02) makes a frozen random LM's logits almost uniform (tied
        # head: |logit| <= |ln_f(h)| * |w| ~ 1), so no prefix could steer it; std 0.2 gives a
        # random LM that a prefix can drive to a confident answer. tiny_lm may override it.
        lm_kwargs = {"initializer_range": TINY_INIT_STD, **config.tiny_lm}
        lm_config = GPT2Config(
            vocab_size=config.vocab_size,
            **lm_kwargs,
            bos_token_id=None,  # the tokenizer owns the special ids; decoding takes them as args
            eos_token_id=None,
        )
        return GPT2LMHeadModel(lm_config)
    try:
        return GPT2LMHeadModel.from_pretrained(config.lm, local_files_only=True)
    except OSError as error:
        raise OSError(
            f"cannot load GPT-2 '{config.lm}' offline: set SELMConfig.lm to a local GPT-2 folder "
            f"(or a name already in the Hugging Face cache), or to '{TINY_PRESET}'"
        ) from error


class SELM(nn.Module):
    """Audio projection + audio mapper + text mapper in front of a GPT-2 language model."""

    def __init__(self, config: SELMConfig) -> None:
        super().__init__()
        self.config = config
        # Seed a forked RNG so two builds are identical and the caller's RNG state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.lm = _build_lm(config)
            lm_dim = self.lm.config.n_embd
            self.audio_projection = AudioProjection(
                config.audio_dim, config.projection_dim, config.dropout
            )
            self.audio_mapper = AudioMapper(config, lm_dim)
            self.text_mapper = TextMapper(config, lm_dim)
        self.lm.requires_grad_(config.lm_trainable)
        if not config.lm_trainable:
            self.lm.eval()

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def max_positions(self) -> int:
        return self.lm.config.n_positions

    def train(self, mode: bool = True) -> SELM:
        """Like ``nn.Module.train``, but a frozen LM stays in eval mode.

        A frozen LM is a fixed function: dropout inside it would only add noise to the gradients
        that reach the mappers, and would make it differ from the LM the mappers see at test time.
        """
        super().train(mode)
        if not self.config.lm_trainable:
            self.lm.eval()
        return self

    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """GPT-2's input token embeddings (B, S) -> (B, S, d_lm)."""
        return self.lm.get_input_embeddings()(ids)

    def check_length(self, total: int) -> None:
        if total > self.max_positions:
            raise ValueError(
                f"{total} LM positions exceed GPT-2's n_positions={self.max_positions}: shorten "
                "SELMConfig.audio_prefix_len / text_prefix_len or the answers / max_new_tokens"
            )

    def parameter_counts(self) -> dict[str, int]:
        """Trainable and frozen parameter counts (tied weights counted once)."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"trainable": trainable, "frozen": frozen}

    # -- forward ----------------------------------------------------------------------------------

    def prefix_embeddings(
        self,
        features: torch.Tensor,
        feature_mask: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The LM prefix ``[audio prefix ; text prefix]`` (B, L + L_text, d_lm); never padded."""
        audio = self.audio_mapper(self.audio_projection(features), feature_mask)  # (B, L, d_lm)
        # Positions count real tokens only, so left and right padding give the same embeddings.
        positions = (prompt_mask.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, W)
        prompt_embeds = self.token_embeddings(prompt_ids) + self.lm.transformer.wpe(positions)
        text = self.text_mapper(prompt_embeds, prompt_mask)  # (B, L_text, d_lm)
        return torch.cat([audio, text], dim=1)  # (B, L + L_text, d_lm)

    def forward(
        self,
        features: torch.Tensor,
        feature_mask: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        answer_ids: torch.Tensor,
        answer_mask: torch.Tensor,
    ) -> SELMOutput:
        """Next-token loss on the answer tokens only.

        Args:
            features: (B, T, D_audio) cached encoder frames; feature_mask: (B, T), True = real.
            prompt_ids / prompt_mask: (B, W) the text prompt, right- or left-padded.
            answer_ids / answer_mask: (B, A) the answer (e.g. " angry" + eos), right-padded.
        """
        answer_mask = answer_mask.bool()
        prefix = self.prefix_embeddings(features, feature_mask, prompt_ids, prompt_mask)
        B, n_prefix, _ = prefix.shape
        A = answer_ids.shape[1]
        self.check_length(n_prefix + A - 1)  # the last answer token is not fed (below)

        # The last answer token predicts nothing, so it is not fed; answer padding sits after every
        # real token, so causal attention alone keeps it out (the mask is passed for clarity).
        answer_embeds = self.token_embeddings(answer_ids[:, :-1]).to(prefix.dtype)  # (B, A-1, d)
        inputs_embeds = torch.cat([prefix, answer_embeds], dim=1)  # (B, S, d), S = n_prefix + A - 1
        attention_mask = torch.cat(
            [
                torch.ones(B, n_prefix, dtype=torch.long, device=prefix.device),
                answer_mask[:, :-1].long(),
            ],
            dim=1,
        )  # (B, S)
        position_ids = torch.arange(inputs_embeds.shape[1], device=prefix.device)[None]  # (1, S)
        hidden = self.lm.transformer(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state  # (B, S, d)
        # Position n_prefix - 1 + j predicts answer token j (the first from the last prefix slot);
        # the LM head runs on those A positions only, not on the whole (B, S, V).
        logits = self.lm.lm_head(hidden[:, n_prefix - 1 :])  # (B, A, V)

        log_probs = F.log_softmax(logits.float(), dim=-1)  # float32 even under bf16 autocast
        token_log_probs = log_probs.gather(-1, answer_ids[..., None]).squeeze(-1)  # (B, A)
        token_log_probs = token_log_probs.masked_fill(~answer_mask, 0.0)
        log_likelihood = token_log_probs.sum(dim=1)  # (B,)
        loss = -token_log_probs.sum() / answer_mask.sum().clamp(min=1)

        labels = torch.full(
            (B, n_prefix + A), IGNORE_INDEX, dtype=torch.long, device=answer_ids.device
        )
        labels[:, n_prefix:] = answer_ids.masked_fill(~answer_mask, IGNORE_INDEX)
        return SELMOutput(loss, logits, log_likelihood, token_log_probs, labels)

    # -- persistence ------------------------------------------------------------------------------

    @property
    def saves_lm_weights(self) -> bool:
        """A frozen pretrained LM is reloaded from its source, so its weights are not saved."""
        return self.config.is_tiny_preset or self.config.lm_trainable

    def save(self, folder: str | Path) -> Path:
        """Write ``selm_config.json`` and ``selm.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {}
        for name, tensor in self.state_dict().items():
            if name.startswith("lm.") and not self.saves_lm_weights:
                continue
            if name == "lm.lm_head.weight" and self._lm_head_tied():
                continue  # safetensors refuses shared tensors; re-tied by GPT-2 on load
            state[name] = tensor.detach().cpu().contiguous()
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        (folder / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, map_location: str | torch.device = "cpu") -> SELM:
        """Rebuild from ``save``'s folder; a frozen pretrained LM is reloaded from ``config.lm``."""
        folder = Path(folder)
        config = SELMConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
        model = cls(config)
        state = load_file(str(folder / WEIGHTS_FILE))
        missing, unexpected = model.load_state_dict(state, strict=False)
        allowed = {"lm.lm_head.weight"} if model._lm_head_tied() else set()
        bad_missing = [
            k
            for k in missing
            if k not in allowed and (model.saves_lm_weights or not k.startswith("lm."))
        ]
        if bad_missing or unexpected:
            raise ValueError(
                f"{folder / WEIGHTS_FILE} does not match {folder / CONFIG_FILE}: "
                f"missing {bad_missing[:5]}, unexpected {list(unexpected)[:5]}"
            )
        return model.to(map_location)

    def _lm_head_tied(self) -> bool:
        return self.lm.lm_head.weight.data_ptr() == self.lm.get_input_embeddings().weight.data_ptr()


def build_selm(config: SELMConfig | dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> SELM:
    """A seeded SELM for ``tokenizer`` (pad = eos = ``<|endoftext|>``).

    For the tiny preset the vocabulary size comes from the tokenizer; a real GPT-2 keeps its own and
    must be at least as large as the tokenizer.
    """
    if isinstance(config, dict):
        config = SELMConfig.from_dict(config)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs an eos token ('<|endoftext|>') to end answers")
    if config.lm == TINY_PRESET:
        config = dataclasses.replace(config, vocab_size=len(tokenizer))
    model = SELM(config)
    if len(tokenizer) > model.lm.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but GPT-2 '{config.lm}' only "
            f"{model.lm.config.vocab_size}: use the LM's own tokenizer"
        )
    return model
