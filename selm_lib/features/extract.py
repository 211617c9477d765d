"""Computing the frame-feature cache (the ``features`` stage's work): every usable clip of a
corpus, grouped by length into batches of bounded padding, encoded once by one (backbone, layer)
and written as a store (its format: :mod:`selm_lib.features.store`).

The cache key hashes the backbone spec (source, layer, chunking and ``max_seconds``, the cut
applied to the audio before encoding), a sha256 of the backbone's weights, the storage dtype and
the manifest's usable rows, so a change of backbone, layer or manifest recomputes exactly the
stores it touches, and an unchanged one is skipped without writing a byte. Stores are written to a
temporary folder and renamed into place: an interrupted run never leaves a half store behind.
Shards and index are byte-identical across runs with the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import distributed as D
from selm_lib.data.audio import TARGET_SAMPLE_RATE, load_audio
from selm_lib.data.corpora.base import row_channel, usable
from selm_lib.features.backbones import Backbone, BackboneError, BackboneSpec, load_backbone
from selm_lib.features.store import (
    DTYPES,
    FORMAT_VERSION,
    INDEX_COLUMNS,
    FeatureStore,
    StoreWriter,
    shard_name,
    store_folder,
)

# The keys of selm_lib.config.sections.BackboneEntry.
BACKBONE_KEYS = {"source", "layer", "corpora", "max_seconds"}


def _number(value: Any, digits: int | None) -> str:
    """Stable text for a number that may come as float, int or CSV string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return ""
    return f"{number:.{digits}f}" if digits is not None else str(int(round(number)))


def manifest_hash(manifest: pd.DataFrame) -> str:
    """sha256 of the usable rows' ``(utterance_id, path, duration_s, sample_rate, channel)``, in
    order (``channel``: the one channel a row reads, empty = mixed to mono).

    Numbers are written with fixed formats so a manifest read back from CSV hashes the same as the
    DataFrame that wrote it; other columns (labels, splits) do not change the features.
    """
    rows = usable(manifest)
    digest = hashlib.sha256()
    columns = [
        rows[c] if c in rows else [""] * len(rows)
        for c in ("utterance_id", "path", "duration_s", "sample_rate", "channel")
    ]
    for uid, path, duration, rate, channel in zip(*columns, strict=True):
        picked = row_channel(channel)
        line = (
            f"{uid}\t{path}\t{_number(duration, 4)}\t{_number(rate, None)}\t"
            f"{'' if picked is None else picked}\n"
        )
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def cache_key(
    spec: BackboneSpec,
    manifest_sha256: str,
    *,
    dtype: str = "float16",
    weights_sha256: str = "",
) -> str:
    """sha256 naming everything a store's content depends on.

    ``weights_sha256`` (:meth:`Backbone.fingerprint`) makes a local folder whose weights changed
    recompute although its path did not; :func:`compute_features` always passes it.
    """
    spec_fields = spec.as_dict()
    layer = spec_fields["layer"]
    if isinstance(layer, str) and layer.strip().isdigit():
        spec_fields["layer"] = int(layer)
    payload = {
        "format": FORMAT_VERSION,
        "spec": spec_fields,
        "manifest_sha256": manifest_sha256,
        "dtype": dtype,
        "weights_sha256": weights_sha256,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def plan_batches(
    lengths: Sequence[int],
    batch_samples: int,
    cost: Callable[[int], int] | None = None,
    max_padding: float = 0.1,
) -> list[list[int]]:
    """Group clip indices by length so that padding stays small.

    Clips are sorted by length (stable, so ties keep manifest order) and a batch grows while
    ``len(batch) * cost(longest)`` stays within ``batch_samples`` and the batch's own padding
    (``1 - sum(cost) / (len(batch) * cost(longest))``) stays within ``max_padding``; a clip above
    the budget goes alone. On a large corpus neighbours in length order are nearly equal, so
    batches fill up to the budget; on a small one the padding cap wins. ``cost`` maps a length to
    the samples the encoder processes (identity; Whisper: whole 30 s windows, never "padding").
    """
    cost = cost or (lambda n: n)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        size = cost(lengths[i])
        if current:
            padded = (len(current) + 1) * size  # clip i is the longest so far (sorted order)
            if padded > batch_samples or 1 - (total + size) / padded > max_padding:
                batches.append(current)
                current, total = [], 0
        current.append(i)
        total += size
    if current:
        batches.append(current)
    return batches


def _try_open(folder: Path) -> FeatureStore | None:
    try:
        store = FeatureStore.open(folder)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        return None
    shards = set(int(s) for s in store.index["shard"])
    if not all((folder / shard_name(s)).is_file() for s in shards):
        return None
    return store


def compute_features(
    backbone: Backbone,
    manifest: pd.DataFrame,
    folder: str | Path,
    *,
    backbone_name: str,
    batch_seconds: float = 60.0,
    dtype: str = "float16",
    shard_frames: int = 500_000,
    progress: bool = True,
    max_padding: float = 0.1,
    corpus: str | None = None,
    audio_root: str | Path | None = None,
) -> tuple[FeatureStore, dict]:
    """Encode every usable manifest row once into ``folder``; skip when the cache key matches.

    Batches are built by length (:func:`plan_batches`: at most ``batch_seconds`` of padded audio
    and ``max_padding`` padding each).
    ``shard_frames`` bounds the stored frame vectors per shard (for layer ``"all"`` a frame holds
    ``L+1`` vectors, so a shard holds ``shard_frames // (L+1)`` frames). ``corpus`` defaults to the
    manifest's ``corpus`` column; relative audio paths are read relative to ``audio_root``
    (default: the working directory, as the manifests store them).

    Returns the store and stats ``{"skipped", "clips", "audio_seconds", "seconds",
    "audio_seconds_per_second", "padding_fraction", "batches"}``; ``padding_fraction`` is padded
    samples over all samples of the padded batches (Whisper's own padding of each clip to its 30 s
    window is not counted: it is fixed by the model, not by the batching).
    """
    started = time.perf_counter()
    folder = Path(folder)
    if dtype not in DTYPES:
        raise ValueError(f"features.dtype = {dtype!r}: use one of {', '.join(DTYPES)}")
    rows = usable(manifest).reset_index(drop=True)
    corpus = corpus or _corpus_name(manifest)
    if rows.empty:
        raise ValueError(
            f"corpus {corpus!r}: no usable rows in the manifest (every row is quarantined or the "
            f"manifest is empty); see the quarantine reasons in artifacts/manifests/{corpus}.csv, "
            f"fix params.yaml 'curate.corpora.{corpus}.root' or remove the corpus from "
            "'curate.corpora'"
        )
    ids = rows["utterance_id"].astype(str)
    if ids.duplicated().any():
        dupes = ", ".join(sorted(set(ids[ids.duplicated()]))[:5])
        raise ValueError(f"corpus {corpus!r}: duplicate utterance_id in the manifest ({dupes})")

    manifest_sha = manifest_hash(manifest)
    key = cache_key(backbone.spec, manifest_sha, dtype=dtype, weights_sha256=backbone.fingerprint())
    if folder.is_dir() and not (folder / "meta.json").is_file() and any(folder.iterdir()):
        raise FileExistsError(
            f"{folder} exists and is not a feature store; refusing to replace it (choose another "
            "output folder or remove it)"
        )
    existing = _try_open(folder)
    if existing is not None and existing.meta.get("key") == key:
        seconds = time.perf_counter() - started
        _log(f"features {backbone_name} {corpus}: cached ({len(existing)} clips), skipped")
        return existing, {
            "skipped": True,
            "clips": len(existing),
            "audio_seconds": existing.meta.get("audio_seconds"),
            "seconds": seconds,
            "audio_seconds_per_second": None,
            "padding_fraction": None,
            "batches": 0,
        }

    paths = [_resolve(p, audio_root) for p in rows["path"]]
    channels = [row_channel(c) for c in rows.get("channel", pd.Series([""] * len(rows)))]
    durations = pd.to_numeric(rows["duration_s"], errors="coerce").fillna(0.0).to_numpy()
    limit = backbone.spec.max_seconds
    if limit is not None:
        durations = np.minimum(durations, limit)
    cut = None if limit is None else int(round(limit * TARGET_SAMPLE_RATE))
    estimates = [int(round(d * TARGET_SAMPLE_RATE)) for d in durations]
    batches = plan_batches(
        estimates,
        int(round(batch_seconds * TARGET_SAMPLE_RATE)),
        backbone.cost_samples,
        max_padding=max_padding,
    )
    vectors_per_frame = backbone.num_layers + 1 if backbone.layer == "all" else 1
    dist = D.context() if D.under_torchrun() else D.Dist()
    tmp = folder.parent / f".{folder.name}.tmp-{_run_id(dist)}"
    if dist.main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    D.barrier()
    part = tmp
    if dist.active:  # each rank encodes its share of the batches into its own shards
        costs = [len(b) * backbone.cost_samples(max(estimates[i] for i in b)) for b in batches]
        share = D.balanced(costs, dist.world)
        batches = [batches[i] for i in share[dist.rank]]
        part = tmp / f"rank{dist.rank}"
        part.mkdir()
    writer = StoreWriter(
        part,
        max(1, shard_frames // vectors_per_frame),
        DTYPES[dtype],
        {"selm_lib.features": json.dumps({"layout": _layout(backbone), "dtype": dtype})},
    )
    placement: dict[int, tuple[int, int, int]] = {}  # row -> (shard, start, frames)
    total_samples = padded_samples = 0

    from tqdm import tqdm

    bar = tqdm(
        total=len(rows),
        unit="clip",
        desc=f"features {backbone_name} {corpus}",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for batch, audio in _prefetched(batches, paths, cut, channels):
            encoded = backbone.encode(audio)
            lengths = [len(a) for a in audio]
            total_samples += sum(lengths)
            padded_samples += len(lengths) * max(lengths)
            for row, clip, array in zip(batch, audio, encoded, strict=True):
                expected = backbone.num_frames(len(clip))
                if array.shape[-2] != expected:  # an encoder bug must not corrupt the cache
                    raise RuntimeError(
                        f"{paths[row]}: {array.shape[-2]} frames, {expected} expected"
                    )
                stored = _to_storage(array, DTYPES[dtype], paths[row])
                shard, start = writer.add(stored)
                placement[row] = (shard, start, len(stored))
            bar.update(len(batch))
            rate = total_samples / TARGET_SAMPLE_RATE / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(audio_s_per_s=f"{rate:.1f}")
        writer.flush()
    except BaseException:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    bar.close()
    if dist.active:
        placement, shards, total_samples, padded_samples = _merge_ranks(
            tmp, dist, placement, writer.shards, total_samples, padded_samples
        )
        if not dist.main:  # rank 0 writes the index and meta and moves the store in place
            D.barrier()
            return FeatureStore.open(folder), {"skipped": False, "clips": len(placement)}
    else:
        shards = writer.shards

    index = pd.DataFrame(
        [(ids[row], *placement[row]) for row in range(len(rows))], columns=INDEX_COLUMNS
    )
    index.to_csv(tmp / "index.csv", index=False, lineterminator="\n")
    audio_seconds = total_samples / TARGET_SAMPLE_RATE
    meta = {
        "format": FORMAT_VERSION,
        "key": key,
        "backbone_name": backbone_name,
        "backbone": backbone.spec.as_dict(),
        "arch": backbone.arch,
        "layer": backbone.layer,
        "num_layers": backbone.num_layers,
        "hidden_size": backbone.hidden_size,
        "frame_rate": backbone.frame_rate,
        "corpus": corpus,
        "manifest_sha256": manifest_sha,
        "weights_sha256": backbone.fingerprint(),
        "dtype": dtype,
        "layout": _layout(backbone),
        "n_utterances": len(index),
        "n_frames": int(index["frames"].sum()),
        "n_shards": len(shards),
        "shards": shards,
        "max_seconds": backbone.spec.max_seconds,
        "audio_seconds": round(audio_seconds, 4),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    seconds = time.perf_counter() - started
    stats = {
        "skipped": False,
        "clips": len(index),
        "audio_seconds": audio_seconds,
        "seconds": seconds,
        "audio_seconds_per_second": audio_seconds / seconds if seconds > 0 else None,
        "padding_fraction": 1 - total_samples / padded_samples if padded_samples else 0.0,
        "batches": len(batches),
        "device": str(backbone.device),
        "processes": dist.world,
    }
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    _replace_folder(tmp, folder)
    D.barrier()
    _log(
        f"features {backbone_name} {corpus}: {len(index)} clips, {audio_seconds:.1f} audio-s in "
        f"{seconds:.1f} s = {stats['audio_seconds_per_second']:.1f} audio-s/s, padding "
        f"{100 * stats['padding_fraction']:.1f} %"
    )
    return FeatureStore.open(folder), stats


def backbone_specs(features_params: Mapping[str, Any], *, seed: int = 0) -> dict[str, BackboneSpec]:
    """``features.backbones`` of params.yaml as specs.

    Each entry is ``{source: ..., layer: ..., corpora: (optional)}``; ``seed`` (common.seed, the
    random presets' initialisation) and ``features.chunk_seconds`` apply to all of them.
    ``corpora`` is read by :func:`compute_all`.
    """
    entries = features_params.get("backbones")
    if not isinstance(entries, Mapping) or not entries:
        raise BackboneError(
            "features.backbones must map names to {source, layer}, e.g. "
            "{tiny_w2v: {source: 'preset:tiny-wav2vec2', layer: 4}}"
        )
    chunk_seconds = float(features_params["chunk_seconds"])
    specs = {}
    for name, entry in entries.items():
        key = f"features.backbones.{name}"
        if not isinstance(entry, Mapping):
            raise BackboneError(f"{key} must be a mapping with keys source and layer")
        unknown = set(entry) - BACKBONE_KEYS
        if unknown:
            raise BackboneError(
                f"{key}.{sorted(unknown)[0]}: unknown key; valid keys: "
                f"{', '.join(sorted(BACKBONE_KEYS))}"
            )
        for required in ("source", "layer"):
            if required not in entry:
                raise BackboneError(f"{key}.{required} is missing")
        max_seconds = entry.get("max_seconds")
        if max_seconds is not None and not float(max_seconds) > 0:
            raise BackboneError(f"{key}.max_seconds must be positive (or null: whole clips)")
        specs[name] = BackboneSpec(
            source=str(entry["source"]),
            layer=entry["layer"],
            seed=int(seed),
            chunk_seconds=chunk_seconds,
            max_seconds=None if max_seconds is None else float(max_seconds),
            params_key=key,
        )
    return specs


def compute_all(
    features_params: Mapping[str, Any],
    *,
    manifests_dir: str | Path = "artifacts/manifests",
    output_root: str | Path = "artifacts/features",
    corpora: Sequence[str] | None = None,
    backbones: Sequence[str] | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    audio_root: str | Path | None = None,
) -> pd.DataFrame:
    """Every backbone of ``features.backbones`` x every corpus manifest; one stats row per store.

    ``backbones`` (default: all) limits the entries encoded. ``corpora`` defaults to every
    ``<corpus>.csv`` in ``manifests_dir`` (sorted). A backbone entry with its own ``corpora``
    list encodes only those of them (e.g. the SER-Evals backbones skip the SELM-only corpora).
    Each backbone is loaded once; stores whose key matches are skipped. Returns columns backbone,
    layer, corpus, folder, skipped, clips, audio_seconds, seconds, audio_seconds_per_second,
    padding_fraction, batches.
    """
    manifests_dir = Path(manifests_dir)
    if corpora is None:
        corpora = sorted(p.stem for p in manifests_dir.glob("*.csv"))
    if not corpora:
        raise FileNotFoundError(f"{manifests_dir}: no manifests (<corpus>.csv); run curate first")
    manifests = {}
    for corpus in corpora:
        path = manifests_dir / f"{corpus}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: manifest missing; run curate for corpus {corpus!r}")
        manifests[corpus] = pd.read_csv(path, keep_default_na=False)
    options = {
        "batch_seconds": float(features_params["batch_seconds"]),
        "dtype": str(features_params["dtype"]),
        "shard_frames": int(features_params["shard_frames"]),
        "max_padding": float(features_params["max_padding"]),
    }
    rows = []
    for name, spec in backbone_specs(features_params, seed=seed).items():
        if backbones is not None and name not in backbones:
            continue
        wanted = features_params["backbones"][name].get("corpora")
        selected = {c: m for c, m in manifests.items() if wanted is None or c in wanted}
        if not selected:
            continue
        backbone = load_backbone(spec, device=device)
        for corpus, manifest in selected.items():
            folder = store_folder(output_root, name, backbone.layer, corpus)
            _, stats = compute_features(
                backbone,
                manifest,
                folder,
                backbone_name=name,
                progress=progress,
                corpus=corpus,
                audio_root=audio_root,
                **options,
            )
            rows.append(
                {
                    "backbone": name,
                    "layer": backbone.layer,
                    "corpus": corpus,
                    "folder": str(folder),
                    **stats,
                }
            )
        del backbone  # one model in memory at a time
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- helpers
def _run_id(dist: D.Dist) -> str:
    """The temporary store's suffix: the process id alone, or torchrun's run id shared by the
    ranks (they write into one temporary folder)."""
    return os.environ.get("TORCHELASTIC_RUN_ID", "ranks") if dist.active else str(os.getpid())


def _merge_ranks(
    tmp: Path,
    dist: D.Dist,
    placement: dict[int, tuple[int, int, int]],
    shards: list[dict[str, Any]],
    total_samples: int,
    padded_samples: int,
) -> tuple[dict[int, tuple[int, int, int]], list[dict[str, Any]], int, int]:
    """Every rank's shards renumbered into one store (rank 0's first, then rank 1's, ...) and
    their placements with them; the shard files move from ``rank{r}/`` into ``tmp`` on rank 0.
    A clip's bytes are those its rank wrote, so the store holds the same bytes per clip as one
    process writes (only the shard layout differs). Returns the merged placement, shard list and
    sample counts (rank 0; the others get theirs back unchanged)."""
    parts = D.gather_objects((placement, shards, total_samples, padded_samples))
    if not dist.main:
        return placement, shards, total_samples, padded_samples
    merged: dict[int, tuple[int, int, int]] = {}
    renamed: list[dict[str, Any]] = []
    total = padded = 0
    for rank, (rank_placement, rank_shards, samples, pads) in enumerate(parts):
        offset = len(renamed)
        for number, shard in enumerate(rank_shards):
            name = shard_name(offset + number)
            (tmp / f"rank{rank}" / shard["name"]).rename(tmp / name)
            renamed.append({**shard, "name": name})
        for row, (shard, start, frames) in rank_placement.items():
            merged[row] = (offset + shard, start, frames)
        (tmp / f"rank{rank}").rmdir()
        total, padded = total + samples, padded + pads
    return merged, renamed, total, padded


def _corpus_name(manifest: pd.DataFrame) -> str:
    names = sorted({str(c) for c in manifest.get("corpus", pd.Series(dtype=str)) if str(c)})
    if len(names) > 1:
        raise ValueError(f"manifest mixes corpora {names}; a feature store holds one corpus")
    return names[0] if names else "unknown"


def _resolve(path: Any, audio_root: str | Path | None) -> Path:
    path = Path(str(path))
    return path if path.is_absolute() or audio_root is None else Path(audio_root) / path


def _layout(backbone: Backbone) -> str:
    return "frames,layers,hidden" if backbone.layer == "all" else "frames,hidden"


def _to_storage(array: np.ndarray, dtype: np.dtype, path: Path) -> np.ndarray:
    """Encoder output -> stored rows: frames first, cast, checked for float16 overflow."""
    if array.ndim == 3:  # (L+1, frames, hidden) -> (frames, L+1, hidden)
        array = array.transpose(1, 0, 2)
    stored = np.ascontiguousarray(array, dtype=dtype)
    if not np.isfinite(stored).all():
        raise ValueError(
            f"{path}: features overflow {np.dtype(dtype).name} (max |x| = "
            f"{float(np.abs(array).max()):.3g}); set features.dtype: float32"
        )
    return stored


def _prefetched(
    batches: list[list[int]],
    paths: list[Path],
    cut: int | None = None,
    channels: list[int | None] | None = None,
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Yield (batch, audio) while the next batch's audio is read in a background thread; clips
    are cut to their first ``cut`` samples (one window per clip, before encoding) and read from
    their manifest ``channel`` when it names one (else mixed to mono)."""
    channels = channels or [None] * len(paths)

    def read(batch: list[int]) -> list[np.ndarray]:
        return [load_audio(paths[i], channel=channels[i])[:cut] for i in batch]

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, batches[0]) if batches else None
        for position, batch in enumerate(batches):
            audio = pending.result()
            if position + 1 < len(batches):
                pending = pool.submit(read, batches[position + 1])
            yield batch, audio


def _replace_folder(tmp: Path, folder: Path) -> None:
    """Move ``tmp`` to ``folder``, replacing an old store only once the new one is complete."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
    tmp.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
