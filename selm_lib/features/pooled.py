"""Per-layer pooled features of a layer-``all`` store: the input of the layer sweep's probes.

A layer-``all`` store holds ``frames x (L+1)`` vectors per clip, ``L+1`` times a one-layer
store. The classification baseline reads only each clip's mean and standard deviation over its
frames (:meth:`selm_lib.features.frames.Frames.pooled`), so the sweep reads the store once and
keeps those statistics for every layer; each layer's probe then reads ``(N, 2D)`` floats of its
own layer instead of the whole store. A pooled cache is one folder
``<output_root>/layer_sweep/pooled/<backbone>/<corpus>`` holding

* ``pooled.npy``: float32 ``(L+1, N, 2D)``, layer-major so one layer is one contiguous block
  (mean over frames in the first D columns, standard deviation in the last D, float64 arithmetic
  as in :meth:`~selm_lib.features.frames.Frames.pooled`; a clip with no frame is zeros);
* ``index.csv``: ``utterance_id`` in the store's order;
* ``meta.json``: the store it came from (its cache key and shard sums) and the shape.

It is written through a memory map one clip at a time (memory O(one clip)) and skipped when the
store it came from is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.features.frames import FrameSet, read_ahead
from selm_lib.features.store import FeatureStore, MissingFeatures

POOLED = "pooled.npy"
FORMAT = 1


def pooled_folder(output_root: str | Path, backbone: str, corpus: str) -> Path:
    """``<output_root>/layer_sweep/pooled/<backbone>/<corpus>``."""
    return Path(output_root) / "layer_sweep" / "pooled" / backbone / corpus


def source_of(store: FeatureStore) -> dict[str, Any]:
    """What identifies the store a pooled cache was computed from."""
    return {
        "folder": store.folder.name,
        "key": store.meta.get("key"),
        "shards": [entry["sha256"] for entry in store.meta.get("shards", [])],
        "n_utterances": len(store),
    }


def pool_layers(store: FeatureStore, folder: str | Path) -> bool:
    """Write the pooled cache of a layer-``all`` ``store`` into ``folder``; returns False when
    ``folder`` already holds the cache of this very store (nothing is read then)."""
    folder = Path(folder)
    shape = store.row_shape
    if len(store) and len(shape) != 2:
        raise ValueError(
            f"{store.folder}: frames of shape {shape}, one layer per frame; the layer sweep needs "
            "a store with every layer (layer: all in the features.backbones entry that "
            "layer_sweep.backbone names)"
        )
    n_states, dim = (int(s) for s in shape) if len(store) else (0, 0)
    source = source_of(store)
    meta_path = folder / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("source") == source:
        return False
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    out = np.lib.format.open_memmap(
        tmp / POOLED, mode="w+", dtype=np.float32, shape=(n_states, len(store), 2 * dim)
    )
    frames = FrameSet.of_store(store, store.utterance_ids)
    for i, clip in read_ahead(frames.__getitem__, range(len(frames))):
        if len(clip):
            values = clip.astype(np.float64)  # (frames, L+1, D)
            out[:, i, :dim] = values.mean(axis=0)
            out[:, i, dim:] = values.std(axis=0)
    out.flush()
    del out
    pd.DataFrame({"utterance_id": store.utterance_ids}).to_csv(
        tmp / "index.csv", index=False, lineterminator="\n"
    )
    meta = {
        "format": FORMAT,
        "backbone_name": store.meta.get("backbone_name"),
        "source_spec": (store.meta.get("backbone") or {}).get("source"),
        "corpus": store.meta.get("corpus"),
        "num_layers": n_states - 1,
        "hidden_size": dim,
        "n_utterances": len(store),
        "source": source,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return True


@dataclass
class PooledLayers:
    """Read access to one pooled cache (see the module docstring)."""

    folder: Path
    meta: dict
    rows: dict[str, int] = field(repr=False)

    @classmethod
    def open(cls, folder: str | Path) -> PooledLayers:
        folder = Path(folder)
        if not (folder / "meta.json").is_file():
            raise MissingFeatures(
                f"{folder}: no pooled layer features here; run the layer_pool stage "
                "(dvc repro layer_pool) for params.yaml 'layer_sweep.backbone'"
            )
        meta = json.loads((folder / "meta.json").read_text())
        index = pd.read_csv(
            folder / "index.csv", dtype={"utterance_id": str}, keep_default_na=False
        )
        pooled = cls(folder, meta, {u: i for i, u in enumerate(index["utterance_id"])})
        data = pooled.data()
        expected = (meta["num_layers"] + 1, meta["n_utterances"], 2 * meta["hidden_size"])
        if data.shape != expected or len(index) != meta["n_utterances"]:
            raise ValueError(
                f"{folder / POOLED} has shape {data.shape} and {len(index)} index rows, "
                f"meta.json says {expected}: delete {folder} and run dvc repro layer_pool"
            )
        return pooled

    @property
    def num_layers(self) -> int:
        """Transformer layers L (the cache holds states 0..L)."""
        return int(self.meta["num_layers"])

    def data(self) -> np.ndarray:
        """The whole ``(L+1, N, 2D)`` array, memory-mapped (nothing read yet)."""
        return np.load(self.folder / POOLED, mmap_mode="r")

    def take(self, layer: int, utterance_ids: list[str]) -> np.ndarray:
        """``(n, 2D)`` float32: the pooled features of ``utterance_ids`` at ``layer``."""
        if not 0 <= int(layer) <= self.num_layers:
            raise ValueError(
                f"layer {layer} is outside 0..{self.num_layers}, the states of "
                f"'{self.meta.get('backbone_name')}' ({self.meta.get('source_spec')}); fix "
                "params.yaml 'layer_sweep.layers'"
            )
        missing = [u for u in utterance_ids if u not in self.rows]
        if missing:
            raise KeyError(
                f"{len(missing)} utterances (e.g. {missing[0]!r}) are not in the pooled features "
                f"{self.folder}; run dvc repro features@{self.meta.get('backbone_name')} layer_pool"
            )
        rows = np.asarray([self.rows[u] for u in utterance_ids], dtype=np.int64)
        return np.ascontiguousarray(self.data()[int(layer)][rows], dtype=np.float32)
