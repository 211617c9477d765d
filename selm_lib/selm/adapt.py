"""Few-shot adaptation sweeps (stages ``fewshot_item`` and ``fewshot``).

For every OOD test corpus the speakers are split, deterministically from ``common.seed``, into an
adaptation pool and evaluation speakers (``fewshot.support_share``; whole sessions where the
corpus has them, so IEMOCAP never has a dialogue on both sides), so support examples never come
from a speaker they are evaluated on. With ``fewshot.partition_per_seed`` (default) each seed
draws its own partition, so the interval over seeds includes the variance of the partition; every
k of one seed is scored on the same people.
For each k in ``fewshot_sweep.k`` and seed in ``fewshot_sweep.seeds`` an item draws k examples per
class from the pool (nested: the k=2 set is inside the k=4 set of the same seed), adapts, and
scores the evaluation speakers:

* ``selm_mappers``: the trained SELM with the part in front of the LM that ``fewshot.tune`` names
  tuned, LM frozen. The default, ``input_layer``, tunes only the first linear layer of the audio
  projection, the map from encoder features into the model. A new corpus differs from the
  training ones first in its encoder features (channel, speakers), so re-fitting that map adapts
  the input while the rest of the projection, the mappers and the LM keep what the training
  corpora taught them; and with a few thousand weights (the mappers have a few hundred thousand)
  it cannot fit the identity of the few support speakers as readily. ``projection`` and
  ``mappers`` tune more (ablations; on the embedded default they overfit the support set);
* ``selm_full``: the same plus the language model (with its own, much smaller learning rate);
* ``classifier_baseline``: the OOD stage's classifier fine-tuned on the same examples (its own
  ``fewshot.baseline_steps`` and ``fewshot.baseline_learning_rate``).

SELM adapts in eval mode (no dropout), as it is scored; scoring is class scoring, as in the OOD
stage.

k = 0 is the unadapted model: its predictions on the evaluation speakers equal the OOD stage's.
Everything runs on cached features. ``python -m selm_lib.stages.fewshot_item --k K --seed S``
runs one item (a DVC matrix entry); the stage ``fewshot`` aggregates (:func:`aggregate`) and the
report ``04_fewshot.py`` reads the aggregate.
"""

from __future__ import annotations

import copy
import zlib
from typing import Any

import numpy as np
import pandas as pd
import torch

from selm_lib.config.device import autocast
from selm_lib.evaluation.baseline import PooledClassifier
from selm_lib.evaluation.fewshot_results import FewshotError
from selm_lib.features.frames import FrameSet
from selm_lib.selm.batching import Encoded, answer_text, collate

METHODS = ("selm_mappers", "selm_full", "classifier_baseline")


def partition_groups(rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """What the pool / evaluation split keeps apart: the recording session where the manifest
    has one for every row (IEMOCAP: the two speakers of a session share its dialogues, so a
    speaker split could put one dialogue on both sides), else the speaker."""
    session = rows["session"].astype(str) if "session" in rows else None
    if session is not None and (session.str.strip() != "").all():
        return session, "session"
    return rows["speaker"].astype(str), "speaker"


def speaker_partition(
    rows: pd.DataFrame,
    corpus: str,
    seed: int,
    share: float,
    draw: int | None = None,
    purpose: str = "",
) -> set[str]:
    """The adaptation-pool speakers of a test corpus (the others are evaluated).

    Whole groups (:func:`partition_groups`: sessions where the corpus has them, else speakers)
    go to the pool, ``share`` of them (at least one, never all). ``draw`` (the item's seed, with
    ``fewshot.partition_per_seed``) draws a different partition per seed, so an interval over
    seeds includes the variance of the partition; None keeps one partition for every seed.
    ``purpose`` names a further, independent partition of the same rows (``"inner"``: the
    pool's inner split for choosing adaptation settings, :func:`inner_partition`)."""
    groups, kind = partition_groups(rows)
    names = sorted(groups.unique())
    if len(names) < 2:
        where = "adaptation pool" if purpose == "inner" else "test corpus"
        raise FewshotError(
            f"{where} of '{corpus}' has {len(names)} {kind}(s): few-shot needs at least one "
            "for adaptation and one for evaluation"
            + (
                " (the inner split that chooses adaptation settings). Raise params.yaml "
                "'fewshot.support_share' or set 'fewshot.select: {}' to keep the settings "
                "fixed in advance"
                if purpose == "inner"
                else ""
            )
        )
    key = [seed, zlib.crc32(f"{corpus}{':' + purpose if purpose else ''}".encode())]
    key += [] if draw is None else [int(draw)]
    order = np.random.default_rng(key).permutation(len(names))
    n_pool = min(len(names) - 1, max(1, int(round(share * len(names)))))
    chosen = {names[i] for i in order[:n_pool]}
    return set(rows.loc[groups.isin(chosen).to_numpy(), "speaker"].astype(str))


def support_set(
    pool: pd.DataFrame, corpus: str, classes: list[str], k: int, seed: int, cap: bool
) -> tuple[pd.DataFrame, dict[str, int]]:
    """k rows per class from the pool, nested across k for a seed. Returns (rows, capped)."""
    if k == 0:
        return pool.iloc[:0], {}
    chosen, capped = [], {}
    for name in classes:
        rows = pool[pool["eval_class"] == name].sort_values("utterance_id")
        if len(rows) < k:
            if not cap:
                raise FewshotError(
                    f"few-shot on '{corpus}': k={k} but class '{name}' has only {len(rows)} "
                    "examples in the adaptation pool. Lower the largest k in "
                    "params.yaml 'fewshot_sweep.k', raise 'fewshot.support_share', or set "
                    "'fewshot.cap_k: true' to use every available example (reported)"
                )
            capped[name] = len(rows)
        order = np.random.default_rng([seed, zlib.crc32(f"{corpus}:{name}".encode())]).permutation(
            len(rows)
        )
        chosen.append(rows.iloc[order[: min(k, len(rows))]])
    return pd.concat(chosen), capped


#: The adaptation settings ``fewshot.select`` may choose, per method that uses them.
SELECTABLE = {
    "selm_mappers": ("tune", "steps", "learning_rate"),
    "selm_full": ("tune", "steps", "learning_rate", "lm_learning_rate"),
    "classifier_baseline": ("baseline_steps", "baseline_learning_rate"),
}
SELECT_METRIC = "unweighted_accuracy"


def check_selection(select: dict[str, list[Any]]) -> None:
    """``fewshot.select`` names only selectable settings, each with a non-empty candidate list."""
    known = sorted({key for keys in SELECTABLE.values() for key in keys})
    for key, values in select.items():
        if key not in known:
            raise FewshotError(
                f"params.yaml 'fewshot.select.{key}' is not an adaptation setting that can be "
                f"chosen; use some of {known}"
            )
        if not isinstance(values, list) or not values:
            raise FewshotError(
                f"params.yaml 'fewshot.select.{key}' must be a non-empty list of candidates"
            )


def candidate_settings(fewshot: dict[str, Any], method: str) -> list[dict[str, Any]]:
    """The settings grid that ``fewshot.select`` spans for ``method`` (its own keys only), in
    the order listed (the first is kept on a tie); ``[{}]`` when nothing is selected."""
    keys = [k for k in SELECTABLE[method] if k in fewshot.get("select", {})]
    grid: list[dict[str, Any]] = [{}]
    for key in keys:
        grid = [{**g, key: v} for g in grid for v in fewshot["select"][key]]
    return grid


def inner_partition(
    pool: pd.DataFrame, corpus: str, seed: int, share: float, draw: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The adaptation pool split again by whole groups (sessions or speakers): inner support
    rows (``share`` of the groups) and inner validation rows. Settings are chosen on it, so
    nothing about the evaluated speakers steers the adaptation."""
    inner = speaker_partition(pool, corpus, seed, share, draw=draw, purpose="inner")
    chosen = pool["speaker"].astype(str).isin(inner)
    return pool[chosen], pool[~chosen]


def select_settings(
    fewshot: dict[str, Any],
    method: str,
    score: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The candidate of :func:`candidate_settings` with the best inner-validation score
    (``score(settings) -> float``, the unweighted accuracy on the inner validation rows);
    returns ``fewshot`` with it applied and every candidate's score. Without candidates the
    settings stay as params give them and nothing is scored."""
    grid = candidate_settings(fewshot, method)
    if grid == [{}]:
        return fewshot, []
    tried = [{"settings": g, SELECT_METRIC: round(float(score({**fewshot, **g})), 6)} for g in grid]
    best = max(range(len(tried)), key=lambda i: (tried[i][SELECT_METRIC], -i))
    return {**fewshot, **grid[best]}, tried


TUNABLE = ("input_layer", "projection", "mappers")


def tuned_parameters(model: Any, tune: str) -> list[torch.nn.Parameter]:
    """The parameters few-shot adaptation tunes in front of the LM (``fewshot.tune``):
    ``input_layer`` = the audio projection's first linear layer (encoder features -> model),
    ``projection`` = the whole audio projection, ``mappers`` = the projection and both mappers."""
    modules = {
        "input_layer": (model.audio_projection.linear1,),
        "projection": (model.audio_projection,),
        "mappers": (model.audio_projection, model.audio_mapper, model.text_mapper),
    }
    if tune not in modules:
        raise FewshotError(f"params.yaml 'fewshot.tune' is '{tune}'; use one of {TUNABLE}")
    return [p for module in modules[tune] for p in module.parameters()]


def _adapt_selm(
    model: Any,
    tokenizer: Any,
    frames: FrameSet,
    answers: list[str],
    selm: dict[str, Any],
    fewshot: dict[str, Any],
    full: bool,
    seed: int,
    device: torch.device,
) -> Any:
    """A copy of the model tuned on the support examples (categorical prompt -> class word), on
    ``device`` (bf16 autocast on CUDA; float32 weights and loss)."""
    model = copy.deepcopy(model)
    spec = selm["views"]["categorical"]
    eos = tokenizer.eos_token_id
    data = Encoded(
        frames,
        [tokenizer.encode(spec["prompt"])] * len(frames),
        [tokenizer.encode(answer_text(spec["answer"].format(emotion=a))) + [eos] for a in answers],
        np.ones(len(frames), np.float32),
        ["categorical"] * len(frames),
        list(answers),
    )
    model.requires_grad_(False)
    groups = [{"params": tuned_parameters(model, fewshot["tune"]), "lr": fewshot["learning_rate"]}]
    if full:
        groups.append({"params": list(model.lm.parameters()), "lr": fewshot["lm_learning_rate"]})
    for group in groups:
        for parameter in group["params"]:
            parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    torch.manual_seed(seed)
    model.eval()  # no dropout: the tuned part sees the network it is scored with
    batch_size = fewshot["batch_size"]
    for step in range(fewshot["steps"]):
        order = np.random.default_rng([seed, step]).permutation(len(frames))[:batch_size]
        batch = collate(data, order, eos, device)
        with autocast(device):
            output = model(**{k: v for k, v in batch.items() if k != "weights"})
        optimizer.zero_grad(set_to_none=True)
        output["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        optimizer.step()
    model.eval()
    return model


def _adapt_baseline(
    baseline: PooledClassifier,
    train_classes: list[str],
    x: np.ndarray,
    y_test_class: list[str],
    to_class: dict[str, str],
    fewshot: dict[str, Any],
    seed: int,
    device: torch.device | None = None,
) -> PooledClassifier:
    """Fine-tune the classifier on the support examples, on ``device`` (default: where the
    baseline is). A test class is learned through the
    training emotion(s) that map to it: the target is the first of them (e.g. happy for IEMOCAP's
    happy, which excited also maps to)."""
    model = copy.deepcopy(baseline)
    target_of = {}
    for index, emotion in enumerate(train_classes):
        mapped = to_class.get(emotion)
        if mapped is not None and mapped not in target_of:
            target_of[mapped] = index
    unknown = sorted(set(y_test_class) - set(target_of))
    if unknown:
        raise FewshotError(
            f"few-shot baseline: test class(es) {', '.join(unknown)} map to no emotion the "
            f"classifier was trained on ({', '.join(train_classes)}), so it cannot be fine-tuned "
            "to them; with RAVDESS calm, set params.yaml 'curate.ravdess_calm' to neutral or "
            "drop, or remove classifier_baseline from 'fewshot.methods'"
        )
    device = device or baseline.mean.device
    model.to(device)
    y = torch.tensor([target_of[c] for c in y_test_class], dtype=torch.long).to(device)
    tx = torch.from_numpy(x).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=fewshot["baseline_learning_rate"], weight_decay=0
    )
    torch.manual_seed(seed)
    model.train()
    for step in range(fewshot["baseline_steps"]):
        order = torch.from_numpy(
            np.random.default_rng([seed, step]).permutation(len(tx))[: fewshot["batch_size"]]
        ).to(device)
        with autocast(device):
            logits = model(tx[order])
        loss = torch.nn.functional.cross_entropy(logits.float(), y[order])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return model
