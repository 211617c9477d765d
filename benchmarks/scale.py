"""Peak memory and time of the feature-store consumers as the store grows (no audio is encoded).

    .venv/bin/python benchmarks/scale.py --quick          # ~5 min on 2 cores: 0.25, 0.5, 1 GB
    .venv/bin/python benchmarks/scale.py                  # 1, 2, 4, 8 GB at D = 768 and 1280
    .venv/bin/python benchmarks/scale.py --sizes 1,2,4 --dims 768 --consumers selm,probe \
        [--model bench|params] [--work DIR] [--keep] [--max-rss-gb 16] [--threads 1] \
        [--package-root /tmp/selm_before] [--out benchmarks/results/scale.json]

Target (issue): with the store growing at least 4x (within 1 %: a store overshoots its size by up
to one clip per corpus), the peak resident memory of every consumer at the largest store is at
most 1.25x its peak at the smallest, and its time grows roughly linearly with the store.

What is built. For every feature width D (``--dims``) and store size (``--sizes``, GiB of float16
frames summed over the corpora) a fake *curated* artifacts tree is written to a work folder:
``manifests/<corpus>.csv`` and ``splits/<corpus>.csv`` in the columns the curate stage writes, and
one feature store per corpus, ``features/bench/layer_4/<corpus>``, written by
``selm_lib.features.store.write_store`` (the code of this checkout). Four corpora share the bytes
(msp_podcast 40 %, meld 30 %, emodb 15 %, emovo 15 %), with their real label sets (from
``label_map.csv``, neutral three times as frequent as another label), 16 clips per speaker, a
speaker-disjoint train / validation / test split and, for msp_podcast, arousal / valence /
dominance ratings (so SELM has all three views). Clip lengths are log-normal around 4.5 s
(sigma 0.55 in log space) clipped to 1-20 s, at 50 frames per second; clips are drawn from a
seeded generator until the corpus's share of the bytes is reached, so a smaller store is a prefix
of a larger one. The first clip of each of the first six speakers of every corpus (train,
validation and test speakers) is 20 s long, whatever the store size: consumers pad a batch to its
longest clip, so without this control a small store's longest clips are shorter than a large
one's and the per-batch memory grows with the store until the 20 s cap is reached (an effect of
the length distribution's tail, not of the corpus size; ``--natural-lengths`` turns the control
off to show it). Frames are N(0, 1) plus a per-corpus and a per-class offset (so every consumer
has something to learn), drawn from a generator seeded by (seed, corpus, clip, D).

What is measured. Each consumer runs in its own fresh process (``scale.py --child CONSUMER
--work TREE``), which loads the ``params.yaml`` of the measured package, points
``common.output_root`` at the tree, selects the ``bench`` backbone (``preset:tiny-wav2vec2``,
layer 4; never loaded, only its stores are read) and calls the package's own stage functions:

1. ``selm``: ``selm_lib.stages.train_selm.train_selm`` for one epoch on the four corpora
   (triplets, tokenizer, model, the epoch, validation scoring, sample generations);
2. ``baseline``: ``read_curated`` and the classification baseline of
   ``selm_lib.stages.eval_ood`` (``train_baseline`` or, in older code, ``_baseline``): pooling of
   every clip and one training epoch;
3. ``probe``: ``selm_lib.serevals.protocol.run_backbone`` over the four corpora: per-corpus
   normalisation, one probe epoch per corpus, in-domain scoring and the OOD scoring of the pairs
   of ``serevals.clusters`` (emovo and meld share the paper's main cluster).

Peak RSS is the child's own ``VmHWM`` (its high-water mark since exec, imports included; read
from ``/proc/self/status`` at the end of the child). ``os.wait4``'s ``ru_maxrss`` is kept as
``wait4_maxrss_gb`` but not used: it also counts the parent's resident memory at fork time,
which grows while the parent writes the stores (up to a shard), and it inflated the peaks of
earlier runs of this script at the larger sizes. The
time is the wall time of the stage call inside the child (imports and parameter loading
excluded; ``process_seconds`` has the whole child). The parent also samples the child's
``VmRSS`` and kills it above ``--max-rss-gb``; that size is then reported as over the limit and
larger sizes of that consumer are skipped. Stores are read from the page cache when they fit
(they were just written), so the times are compute and copying, not disk.

``--model bench`` (the default of ``--quick``) shrinks the models (LM 32 wide and 1 layer,
projection 32, 4 + 4 prefix tokens, probe and baseline hidden 64); ``--model params`` (the default
otherwise) keeps the sizes of ``params.yaml``. Every consumer trains one epoch, on every view
(``serevals.probe.warmup`` is 0.15, so that older code such as commit 1457144, whose OneCycle
schedule divided by zero at exactly one warm-up step, can be measured too; the package now
nudges that case to two steps).

The children import a copy of the measured package (``selm_lib/`` and ``params.yaml``) taken when
the run starts, so edits to the checkout during a long run do not mix code versions (the JSON
says whether the checkout changed meanwhile). ``--package-root DIR`` measures another checkout
(e.g. a ``git worktree`` of an older commit) the same way. The stores are written by this
checkout's code either way (plain safetensors shards). Each child runs torch on ``--threads``
threads (default 1: on a shared 2-core box two threads stall each other's barriers whenever
another process holds a core, which made wall times swing by 5x); ``cpu_seconds`` is reported
beside the wall time.

Results go to ``--out`` (default ``benchmarks/results/scale.json``): per consumer the parallel
lists ``dim``, ``store_gb``, ``peak_rss_gb`` and ``seconds`` (plus clips, frames, CPU seconds, the
resident set after the imports, status and a result summary), and per D the ratio peak RSS
largest / smallest, the store growth, whether the 1.25x target held, a linear fit of the seconds
and ``time_roughly_linear`` (seconds per GB at the largest store at most 1.5x the smallest's; a
fixed cost makes it below 1). GB are GiB (2**30 bytes). Each point is one run: on a shared box a
single peak varied by up to 0.7 GiB between identical runs (allocator and background-thread
timing), so read a ratio near 1.25 with that in mind. The work folder
(default: a new folder under /tmp) is deleted afterwards unless ``--keep``; with ``--work DIR`` a
tree already written there with the same specification is reused.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
GIB = 2**30
CONSUMERS = ("selm", "baseline", "probe")
BACKBONE = "bench"
LAYER = 4
FRAMES_PER_SECOND = 50
DTYPE = "float16"
CORPORA = {"msp_podcast": 0.40, "meld": 0.30, "emodb": 0.15, "emovo": 0.15}  # share of bytes
ROLES = {"msp_podcast": "train", "meld": "train", "emodb": "train", "emovo": "none"}
VAD_CORPORA = ("msp_podcast",)  # the corpora with arousal / valence / dominance (scale 1-7)
CLIP_MEDIAN_S, CLIP_SIGMA, CLIP_RANGE_S = 4.5, 0.55, (1.0, 20.0)
CLIPS_PER_SPEAKER = 16
LONG_CLIP_SPEAKERS = 6  # speakers 0-5 (train, validation and test ones) each have one 20 s clip
QUICK = {"sizes": [0.25, 0.5, 1.0], "dims": [768], "model": "bench"}
FULL = {"sizes": [1.0, 2.0, 4.0, 8.0], "dims": [768, 1280], "model": "params"}
TARGET_RSS_RATIO = 1.25
TARGET_STORE_GROWTH = 4.0
GROWTH_SLACK = 0.99  # a store overshoots its size by up to a clip per corpus: 4x within 1 %
LINEAR_TOLERANCE = 1.5  # seconds per GB at the largest store at most this times the smallest's
PROBE_WARMUP = 0.15  # serevals.probe.warmup for one epoch (see configure)
CUT_SECONDS = 30.0  # serevals.max_seconds and the stores' max_seconds (no clip is that long)
TREE_VERSION = 2  # bump when the generated data change, so reused trees are rebuilt
RESULT_TAG = "SCALE_RESULT "
BENCH_MODEL = {  # --model bench: small enough that --quick fits in ~5 minutes on 2 cores
    "selm": {
        "tiny_lm": {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 64},
        "audio_prefix_len": 4,
        "text_prefix_len": 4,
        "projection_dim": 32,
        "mapper_layers": 1,
        "mapper_heads": 2,
    },
    "baseline_hidden": 64,
    "probe_hidden": 64,
}


class BenchmarkError(RuntimeError):
    """A setup problem of the benchmark itself; the message says what to fix."""


# ----------------------------------------------------------------------------- helpers


def gib(value: float) -> float:
    return round(value / GIB, 4)


def vm_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process in bytes (empty when it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def code_info(root: Path) -> dict[str, Any]:
    """Which code was measured: commit, whether the tree differs from it, a hash of its sources."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout if done.returncode == 0 else ""

    # porcelain lines are "XY path": the first column may be a space, so no strip before [3:]
    changed = [line[3:] for line in git("status", "--porcelain", "selm_lib").splitlines()]
    return {
        "package_root": str(root),
        "git_commit": git("rev-parse", "HEAD").strip() or None,
        "uncommitted_selm_lib_changes": changed,
        "selm_lib_sources_sha256": sources_sha256(root),
    }


def sources_sha256(root: Path) -> str:
    """One hash over the package's Python sources and params.yaml (what a child imports)."""
    digest = hashlib.sha256()
    for path in [*sorted((root / "selm_lib").rglob("*.py")), root / "params.yaml"]:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def snapshot(root: Path, work: Path) -> Path:
    """A copy of the measured package (selm_lib/ and params.yaml) for the children to import, so
    edits to the checkout during a long run do not change the code between measurements."""
    dest = work / "package"
    shutil.rmtree(dest, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "selm_lib", dest / "selm_lib", ignore=ignore)
    shutil.copy2(root / "params.yaml", dest / "params.yaml")
    return dest


def machine() -> dict[str, Any]:
    total = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total = gib(int(meminfo[0].split()[1]) * 1024)
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "memory_gb": total,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # other work on the box
    }


# ----------------------------------------------------------------------------- the fake tree


def clip_frames(rng: np.random.Generator) -> int:
    """One clip's frame count: log-normal seconds around CLIP_MEDIAN_S, clipped to CLIP_RANGE_S."""
    seconds = float(np.clip(rng.lognormal(np.log(CLIP_MEDIAN_S), CLIP_SIGMA), *CLIP_RANGE_S))
    return max(1, int(round(seconds * FRAMES_PER_SECOND)))


def corpus_labels(corpus: str) -> tuple[list[dict[str, str]], np.ndarray]:
    """The corpus's labels from the package's label map and the probability of each."""
    from selm_lib.data.labels import label_table

    table = label_table()
    rows = table[table["corpus"] == corpus][["label", "emotion", "sentiment", "serevals8"]]
    if rows.empty:
        raise BenchmarkError(f"label_map.csv has no labels for corpus '{corpus}'")
    weights = np.where(rows["emotion"] == "neutral", 3.0, 1.0)
    return rows.to_dict("records"), weights / weights.sum()


def plan_corpus(corpus: str, target_bytes: int, dim: int, seed: int, long_clips: bool) -> Any:
    """The clips of one corpus (a DataFrame, manifest columns plus ``frames``) up to its bytes.
    With ``long_clips`` the first clip of each of the first LONG_CLIP_SPEAKERS speakers is as long
    as a clip may be (the same generator draws are made either way)."""
    import pandas as pd

    position = list(CORPORA).index(corpus)
    rng = np.random.default_rng([seed, position])
    labels, probabilities = corpus_labels(corpus)
    rows, total = [], 0
    while total < target_bytes or len(rows) < 2 * CLIPS_PER_SPEAKER:
        i = len(rows)
        frames = clip_frames(rng)
        if (
            long_clips
            and i % CLIPS_PER_SPEAKER == 0
            and i // CLIPS_PER_SPEAKER < LONG_CLIP_SPEAKERS
        ):
            frames = int(CLIP_RANGE_S[1] * FRAMES_PER_SECOND)
        label = labels[int(rng.choice(len(labels), p=probabilities))]
        vad = np.clip(np.round(rng.normal(4.0, 1.5, size=3) * 2) / 2, 1.0, 7.0)
        speaker = i // CLIPS_PER_SPEAKER
        uid = f"{corpus}_{i:06d}"
        has_vad = corpus in VAD_CORPORA
        rows.append(
            {
                "path": f"bench/{corpus}/{uid}.wav",
                "role": ROLES[corpus],
                "corpus": corpus,
                "utterance_id": uid,
                "speaker": f"{corpus}_spk{speaker:04d}",
                "gender": "FM"[speaker % 2],
                "label": label["label"],
                "emotion": label["emotion"],
                "sentiment": label["sentiment"],
                "valence": vad[0] if has_vad else np.nan,
                "arousal": vad[1] if has_vad else np.nan,
                "dominance": vad[2] if has_vad else np.nan,
                "duration_s": round(frames / FRAMES_PER_SECOND, 4),
                "sample_rate": 16000,
                "channels": 1,
                "quarantine": "",
                "serevals8": label["serevals8"],
                "eval_class": "",
                "frames": frames,
                "speaker_index": speaker,
            }
        )
        total += frames * dim * 2
    return pd.DataFrame(rows)


def split_of(speaker_index: int) -> str:
    """Speaker-disjoint split: one speaker in six validation, one in six test."""
    return {1: "validation", 4: "test"}.get(speaker_index % 6, "train")


def offsets(seed: int, dim: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-corpus (channel) and per-class mean offsets of the frames."""
    from selm_lib.data.labels import SEREVALS_CLASSES

    rng = np.random.default_rng([seed, dim, 999])
    corpus = {c: (0.3 * rng.standard_normal(dim)).astype(np.float32) for c in CORPORA}
    classes = {c: (0.5 * rng.standard_normal(dim)).astype(np.float32) for c in SEREVALS_CLASSES}
    return corpus, classes


def clip_items(plan: Any, corpus: str, dim: int, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """``(utterance_id, (frames, D) float16)`` per clip, generated lazily and deterministically."""
    by_corpus, by_class = offsets(seed, dim)
    position = list(CORPORA).index(corpus)
    for i, (uid, frames, cls) in enumerate(
        zip(plan["utterance_id"], plan["frames"], plan["serevals8"], strict=True)
    ):
        rng = np.random.default_rng([seed, position, i, dim])
        array = rng.standard_normal((int(frames), dim), dtype=np.float32)
        array += by_corpus[corpus] + by_class[cls]
        yield uid, array.astype(np.float16)


def tree_spec(
    dim: int, size_gb: float, seed: int, shard_frames: int, long_clips: bool
) -> dict[str, Any]:
    return {
        "version": TREE_VERSION,
        "dim": dim,
        "size_gb": size_gb,
        "seed": seed,
        "corpora": CORPORA,
        "clip_seconds": {"median": CLIP_MEDIAN_S, "sigma": CLIP_SIGMA, "range": CLIP_RANGE_S},
        "frames_per_second": FRAMES_PER_SECOND,
        "clips_per_speaker": CLIPS_PER_SPEAKER,
        "long_clips": LONG_CLIP_SPEAKERS if long_clips else 0,
        "dtype": DTYPE,
        "shard_frames": shard_frames,
    }


def build_tree(tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write (or reuse) the fake curated tree of one (D, size); returns its description."""
    done = tree / "spec.json"
    if done.is_file():
        saved = json.loads(done.read_text())
        if saved.get("spec") == json.loads(json.dumps(spec)):
            print(f"  reusing {tree}", flush=True)
            return saved["store"]
        shutil.rmtree(tree)
    elif tree.exists():
        shutil.rmtree(tree)  # an unfinished tree of an interrupted run
    try:
        from selm_lib.features.store import store_folder, write_store
    except ImportError as error:
        raise BenchmarkError(
            f"{PROJECT}/selm_lib/features/store.py has no write_store ({error}); the benchmark "
            "writes its stores with it"
        ) from None
    dim, seed = spec["dim"], spec["seed"]
    target = spec["size_gb"] * GIB
    need = target * 1.05 + 2**28
    free = shutil.disk_usage(tree.parent).free
    if free < need:
        raise BenchmarkError(
            f"{tree.parent} has {gib(free)} GiB free, a {spec['size_gb']} GiB store needs about "
            f"{gib(need)} GiB: pass --work on a larger disk or smaller --sizes"
        )
    root = tree / "artifacts"
    for folder in ("manifests", "splits"):
        (root / folder).mkdir(parents=True)
    started = time.perf_counter()
    corpora: dict[str, Any] = {}
    for corpus, share in CORPORA.items():
        plan = plan_corpus(corpus, int(round(target * share)), dim, seed, spec["long_clips"] > 0)
        manifest = plan.drop(columns=["frames", "speaker_index"])
        manifest.to_csv(root / "manifests" / f"{corpus}.csv", index=False, lineterminator="\n")
        splits = plan[["utterance_id", "speaker"]].assign(
            split=[split_of(s) for s in plan["speaker_index"]],
            fold=plan["speaker_index"] % 5,
        )
        splits.to_csv(root / "splits" / f"{corpus}.csv", index=False, lineterminator="\n")
        meta = {
            "corpus": corpus,
            "backbone_name": BACKBONE,
            "layer": LAYER,
            "frame_rate": float(FRAMES_PER_SECOND),
            "layout": "frames,hidden",
            "arch": "synthetic (benchmarks/scale.py; no audio was encoded)",
            "max_seconds": CUT_SECONDS,
        }
        folder = store_folder(root / "features", BACKBONE, LAYER, corpus)
        store = write_store(
            folder,
            clip_items(plan, corpus, dim, seed),
            meta,
            dtype=DTYPE,
            shard_frames=spec["shard_frames"],
        )
        frames = int(plan["frames"].sum())
        corpora[corpus] = {
            "clips": len(store),
            "frames": frames,
            "bytes": frames * dim * 2,
            "speakers": int(plan["speaker_index"].max()) + 1,
            "longest_clip_seconds": round(int(plan["frames"].max()) / FRAMES_PER_SECOND, 2),
            "shards": int(store.meta.get("n_shards", 0)),
        }
        store.close()
    description = {
        "dim": dim,
        "target_gb": spec["size_gb"],
        "store_gb": gib(sum(c["bytes"] for c in corpora.values())),
        "clips": sum(c["clips"] for c in corpora.values()),
        "frames": sum(c["frames"] for c in corpora.values()),
        "mean_clip_seconds": round(
            sum(c["frames"] for c in corpora.values())
            / sum(c["clips"] for c in corpora.values())
            / FRAMES_PER_SECOND,
            3,
        ),
        "corpora": corpora,
        "write_seconds": round(time.perf_counter() - started, 1),
    }
    done.write_text(json.dumps({"spec": spec, "store": description}, indent=2) + "\n")
    return description


# ----------------------------------------------------------------------------- the children


def configure(package_root: Path, tree: Path, model: str) -> dict[str, Any]:
    """The measured package's params.yaml pointed at the fake tree, one epoch everywhere."""
    from selm_lib.config import sections
    from selm_lib.config.params import load_params, validate

    params = load_params(package_root / "params.yaml")
    corpora = list(CORPORA)
    params["common"].update(
        output_root=str(tree / "artifacts"), data_root=str(tree / "data"), device="cpu"
    )
    entry: dict[str, Any] = {"source": "preset:tiny-wav2vec2", "layer": LAYER}
    if "max_seconds" in {f.name for f in dataclasses.fields(sections.BackboneEntry)}:
        entry["max_seconds"] = CUT_SECONDS  # the SER-Evals cut (validated against serevals)
    params["features"]["backbones"] = {BACKBONE: entry}
    params["features"]["dtype"] = DTYPE
    params["selm"].update(backbone=BACKBONE, train_corpora=corpora)
    params["train_selm"]["epochs"] = 1
    params["eval_ood"]["baseline"]["epochs"] = 1
    params["serevals"].update(corpora=corpora, max_seconds=CUT_SECONDS)
    params["serevals"]["probe"]["epochs"] = 1
    # One epoch of n batches at warmup 0.1 makes torch's OneCycleLR divide by zero when n = 10
    # (its warm-up phase ends at step pct_start * n - 1 = 0); 0.15 * n is never 1.
    params["serevals"]["probe"]["warmup"] = PROBE_WARMUP
    params["serevals_sweep"]["backbones"] = [BACKBONE]
    if model == "bench":
        params["selm"].update(json.loads(json.dumps(BENCH_MODEL["selm"])))
        params["eval_ood"]["baseline"]["hidden"] = BENCH_MODEL["baseline_hidden"]
        params["serevals"]["probe"]["hidden"] = BENCH_MODEL["probe_hidden"]
    return validate(params, source="benchmarks/scale.py (params.yaml with its overrides)")


def consume_selm(params: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    from selm_lib.stages.train_selm import train_selm

    root = Path(params["common"]["output_root"])
    for stale in ("selm", "checkpoints"):  # no resume from an earlier run's checkpoint
        shutil.rmtree(root / stale, ignore_errors=True)
    sections = [params[s] for s in ("common", "features", "selm", "train_selm")]
    kwargs = {}
    if "log" in inspect.signature(train_selm).parameters:
        kwargs["log"] = lambda line: print(line, file=sys.stderr, flush=True)
    return lambda: selm_summary(train_selm(*sections, **kwargs))


def selm_summary(trained: Any) -> dict[str, Any]:
    metrics = trained.metrics
    return {
        "epochs": metrics.get("epochs"),
        "train_triplets": metrics.get("train_triplets"),
        "validation_triplets": metrics.get("validation_triplets"),
        "train_loss": metrics.get("train_loss"),
        "val_accuracy_by_view": metrics.get("val_accuracy_by_view"),
        "chance_accuracy_by_view": metrics.get("chance_accuracy_by_view"),
    }


def consume_baseline(params: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    import selm_lib.stages.eval_ood as module
    from selm_lib.data.curate import read_curated

    trainer = getattr(module, "train_baseline", None) or getattr(module, "_baseline", None)
    if trainer is None:
        raise BenchmarkError(
            "selm_lib.stages.eval_ood has neither train_baseline nor _baseline; update "
            "consume_baseline in benchmarks/scale.py to the baseline's new entry point"
        )
    sections = [params[s] for s in ("common", "features", "selm")]

    def run() -> dict[str, Any]:
        manifests, splits = read_curated(params["common"])
        out = trainer(*sections, manifests, splits, params["eval_ood"])
        return baseline_summary(trainer.__name__, out)

    return run


def baseline_summary(entry_point: str, out: Any) -> dict[str, Any]:
    history = out[2] if isinstance(out, tuple) and len(out) > 2 else []
    last = history[-1] if history else {}
    return {
        "entry_point": entry_point,
        "classes": len(out[1]) if isinstance(out, tuple) and len(out) > 1 else None,
        "epochs": len(history),
        "val_accuracy": round(float(last["val_accuracy"]), 4) if "val_accuracy" in last else None,
    }


def consume_probe(params: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    from selm_lib.serevals.protocol import run_backbone

    return lambda: probe_summary(*run_backbone(params, BACKBONE)[:2])


def probe_summary(results: Any, predictions: Any) -> dict[str, Any]:
    in_domain = results[results["kind"] == "in_domain"]
    ood = results[(results["kind"] == "ood") & (results["variant"] == "none")]
    return {
        "scores": len(results),
        "predictions": len(predictions),
        "in_domain_macro_f1": round(float(in_domain["macro_f1"].mean()), 4),
        "ood_pairs": len(ood),
        "ood_macro_f1": round(float(ood["macro_f1"].mean()), 4) if len(ood) else None,
    }


# Each returns the measured call with the stage's modules already imported (imports not timed).
CONSUME = {"selm": consume_selm, "baseline": consume_baseline, "probe": consume_probe}


def child_main(args: argparse.Namespace) -> int:
    """One measurement in this (fresh) process; the result is the last stdout line."""
    package_root = Path(args.package_root).resolve()
    sys.path.insert(0, str(package_root))
    import selm_lib

    found = Path(selm_lib.__file__).resolve()
    if package_root not in found.parents:
        raise BenchmarkError(f"imported selm_lib from {found}, not from {package_root}")
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    params = configure(package_root, Path(args.work).resolve(), args.model)
    call = CONSUME[args.child](params)
    before = vm_status()
    started, cpu = time.perf_counter(), cpu_seconds()
    result = call()
    seconds = time.perf_counter() - started
    out = {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds() - cpu, 2),
        "rss_after_import_gb": gib(before.get("VmRSS", 0)),
        # VmHWM: this process's own high-water mark since exec. ru_maxrss (ours, or the
        # parent's wait4) also counts the parent's resident memory at fork time, which the
        # parent's store writing inflates by up to a shard.
        "vmhwm_gb": gib(vm_status().get("VmHWM", 0)),
        "self_peak_rss_gb": gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "torch_threads": torch.get_num_threads(),
        "result": result,
    }
    print(RESULT_TAG + json.dumps(out), flush=True)
    return 0


def run_child(consumer: str, tree: Path, package: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one consumer in a fresh process; its peak RSS is the child's own VmHWM (high-water
    mark since exec, reported by the child), not ``os.wait4``'s ``ru_maxrss``, which also counts
    the parent's resident memory at fork time."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        consumer,
        "--work",
        str(tree),
        "--package-root",
        str(package),
        "--model",
        args.model,
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0")
    if args.threads > 0:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    limit = args.max_rss_gb * GIB
    log_out, log_err = tree / f"{consumer}.stdout", tree / f"{consumer}.stderr"
    started = time.perf_counter()
    with open(log_out, "w") as out, open(log_err, "w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=PROJECT)
        killed, sampled = False, 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            rss = vm_status(process.pid).get("VmRSS", 0)
            sampled = max(sampled, rss)
            if rss > limit and not killed:
                killed = True
                os.kill(process.pid, signal.SIGKILL)
            time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    entry: dict[str, Any] = {
        "process_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_gb": gib(sampled),  # replaced by the child's VmHWM when it reports one
        "wait4_maxrss_gb": gib(usage.ru_maxrss * 1024),  # KiB on Linux; includes the fork
        "sampled_peak_rss_gb": gib(sampled),
    }
    if killed:
        return {
            **entry,
            "status": f"over_rss_limit (killed above {args.max_rss_gb} GiB)",
            "seconds": None,
        }
    lines = [line for line in log_out.read_text().splitlines() if line.startswith(RESULT_TAG)]
    if process.returncode != 0 or not lines:
        tail = log_err.read_text().strip().splitlines()[-15:]
        message = "\n    ".join(tail) or "(no output)"
        print(f"  {consumer}: child failed (exit {process.returncode}):\n    {message}", flush=True)
        return {**entry, "status": f"failed (exit {process.returncode})", "error": tail}
    reported = json.loads(lines[-1][len(RESULT_TAG) :])
    if reported.get("vmhwm_gb"):
        entry["peak_rss_gb"] = reported["vmhwm_gb"]
    return {**entry, "status": "ok", **reported}


# ----------------------------------------------------------------------------- summary


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One consumer's parallel lists and, per D, the ratios the target is about."""
    keys = ("dim", "store_gb", "peak_rss_gb", "seconds", "clips", "frames")
    extra = ("process_seconds", "cpu_seconds", "rss_after_import_gb", "status", "result")
    out: dict[str, Any] = {k: [r.get(k) for r in runs] for k in keys + extra}
    out["seconds_per_gb"] = [
        round(r["seconds"] / r["store_gb"], 2) if r.get("seconds") else None for r in runs
    ]
    by_dim, verdicts = {}, []
    for dim in sorted({r["dim"] for r in runs}):
        ok = [r for r in runs if r["dim"] == dim and r["status"] == "ok"]
        complete = len(ok) == len([r for r in runs if r["dim"] == dim])
        entry: dict[str, Any] = {"sizes_measured": len(ok), "all_sizes_ok": complete}
        if len(ok) >= 2:
            small, large = ok[0], ok[-1]
            growth = large["store_gb"] / small["store_gb"]
            ratio = large["peak_rss_gb"] / small["peak_rss_gb"]
            per_gb = (large["seconds"] / large["store_gb"]) / (small["seconds"] / small["store_gb"])
            slope, intercept = np.polyfit(
                [r["store_gb"] for r in ok], [r["seconds"] for r in ok], 1
            )
            meets = bool(
                complete
                and growth >= TARGET_STORE_GROWTH * GROWTH_SLACK
                and ratio <= TARGET_RSS_RATIO
            )
            entry.update(
                store_growth=round(growth, 3),
                rss_ratio_largest_smallest=round(ratio, 3),
                rss_growth_gb=round(large["peak_rss_gb"] - small["peak_rss_gb"], 3),
                meets_rss_target=meets,
                seconds_per_gb_ratio_largest_smallest=round(per_gb, 3),
                time_roughly_linear=bool(per_gb <= LINEAR_TOLERANCE),
                seconds_linear_fit={"per_gb": round(slope, 2), "intercept": round(intercept, 2)},
            )
            verdicts.append(meets)
        else:
            entry["meets_rss_target"] = False
            verdicts.append(False)
        by_dim[str(dim)] = entry
    out["by_dim"] = by_dim
    ratios = [
        e["rss_ratio_largest_smallest"]
        for e in by_dim.values()
        if "rss_ratio_largest_smallest" in e
    ]
    out["rss_ratio_largest_smallest"] = max(ratios) if ratios else None
    out["meets_rss_target"] = bool(verdicts) and all(verdicts)
    return out


def print_tables(consumers: dict[str, dict[str, Any]]) -> None:
    for name, data in consumers.items():
        print(f"\n{name}")
        print(f"  {'D':>5} {'store GB':>9} {'peak RSS GB':>12} {'seconds':>9} {'s/GB':>7}  status")
        rows = zip(
            data["dim"],
            data["store_gb"],
            data["peak_rss_gb"],
            data["seconds"],
            data["seconds_per_gb"],
            data["status"],
            strict=True,
        )
        for dim, size, rss, seconds, per_gb, status in rows:
            rss_text = f"{rss:.3f}" if rss is not None else "-"
            sec_text = f"{seconds:.1f}" if seconds is not None else "-"
            per_text = f"{per_gb:.1f}" if per_gb is not None else "-"
            print(f"  {dim:>5} {size:>9.3f} {rss_text:>12} {sec_text:>9} {per_text:>7}  {status}")
        for dim, entry in data["by_dim"].items():
            if "rss_ratio_largest_smallest" in entry:
                print(
                    f"  D={dim}: RSS x{entry['rss_ratio_largest_smallest']} for store "
                    f"x{entry['store_growth']} (target <= {TARGET_RSS_RATIO}: "
                    f"{'met' if entry['meets_rss_target'] else 'NOT met'}); s/GB largest/smallest "
                    f"{entry['seconds_per_gb_ratio_largest_smallest']}"
                )


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="0.25, 0.5, 1 GB at D=768, small models"
    )
    parser.add_argument("--sizes", help="store sizes in GiB, comma-separated (default 1,2,4,8)")
    parser.add_argument("--dims", help="feature widths D, comma-separated (default 768,1280)")
    parser.add_argument(
        "--consumers", default=",".join(CONSUMERS), help="comma-separated: selm,baseline,probe"
    )
    parser.add_argument(
        "--model", choices=("bench", "params"), help="model sizes (default: bench with --quick)"
    )
    parser.add_argument(
        "--natural-lengths",
        action="store_true",
        help="no fixed 20 s clips: the longest clip then grows with the store",
    )
    parser.add_argument("--seed", type=int, default=34, help="seed of the generated data")
    parser.add_argument("--work", help="work folder (default: a new folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument(
        "--max-rss-gb", type=float, default=16.0, help="kill a child whose RSS exceeds this"
    )
    parser.add_argument(
        "--package-root", default=str(PROJECT), help="checkout whose selm_lib is measured"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per child (0: torch's default)"
    )
    parser.add_argument("--out", default=str(PROJECT / "benchmarks" / "results" / "scale.json"))
    parser.add_argument("--child", choices=CONSUMERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    try:
        args.sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else mode["sizes"]
        args.dims = [int(d) for d in args.dims.split(",")] if args.dims else mode["dims"]
    except ValueError:
        parser.error("--sizes takes numbers (GiB) and --dims integers, comma-separated")
    if any(s <= 0 for s in args.sizes) or any(d <= 0 for d in args.dims):
        parser.error("--sizes and --dims must be positive")
    args.sizes = sorted(set(args.sizes))
    args.consumers = [c.strip() for c in args.consumers.split(",") if c.strip()]
    unknown = sorted(set(args.consumers) - set(CONSUMERS))
    if unknown or not args.consumers:
        parser.error(f"--consumers: unknown {unknown}; choose from {', '.join(CONSUMERS)}")
    args.model = args.model or mode["model"]
    args.package_root = str(Path(args.package_root).resolve())
    if not (Path(args.package_root) / "selm_lib").is_dir():
        parser.error(f"--package-root {args.package_root} holds no selm_lib package")
    if args.child and not args.work:
        parser.error("--child needs --work (the tree to read)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    sys.path.insert(0, str(PROJECT))  # the stores are written by this checkout's code
    import yaml

    shard_frames = int(
        yaml.safe_load((PROJECT / "params.yaml").read_text())["features"]["shard_frames"]
    )
    created = args.work is None
    work = Path(args.work or tempfile.mkdtemp(prefix="selm_scale_", dir="/tmp")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    code = code_info(Path(args.package_root))
    package = snapshot(Path(args.package_root), work)
    print(
        f"scale: sizes {args.sizes} GiB, D {args.dims}, consumers {args.consumers}, model "
        f"{args.model}, package {args.package_root}, work {work}",
        flush=True,
    )
    stores: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in args.consumers}
    failed = False
    started = time.perf_counter()
    try:
        for dim in args.dims:
            over: set[str] = set()
            for size in args.sizes:
                tree = work / f"d{dim}_{size:g}gb"
                spec = tree_spec(dim, size, args.seed, shard_frames, not args.natural_lengths)
                tree.mkdir(parents=True, exist_ok=True)
                store = build_tree(tree, spec)
                stores.append(store)
                print(
                    f"D={dim} {store['store_gb']:.3f} GiB: {store['clips']} clips, "
                    f"{store['frames']} frames (written in {store['write_seconds']} s)",
                    flush=True,
                )
                for consumer in args.consumers:
                    base = {k: store[k] for k in ("dim", "store_gb", "clips", "frames")}
                    if consumer in over:
                        status = "skipped (a smaller store exceeded --max-rss-gb)"
                        runs[consumer].append({**base, "status": status, "peak_rss_gb": None})
                        continue
                    entry = {**base, **run_child(consumer, tree, package, args)}
                    runs[consumer].append(entry)
                    failed |= entry["status"].startswith("failed")
                    if entry["status"].startswith("over_rss_limit"):
                        over.add(consumer)
                    print(
                        f"  {consumer:<8} peak RSS {entry['peak_rss_gb']:.3f} GiB, "
                        f"{entry.get('seconds')} s ({entry['status']})",
                        flush=True,
                    )
                if not args.keep:
                    shutil.rmtree(tree)
    finally:
        if not args.keep:
            if created:
                shutil.rmtree(work, ignore_errors=True)
            else:
                shutil.rmtree(package, ignore_errors=True)
                for dim in args.dims:
                    for size in args.sizes:
                        shutil.rmtree(work / f"d{dim}_{size:g}gb", ignore_errors=True)

    consumers = {name: summarise(entries) for name, entries in runs.items()}
    code["measured_snapshot_of_it"] = True
    code["changed_during_run"] = (
        sources_sha256(Path(args.package_root)) != code["selm_lib_sources_sha256"]
    )
    report = {
        "benchmark": "scale",
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "targets": {
            "rss_ratio_largest_smallest_max": TARGET_RSS_RATIO,
            "store_growth_min": TARGET_STORE_GROWTH,
            "time": f"roughly linear: seconds per GB at the largest store <= {LINEAR_TOLERANCE}x "
            "the smallest's",
        },
        "meets_rss_target": {name: data["meets_rss_target"] for name, data in consumers.items()},
        "settings": {
            "mode": "quick" if args.quick else "full",
            "sizes_gb": args.sizes,
            "dims": args.dims,
            "consumers": args.consumers,
            "model": args.model,
            "model_overrides": BENCH_MODEL if args.model == "bench" else None,
            "epochs": 1,
            "probe_warmup": PROBE_WARMUP,
            "seed": args.seed,
            "corpora_share_of_bytes": CORPORA,
            "clip_seconds": {
                "distribution": "log-normal",
                "median": CLIP_MEDIAN_S,
                "sigma_log": CLIP_SIGMA,
                "clipped_to": CLIP_RANGE_S,
            },
            "long_clips_per_corpus": 0 if args.natural_lengths else LONG_CLIP_SPEAKERS,
            "frames_per_second": FRAMES_PER_SECOND,
            "dtype": DTYPE,
            "shard_frames": shard_frames,
            "max_rss_gb": args.max_rss_gb,
            "torch_threads_per_child": args.threads or "torch default",
            "gb": "GiB (2**30 bytes)",
        },
        "code": code,
        "store_writer_sources_sha256": code_info(PROJECT)["selm_lib_sources_sha256"],
        "machine": machine(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "stores": stores,
        "consumers": consumers,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_tables(consumers)
    print(f"\nwrote {out} in {report['total_seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        sys.exit(f"scale.py: {error}")
