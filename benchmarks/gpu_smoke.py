"""GPU smoke check: the core of every compute stage on CUDA, with placement asserted and speed and
peak GPU memory reported.

    .venv/bin/python benchmarks/gpu_smoke.py [--clips 64] [--steps 30] \
        [--out benchmarks/results/gpu_smoke.json]

Without CUDA it says so and exits 0 (so it can sit in any script). With CUDA, on the default
profile's sizes (``params.yaml``: the SELM preset backbone and LM, ``selm`` mapper sizes, the
SER-Evals probe head), it runs, each part on ``common.device`` = cuda with bf16 autocast:

1. ``features``: every preset backbone of ``features.backbones`` encodes ``--clips`` synthetic
   clips of 2-6 s (``compute_features``, the stage's code): audio-seconds per second;
2. ``train_selm``: ``fit`` for one epoch over a store of random frames (``--steps`` batches),
   with a forward pre-hook that asserts every batch tensor is on the GPU and a check that every
   parameter is: steps per second (validation included);
3. ``class_scoring``: ``selm_predict`` over the store (generation and class scoring);
4. ``baseline``: the pooled classifier trained and applied (``train_classifier``);
5. ``probe``: the SER-Evals frame-MLP probe trained and scored (``train_probe``,
   ``predict_logits``): steps per second;
6. ``fewshot``: SELM adaptation on a support set (``_adapt_selm``).

Each part reports its seconds, its throughput and ``torch.cuda.max_memory_allocated`` (reset
before the part). The figures are for the machine it ran on (named in the JSON); the README
quotes the run on the lent accelerator.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


DEVICE = "cuda"  # --dry-run-on-cpu sets "cpu" (checks the script itself on a machine without GPU)


def _assert_on_gpu(module: Any, name: str) -> Any:
    """Every parameter on the device now, and every tensor argument of every forward call later."""
    import torch

    bad = [n for n, p in module.named_parameters() if p.device.type != DEVICE]
    assert not bad, f"{name}: parameters not on {DEVICE}: {bad[:3]}"

    def check(_module, args, kwargs):
        for value in [*args, *kwargs.values()]:
            if isinstance(value, torch.Tensor):
                assert value.device.type == DEVICE, f"{name}: a batch tensor is on {value.device}"

    return module.register_forward_pre_hook(check, with_kwargs=True)


def _cuda() -> Any:
    import torch

    return torch.cuda if DEVICE == "cuda" else None


class Part:
    """Times a part and records its peak GPU memory."""

    def __init__(self, name: str, results: dict[str, Any]):
        self.name, self.results = name, results

    def __enter__(self) -> dict[str, Any]:
        if _cuda():
            _cuda().synchronize()
            _cuda().reset_peak_memory_stats()
        self.started = time.perf_counter()
        self.entry: dict[str, Any] = {}
        return self.entry

    def __exit__(self, *exc: Any) -> None:
        if _cuda():
            _cuda().synchronize()
            self.entry["peak_gpu_gb"] = round(_cuda().max_memory_allocated() / 2**30, 3)
        self.entry["seconds"] = round(time.perf_counter() - self.started, 3)
        self.results[self.name] = self.entry
        print(f"{self.name}: {json.dumps(self.entry)}", flush=True)


def synthetic_manifest(folder: Path, clips: int, seed: int) -> Any:
    import pandas as pd
    import soundfile as sf

    from selm_lib.data.corpora.base import MANIFEST_COLUMNS

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(clips):
        n = int(rng.uniform(2.0, 6.0) * 16000)
        t = np.arange(n) / 16000
        audio = 0.2 * np.sin(2 * np.pi * rng.uniform(90, 300) * t) + 0.02 * rng.standard_normal(n)
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, audio.astype(np.float32), 16000, subtype="FLOAT")
        rows.append(
            {
                "path": str(path),
                "corpus": "smoke",
                "utterance_id": f"smoke_{i:04d}",
                "speaker": f"s{i % 8}",
                "duration_s": round(n / 16000, 4),
                "sample_rate": 16000,
                "channels": 1,
                "quarantine": "",
            }
        )
    frame = pd.DataFrame(rows)
    for column in MANIFEST_COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[MANIFEST_COLUMNS]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd
    import torch

    from selm_lib.config import section_config
    from selm_lib.config.params import load_params
    from selm_lib.evaluation.baseline import BaselineConfig, pool_frames, train_classifier
    from selm_lib.evaluation.ood import selm_predict
    from selm_lib.features.backbones import load_backbone
    from selm_lib.features.extract import backbone_specs, compute_features
    from selm_lib.features.frames import FrameSet
    from selm_lib.features.store import write_store
    from selm_lib.selm.adapt import _adapt_selm
    from selm_lib.selm.artifacts import make_tokenizer, model_config
    from selm_lib.selm.batching import answer_text, encode_triplets
    from selm_lib.selm.model import build_selm
    from selm_lib.selm.train import TrainConfig, fit
    from selm_lib.serevals.probe import Normalizer, predict_logits, train_probe
    from selm_lib.serevals.protocol import probe_config

    params = load_params()
    device = torch.device(DEVICE)
    seed = int(params["common"]["seed"])
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if _cuda() else "cpu (dry run)",
        "torch": torch.__version__,
        "clips": args.clips,
        "steps": args.steps,
    }
    work = Path(tempfile.mkdtemp(prefix="gpu_smoke_"))
    manifest = synthetic_manifest(work / "audio", args.clips, seed)
    audio_seconds = float(manifest["duration_s"].sum())

    # 1. features: every preset backbone, the stage's own code
    features: dict[str, Any] = {}
    for name, spec in backbone_specs(params["features"], seed=seed).items():
        if not spec.source.startswith("preset:"):
            continue
        with Part(f"features:{name}", results) as entry:
            backbone = load_backbone(spec, device=DEVICE)
            model = getattr(backbone, "model", None)  # the log-mel front end has no weights
            encoder = list(model.parameters()) if model is not None else []
            assert all(p.device.type == DEVICE for p in encoder), f"{name}: not on {DEVICE}"
            compute_features(
                backbone,
                manifest,
                work / "features" / name,
                backbone_name=name,
                batch_seconds=float(params["features"]["batch_seconds"]) * 4,
                progress=False,
                corpus="smoke",
            )
            features[name] = entry
        entry["audio_s_per_s"] = round(audio_seconds / entry["seconds"], 1)
        del backbone

    # a store of random frames at the SELM backbone's width, sized for --steps batches
    batch_size = int(params["train_selm"]["batch_size"])
    n_clips = args.steps * batch_size
    rng = np.random.default_rng(seed)
    labels = np.arange(n_clips) % 4
    width = 768

    def items():
        for i in range(n_clips):
            frames = int(rng.integers(100, 300))
            yield f"u{i:05d}", (rng.standard_normal((frames, width)) + labels[i]).astype(np.float16)

    store = write_store(
        work / "frames" / "bench" / "layer_4" / "train",
        items(),
        {"corpus": "train", "backbone_name": "bench", "layer": 4},
    )
    emotions = ["angry", "happy", "neutral", "sad"]
    triplets = pd.DataFrame(
        {
            "corpus": "train",
            "utterance_id": store.utterance_ids,
            "view": "categorical",
            "prompt": params["selm"]["views"]["categorical"]["prompt"],
            "answer": [emotions[k] for k in labels],
            "weight": 1.0,
            "split": "train",
        }
    )
    keys = zip(triplets["corpus"], triplets["utterance_id"], strict=True)
    frames = FrameSet.from_keys({"train": store}, keys)
    tokenizer = make_tokenizer(params["selm"], triplets)
    model = build_selm(model_config(params["selm"], width, seed), tokenizer).to(device)
    hook = _assert_on_gpu(model, "SELM")
    train = encode_triplets(triplets, frames, tokenizer)
    validation = encode_triplets(
        triplets.iloc[:batch_size], frames.subset(range(batch_size)), tokenizer
    )
    eos = tokenizer.eos_token_id
    candidates = {"categorical": [tokenizer.encode(answer_text(e)) + [eos] for e in emotions]}

    # 2. SELM training
    config = section_config(TrainConfig, {**params["train_selm"], "epochs": 1}, seed=seed)
    with Part("train_selm", results) as entry:
        fit(
            model,
            train,
            validation,
            candidates,
            config,
            work / "ckpt",
            pad=tokenizer.pad_token_id,
            device=device,
            log=lambda *_: None,
            score_chunk=int(params["train_selm"]["score_chunk"]),
        )
    entry["steps_per_s"] = round(args.steps / entry["seconds"], 2)

    # 3. OOD class scoring and generation
    classes = emotions
    with Part("class_scoring", results) as entry:
        selm_predict(
            model,
            tokenizer,
            frames,
            classes,
            {c: c for c in classes},
            params["selm"],
            params["eval_ood"],
            device,
        )
    entry["clips_per_s"] = round(n_clips / entry["seconds"], 1)

    # 6. few-shot adaptation (SELM), on the GPU
    with Part("fewshot", results) as entry:
        support = frames.subset(range(16))
        adapted = _adapt_selm(
            model,
            tokenizer,
            support,
            [emotions[k] for k in labels[:16]],
            params["selm"],
            params["fewshot"],
            full=False,
            seed=seed,
            device=device,
        )
        _assert_on_gpu(adapted, "adapted SELM").remove()
    entry["steps_per_s"] = round(int(params["fewshot"]["steps"]) / entry["seconds"], 2)
    hook.remove()

    # 4. baseline
    with Part("baseline", results) as entry:
        x = pool_frames(frames)
        baseline_params = params["eval_ood"]["baseline"]
        config = section_config(BaselineConfig, baseline_params, seed=seed, balanced=True)
        classifier, _ = train_classifier(x, labels, x, labels, 4, config, device=device)
        assert classifier.mean.device.type == DEVICE, f"baseline not on {DEVICE}"
    entry["clips"] = n_clips

    # 5. SER-Evals probe
    probe = probe_config(params["serevals"], seed)
    with Part("probe", results) as entry:
        norm = Normalizer.of(frames)
        head = train_probe(frames, labels, 8, probe, device=device, normalizer=norm)
        hook = _assert_on_gpu(head, "probe")
        predict_logits(head, frames, normalizer=norm)
        hook.remove()
    steps = probe.epochs * int(np.ceil(n_clips / probe.batch_size))
    entry["steps_per_s"] = round(steps / entry["seconds"], 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=64, help="synthetic clips to encode")
    parser.add_argument("--steps", type=int, default=30, help="SELM training batches")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu_smoke.json")
    parser.add_argument(
        "--dry-run-on-cpu",
        action="store_true",
        help="run every part on the CPU (checks the script; its figures mean nothing)",
    )
    args = parser.parse_args()
    import torch

    global DEVICE
    if args.dry_run_on_cpu:
        DEVICE = "cpu"
        args.out = Path(tempfile.mkdtemp()) / "gpu_smoke_dry_run.json"
    elif not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here; nothing to check (exit 0)")
        return 0
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"gpu_smoke: every part ran on {results['device']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
