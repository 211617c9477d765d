"""(audio, prompt, answer) triplets in SELM's three views of emotion.

* categorical: prompt ``emotion:``, answer the package's emotion word (``angry``);
* sentiment: prompt ``sentiment:``, answer ``positive`` / ``neutral`` / ``negative``;
* dimensional: prompt ``arousal valence dominance:``, answer the three ratings binned into words
  (``high low medium``) on the corpus's own scale (IEMOCAP 1-5, MSP-Podcast 1-7).

Prompts, answer templates, bins and view weights are ``selm`` parameters. The OOD test corpora
(RAVDESS, CREMA-D, IEMOCAP) are refused as training corpora unless ``selm.allow_ood_training``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import SCANNERS

VIEWS = ("categorical", "sentiment", "dimensional")
OOD_TEST_CORPORA = ("ravdess", "crema_d", "iemocap")
# Emotions that are not an answer: no consensus, or a catch-all.
NON_ANSWERS = ("", "other", "no_agreement")
DIMENSIONS = ("arousal", "valence", "dominance")
TRIPLET_COLUMNS = [
    "corpus",
    "utterance_id",
    "speaker",
    "split",
    "view",
    "prompt",
    "answer",
    "weight",
]


class TripletError(ValueError):
    """Bad training-corpus selection or view settings; names the params key."""


def check_training_corpora(
    names: list[str], curated: list[str], allow_ood: bool, roles: dict[str, str] | None = None
) -> None:
    """Refuse the OOD test sets (and unknown corpora) as training data.

    The protocol's test sets (RAVDESS, CREMA-D, IEMOCAP) are always held out; so is any corpus
    whose ``curate.corpora.NAME.role`` is ``test`` (a user's own held-out corpus).
    """
    if not names:
        raise TripletError("params.yaml 'selm.train_corpora' is empty: list at least one corpus")
    for name in names:
        if name not in curated:
            raise TripletError(
                f"params.yaml 'selm.train_corpora' lists '{name}', which the curate stage did not "
                f"produce (curate.corpora has: {', '.join(curated)})"
            )
        held_out = name in OOD_TEST_CORPORA or (roles or {}).get(name) == "test"
        if held_out and not allow_ood:
            raise TripletError(
                f"params.yaml 'selm.train_corpora' lists '{name}', an out-of-domain test corpus "
                "(of the SELM protocol or with curate.corpora role: test); training on it makes "
                "the OOD evaluation meaningless. Remove "
                "it, or set 'selm.allow_ood_training: true' and label the results as in-domain."
            )


def bin_word(value: float, scale: tuple[float, float], bins: list[float], words: list[str]) -> str:
    """A rating on ``scale`` -> one of ``words``, by thresholds ``bins`` on the 0-1 value."""
    low, high = scale
    unit = (float(value) - low) / (high - low)
    return words[int(np.searchsorted(np.asarray(bins), unit, side="right"))]


def build_triplets(
    manifests: dict[str, pd.DataFrame], splits: dict[str, pd.DataFrame], selm: dict[str, Any]
) -> pd.DataFrame:
    """Every triplet of the training corpora, for each view the corpus carries."""
    views = selm["views"]
    words = selm["dimensional_words"]
    if len(words) != len(selm["dimensional_bins"]) + 1:
        raise TripletError(
            "params.yaml 'selm.dimensional_words' needs one word more than "
            "'selm.dimensional_bins' has thresholds"
        )
    frames = []
    for corpus in selm["train_corpora"]:
        rows = usable(manifests[corpus]).merge(
            splits[corpus][["utterance_id", "split"]], on="utterance_id", how="inner"
        )
        if rows.empty:
            raise TripletError(
                f"params.yaml 'selm.train_corpora' lists '{corpus}', which has no usable rows "
                f"({len(manifests[corpus])} rows, all quarantined: see the reasons in "
                f"artifacts/manifests/{corpus}.csv); fix the corpus or remove it from the list"
            )
        scale = SCANNERS[corpus].vad_scale
        for view, spec in views.items():
            if spec["weight"] <= 0:
                continue
            if view == "categorical":
                take = rows[~rows["emotion"].isin(NON_ANSWERS)]
                template = spec["answer"]
                answers = take["emotion"].map(lambda e, t=template: t.format(emotion=e))
            elif view == "sentiment":
                take = rows[rows["sentiment"].isin(("positive", "neutral", "negative"))]
                template = spec["answer"]
                answers = take["sentiment"].map(lambda s, t=template: t.format(sentiment=s))
            elif view == "dimensional":
                if scale is None:
                    continue
                take = rows.dropna(subset=list(DIMENSIONS))
                take = take[(take[list(DIMENSIONS)].astype(str) != "").all(axis=1)]
                binned = {
                    d: take[d].map(
                        lambda v, s=scale: bin_word(v, s, selm["dimensional_bins"], words)
                    )
                    for d in DIMENSIONS
                }
                answers = pd.Series(
                    [
                        spec["answer"].format(**dict(zip(DIMENSIONS, values, strict=True)))
                        for values in zip(*(binned[d] for d in DIMENSIONS), strict=True)
                    ],
                    index=take.index,
                    dtype=object,
                )
            else:
                raise TripletError(f"params.yaml 'selm.views.{view}': views are {VIEWS}")
            if take.empty:
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "corpus": corpus,
                        "utterance_id": take["utterance_id"].to_numpy(),
                        "speaker": take["speaker"].to_numpy(),
                        "split": take["split"].to_numpy(),
                        "view": view,
                        "prompt": spec["prompt"],
                        "answer": answers.to_numpy(),
                        "weight": float(spec["weight"]),
                    }
                )
            )
    if not frames:
        raise TripletError(
            "no triplets: the training corpora in 'selm.train_corpora' have no usable rows with "
            "labels for the views in 'selm.views'"
        )
    triplets = pd.concat(frames, ignore_index=True)[TRIPLET_COLUMNS]
    if selm["balance_answers"]:
        triplets["weight"] = balanced_weights(triplets)
    return triplets


def balanced_weights(triplets: pd.DataFrame) -> np.ndarray:
    """View weight x inverse answer frequency within the view, normalised to mean 1 per view.

    Natural corpora are dominated by neutral; unweighted, the model learns to answer neutral and
    the balanced OOD test sets (RAVDESS, CREMA-D) pay for it.
    """
    counts = triplets.groupby(["view", "answer"])["answer"].transform("size").to_numpy()
    per_view = triplets.groupby("view")["answer"]
    n_view = per_view.transform("size").to_numpy()
    n_answers = per_view.transform("nunique").to_numpy()
    return triplets["weight"].to_numpy() * n_view / (n_answers * counts)


def counts_by_view(triplets: pd.DataFrame) -> pd.DataFrame:
    """Triplets per corpus x view (the report's table)."""
    return triplets.groupby(["corpus", "view"]).size().unstack(fill_value=0)


def candidates(triplets: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct answers of each view, sorted: the classes scored at validation."""
    return {
        v: sorted(triplets.loc[triplets["view"] == v, "answer"].unique())
        for v in VIEWS
        if (triplets["view"] == v).any()
    }
