"""Speaker-disjoint splits and folds, deterministic from the seed, written as files.

Every usable row gets a ``split`` (train / validation / test) and a ``fold`` (0..k-1). Speakers are
shuffled by a seed derived from (seed, corpus) and assigned whole, so no speaker is on two sides.
Rows with an unknown speaker cannot be placed safely: they go to ``train`` with fold -1 (always
training) and are counted in the report.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from selm_lib.data.corpora.base import usable

SPLIT_COLUMNS = ["utterance_id", "speaker", "split", "fold"]


class SplitError(ValueError):
    """A split that breaks the speaker-disjoint contract."""


def corpus_seed(seed: int, corpus: str) -> np.random.Generator:
    """A generator that depends on the seed and the corpus name only (not on Python's hash)."""
    return np.random.default_rng([seed, zlib.crc32(corpus.encode())])


def speaker_splits(
    manifest: pd.DataFrame,
    *,
    seed: int,
    validation: float,
    test: float,
    folds: int,
    strategy: str = "speaker",
) -> pd.DataFrame:
    """``utterance_id, speaker, split, fold`` for the usable rows of one corpus's manifest.

    ``strategy="official"`` keeps the corpus's ``official_split`` column and still checks that no
    speaker crosses it (MELD's official split shares its characters, so it fails the check).
    """
    rows = usable(manifest)
    corpus = str(rows["corpus"].iloc[0]) if len(rows) else "corpus"
    if rows.empty:
        return pd.DataFrame(columns=SPLIT_COLUMNS)
    speakers = sorted(s for s in rows["speaker"].unique() if s)
    rng = corpus_seed(seed, corpus)
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    n_test = _share(len(order), test)
    n_validation = min(_share(len(order), validation), max(0, len(order) - n_test - 1))
    split_of = {s: "test" for s in order[:n_test]}
    split_of |= {s: "validation" for s in order[n_test : n_test + n_validation]}
    split_of |= {s: "train" for s in order[n_test + n_validation :]}
    n_folds = max(1, min(folds, len(order)))
    fold_of = {s: i % n_folds for i, s in enumerate(order)}

    table = rows[["utterance_id", "speaker"]].copy()
    known = table["speaker"] != ""
    table["split"] = table["speaker"].map(split_of).where(known, "train")
    table["fold"] = table["speaker"].map(fold_of).where(known, -1).astype(int)
    if strategy == "official":
        if "official_split" not in rows:
            raise SplitError(
                f"{corpus}: has no official split; set params.yaml curate.split.strategy: speaker"
            )
        table["split"] = rows["official_split"].to_numpy()
    elif strategy != "speaker":
        raise SplitError(f"curate.split.strategy '{strategy}' must be speaker or official")
    check_speaker_disjoint(table, corpus=corpus, column="split")
    check_speaker_disjoint(table, corpus=corpus, column="fold")
    return table.reset_index(drop=True)[SPLIT_COLUMNS]


def _share(count: int, share: float) -> int:
    """Speakers for a share: at least one when the share is positive and speakers remain."""
    if share <= 0 or count < 2:
        return 0
    return min(count - 1, max(1, int(round(share * count))))


def check_speaker_disjoint(table: pd.DataFrame, *, corpus: str, column: str = "split") -> None:
    """Raise :class:`SplitError` if any known speaker appears in two values of ``column``."""
    known = table[table["speaker"] != ""]
    sides = known.groupby("speaker")[column].nunique()
    crossing = sorted(sides[sides > 1].index)
    if crossing:
        shown = ", ".join(crossing[:5]) + (" ..." if len(crossing) > 5 else "")
        raise SplitError(
            f"{corpus}: {len(crossing)} speaker(s) on both sides of the '{column}' split: {shown}. "
            "Speaker-overlapping splits inflate scores; use params.yaml "
            "curate.split.strategy: speaker"
        )
