"""Out-of-domain evaluation on the held-out corpora (stage ``eval_ood``).

Methods, each scored on every test corpus with its own class set (``curate.class_sets``):

* ``selm_generate``: SELM writes an answer (beam search); the text is mapped to a test class
  through the synonym table ``selm_lib/data/tables/synonyms.csv``; unmappable answers count as
  errors;
* ``selm_score``: every class's verbalisation ranked by its log-likelihood (never unmappable);
* ``selm_score_uniform``, ``selm_score_em``, ``selm_score_content_free``, ``selm_score_oracle``:
  the same class log-likelihoods after prior matching (:func:`selm_lib.evaluation.prior.
  match_priors`): the training answer prior removed (:func:`training_answer_prior`), a test
  prior estimated by EM from the unlabelled scores, content-free calibration
  (:func:`content_free_scores`), and the test labels' prior (an oracle: it reads the labels);
* ``classifier_baseline``: a small classifier on the same cached features and training corpora;
* ``majority``: the test corpus's most frequent class (it reads the test labels: a reference
  line, not a method);
* ``chance``: uniform random classes (seeded).

Metrics: accuracy (WA), unweighted accuracy (UA, mean per-class recall), macro-F1, n, and 95 %
intervals by bootstrap over speakers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from selm_lib.config import resolve_path
from selm_lib.config.device import autocast
from selm_lib.data.corpora.base import usable
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.baseline import (
    PooledClassifier,
)
from selm_lib.evaluation.results import BASELINES, SELM_METHODS, UNMAPPED, EvalError
from selm_lib.features.frames import FrameSet
from selm_lib.selm.batching import Encoded, answer_text, prefetch
from selm_lib.selm.decode import generate, score_classes


@lru_cache(maxsize=1)
def synonyms() -> dict[str, str]:
    """``{word: package emotion}`` from ``selm_lib/data/tables/synonyms.csv``."""
    with (
        resources.files("selm_lib.data")
        .joinpath("tables", "synonyms.csv")
        .open(encoding="utf-8") as handle
    ):
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return dict(zip(table["word"], table["emotion"], strict=True))


def map_answer(text: str, to_class: dict[str, str]) -> str:
    """The test class a generated answer names: its first word found in the synonym table whose
    emotion is in the class set; :data:`UNMAPPED` when there is none."""
    for word in re.findall(r"[a-z]+", text.lower()):
        emotion = synonyms().get(word)
        if emotion is not None and emotion in to_class:
            return to_class[emotion]
    return UNMAPPED


def evaluation_rows(manifest: pd.DataFrame, corpus: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The evaluated rows (usable, inside the class set) and what was excluded, counted."""
    good = usable(manifest)
    rows = good[good["eval_class"] != ""].reset_index(drop=True)
    excluded = {
        "quarantined": int(len(manifest) - len(good)),
        "outside_class_set": int(len(good) - len(rows)),
    }
    if rows.empty:
        raise EvalError(
            f"test corpus '{corpus}' has no usable rows in its class set ({excluded}); check "
            f"artifacts/manifests/{corpus}.csv and params.yaml 'curate.class_sets.{corpus}'"
        )
    return rows, excluded


def check_vocabulary(corpus: str, classes: list[str], trained: list[str]) -> None:
    """Every test class must be an answer SELM was trained to give (else scoring it is a guess
    about a word the model never produced)."""
    missing = [c for c in classes if c not in trained]
    if missing:
        raise EvalError(
            f"test corpus '{corpus}': class(es) {missing} never occur as a categorical answer in "
            f"training (trained answers: {', '.join(trained)}). Fix: merge or drop them in the "
            f"class set (params.yaml 'curate.class_sets.{corpus}', 'curate.ravdess_calm' for "
            "calm), or add a training corpus that has them ('selm.train_corpora')."
        )


def check_predictions(
    predictions: pd.DataFrame, rows: pd.DataFrame, corpus: str, source: str = "predictions"
) -> None:
    """A prediction table must cover exactly the evaluated rows, once per method."""
    for method, group in predictions[predictions["corpus"] == corpus].groupby("method"):
        ids, expected = list(group["utterance_id"]), set(rows["utterance_id"])
        if len(ids) != len(set(ids)) or set(ids) != expected:
            extra, missing = set(ids) - expected, expected - set(ids)
            raise EvalError(
                f"{source}: method '{method}' on '{corpus}' does not match the manifest "
                f"({len(missing)} evaluated rows without a prediction, {len(extra)} predictions "
                f"for rows not evaluated, {len(ids) - len(set(ids))} duplicates); rerun "
                "dvc repro eval_ood"
            )


class SELMPrediction(NamedTuple):
    """What :func:`selm_predict` returns with ``return_scores=True``."""

    texts: list[str]  # generated answers ("" when not generating)
    mapped: list[str]  # their test classes (UNMAPPED when none)
    scored: list[str]  # class scoring's argmax
    log_likelihood: np.ndarray  # (N, C) float64: log p(answer of class c | clip), classes order
    frame_mean: np.ndarray  # (D,) float64: the mean of every valid frame of the clips


def _prompt_batches(
    frames: FrameSet, prompt_ids: list[int], eos: int, batch_size: int, device: torch.device
):
    n = len(frames)
    data = Encoded(
        frames, [prompt_ids] * n, [[eos]] * n, np.ones(n, np.float32), [""] * n, [""] * n
    )
    chunks = [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    yield from prefetch(data, chunks, eos, device)


@torch.no_grad()
def selm_predict(
    model: Any,
    tokenizer: Any,
    feats: FrameSet,
    classes: list[str],
    to_class: dict[str, str],
    selm: dict[str, Any],
    eval_ood: dict[str, Any],
    device: torch.device,
    generate_answers: bool = True,
    return_scores: bool = False,
) -> tuple[list[str], list[str], list[str]] | SELMPrediction:
    """(generated texts, their mapped classes, class-scoring predictions) for one test corpus;
    with ``return_scores`` a :class:`SELMPrediction` that also holds the (N, C) class
    log-likelihoods (float64; N x C floats is the only corpus-sized array) and the mean frame
    of the clips (the ``mean_frame`` content-free input, accumulated on the device as the
    batches pass, so the corpus is read once).

    ``generate_answers=False`` skips generation (empty texts) when only class scoring is needed.
    Batches are read lazily from the feature stores; bf16 autocast on CUDA; class scoring in
    passes of at most ``eval_ood.score_chunk`` positions.
    """
    spec = selm["views"]["categorical"]
    prompt = tokenizer.encode(spec["prompt"])
    eos = tokenizer.eos_token_id
    candidates = class_candidates(tokenizer, selm, classes)
    texts, scored, matrix = [], [], np.zeros((len(feats), len(classes)), np.float64)
    frame_sum, frame_count = None, 0
    for index, batch in _prompt_batches(feats, prompt, eos, eval_ood["batch_size"], device):
        args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
        with autocast(device):
            if generate_answers:
                ids = generate(
                    model,
                    *args,
                    eos_token_id=eos,
                    max_new_tokens=eval_ood["max_new_tokens"],
                    num_beams=eval_ood["num_beams"],
                )
                texts += [tokenizer.decode(i, skip_special_tokens=True).strip() for i in ids]
            else:
                texts += [""] * len(batch["features"])
            scores = score_classes(
                model, *args, candidates, rows_per_chunk=eval_ood["score_chunk"]
            )  # (B, C)
        scored += [classes[i] for i in scores.argmax(dim=1).tolist()]
        if return_scores:
            matrix[index] = scores.double().cpu().numpy()
            mask = batch["feature_mask"].float()
            part = torch.einsum("btd,bt->d", batch["features"].float(), mask).double().cpu()
            frame_sum = part if frame_sum is None else frame_sum + part
            frame_count += int(mask.sum())
    mapped = [map_answer(t, to_class) for t in texts]
    if not return_scores:
        return texts, mapped, scored
    if frame_count == 0:
        raise EvalError("the clips have no frames: check the feature stores (dvc repro features)")
    return SELMPrediction(texts, mapped, scored, matrix, (frame_sum / frame_count).numpy())


def class_candidates(tokenizer: Any, selm: dict[str, Any], classes: list[str]) -> list[list[int]]:
    """Each class's categorical answer as trained (``selm.views.categorical.answer``) + eos."""
    spec = selm["views"]["categorical"]
    return [
        tokenizer.encode(answer_text(spec["answer"].format(emotion=c))) + [tokenizer.eos_token_id]
        for c in classes
    ]


CONTENT_FREE = ("mean_frame", "zeros")
CONTENT_FREE_FRAMES = 50  # frames of the constant content-free clip (1 s at 50 Hz)


def content_free_frame(mode: str, prediction: SELMPrediction) -> np.ndarray:
    """The frame the content-free clip repeats (``eval_ood.content_free``): ``mean_frame``, the
    mean encoder frame of the scored clips (no labels: every clip's content averaged away, the
    corpus's channel kept), or ``zeros``, an all-zero feature frame. (An all-silent clip through
    the frozen encoder would need the encoder at evaluation time; the stage reads only the
    cached frames.)"""
    if mode == "mean_frame":
        return np.asarray(prediction.frame_mean, dtype=np.float64)
    if mode == "zeros":
        return np.zeros_like(prediction.frame_mean, dtype=np.float64)
    raise EvalError(
        f"params.yaml 'eval_ood.content_free' is '{mode}'; choose one of {CONTENT_FREE}"
    )


@torch.no_grad()
def content_free_scores(
    model: Any,
    tokenizer: Any,
    frame: np.ndarray,
    classes: list[str],
    selm: dict[str, Any],
    eval_ood: dict[str, Any],
    device: torch.device,
) -> np.ndarray:
    """(C,) float64 class log-likelihoods of a content-free clip: :data:`CONTENT_FREE_FRAMES`
    copies of ``frame`` (D,) through SELM's projection and mappers with the categorical prompt,
    scored like every clip (:func:`selm_lib.selm.decode.score_classes`). A constant clip pools to
    the same prefix whatever its length."""
    spec = selm["views"]["categorical"]
    eos = tokenizer.eos_token_id
    clip = np.repeat(np.asarray(frame, np.float32)[None, :], CONTENT_FREE_FRAMES, axis=0)
    prompt = tokenizer.encode(spec["prompt"])
    data = Encoded([clip], [prompt], [[eos]], np.ones(1, np.float32), [""], [""])
    (_, batch), *_ = list(prefetch(data, [np.arange(1)], eos, device))
    args = (batch["features"], batch["feature_mask"], batch["prompt_ids"], batch["prompt_mask"])
    with autocast(device):
        scores = score_classes(
            model,
            *args,
            class_candidates(tokenizer, selm, classes),
            rows_per_chunk=eval_ood["score_chunk"],
        )
    return scores[0].double().cpu().numpy()


def answer_weights(common: dict[str, Any]) -> pd.Series:
    """Summed loss weight per categorical answer text over SELM's train-split triplets, read
    from ``common.output_root/selm/triplets.csv`` (which train_selm writes; a few columns of
    one row per triplet)."""
    path = resolve_path(common["output_root"]) / "selm" / "triplets.csv"
    if not path.is_file():
        raise EvalError(f"{path} is missing: run dvc repro train_selm")
    table = pd.read_csv(
        path,
        usecols=["view", "split", "answer", "weight"],
        dtype={"view": str, "split": str, "answer": str},
        keep_default_na=False,
    )
    table = table[(table["view"] == "categorical") & (table["split"] == "train")]
    return table.groupby("answer")["weight"].sum().sort_index()


def training_answer_prior(
    weights: pd.Series, selm: dict[str, Any], classes: list[str], corpus: str
) -> np.ndarray:
    """The prior SELM's training gave each class's categorical answer, over ``classes``: the
    summed loss weights (:func:`answer_weights`) of the train-split triplets whose answer is the
    class's answer text (``selm.views.categorical.answer``), normalised over the classes. With
    ``selm.balance_answers`` the weights make it uniform over the trained answers, else it is
    their natural frequency."""
    template = selm["views"]["categorical"]["answer"]
    mass = np.array([float(weights.get(template.format(emotion=c), 0.0)) for c in classes])
    missing = [c for c, m in zip(classes, mass, strict=True) if m <= 0]
    if missing:
        raise EvalError(
            f"'{corpus}': class(es) {missing} never occur as a categorical answer of SELM's "
            "train split (selm/triplets.csv), so there is no training prior to remove; merge or "
            f"drop them in params.yaml 'curate.class_sets.{corpus}' or add a training corpus "
            "that has them ('selm.train_corpora')"
        )
    return mass / mass.sum()


def trained_answers(weights: pd.Series, selm: dict[str, Any], emotions: list[str]) -> list[str]:
    """The ``emotions`` whose categorical answer occurs in SELM's train split."""
    template = selm["views"]["categorical"]["answer"]
    return [e for e in emotions if float(weights.get(template.format(emotion=e), 0.0)) > 0]


def load_baseline(common: dict[str, Any]) -> tuple[PooledClassifier, list[str]]:
    """The classification baseline the eval_ood stage trained, and its training classes."""
    path = resolve_path(common["output_root"]) / "eval_ood" / "baseline.pt"
    if not path.is_file():
        raise EvalError(f"{path} is missing: run dvc repro eval_ood")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    dim = saved["in_dim"]
    model = PooledClassifier(
        dim,
        len(saved["classes"]),
        saved["hidden"],
        saved["dropout"],
        np.zeros(dim, np.float32),
        np.ones(dim, np.float32),
    )
    model.load_state_dict(saved["state"])
    model.eval()
    return model, list(saved["classes"])


def relative_gains(result: dict[str, dict[str, Any]], corpora: list[str]) -> dict[str, Any]:
    """SELM's relative accuracy gain over the best baseline per corpus (the paper's headline),
    for each SELM method in ``result``."""
    gains: dict[str, Any] = {}
    for corpus in corpora:
        best = max(BASELINES, key=lambda b: result[b][corpus]["accuracy"])
        gains[corpus] = {
            "best_baseline": best,
            **{
                m: round(
                    M.relative_gain(
                        result[m][corpus]["accuracy"], result[best][corpus]["accuracy"]
                    ),
                    6,
                )
                for m in SELM_METHODS
                if m in result
            },
        }
    return gains
