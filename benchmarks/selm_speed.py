"""SELM training from the feature cache vs. with the encoder on the fly; padding; extraction speed.

    .venv/bin/python benchmarks/selm_speed.py [--steps 5] [--warmup 2] [--sizes base,tiny] \
        [--batch-size 8] [--device cpu] [--threads 0] [--out benchmarks/results/selm_speed.json]

Targets (issue): training from the cache at least 5x faster per step than running the frozen
encoder in the same step, at base sizes; padding of the length-grouped encoder batches
(``features.plan_batches``) under 10 %.

Two sizes, all weights random (nothing is downloaded):

* ``base``: a wav2vec2-base-sized encoder (hidden 768, 12 layers, 512-channel GroupNorm CNN; SELM's
  layer 4, so only 4 transformer layers run), a GPT-2 base-sized LM (n_embd 768, 12 layers, 12
  heads, vocab 50257, 1024 positions, tied head) and paper-like mappers (projection 768, prefix
  40 audio + 40 text, 4 mapper layers, 8 heads).
* ``tiny``: the package defaults of ``params.yaml`` (``features.backbones[selm.backbone]``: preset
  tiny-wav2vec2 layer 4; ``selm``: preset tiny-gpt2 with ``selm.tiny_lm``, prefix 16/8,
  projection 128, 2 mapper layers, 4 heads).

Per size, three parts, each in its own process so that its peak resident memory (``ru_maxrss``)
is its own:

1. ``extract``: ``compute_features`` over ``batch_size * (warmup + steps)`` synthetic wav clips of
   2-4 s (written once to a temporary folder) with ``features.batch_seconds`` / ``features.dtype``
   from params.yaml: audio-seconds per second end to end (audio loading, length batching,
   encoding, float16 shards) and the padding of its batches. The store it writes feeds part 2.
2. ``train_cache``: the SELM training step as ``selm_lib.selm.train.fit`` runs it (collate, forward,
   view-weighted loss, backward through the frozen LM, grad clipping, AdamW step) on batches of
   ``--batch-size`` clips whose features are read from the store at each step (lazily, as
   ``fit`` reads them; the read is part of the step time). The encoder is never loaded in this
   process.
3. ``train_online``: the same batches and step, but each step first encodes the batch's
   waveforms (already decoded in memory, so no file reading is charged to it) with the encoder
   under ``torch.inference_mode``.

The first ``--warmup`` steps are excluded; the median of the next ``--steps`` steps is reported
and the speed-up is median(online) / median(cache). The same ratio of the minima and of the
process CPU seconds per step (all threads) is reported too: on a shared 2-core box another busy
process stalls torch's thread barriers and inflates wall times (see ``load_average`` in the
JSON). Both parts see the same clips in the same random batches (a seeded permutation, as an epoch
of ``fit`` would).

Padding (no model): ~200 clip lengths drawn like the default synthetic data (1.4-2.6 s uniform,
``synth.duration_s``) and a skewed set (0.5-15 s, log-uniform), grouped by ``plan_batches`` at
``features.batch_seconds`` (and at 60 s, ``compute_features``' default) vs. the same batch sizes
filled in a random order. Padding = padded samples / all samples of the padded batches.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

SAMPLE_RATE = 16_000
CORPUS = "bench"
CLIP_SECONDS = (2.0, 4.0)  # training clips of the step benchmark
PARTS = ("extract", "train_cache", "train_online")
SIZES = ("base", "tiny")
TARGET_SPEEDUP = 5.0  # cache step at least 5x faster than the on-the-fly step (base sizes)
TARGET_PADDING = 0.10  # padding of the length-grouped batches
BASE_LM = {  # GPT-2 base (the 124M "gpt2" checkpoint's geometry), standard GPT-2 init
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "initializer_range": 0.02,
}
BASE_VOCAB = 50_257
BASE_MAPPERS = {
    "projection_dim": 768,
    "audio_prefix_len": 40,
    "text_prefix_len": 40,
    "mapper_layers": 4,
    "mapper_heads": 8,
}
WORDS = {  # answer words of the synthetic triplets (one view per clip, cycled)
    "emotion": ["angry", "happy", "sad", "neutral", "fear", "disgust", "surprise"],
    "sentiment": ["negative", "neutral", "positive"],
}


# ------------------------------------------------------------------------------------ helpers
def peak_rss_mb() -> float:
    """Peak resident set of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # other work on the box
    }
    return info


def write_clips(folder: Path, count: int, seed: int) -> Any:
    """``count`` synthetic 16 kHz wav clips of 2-4 s (tone bursts in noise) and their manifest."""
    import pandas as pd
    import soundfile as sf

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        samples = int(rng.uniform(*CLIP_SECONDS) * SAMPLE_RATE)
        t = np.arange(samples) / SAMPLE_RATE
        envelope = (np.sin(2 * np.pi * rng.uniform(2, 5) * t) > 0).astype(np.float32)
        tone = np.sin(2 * np.pi * rng.uniform(100, 300) * t) * envelope
        audio = 0.2 * tone + 0.005 * rng.standard_normal(samples)
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        rows.append(
            {
                "path": str(path),
                "corpus": CORPUS,
                "utterance_id": f"{CORPUS}_{i:04d}",
                "speaker": f"s{i % 4}",
                "duration_s": round(samples / SAMPLE_RATE, 4),
                "sample_rate": SAMPLE_RATE,
                "channels": 1,
                "quarantine": "",
            }
        )
    return pd.DataFrame(rows)


def padding(batches: list[np.ndarray]) -> float:
    """Padded samples over all samples of the padded batches."""
    real = sum(float(b.sum()) for b in batches)
    padded = sum(float(len(b) * b.max()) for b in batches)
    return 1.0 - real / padded


def padding_report(batch_seconds: float, seed: int, count: int = 200) -> list[dict[str, Any]]:
    """Padding of ``plan_batches`` vs. the same batch sizes in random order, two length sets."""
    from selm_lib.features.extract import plan_batches

    rng = np.random.default_rng(seed)
    sets = {
        "default 1.4-2.6 s": rng.uniform(1.4, 2.6, count),
        "skewed 0.5-15 s": np.exp(rng.uniform(np.log(0.5), np.log(15.0), count)),
    }
    rows = []
    for name, seconds in sets.items():
        lengths = np.round(seconds * SAMPLE_RATE).astype(np.int64)
        for budget in sorted({float(batch_seconds), 60.0}):
            plan = plan_batches(list(lengths), int(budget * SAMPLE_RATE))
            grouped = [lengths[b] for b in plan]
            order = rng.permutation(count)
            shuffled, start = [], 0
            for batch in plan:
                shuffled.append(lengths[order[start : start + len(batch)]])
                start += len(batch)
            rows.append(
                {
                    "lengths": name,
                    "clips": count,
                    "batch_seconds": budget,
                    "batches": len(plan),
                    "mean_batch_clips": round(count / len(plan), 2),
                    "padding_grouped": round(padding(grouped), 4),
                    "padding_random": round(padding(shuffled), 4),
                    "max_batch_padding_grouped": round(max(padding([b]) for b in grouped), 4),
                }
            )
    return rows


# ------------------------------------------------------------------------ models of one size
def backbone_for(size: str, params: dict[str, Any], device: str) -> Any:
    """The frozen encoder of ``size`` (random weights, seeded)."""
    import torch

    from selm_lib.config.device import resolve_device
    from selm_lib.features.backbones import Backbone, BackboneSpec, load_backbone

    features = params["features"]
    if size == "tiny":
        entry = features["backbones"][params["selm"]["backbone"]]
        spec = BackboneSpec(
            entry["source"], layer=entry["layer"], chunk_seconds=float(features["chunk_seconds"])
        )
        return load_backbone(spec, str(resolve_device(device)))
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    # transformers' defaults are the wav2vec2-base geometry: 768 x 12, conv 512, GroupNorm CNN.
    config = Wav2Vec2Config(mask_time_prob=0.0, layerdrop=0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Wav2Vec2Model(config)
    spec = BackboneSpec(
        "random:wav2vec2-base", layer=4, chunk_seconds=float(features["chunk_seconds"])
    )
    return Backbone(model, config, spec, resolve_device(device))


def triplets_for(manifest: Any, selm: dict[str, Any]) -> Any:
    """One (prompt, answer) triplet per clip, the params' views cycled, as build_triplets names
    its columns."""
    import pandas as pd

    views = [v for v, spec in selm["views"].items() if float(spec["weight"]) > 0]
    levels = list(selm["dimensional_words"])
    rows = []
    for i, uid in enumerate(manifest["utterance_id"]):
        view = views[i % len(views)]
        fields = {
            "emotion": WORDS["emotion"][i % len(WORDS["emotion"])],
            "sentiment": WORDS["sentiment"][i % len(WORDS["sentiment"])],
            "arousal": levels[i % len(levels)],
            "valence": levels[(i // 2) % len(levels)],
            "dominance": levels[(i // 3) % len(levels)],
        }
        spec = selm["views"][view]
        rows.append(
            {
                "corpus": CORPUS,
                "utterance_id": uid,
                "view": view,
                "prompt": spec["prompt"],
                "answer": spec["answer"].format(**fields),
                "weight": float(spec["weight"]),
            }
        )
    return pd.DataFrame(rows)


def selm_for(size: str, params: dict[str, Any], audio_dim: int, triplets: Any) -> tuple[Any, Any]:
    """(model, tokenizer) of ``size``: the params' SELM (tiny) or base-sized LM and mappers."""
    import dataclasses

    from selm_lib.selm.artifacts import all_answer_words, model_config
    from selm_lib.selm.batching import answer_text
    from selm_lib.selm.model import SELM, TINY_PRESET, build_selm
    from selm_lib.selm.tokenizer import train_bpe

    selm = params["selm"]
    seed = int(params["common"]["seed"])
    texts = list(triplets["prompt"].unique()) + [answer_text(a) for a in triplets["answer"]]
    words = all_answer_words() + list(selm["dimensional_words"]) + sum(WORDS.values(), [])
    tokenizer = train_bpe(texts, vocab_size=selm["tokenizer_vocab_size"], seed_words=words)
    config = model_config(selm, audio_dim, seed)
    if size == "tiny":
        return build_selm(config, tokenizer), tokenizer
    # A random GPT-2 base: the preset path builds GPT2LMHeadModel(GPT2Config(...)) in memory, the
    # same module `lm: gpt2` loads with from_pretrained, without writing 0.5 GB to disk first.
    config = dataclasses.replace(
        config, lm=TINY_PRESET, vocab_size=BASE_VOCAB, tiny_lm=dict(BASE_LM), **BASE_MAPPERS
    )
    if len(tokenizer) > BASE_VOCAB:
        raise SystemExit(f"tokenizer of {len(tokenizer)} tokens exceeds the LM vocabulary")
    return SELM(config), tokenizer


def step_batches(count: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Random batches of clip indices (a seeded permutation, as an epoch of ``fit``)."""
    order = np.random.default_rng([seed, 1]).permutation(count)
    return [order[i : i + batch_size] for i in range(0, count - batch_size + 1, batch_size)]


def batch_of(
    encoded: Any, index: np.ndarray, features: list[np.ndarray] | None, pad: int, device: Any
) -> dict[str, Any]:
    """``collate`` of the clips ``index``, with fresh ``features`` (on the fly) if given."""
    from selm_lib.selm.batching import Encoded, collate

    if features is None:
        return collate(encoded, index, pad, device)
    sub = Encoded(
        features,
        [encoded.prompt_ids[i] for i in index],
        [encoded.answer_ids[i] for i in index],
        encoded.weights[index],
        [encoded.views[i] for i in index],
        [encoded.answers[i] for i in index],
    )
    return collate(sub, np.arange(len(index)), pad, device)


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------- workers
def worker(size: str, part: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One (size, part) in this process; returns its figures."""
    import pandas as pd
    import torch

    from selm_lib.config import load_params

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    params = load_params()
    baseline_mb = peak_rss_mb()  # after importing torch/transformers/pandas
    manifest = pd.read_csv(workdir / "manifest.csv", keep_default_na=False)
    store_dir = workdir / size / "store"
    result: dict[str, Any] = {
        "size": size,
        "part": part,
        "torch_threads": torch.get_num_threads(),
        "import_rss_mb": baseline_mb,
    }
    if part == "extract":
        result.update(extract(size, params, manifest, store_dir, args.device))
    else:
        result.update(train(size, part, params, manifest, store_dir, args))
    result["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available() and args.device != "cpu":
        result["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def extract(
    size: str, params: dict[str, Any], manifest: Any, store_dir: Path, device: str
) -> dict[str, Any]:
    """compute_features over the manifest into ``store_dir``."""
    from selm_lib.features.extract import compute_features

    features = params["features"]
    started = time.perf_counter()
    backbone = backbone_for(size, params, device)
    load_s = time.perf_counter() - started
    _, stats = compute_features(
        backbone,
        manifest,
        store_dir,
        backbone_name=size,
        batch_seconds=float(features["batch_seconds"]),
        dtype=features["dtype"],
        progress=False,
        corpus=CORPUS,
    )
    return {
        "backbone": backbone.spec.source,
        "layer": backbone.layer,
        "hidden_size": backbone.hidden_size,
        "encoder_params_M": round(sum(p.numel() for p in backbone.model.parameters()) / 1e6, 2),
        "load_seconds": round(load_s, 2),
        "clips": stats["clips"],
        "audio_seconds": round(stats["audio_seconds"], 2),
        "seconds": round(stats["seconds"], 3),
        "audio_seconds_per_second": round(stats["audio_seconds_per_second"], 2),
        "padding_fraction": round(stats["padding_fraction"], 4),
        "batches": stats["batches"],
        "batch_seconds": float(features["batch_seconds"]),
        "dtype": features["dtype"],
    }


def train(
    size: str,
    part: str,
    params: dict[str, Any],
    manifest: Any,
    store_dir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Warm-up + timed SELM training steps, from the cache or with the encoder on the fly."""
    import torch

    from selm_lib.config.device import resolve_device
    from selm_lib.data.audio import load_audio
    from selm_lib.features.frames import FrameSet
    from selm_lib.features.store import FeatureStore
    from selm_lib.selm.batching import encode_triplets
    from selm_lib.selm.train import weighted_loss

    device = resolve_device(args.device)
    online = part == "train_online"
    triplets = triplets_for(manifest, params["selm"])
    keys = list(zip(triplets["corpus"], triplets["utterance_id"], strict=True))
    out: dict[str, Any] = {}

    started = time.perf_counter()
    if online:
        backbone = backbone_for(size, params, str(device))
        audio_dim = backbone.hidden_size
        waves = [load_audio(p) for p in manifest["path"]]  # decoded before the clock starts
        placeholder = np.zeros((1, audio_dim), np.float32)
        encoded_features = [placeholder] * len(keys)
    else:  # read lazily from the store a batch at a time, as fit() does
        store = FeatureStore.open(store_dir)
        encoded_features = FrameSet.from_keys({CORPUS: store}, keys)
        audio_dim = encoded_features.dim
        out["cache_open_seconds"] = round(time.perf_counter() - started, 3)
    model, tokenizer = selm_for(size, params, audio_dim, triplets)
    model.to(device).train()
    encoded = encode_triplets(triplets, encoded_features, tokenizer)
    out["setup_seconds"] = round(time.perf_counter() - started, 2)

    train_params = params["train_selm"]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable,
        lr=float(train_params["learning_rate"]),
        weight_decay=float(train_params["weight_decay"]),
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    pad = tokenizer.pad_token_id
    batches = step_batches(len(manifest), args.batch_size, int(params["common"]["seed"]))
    steps, cpu_steps, encode_s, losses, frame_padding = [], [], [], [], []
    audio_s = 0.0
    for number, index in enumerate(batches[: args.warmup + args.steps]):
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        fresh = None
        if online:
            with torch.inference_mode():
                fresh = backbone.encode([waves[i] for i in index])
            encoded_at = time.perf_counter()
        batch = batch_of(encoded, index, fresh, pad, device)
        with autocast:
            output = model(**{k: v for k, v in batch.items() if k != "weights"})
            loss = weighted_loss(output, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, float(train_params["grad_clip"]))
        optimizer.step()
        synchronize(device)
        end, cpu_end = time.perf_counter(), time.process_time()
        if number >= args.warmup:
            steps.append(end - start)
            cpu_steps.append(cpu_end - cpu_start)
            losses.append(float(loss.detach()))
            frame_padding.append(1.0 - float(batch["feature_mask"].float().mean()))
            if online:
                encode_s.append(encoded_at - start)
                audio_s += sum(len(waves[i]) for i in index) / SAMPLE_RATE
    counts = model.parameter_counts()
    out.update(
        {
            "device": str(device),
            "audio_dim": audio_dim,
            "lm": {k: getattr(model.lm.config, k) for k in ("n_embd", "n_layer", "n_head")}
            | {"vocab_size": model.lm.config.vocab_size},
            "mappers": {k: getattr(model.config, k) for k in (*BASE_MAPPERS, "dropout")},
            "trainable_params_M": round(counts["trainable"] / 1e6, 2),
            "frozen_params_M": round(counts["frozen"] / 1e6, 2),
            "batch_size": args.batch_size,
            "warmup_steps": args.warmup,
            "steps": len(steps),
            "step_seconds": [round(s, 4) for s in steps],
            "median_step_seconds": round(statistics.median(steps), 4),
            "min_step_seconds": round(min(steps), 4),
            "step_cpu_seconds": [round(s, 4) for s in cpu_steps],
            "median_step_cpu_seconds": round(statistics.median(cpu_steps), 4),
            "mean_loss": round(statistics.fmean(losses), 4),
            "feature_padding_in_step_batches": round(statistics.fmean(frame_padding), 4),
        }
    )
    if online:
        out["median_encode_seconds"] = round(statistics.median(encode_s), 4)
        out["median_selm_seconds_after_encode"] = round(
            statistics.median(s - e for s, e in zip(steps, encode_s, strict=True)), 4
        )
        out["encode_audio_seconds_per_second"] = round(audio_s / sum(encode_s), 2)
    return out


# -------------------------------------------------------------------------------------- main
def run_part(size: str, part: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one (size, part) in a fresh process and return its JSON."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"{size}:{part}",
        "--workdir",
        str(workdir),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{size} {part}: worker failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    print(f"  {size:<5} {part:<13} done in {result['process_seconds']:.0f} s", flush=True)
    return result


def summarise(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline figures of one size."""
    cache, online, extract = parts["train_cache"], parts["train_online"], parts["extract"]
    speedup = online["median_step_seconds"] / cache["median_step_seconds"]
    cpu_speedup = online["median_step_cpu_seconds"] / cache["median_step_cpu_seconds"]
    return {
        "cache_step_seconds": cache["median_step_seconds"],
        "online_step_seconds": online["median_step_seconds"],
        "online_encode_seconds": online["median_encode_seconds"],
        "cache_speedup": round(speedup, 2),
        "cache_speedup_min_steps": round(online["min_step_seconds"] / cache["min_step_seconds"], 2),
        "cache_speedup_cpu_time": round(cpu_speedup, 2),
        "extract_audio_seconds_per_second": extract["audio_seconds_per_second"],
        "encode_audio_seconds_per_second": online["encode_audio_seconds_per_second"],
        "extract_padding_fraction": extract["padding_fraction"],
        "peak_rss_mb": {part: parts[part]["peak_rss_mb"] for part in PARTS},
    }


def print_tables(sizes: dict[str, dict[str, Any]], pad_rows: list[dict[str, Any]]) -> None:
    """The human-readable report."""
    print("\nSELM training step (median; batch of clips of 2-4 s)")
    print(
        f"{'size':<6}{'cache s':>9}{'online s':>10}{'(encode)':>10}{'speed-up':>10}{'cpu-t':>8}"
        f"{'extract a-s/s':>15}{'encode a-s/s':>14}{'peak MB ext/cache/online':>27}"
    )
    for size, s in sizes.items():
        peaks = "/".join(f"{s['peak_rss_mb'][p]:.0f}" for p in PARTS)
        print(
            f"{size:<6}{s['cache_step_seconds']:>9.3f}{s['online_step_seconds']:>10.3f}"
            f"{s['online_encode_seconds']:>10.3f}{s['cache_speedup']:>9.2f}x"
            f"{s['cache_speedup_cpu_time']:>7.2f}x"
            f"{s['extract_audio_seconds_per_second']:>15.1f}"
            f"{s['encode_audio_seconds_per_second']:>14.1f}{peaks:>27}"
        )
    print("cpu-t: the speed-up in process CPU seconds (less sensitive to other load on the box)")
    print(f"target: cache >= {TARGET_SPEEDUP:g}x faster than online at base sizes")
    print("\nPadding of encoder batches (plan_batches vs. the same batch sizes in random order)")
    print(f"{'lengths':<20}{'batch-s':>8}{'batches':>9}{'clips/b':>9}{'grouped':>9}{'random':>9}")
    for r in pad_rows:
        print(
            f"{r['lengths']:<20}{r['batch_seconds']:>8.0f}{r['batches']:>9}"
            f"{r['mean_batch_clips']:>9.1f}{100 * r['padding_grouped']:>8.1f}%"
            f"{100 * r['padding_random']:>8.1f}%"
        )
    print(f"target: grouped padding < {100 * TARGET_PADDING:g} %")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps per part (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--sizes", default="base,tiny", help="comma list of: base, tiny")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per training step")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)"
    )
    parser.add_argument("--seed", type=int, default=34, help="synthetic clips and lengths")
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/selm_speed.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be >= 1, --warmup >= 0")

    if args.worker:  # child process: one (size, part), JSON on the last stdout line
        size, part = args.worker.split(":")
        print(json.dumps(worker(size, part, Path(args.workdir), args)))
        return 0

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown or not sizes:
        parser.error(f"--sizes: unknown {unknown}; choose from {', '.join(SIZES)}")

    from selm_lib.config import load_params

    params = load_params()
    started = time.perf_counter()
    machine_at_start = machine()
    pad_rows = padding_report(float(params["features"]["batch_seconds"]), args.seed)
    clips = args.batch_size * (args.warmup + args.steps)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="selm-speed-") as tmp:
        workdir = Path(tmp)
        (workdir / "clips").mkdir()
        manifest = write_clips(workdir / "clips", clips, args.seed)
        manifest.to_csv(workdir / "manifest.csv", index=False)
        print(f"{clips} clips, {manifest['duration_s'].sum():.1f} s of audio; sizes {sizes}")
        for size in sizes:
            results[size] = {part: run_part(size, part, workdir, args) for part in PARTS}
    summary = {size: summarise(parts) for size, parts in results.items()}
    print_tables(summary, pad_rows)

    report = {
        "benchmark": "selm_speed",
        "command": " ".join(["python", "benchmarks/selm_speed.py", *sys.argv[1:]]),
        "targets": {
            "cache_speedup_at_base_min": TARGET_SPEEDUP,
            "grouped_padding_max": TARGET_PADDING,
        },
        "meets_targets": {
            "cache_speedup_at_base": (
                summary["base"]["cache_speedup"] >= TARGET_SPEEDUP if "base" in summary else None
            ),
            "grouped_padding": all(r["padding_grouped"] < TARGET_PADDING for r in pad_rows),
        },
        "settings": {
            "steps": args.steps,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "clips": clips,
            "clip_seconds": list(CLIP_SECONDS),
            "device": args.device,
            "threads": args.threads or "torch default",
            "seed": args.seed,
            "features_batch_seconds": params["features"]["batch_seconds"],
        },
        "machine": machine_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "summary": summary,
        "padding": pad_rows,
        "parts": results,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out} ({report['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
