"""Speed, padding and peak memory of the feature cache (selm_lib.features.extract.compute_features).

    .venv/bin/python benchmarks/features_speed.py [--clips 40] [--device cpu] \
        [--out benchmarks/results/features_speed.json]

Writes ``--clips`` synthetic clips of 1.5-3 s (pulse-train bursts in noise) to a temporary folder,
then runs the whole cache path (audio loading, length batching, encoding, float16 shards) for:

* ``tiny-wav2vec2`` (the test preset) at layer 4 and ``tiny-whisper`` (30 s windows) at "last";
* a randomly initialised wav2vec2-base-sized model (hidden 768, 12 layers, conv 512, GroupNorm
  CNN) at layer 4 (SELM's layer: only 4 of 12 transformer layers run) and at "last", each with
  60 s batches (the params default, sized for a GPU) and 8 s batches (faster on a CPU, whose
  caches the 512-channel CNN activations of a 60 s batch overflow).

Each configuration runs in its own process so that peak memory (``ru_maxrss``) is its own.
Reported: audio-seconds per second (end to end, model load excluded), padding fraction of the
length-sorted batches next to the padding of the same batch sizes in manifest order, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

# batch_seconds None = the --batch-seconds option (60, the params default).
CONFIGS = {
    "tiny-wav2vec2 L4": {"source": "preset:tiny-wav2vec2", "layer": 4, "batch_seconds": None},
    "tiny-whisper last": {"source": "preset:tiny-whisper", "layer": "last", "batch_seconds": None},
    "base-size L4": {"source": "random:wav2vec2-base", "layer": 4, "batch_seconds": None},
    "base-size L4 b8": {"source": "random:wav2vec2-base", "layer": 4, "batch_seconds": 8.0},
    "base-size last": {"source": "random:wav2vec2-base", "layer": "last", "batch_seconds": None},
    "base-size last b8": {"source": "random:wav2vec2-base", "layer": "last", "batch_seconds": 8.0},
}


def write_clips(folder: Path, count: int, seed: int = 34):
    """Synthetic clips of 1.5-3 s and their manifest (DataFrame with the manifest columns)."""
    import pandas as pd
    import soundfile as sf

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        samples = int(rng.uniform(1.5, 3.0) * 16_000)
        audio = 0.005 * rng.standard_normal(samples)
        position = 0
        while position < samples:
            length = min(int(rng.uniform(0.15, 0.5) * 16_000), samples - position)
            t = np.arange(length) / 16_000
            pulse = np.sign(np.sin(2 * np.pi * rng.uniform(100, 300) * t)) * np.hanning(length)
            audio[position : position + length] += 0.2 * pulse
            position += length + int(rng.uniform(0.05, 0.3) * 16_000)
        path = folder / f"clip{i:03d}.wav"
        sf.write(path, audio.astype(np.float32), 16_000, subtype="PCM_16")
        rows.append(
            {
                "path": str(path),
                "corpus": "bench",
                "utterance_id": f"bench_{i:03d}",
                "speaker": f"s{i % 4}",
                "duration_s": round(samples / 16_000, 4),
                "sample_rate": 16_000,
                "channels": 1,
                "quarantine": "",
            }
        )
    return pd.DataFrame(rows)


def base_sized_backbone(layer: int | str, device: str):
    """Random-init wav2vec2-base geometry (transformers defaults), seeded, no download."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from selm_lib.features.backbones import Backbone, BackboneSpec, _device

    config = Wav2Vec2Config(mask_time_prob=0.0, layerdrop=0.0)  # 768 x 12, conv 512, GroupNorm
    torch.manual_seed(0)
    model = Wav2Vec2Model(config)
    spec = BackboneSpec("random:wav2vec2-base", layer=layer)
    return Backbone(model, config, spec, _device(device), normalize=True)


def worker(name: str, clip_dir: Path, count: int, device: str, batch_seconds: float) -> dict:
    """One configuration in this process; returns its figures."""
    import pandas as pd

    from selm_lib.features.backbones import BackboneSpec, load_backbone
    from selm_lib.features.extract import compute_features, plan_batches

    manifest = pd.read_csv(clip_dir / "manifest.csv", keep_default_na=False)
    config = CONFIGS[name]
    batch_seconds = config["batch_seconds"] or batch_seconds
    started = time.perf_counter()
    if config["source"].startswith("random:"):
        backbone = base_sized_backbone(config["layer"], device)
    else:
        backbone = load_backbone(BackboneSpec(config["source"], layer=config["layer"]), device)
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="selm-feat-") as tmp:
        _, stats = compute_features(
            backbone,
            manifest,
            Path(tmp) / "store",
            backbone_name=name.split()[0],
            batch_seconds=batch_seconds,
            progress=False,
        )
    # Padding the same batch sizes would cost in manifest (unsorted) order, for comparison.
    lengths = (manifest["duration_s"].to_numpy() * 16_000).astype(int)
    sizes = [
        len(b)
        for b in plan_batches(list(lengths), int(batch_seconds * 16_000), backbone.cost_samples)
    ]
    unsorted, position = [], 0
    for size in sizes:
        unsorted.append(lengths[position : position + size])
        position += size
    naive = 1 - sum(b.sum() for b in unsorted) / sum(len(b) * b.max() for b in unsorted)
    params = sum(p.numel() for p in backbone.model.parameters())
    return {
        "config": name,
        "arch": backbone.arch,
        "layer": backbone.layer,
        "hidden_size": backbone.hidden_size,
        "params_loaded_M": round(params / 1e6, 2),
        "clips": stats["clips"],
        "audio_seconds": round(stats["audio_seconds"], 2),
        "seconds": round(stats["seconds"], 3),
        "audio_seconds_per_second": round(stats["audio_seconds_per_second"], 1),
        "padding_fraction": round(stats["padding_fraction"], 4),
        "padding_fraction_unsorted": round(float(naive), 4),
        "batches": stats["batches"],
        "batch_seconds": batch_seconds,
        "load_seconds": round(load_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": str(backbone.device),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--batch-seconds", type=float, default=60.0)
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/features_speed.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--clip-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # child process: one configuration, JSON on stdout
        result = worker(
            args.worker, Path(args.clip_dir), args.clips, args.device, args.batch_seconds
        )
        print(json.dumps(result))
        return 0

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    results = []
    with tempfile.TemporaryDirectory(prefix="selm-bench-clips-") as tmp:
        write_clips(Path(tmp), args.clips).to_csv(Path(tmp) / "manifest.csv", index=False)
        for name in CONFIGS:
            command = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--clip-dir",
                tmp,
                "--clips",
                str(args.clips),
                "--device",
                args.device,
                "--batch-seconds",
                str(args.batch_seconds),
            ]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"{name}: worker failed")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    header = (
        f"{'config':<20}{'batch-s':>8}{'audio-s':>9}{'sec':>8}{'audio-s/s':>11}{'padding':>9}"
        f"{'unsorted':>10}{'batches':>9}{'peak MB':>9}"
    )
    print(header)
    for r in results:
        print(
            f"{r['config']:<20}{r['batch_seconds']:>8.0f}{r['audio_seconds']:>9.1f}{r['seconds']:>8.2f}"
            f"{r['audio_seconds_per_second']:>11.1f}{100 * r['padding_fraction']:>8.1f}%"
            f"{100 * r['padding_fraction_unsorted']:>9.1f}%{r['batches']:>9}"
            f"{r['peak_rss_mb']:>9.0f}"
        )
    import torch

    report = {
        "benchmark": "features_speed",
        "clips": args.clips,
        "clip_seconds": [1.5, 3.0],
        "batch_seconds": args.batch_seconds,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
