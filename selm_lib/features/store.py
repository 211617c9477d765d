"""The frame-feature cache, read side: every usable clip of a corpus encoded once by one
(backbone, layer), written by :mod:`selm_lib.features.extract`.

A store is one folder ``<root>/<backbone_name>/layer_<layer>/<corpus>`` holding

* ``shard_00000.safetensors`` ...: one tensor ``features`` per shard, the frames of many clips
  concatenated along the first axis: ``(frames, hidden)``, or ``(frames, L+1, hidden)`` for layer
  ``"all"`` (frames first so one clip is one contiguous read);
* ``index.csv``: ``utterance_id, shard, start, frames`` in the manifest order of the usable rows;
* ``meta.json``: the cache key and what produced the store (no timings, so it is reproducible);
* ``stats.json``: speed and padding of the run that wrote it (timings vary between runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
TENSOR = "features"
DTYPES = {"float16": np.float16, "float32": np.float32}
INDEX_COLUMNS = ["utterance_id", "shard", "start", "frames"]


@dataclass
class FeatureStore:
    """Read access to one (backbone, layer, corpus) cache folder."""

    folder: Path
    index: pd.DataFrame  # utterance_id, shard, start, frames (manifest order of usable rows)
    meta: dict
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _shards: dict[int, Any] = field(default_factory=dict, repr=False)
    _where: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64), repr=False)

    def __post_init__(self) -> None:
        self._rows = {uid: i for i, uid in enumerate(self.index["utterance_id"])}
        self._where = self.index[["shard", "start", "frames"]].to_numpy(np.int64)  # (N, 3)

    @classmethod
    def open(cls, folder: str | Path) -> FeatureStore:
        """Open a store written by :func:`compute_features`."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{folder}: no feature store here (meta.json missing); run the features stage "
                "(compute_features / compute_all) first"
            )
        meta = json.loads(meta_path.read_text())
        index = pd.read_csv(
            folder / "index.csv",
            keep_default_na=False,
            dtype={"utterance_id": str, "shard": np.int64, "start": np.int64, "frames": np.int64},
        )
        return cls(folder=folder, index=index, meta=meta)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def utterance_ids(self) -> list[str]:
        return list(self.index["utterance_id"])

    def get(self, utterance_id: str, max_frames: int | None = None) -> np.ndarray:
        """``(frames, hidden)`` float32, or ``(L+1, frames, hidden)`` for layer ``"all"``.

        ``max_frames`` reads only the first frames of the clip from disk (a truncation that owns
        its memory, not a view of the whole clip)."""
        row = self._row(utterance_id)
        shard, start, frames = (int(v) for v in self._where[row])
        if max_frames is not None:
            frames = min(frames, int(max_frames))
        array = self._shard(shard).get_slice(TENSOR)[start : start + frames]
        return self._to_output(array)

    def get_many(
        self, utterance_ids: Iterable[str], max_frames: int | None = None
    ) -> list[np.ndarray]:
        """:meth:`get` for several utterances, in the order given."""
        return [self.get(uid, max_frames) for uid in utterance_ids]

    def pooled(self, utterance_ids: Iterable[str] | None = None) -> np.ndarray:
        """Mean over frames per utterance: ``(N, hidden)`` float32 (``(N, L+1, hidden)`` for
        ``"all"``); manifest order when ``utterance_ids`` is None. A clip with no frame gives NaN.
        """
        ids = self.utterance_ids if utterance_ids is None else [str(u) for u in utterance_ids]
        rows = [self._row(uid) for uid in ids]
        width = tuple(self._shard(0).get_slice(TENSOR).get_shape()[1:]) if len(self) else ()
        out = np.full((len(rows), *width), np.nan, dtype=np.float32)
        table = self.index.iloc[rows].reset_index(drop=True)
        for shard, group in table.groupby("shard", sort=True):
            data = self._shard(int(shard)).get_tensor(TENSOR)  # whole shard once, not per clip
            columns = (group.index, group["start"], group["frames"])
            for position, start, frames in zip(*columns, strict=True):
                if frames > 0:
                    out[position] = data[start : start + frames].mean(axis=0, dtype=np.float32)
        return out

    def _row(self, utterance_id: str) -> int:
        row = self._rows.get(str(utterance_id))
        if row is None:
            raise KeyError(
                f"utterance {utterance_id!r} is not in the feature store {self.folder} "
                f"({len(self)} utterances of corpus {self.meta.get('corpus')!r}; quarantined "
                "rows are never encoded)"
            )
        return row

    def close(self) -> None:
        """Release the shard files (also released when the store is garbage-collected)."""
        self._shards.clear()

    def _shard(self, shard: int):
        from safetensors import safe_open

        if shard not in self._shards:
            self._shards[shard] = safe_open(str(self.folder / shard_name(shard)), framework="np")
        return self._shards[shard]

    def _to_output(self, array: np.ndarray) -> np.ndarray:
        array = array.astype(np.float32)
        if array.ndim == 3:  # stored (frames, L+1, hidden) -> (L+1, frames, hidden)
            array = np.ascontiguousarray(array.transpose(1, 0, 2))
        return array


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}.safetensors"


def store_folder(root: str | Path, backbone_name: str, layer: int | str, corpus: str) -> Path:
    """``root/<backbone_name>/layer_<layer>/<corpus>``."""
    return Path(root) / backbone_name / f"layer_{layer}" / corpus


class MissingFeatures(FileNotFoundError):
    """No cached features for a (backbone, corpus); the message names the stage to run."""


def open_store(
    output_root: str | Path, backbone: str, layer: int | str, corpus: str, params_key: str
) -> FeatureStore:
    """The cached features of ``corpus`` under ``output_root/features`` for backbone entry
    ``backbone`` (``params_key`` names the params.yaml key that chose it, for the error)."""
    folder = store_folder(Path(output_root) / "features", backbone, layer, corpus)
    if not (folder / "meta.json").is_file():
        raise MissingFeatures(
            f"no cached features for backbone '{backbone}' ({params_key}) and corpus '{corpus}' "
            f"in {folder}: run the features stage (dvc repro features@{backbone})"
        )
    return FeatureStore.open(folder)


def load_features(
    common: dict[str, Any],
    features: dict[str, Any],
    backbone: str,
    keys: pd.DataFrame,
    params_key: str = "selm.backbone",
) -> dict[tuple[str, str], np.ndarray]:
    """``{(corpus, utterance_id): (frames, D) float32}`` for the rows of ``keys``."""
    from selm_lib.config import resolve_path

    layer = features["backbones"][backbone]["layer"]
    out: dict[tuple[str, str], np.ndarray] = {}
    for corpus, rows in keys.groupby("corpus", sort=True):
        store = open_store(resolve_path(common["output_root"]), backbone, layer, corpus, params_key)
        wanted = sorted(set(rows["utterance_id"]))
        for utterance, array in zip(wanted, store.get_many(wanted), strict=True):
            out[(corpus, utterance)] = np.asarray(array, dtype=np.float32)
    return out
