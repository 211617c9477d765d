"""The frame-feature cache: every usable clip of a corpus encoded once by one (backbone, layer).
Computed by :mod:`selm_lib.features.extract`; this module holds the format, its writer and its
reader.

A store is one folder ``<root>/<backbone_name>/layer_<layer>/<corpus>`` holding

* ``shard_00000.safetensors`` ...: one tensor ``features`` per shard (float16 by default), the
  frames of many clips concatenated along the first axis: ``(frames, hidden)``, or
  ``(frames, L+1, hidden)`` for layer ``"all"`` (frames first so one clip is one contiguous read);
* ``index.csv``: ``utterance_id, shard, start, frames`` in the manifest order of the usable rows;
* ``meta.json``: the cache key, what produced the store, and each shard's byte size and sha256
  (no timings, so it is reproducible);
* ``stats.json``: speed and padding of the run that wrote it (timings vary between runs).

Reading is lazy and bounded: a clip is one positioned read (``os.pread``) of its rows, not a
memory map, so a process that walks a whole corpus holds one batch of frames at a time and its
resident memory does not grow with the store. Values keep the storage dtype until the caller
converts them (per batch, on the device). Opening a store checks every shard's size and header
against ``meta.json``; a read that returns fewer bytes or a non-finite value (the writer rejects
non-finite features, so only a damaged file has them) raises :class:`CorruptStore`, which names
the shard and the stage to rerun. :meth:`FeatureStore.verify` also checks the sha256 sums.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_VERSION = 2
TENSOR = "features"
DTYPES = {"float16": np.float16, "float32": np.float32}
INDEX_COLUMNS = ["utterance_id", "shard", "start", "frames"]
_SAFETENSORS_DTYPES = {"F16": np.float16, "F32": np.float32}
_DTYPE_CODES = {np.dtype(v).name: k for k, v in _SAFETENSORS_DTYPES.items()}


class CorruptStore(ValueError):
    """A feature shard that is missing, truncated or damaged; the message names the stage."""


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}.safetensors"


def store_folder(root: str | Path, backbone_name: str, layer: int | str, corpus: str) -> Path:
    """``root/<backbone_name>/layer_<layer>/<corpus>``."""
    return Path(root) / backbone_name / f"layer_{layer}" / corpus


# ----------------------------------------------------------------------------- writing


def _safetensors_bytes(data: np.ndarray, metadata: dict[str, str]) -> tuple[bytes, int]:
    """The header of a one-tensor safetensors file (and its size), written by hand so the
    bytes are fixed (no hash-map order) and the data can be streamed after it."""
    header = {
        "__metadata__": metadata,
        TENSOR: {
            "dtype": _DTYPE_CODES[data.dtype.name],
            "shape": list(data.shape),
            "data_offsets": [0, int(data.nbytes)],
        },
    }
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return len(text).to_bytes(8, "little") + text, 8 + len(text)


class StoreWriter:
    """Collects clip frames and writes a shard each time ``shard_rows`` would be exceeded."""

    def __init__(self, folder: Path, shard_rows: int, dtype: np.dtype, metadata: dict[str, str]):
        self.folder, self.shard_rows = Path(folder), max(1, int(shard_rows))
        self.dtype, self.metadata = np.dtype(dtype), metadata
        self.shard, self.rows, self.parts = 0, 0, []
        self.shards: list[dict[str, Any]] = []

    def add(self, frames: np.ndarray) -> tuple[int, int]:
        """Append one clip's ``(frames, ...)`` array; returns (shard, start)."""
        stored = np.ascontiguousarray(frames, dtype=self.dtype)
        if not np.isfinite(stored).all():
            raise ValueError(
                f"features overflow {self.dtype.name} or are not finite (max |x| = "
                f"{float(np.nanmax(np.abs(np.asarray(frames, dtype=np.float64)))):.3g}); "
                "store them as float32 (features.dtype: float32)"
            )
        if self.parts and len(stored) and self.rows + len(stored) > self.shard_rows:
            self.flush()
        start = self.rows
        self.parts.append(stored)
        self.rows += len(frames)
        return self.shard, start

    def flush(self) -> None:
        if not self.parts:
            return
        data = np.ascontiguousarray(np.concatenate(self.parts, axis=0))
        header, _ = _safetensors_bytes(data, self.metadata)
        path = self.folder / shard_name(self.shard)
        raw = data.reshape(-1).view(np.uint8)  # no copy; also for a shard of 0 rows
        digest = hashlib.sha256(header)
        digest.update(raw)
        with open(path, "wb") as handle:
            handle.write(header)
            handle.write(raw)
        self.shards.append(
            {
                "name": path.name,
                "bytes": len(header) + int(data.nbytes),
                "rows": int(len(data)),
                "sha256": digest.hexdigest(),
            }
        )
        self.shard, self.rows, self.parts = self.shard + 1, 0, []


def write_store(
    folder: str | Path,
    items: Iterable[tuple[str, np.ndarray]],
    meta: dict[str, Any],
    *,
    dtype: str = "float16",
    shard_frames: int = 500_000,
) -> FeatureStore:
    """Write ``(utterance_id, (frames, D) array)`` items as a store in ``folder`` (which must not
    exist) and open it. ``meta`` is stored in ``meta.json`` beside the fields this function
    fills (format, dtype, shards, counts). Used by benchmarks and tests to build stores without
    encoding audio; :func:`selm_lib.features.extract.compute_features` writes through the same
    :class:`StoreWriter`."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    writer = StoreWriter(folder, shard_frames, DTYPES[dtype], {"selm_lib.features": dtype})
    rows, width = [], None
    for uid, array in items:
        array = np.asarray(array)
        width = array.shape[1:]
        rows.append((str(uid), *writer.add(array), len(array)))
    writer.flush()
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    index.to_csv(folder / "index.csv", index=False, lineterminator="\n")
    full = {
        "format": FORMAT_VERSION,
        "dtype": dtype,
        "hidden_size": int(width[-1]) if width else 0,
        **meta,
        "n_utterances": len(index),
        "n_frames": int(index["frames"].sum()),
        "n_shards": writer.shard,
        "shards": writer.shards,
    }
    (folder / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return FeatureStore.open(folder)


# ----------------------------------------------------------------------------- reading


@dataclass
class _Shard:
    """One shard file opened for positioned reads."""

    path: Path
    fd: int
    dtype: np.dtype
    row_shape: tuple[int, ...]
    row_bytes: int
    data_start: int
    rows: int


@dataclass
class FeatureStore:
    """Read access to one (backbone, layer, corpus) cache folder."""

    folder: Path
    index: pd.DataFrame  # utterance_id, shard, start, frames (manifest order of usable rows)
    meta: dict
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _shards: dict[int, _Shard] = field(default_factory=dict, repr=False)
    _where: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64), repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rows = {uid: i for i, uid in enumerate(self.index["utterance_id"])}
        self._where = self.index[["shard", "start", "frames"]].to_numpy(np.int64)  # (N, 3)

    @classmethod
    def open(cls, folder: str | Path) -> FeatureStore:
        """Open a store written by :class:`StoreWriter`; checks every shard's size."""
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
        store = cls(folder=folder, index=index, meta=meta)
        store._check_sizes()
        return store

    def __len__(self) -> int:
        return len(self.index)

    def __del__(self) -> None:
        self.close()

    @property
    def utterance_ids(self) -> list[str]:
        return list(self.index["utterance_id"])

    @property
    def rerun(self) -> str:
        """The command that rewrites this store."""
        name = self.meta.get("backbone_name") or self.folder.parent.parent.name
        return f"delete {self.folder} and run dvc repro features@{name}"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DTYPES[self.meta.get("dtype", "float16")])

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of one stored frame: ``(hidden,)`` or ``(L+1, hidden)``."""
        return self._shard(0).row_shape if len(self) else ()

    def row(self, utterance_id: str) -> int:
        """The index row of an utterance (KeyError naming the store when absent)."""
        row = self._rows.get(str(utterance_id))
        if row is None:
            raise KeyError(
                f"utterance {utterance_id!r} is not in the feature store {self.folder} "
                f"({len(self)} utterances of corpus {self.meta.get('corpus')!r}; quarantined "
                "rows are never encoded)"
            )
        return row

    def frames_of(self, rows: np.ndarray) -> np.ndarray:
        """Stored frame counts of index rows (no read)."""
        return self._where[np.asarray(rows, dtype=np.int64), 2]

    def read_row(self, row: int, max_frames: int | None = None) -> np.ndarray:
        """The stored frames ``(frames, ...)`` of one index row in the storage dtype: one
        positioned read of at most ``max_frames`` frames (memory owned, not a view)."""
        shard, start, frames = (int(v) for v in self._where[row])
        if max_frames is not None:
            frames = min(frames, int(max_frames))
        handle = self._shard(shard)
        if start + frames > handle.rows:
            raise self._corrupt(handle.path, f"rows {start}..{start + frames} past its end")
        count = frames * handle.row_bytes
        data = os.pread(handle.fd, count, handle.data_start + start * handle.row_bytes)
        if len(data) != count:
            raise self._corrupt(handle.path, f"{len(data)} of {count} bytes could be read")
        array = np.frombuffer(bytearray(data), dtype=handle.dtype)
        array = array.reshape(frames, *handle.row_shape)
        if not np.isfinite(array).all():
            raise self._corrupt(handle.path, "non-finite values (the writer never stores them)")
        return array

    def get(self, utterance_id: str, max_frames: int | None = None) -> np.ndarray:
        """``(frames, hidden)`` float32, or ``(L+1, frames, hidden)`` for layer ``"all"``.

        ``max_frames`` reads only the first frames of the clip from disk."""
        array = self.read_row(self.row(utterance_id), max_frames).astype(np.float32)
        if array.ndim == 3:  # stored (frames, L+1, hidden) -> (L+1, frames, hidden)
            array = np.ascontiguousarray(array.transpose(1, 0, 2))
        return array

    def get_many(
        self, utterance_ids: Iterable[str], max_frames: int | None = None
    ) -> list[np.ndarray]:
        """:meth:`get` for several utterances, in the order given."""
        return [self.get(uid, max_frames) for uid in utterance_ids]

    def pooled(self, utterance_ids: Iterable[str] | None = None) -> np.ndarray:
        """Mean over frames per utterance: ``(N, hidden)`` float32 (``(N, L+1, hidden)`` for
        ``"all"``); manifest order when ``utterance_ids`` is None. A clip with no frame gives NaN.
        Clips are read one at a time."""
        ids = self.utterance_ids if utterance_ids is None else [str(u) for u in utterance_ids]
        out = np.full((len(ids), *self.row_shape), np.nan, dtype=np.float32)
        for position, uid in enumerate(ids):
            array = self.read_row(self.row(uid))
            if len(array):
                out[position] = array.mean(axis=0, dtype=np.float32)
        return out

    def verify(self) -> None:
        """Check every shard's sha256 against ``meta.json`` (reads the whole store)."""
        for entry in self.meta.get("shards", []):
            path = self.folder / entry["name"]
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 24), b""):
                    digest.update(block)
            if digest.hexdigest() != entry["sha256"]:
                raise self._corrupt(path, "its sha256 differs from meta.json")

    def close(self) -> None:
        """Release the shard files (also released when the store is garbage-collected)."""
        for handle in getattr(self, "_shards", {}).values():
            try:
                os.close(handle.fd)
            except OSError:
                pass
        if hasattr(self, "_shards"):
            self._shards.clear()

    # -- internals
    def _corrupt(self, path: Path, what: str) -> CorruptStore:
        return CorruptStore(f"feature shard {path} is damaged: {what}; {self.rerun}")

    def _check_sizes(self) -> None:
        listed = {int(s) for s in self.index["shard"]}
        recorded = {entry["name"]: entry for entry in self.meta.get("shards", [])}
        if self.meta.get("format") != FORMAT_VERSION or (listed and not recorded):
            raise CorruptStore(
                f"feature store {self.folder} has format {self.meta.get('format')}, this version "
                f"reads format {FORMAT_VERSION}; {self.rerun}"
            )
        for shard in sorted(listed):
            path = self.folder / shard_name(shard)
            expected = recorded.get(path.name, {}).get("bytes")
            size = path.stat().st_size if path.is_file() else None
            if size is None or size != expected:
                found = "missing" if size is None else f"{size} bytes"
                raise self._corrupt(path, f"{found}, {expected} expected (truncated or replaced)")

    def _shard(self, shard: int) -> _Shard:
        with self._lock:  # the read-ahead thread and the caller may open a shard at once
            return self._open_shard(shard)

    def _open_shard(self, shard: int) -> _Shard:
        if shard not in self._shards:
            path = self.folder / shard_name(shard)
            fd = os.open(path, os.O_RDONLY)
            try:
                head = os.pread(fd, 8, 0)
                length = int.from_bytes(head, "little") if len(head) == 8 else -1
                header = json.loads(os.pread(fd, length, 8)) if 0 < length < 1 << 26 else None
                tensor = header.get(TENSOR) if isinstance(header, dict) else None
                dtype = _SAFETENSORS_DTYPES[tensor["dtype"]]
                shape = [int(s) for s in tensor["shape"]]
                begin, end = (int(v) for v in tensor["data_offsets"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
                os.close(fd)
                raise self._corrupt(path, f"unreadable header ({error!r})") from None
            row_shape = tuple(shape[1:])
            row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if end - begin != shape[0] * row_bytes:
                os.close(fd)
                raise self._corrupt(path, "header shape and data size disagree")
            self._shards[shard] = _Shard(
                path, fd, np.dtype(dtype), row_shape, row_bytes, 8 + length + begin, shape[0]
            )
        return self._shards[shard]


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
