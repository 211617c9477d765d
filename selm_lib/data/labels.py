"""Label maps as data: corpus labels -> package emotions, sentiment, the SER-Evals 8 classes, and
evaluation class sets. The tables are ``selm_lib/data/tables/label_map.csv`` and ``class_sets.csv``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

SEREVALS_CLASSES = (
    "happiness",
    "sadness",
    "disgust",
    "fear",
    "surprise",
    "anger",
    "other",
    "neutral",
)
SENTIMENTS = ("positive", "neutral", "negative")
CALM_TREATMENTS = ("own_class", "neutral", "drop")


def _read_table(name: str) -> pd.DataFrame:
    with resources.files("selm_lib.data").joinpath("tables", name).open(encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def label_table() -> pd.DataFrame:
    """``corpus, label, emotion, sentiment, serevals8, note`` (one row per corpus label)."""
    return _read_table("label_map.csv")


@lru_cache(maxsize=1)
def class_set_table() -> pd.DataFrame:
    """``class_set, emotion, class`` (emotions absent from a set are excluded from it)."""
    return _read_table("class_sets.csv")


def corpus_labels(corpus: str) -> dict[str, dict[str, str]]:
    """``{label: {"emotion", "sentiment", "serevals8"}}`` for one corpus."""
    rows = label_table()[label_table()["corpus"] == corpus]
    if rows.empty:
        raise KeyError(f"no labels for corpus '{corpus}' in selm_lib/data/tables/label_map.csv")
    return {
        row.label: {"emotion": row.emotion, "sentiment": row.sentiment, "serevals8": row.serevals8}
        for row in rows.itertuples()
    }


def class_sets() -> list[str]:
    return sorted(class_set_table()["class_set"].unique()) + ["serevals8"]


def class_map(class_set: str, calm: str = "own_class") -> dict[str, str]:
    """``{emotion: class}`` of an evaluation class set; emotions not in it are excluded.

    ``calm`` (curate.ravdess_calm) says how calm is treated where the set has it: kept as its own
    class, merged into neutral, or dropped.
    """
    if calm not in CALM_TREATMENTS:
        raise ValueError(f"calm treatment '{calm}' must be one of {', '.join(CALM_TREATMENTS)}")
    rows = class_set_table()[class_set_table()["class_set"] == class_set]
    if rows.empty:
        raise KeyError(
            f"unknown class set '{class_set}' (curate.class_sets); known: {', '.join(class_sets())}"
        )
    mapping = dict(zip(rows["emotion"], rows["class"], strict=True))
    if "calm" in mapping:
        if calm == "neutral":
            mapping["calm"] = "neutral"
        elif calm == "drop":
            del mapping["calm"]
    return mapping


def classes_of(class_set: str, calm: str = "own_class") -> list[str]:
    """The classes of a set, in table order, without duplicates."""
    if class_set == "serevals8":
        return list(SEREVALS_CLASSES)
    return list(dict.fromkeys(class_map(class_set, calm).values()))


def sentiment_of(emotion: str) -> str:
    """The sentiment view of a package emotion ('' where it has none, e.g. other)."""
    rows = label_table()[label_table()["emotion"] == emotion]
    return rows["sentiment"].iloc[0] if not rows.empty else ""
