"""Open-vocabulary class scoring (stage ``eval_vocab``): test label sets and their verbalisations
come from ``params.yaml`` at test time and are scored by the trained SELM without retraining.

A *label set* (``eval_vocab.label_sets``) is a test corpus with a class set, a treatment of
RAVDESS calm and the column its truth comes from: ``emotion`` (the corpus label, e.g. RAVDESS
with calm as its own class, a class no training answer names) or ``perceived`` (CREMA-D's
crowd-perceived label from ``processedResults/tabulatedVotes.csv``; items whose vote is a tie
such as ``N:H`` are left out and counted).

A *verbalisation* (``eval_vocab.variants``) turns each class into answer texts: a template
(``{emotion}`` stands for one word) and words, either the class ``names`` or the ``synonyms``
of ``eval_vocab.synonyms`` (the class name first, then the others). Every text is scored by its
log-likelihood after the categorical prompt (the same class scoring as ``selm_score``,
:func:`selm_lib.selm.decode.score_classes`, ``normalize`` sum or mean per token), and a class's
score combines its texts: ``mean`` is the log of the mean probability of its texts (a mixture),
``max`` the best of them. The variant named by ``eval_vocab.reference`` (the trained template
with the class names: ``selm_score``) is the one every other is paired with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.config.device import autocast
from selm_lib.data.corpora.base import usable
from selm_lib.data.labels import class_map, class_sets, classes_of
from selm_lib.evaluation.results import EvalError
from selm_lib.features.frames import FrameSet
from selm_lib.selm.batching import Encoded, answer_text, prefetch
from selm_lib.selm.decode import score_classes

#: CREMA-D's vote letters (tabulatedVotes.csv ``emoVote``) -> the corpus's own label codes.
CREMA_VOTE = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
TRUTHS = ("emotion", "perceived")
COMBINE = ("mean", "max")


@dataclass(frozen=True)
class Verbalisation:
    name: str
    template: str
    words: str  # names | synonyms
    combine: str  # mean | max
    normalize: str  # sum | mean

    def texts(self, classes: list[str], synonyms: dict[str, list[str]]) -> list[list[str]]:
        """Each class's answer texts, in order (no duplicates)."""
        out = []
        for name in classes:
            words = [name]
            if self.words == "synonyms":
                words += [w for w in synonyms.get(name, []) if w != name]
            out.append(list(dict.fromkeys(self.template.format(emotion=w) for w in words)))
        return out


def verbalisations(eval_vocab: dict[str, Any]) -> list[Verbalisation]:
    """The variants of ``eval_vocab.variants``, checked; the reference first."""
    found = []
    for name, spec in eval_vocab["variants"].items():
        key = f"eval_vocab.variants.{name}"
        if "{emotion}" not in spec["template"]:
            raise EvalError(f"params.yaml '{key}.template' must contain {{emotion}}")
        if spec["combine"] not in COMBINE:
            raise EvalError(f"params.yaml '{key}.combine' must be one of {COMBINE}")
        found.append(
            Verbalisation(name, spec["template"], spec["words"], spec["combine"], spec["normalize"])
        )
    known = {c for name, spec in eval_vocab["label_sets"].items() for c in _classes(name, spec)}
    for name in eval_vocab["synonyms"]:
        if name not in known:
            raise EvalError(
                f"params.yaml 'eval_vocab.synonyms.{name}' names no class of any label set "
                f"(classes: {', '.join(sorted(known))}); fix the class name or remove the entry"
            )
    names = [v.name for v in found]
    if eval_vocab["reference"] not in names:
        raise EvalError(
            f"params.yaml 'eval_vocab.reference' is '{eval_vocab['reference']}', which is not "
            f"one of eval_vocab.variants ({', '.join(names)})"
        )
    return sorted(found, key=lambda v: v.name != eval_vocab["reference"])


def _classes(name: str, spec: dict[str, Any]) -> list[str]:
    """The classes of label set ``name``; an unknown class set is an error naming its key."""
    if spec["class_set"] not in class_sets():
        raise EvalError(
            f"params.yaml 'eval_vocab.label_sets.{name}.class_set' is '{spec['class_set']}', "
            f"which is not a class set of selm_lib/data/tables/class_sets.csv (known: "
            f"{', '.join(class_sets())})"
        )
    return classes_of(spec["class_set"], spec["calm"])


def label_rows(
    manifest: pd.DataFrame, name: str, spec: dict[str, Any]
) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """The rows of one label set with their truth (``truth`` column), its classes and what was
    left out, counted. ``spec``: ``eval_vocab.label_sets.<name>``."""
    classes = _classes(name, spec)
    to_class = class_map(spec["class_set"], spec["calm"])
    good = usable(manifest)
    key = f"eval_vocab.label_sets.{name}"
    if spec["truth"] == "emotion":
        truth = good["emotion"].map(to_class)
        dropped = {"outside_class_set": int(truth.isna().sum())}
    elif spec["truth"] == "perceived":
        if "perceived" not in good:
            raise EvalError(
                f"params.yaml '{key}.truth' is perceived, but the manifest of "
                f"'{spec['corpus']}' has no perceived column (CREMA-D reads it from "
                "processedResults/tabulatedVotes.csv)"
            )
        votes = good["perceived"].fillna("").astype(str)
        tie = votes.str.contains(":") | (votes == "")
        label_to_emotion = dict(zip(good["label"], good["emotion"], strict=False))
        emotion = votes.map(lambda v: label_to_emotion.get(CREMA_VOTE.get(v, ""), ""))
        truth = emotion.map(to_class).where(~tie)
        dropped = {
            "tied_or_missing_vote": int(tie.sum()),
            "outside_class_set": int((truth.isna() & ~tie).sum()),
        }
    else:
        raise EvalError(f"params.yaml '{key}.truth' must be one of {TRUTHS}")
    rows = good.assign(truth=truth)[truth.notna()].reset_index(drop=True)
    dropped["quarantined"] = int(len(manifest) - len(good))
    if rows.empty:
        raise EvalError(f"label set '{name}' has no rows ({dropped}); check params.yaml '{key}'")
    return rows, classes, dropped


def combine(scores: np.ndarray, owner: np.ndarray, n_classes: int, how: str) -> np.ndarray:
    """(N, texts) log-likelihoods -> (N, classes): per class the log of the mean probability of
    its texts (``mean``) or the best text (``max``)."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.full((scores.shape[0], n_classes), -np.inf)
    for c in range(n_classes):
        block = scores[:, owner == c]
        if block.shape[1] == 0:
            raise ValueError(f"class {c} has no texts")
        if how == "max":
            out[:, c] = block.max(axis=1)
        else:
            top = block.max(axis=1, keepdims=True)
            out[:, c] = (top + np.log(np.exp(block - top).mean(axis=1, keepdims=True)))[:, 0]
    return out


@torch.no_grad()
def score_texts(
    model: Any,
    tokenizer: Any,
    frames: FrameSet,
    prompt: str,
    texts: list[str],
    normalize: str,
    batch_size: int,
    score_chunk: int,
    device: torch.device,
) -> np.ndarray:
    """(N, len(texts)) float64 log-likelihoods of each answer text after ``prompt``, in batches
    read lazily from the feature stores."""
    eos = tokenizer.eos_token_id
    prompt_ids = tokenizer.encode(prompt)
    candidates = [tokenizer.encode(answer_text(t)) + [eos] for t in texts]
    n = len(frames)
    data = Encoded(
        frames, [prompt_ids] * n, [[eos]] * n, np.ones(n, np.float32), [""] * n, [""] * n
    )
    chunks = [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    out = []
    for _, batch in prefetch(data, chunks, eos, device):
        args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
        with autocast(device):
            scores = score_classes(
                model, *args, candidates, normalize=normalize, rows_per_chunk=score_chunk
            )
        out.append(scores.float().cpu().numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, len(texts)))


def class_scores(
    raw: dict[tuple[str, str], np.ndarray],
    variant: Verbalisation,
    classes: list[str],
    synonyms: dict[str, list[str]],
) -> np.ndarray:
    """(N, classes) scores of ``variant`` from the per-text log-likelihoods ``raw[(normalize,
    text)]`` (each text scored once, whatever the variants that share it)."""
    groups = variant.texts(classes, synonyms)
    owner = np.array([c for c, texts in enumerate(groups) for _ in texts])
    matrix = np.stack([raw[(variant.normalize, t)] for texts in groups for t in texts], axis=1)
    return combine(matrix, owner, len(classes), variant.combine)
