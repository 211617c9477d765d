"""Lazy frame sets: the clips a consumer needs, read from the feature stores a batch at a time.

Training, evaluation, few-shot adaptation, the baseline and the SER-Evals probes all take a
:class:`FrameSet` instead of a list of arrays. It holds only *where* each clip's frames are
(store, row, frame count); :meth:`FrameSet.batch` reads the rows of one batch (in the storage
dtype, float16 by default) and pads them, so memory is O(batch) whatever the corpus size.
Statistics come from one streaming pass with float64 accumulators (:meth:`FrameSet.moments`,
:meth:`FrameSet.pooled`), never from a concatenation of the corpus.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from selm_lib.features.store import FeatureStore, MissingFeatures, open_store


class Frames:
    """What every consumer needs of a set of clips: their count, frame counts, width, one clip,
    and padded batches and streaming statistics built from those. Subclasses: :class:`FrameSet`
    (lazy, from the feature stores) and :class:`ArrayFrames` (arrays already in memory)."""

    lengths: np.ndarray
    dim: int

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def subset(self, index: Sequence[int] | np.ndarray) -> Frames:
        raise NotImplementedError

    def batch(self, index: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Zero-padded ``(B, T, D)`` frames in the storage dtype and the ``(B, T)`` mask."""
        clips = [self[int(i)] for i in index]
        length = max(max((len(c) for c in clips), default=0), 1)
        width = clips[0].shape[1:] if clips else (self.dim,)
        dtype = np.result_type(*[c.dtype for c in clips]) if clips else np.float32
        out = np.zeros((len(clips), length, *width), dtype=dtype)
        mask = np.zeros((len(clips), length), dtype=bool)
        for i, clip in enumerate(clips):
            out[i, : len(clip)] = clip
            mask[i, : len(clip)] = True
        return out, mask

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per dimension over every frame of every clip (float64),
        one clip at a time, combined with Chan's parallel update (stable, exact in order)."""
        count, mean, m2 = 0, np.zeros(self.dim), np.zeros(self.dim)
        for i in range(len(self)):
            clip = self[i].astype(np.float64)
            n = len(clip)
            if n == 0:
                continue
            clip_mean = clip.mean(axis=0)
            clip_m2 = ((clip - clip_mean) ** 2).sum(axis=0)
            total = count + n
            delta = clip_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + clip_m2 + delta**2 * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("no frames to compute statistics from")
        return mean, np.sqrt(m2 / count)

    def pooled(self) -> np.ndarray:
        """``(N, 2D)`` float32: per-clip mean and standard deviation over its frames (the
        baseline's input), computed one clip at a time in float64. N x 2D floats is the only
        corpus-sized array; frames are never all in memory."""
        out = np.zeros((len(self), 2 * self.dim), dtype=np.float32)
        for i in range(len(self)):
            clip = self[i].astype(np.float64)
            if len(clip):
                out[i] = np.concatenate([clip.mean(axis=0), clip.std(axis=0)])
        return out


@dataclass(frozen=True)
class FrameSet(Frames):
    """Clips of one or more stores, in a fixed order. ``refs[i] = (store, row)``; nothing is
    read until a clip or a batch is asked for."""

    stores: tuple[FeatureStore, ...]
    refs: np.ndarray  # (N, 2) int64: store position, index row
    max_frames: int | None = None

    @classmethod
    def from_keys(
        cls,
        stores: Mapping[str, FeatureStore],
        keys: Iterable[tuple[str, str]],
        max_frames: int | None = None,
    ) -> FrameSet:
        """The clips ``(corpus, utterance_id)`` of ``keys`` in that order (repeats allowed)."""
        names = sorted(stores)
        position = {name: i for i, name in enumerate(names)}
        refs = []
        for corpus, utterance in keys:
            if corpus not in position:
                raise MissingFeatures(f"no feature store opened for corpus '{corpus}'")
            refs.append((position[corpus], stores[corpus].row(utterance)))
        table = np.asarray(refs, dtype=np.int64).reshape(-1, 2)
        return cls(tuple(stores[n] for n in names), table, max_frames)

    @classmethod
    def of_store(cls, store: FeatureStore, utterances: Iterable[str], **kw: Any) -> FrameSet:
        """Clips of one store, by utterance id."""
        corpus = str(store.meta.get("corpus", "store"))
        return cls.from_keys({corpus: store}, ((corpus, u) for u in utterances), **kw)

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per clip after ``max_frames`` (from the index; nothing is read)."""
        out = np.zeros(len(self), dtype=np.int64)
        for s, store in enumerate(self.stores):
            chosen = self.refs[:, 0] == s
            out[chosen] = store.frames_of(self.refs[chosen, 1])
        return out if self.max_frames is None else np.minimum(out, self.max_frames)

    @property
    def dim(self) -> int:
        """The feature width D."""
        shapes = {store.row_shape for store in self.stores if len(store)}
        if len(shapes) != 1:
            raise ValueError(f"the stores disagree on the frame shape: {sorted(shapes)}")
        shape = shapes.pop()
        if len(shape) != 1:
            raise ValueError(
                f"frames of shape {shape}: this consumer needs one layer per store (an integer "
                "or 'last' in features.backbones.<name>.layer), not 'all'"
            )
        return int(shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> FrameSet:
        return FrameSet(self.stores, self.refs[np.asarray(index, dtype=np.int64)], self.max_frames)

    def truncated(self, max_frames: int | None) -> FrameSet:
        return FrameSet(self.stores, self.refs, max_frames)

    def __getitem__(self, i: int) -> np.ndarray:
        """One clip's ``(frames, D)`` in the storage dtype."""
        store, row = (int(v) for v in self.refs[i])
        return self.stores[store].read_row(row, self.max_frames)


class ArrayFrames(Frames):
    """Clips already in memory, as a list of ``(frames, D)`` arrays (small sets, notebooks,
    tests); the same interface as :class:`FrameSet`."""

    def __init__(self, arrays: Sequence[np.ndarray]):
        self.arrays = [np.asarray(a) for a in arrays]
        if any(a.ndim != 2 for a in self.arrays):
            raise ValueError("every clip must be a (frames, D) array")

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.arrays[int(i)]

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray([len(a) for a in self.arrays], dtype=np.int64)

    @property
    def dim(self) -> int:
        dims = {a.shape[1] for a in self.arrays}
        if len(dims) != 1:
            raise ValueError(f"every clip must be a (frames, D) array with one D; got {dims}")
        return int(dims.pop())

    def subset(self, index: Sequence[int] | np.ndarray) -> ArrayFrames:
        return ArrayFrames([self.arrays[int(i)] for i in index])


def as_frames(frames: Frames | Sequence[np.ndarray]) -> Frames:
    """``frames`` itself, or a list of arrays wrapped as :class:`ArrayFrames`."""
    return frames if isinstance(frames, Frames) else ArrayFrames(frames)


def read_ahead(
    function: Callable[[Any], Any], items: Iterable[Any], depth: int = 2
) -> Iterator[tuple[Any, Any]]:
    """``(item, function(item))`` for each item, computing the next ``depth`` results in a
    background thread while the caller works on the current one (reads overlap compute)."""
    pending: deque = deque()
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1) as pool:

        def submit() -> None:
            for item in iterator:
                pending.append((item, pool.submit(function, item)))
                return

        for _ in range(max(1, depth)):
            submit()
        while pending:
            item, future = pending.popleft()
            result = future.result()
            submit()
            yield item, result


def open_frames(
    common: Mapping[str, Any],
    features: Mapping[str, Any],
    backbone: str,
    keys: Any,
    params_key: str = "selm.backbone",
    max_frames: int | None = None,
) -> FrameSet:
    """The frames of the rows of ``keys`` (a DataFrame with ``corpus`` and ``utterance_id``), in
    row order, from the stores of backbone entry ``backbone``."""
    from selm_lib.config import resolve_path

    layer = features["backbones"][backbone]["layer"]
    root = resolve_path(common["output_root"])
    stores = {
        corpus: open_store(root, backbone, layer, corpus, params_key)
        for corpus in sorted(set(keys["corpus"]))
    }
    pairs = zip(keys["corpus"], keys["utterance_id"], strict=True)
    return FrameSet.from_keys(stores, ((str(c), str(u)) for c, u in pairs), max_frames)
