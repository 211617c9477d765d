"""Tokenizers for SELM.

Real mode loads the GPT-2 tokenizer by name or local path (offline). The embedded default trains a
small byte-level BPE with the ``tokenizers`` library on the prompt and answer texts and saves it,
so nothing is downloaded. Both come back as a transformers ``PreTrainedTokenizerFast`` whose end
of text token (``<|endoftext|>``) doubles as padding, as in GPT-2.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"


class TokenizerError(ValueError):
    """A tokenizer that cannot be loaded; names the params key and the fix."""


def train_bpe(
    texts: Iterable[str], vocab_size: int = 512, seed_words: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on ``texts`` (prompts and answers), GPT-2 style.

    ``seed_words`` (e.g. every emotion word of every class set) are added to the training texts so
    the test corpora's class names get compact tokenisations even when absent from training.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = sorted(set(texts) | {f" {w}" for w in seed_words})
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeating the corpus weights merges towards whole words; order is fixed for determinism.
    tokenizer.train_from_iterator(corpus * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        bos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
    )


def load_tokenizer(source: str, params_key: str = "selm.tokenizer") -> PreTrainedTokenizerFast:
    """GPT-2's tokenizer from a local folder or the local Hugging Face cache (never the network)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise TokenizerError(
            f"params.yaml '{params_key}': tokenizer '{source}' is not a local folder nor in the "
            "local Hugging Face cache, and the hub is offline (HF_HUB_OFFLINE=1). Fix: on a "
            "connected machine run AutoTokenizer.from_pretrained('gpt2').save_pretrained(DIR) "
            f"and set '{params_key}' to DIR, or use 'train' for the embedded BPE. ({error})"
        ) from error
    if tokenizer.eos_token is None:
        raise TokenizerError(f"params.yaml '{params_key}': tokenizer '{source}' has no eos token")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return folder
