"""The distributed stages checked on the CPU: gloo, 2 processes under torchrun, against one process.

    python -m tests.distributed_checks [--nproc 2]      (make check-distributed)

1. **features**: a store written by 2 ranks holds the same bytes per clip as the store one
   process writes (only the shard layout differs), and the index covers every clip once;
2. **train**: DDP training with the same global batch reaches the metrics of one process. Without
   dropout the gradient is the same, so the validation losses agree to ``1e-4`` (float rounding
   of the summed gradient); with dropout each rank draws its own masks, so the final validation
   loss agrees within ``0.1`` and accuracy within ``0.1`` (measured: 0.064 and 0.000 on this toy);
3. **probes**: the SER-Evals probes spread over 2 ranks give identical scores and predictions;
4. **errors**: a rank that fails ends the run with that rank's error and leaves no store; an
   ``nproc`` above the CPU count is refused with the count.

Training is also interrupted after an epoch with 2 processes and resumed with one: it ends where
one uninterrupted process ends (no dropout, within ``1e-4``).

Ends with one line saying whether each check held (exit status 1 when one did not). Each worker
runs as ``python -m torch.distributed.run --standalone --nproc-per-node N -m
tests.distributed_checks --worker NAME --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"exact_loss": 1e-4, "dropout_loss": 0.1, "dropout_accuracy": 0.1}


# ----------------------------------------------------------------------------- inputs
def write_audio(folder: Path, n: int = 14) -> pd.DataFrame:
    """Short clips of different lengths (so batches differ in size) and their manifest."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        seconds = 0.3 + 0.15 * (i % 7)
        audio = 0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32)
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, audio, 16000)
        rows.append(
            {
                "path": str(path),
                "corpus": "toy",
                "utterance_id": f"clip{i:02d}",
                "speaker": f"s{i % 3}",
                "duration_s": seconds,
                "quarantine": "",
                "channel": "",
            }
        )
    return pd.DataFrame(rows)


def feature_backbone():
    from selm_lib.features.backbones import BackboneSpec, load_backbone

    return load_backbone(BackboneSpec(source="preset:tiny-wav2vec2", layer=2), device="cpu")


def encode(manifest: pd.DataFrame, folder: Path) -> None:
    from selm_lib.features.extract import compute_features

    compute_features(
        feature_backbone(),
        manifest,
        folder,
        backbone_name="tiny",
        batch_seconds=1.5,
        progress=False,
        corpus="toy",
    )


def train_history(out: Path, dropout: float, stop_after: int | None = None) -> list[dict]:
    from selm_lib.selm.batching import answer_text
    from selm_lib.selm.model import build_selm
    from selm_lib.selm.tokenizer import train_bpe
    from selm_lib.selm.train import TrainConfig, fit
    from tests.test_model import tiny_config
    from tests.test_train import ANSWERS, PROMPTS, setup

    texts = list(PROMPTS.values()) + [answer_text(a) for v in ANSWERS.values() for a in v]
    tokenizer = train_bpe(texts, vocab_size=300)
    train, validation, candidates = setup(tokenizer)
    model = build_selm(tiny_config(dropout=dropout, seed=5, vocab_size=None), tokenizer)
    config = TrainConfig(
        epochs=3,
        batch_size=10,  # 96 triplets: the last batch has 6 items
        learning_rate=3e-3,
        lm_learning_rate=1e-5,
        weight_decay=0.01,
        warmup_ratio=0.1,
        grad_clip=1.0,
        patience=5,
        seed=11,
        eval_batch_size=16,
    )
    import torch

    result = fit(
        model,
        train,
        validation,
        candidates,
        config,
        out / "checkpoints",
        pad=tokenizer.pad_token_id,
        device=torch.device("cpu"),
        log=lambda *_: None,
        stop_after_epoch=stop_after,
    )
    return result["history"]


def probe_run():
    import pytest

    from selm_lib.features.frames import ArrayFrames
    from selm_lib.serevals import protocol as sr
    from tests.test_serevals_run import CLASSES_OF, fake_corpus, fake_params

    data = {c: fake_corpus(c) for c in CLASSES_OF}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sr, "corpus_rows", lambda params, corpus: data[corpus][0])
        patch.setattr(
            sr,
            "load_frames",
            lambda params, backbone, corpus, ids: ArrayFrames(
                [data[corpus][1][u][: int(params["serevals"]["max_seconds"] * 50)] for u in ids]
            ),
        )
        params = fake_params(Path(tempfile.mkdtemp()))
        return sr.run_backbone(params, "b")


# ----------------------------------------------------------------------------- workers
def worker(name: str, out: Path) -> None:
    from selm_lib.config import distributed as D

    dist = D.init("cpu")
    try:
        if name == "features":
            encode(pd.read_csv(out / "manifest.csv", keep_default_na=False), out / "store")
        elif name == "features_fail":  # rank 1 dies while encoding
            if dist.rank == 1:
                from selm_lib.features import extract

                original = extract.load_audio

                def broken(path, **kwargs):
                    raise RuntimeError(f"rank 1 cannot read {path}")

                extract.load_audio = broken
                try:
                    encode(pd.read_csv(out / "manifest.csv", keep_default_na=False), out / "store")
                finally:
                    extract.load_audio = original
            else:
                encode(pd.read_csv(out / "manifest.csv", keep_default_na=False), out / "store")
        elif name.startswith("train"):  # train_<dropout>[_stop<epoch>]
            parts = name.split("_")
            stop = int(parts[2][4:]) if len(parts) > 2 else None
            history = train_history(out, dropout=float(parts[1]), stop_after=stop)
            if dist.main:
                (out / f"{name}.json").write_text(json.dumps(history))
        elif name == "probes":
            results, predictions, meta = probe_run()
            if dist.main:
                results.to_csv(out / "results.csv", index=False)
                predictions.to_csv(out / "predictions.csv", index=False)
                (out / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        else:
            raise SystemExit(f"unknown worker {name}")
    finally:
        D.finish()


def torchrun(name: str, out: Path, nproc: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={nproc}", "-m", "tests.distributed_checks"]
    command += ["--worker", name, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


# ----------------------------------------------------------------------------- checks
def check_features(tmp: Path, nproc: int) -> tuple[bool, str]:
    from selm_lib.features.store import FeatureStore

    manifest = write_audio(tmp / "audio")
    (tmp / "ranks").mkdir()
    manifest.to_csv(tmp / "ranks" / "manifest.csv", index=False)
    run = torchrun("features", tmp / "ranks", nproc)
    if run.returncode:
        return False, f"torchrun failed: {run.stderr[-2000:]}"
    (tmp / "single").mkdir()
    manifest.to_csv(tmp / "single" / "manifest.csv", index=False)
    run = torchrun("features", tmp / "single", 1)  # the same threads per process as the ranks
    if run.returncode:
        return False, f"torchrun (1 process) failed: {run.stderr[-2000:]}"
    one = FeatureStore.open(tmp / "single" / "store")
    many = FeatureStore.open(tmp / "ranks" / "store")
    many.verify()
    ids = sorted(one.utterance_ids)
    same = sorted(many.utterance_ids) == ids and all(
        one.get(u).tobytes() == many.get(u).tobytes() for u in ids
    )
    shards = f"{one.meta['n_shards']} vs {many.meta['n_shards']} shards"
    return same, f"{len(ids)} clips, same bytes per clip: {same} ({shards})"


def check_training(tmp: Path, nproc: int) -> tuple[bool, str]:
    notes, held = [], True
    for dropout in (0.0, 0.1):
        name = f"train_{dropout}"
        out = tmp / name
        out.mkdir()
        run = torchrun(name, out, nproc)
        if run.returncode:
            return False, f"torchrun {name} failed: {run.stderr[-2000:]}"
        many = json.loads((out / f"{name}.json").read_text())
        single = tmp / f"{name}_single"
        single.mkdir()
        run = torchrun(name, single, 1)
        if run.returncode:
            return False, f"torchrun {name} (1 process) failed: {run.stderr[-2000:]}"
        one = json.loads((single / f"{name}.json").read_text())
        losses = [abs(a["val_loss"] - b["val_loss"]) for a, b in zip(one, many, strict=True)]
        accuracy = abs(one[-1]["val_accuracy_categorical"] - many[-1]["val_accuracy_categorical"])
        if dropout == 0.0:
            ok = max(losses) < TOLERANCE["exact_loss"]
            notes.append(f"no dropout: max |val loss diff| {max(losses):.2e}")
        else:
            ok = (
                losses[-1] < TOLERANCE["dropout_loss"] and accuracy <= TOLERANCE["dropout_accuracy"]
            )
            notes.append(
                f"dropout: final val loss diff {losses[-1]:.4f}, accuracy diff {accuracy:.3f}"
            )
        held = held and ok
    # interrupted after epoch 1 with nproc processes, resumed with one: the run one process
    # makes uninterrupted (no dropout: the same gradients)
    out = tmp / "resume"
    out.mkdir()
    for name, processes in (("train_0.0_stop1", nproc), ("train_0.0", 1)):
        run = torchrun(name, out, processes)
        if run.returncode:
            return False, f"torchrun {name} failed: {run.stderr[-2000:]}"
    resumed = json.loads((out / "train_0.0.json").read_text())
    straight = json.loads((tmp / "train_0.0_single" / "train_0.0.json").read_text())
    gap = max(abs(a["val_loss"] - b["val_loss"]) for a, b in zip(resumed, straight, strict=True))
    ok = len(resumed) == len(straight) and gap < TOLERANCE["exact_loss"]
    notes.append(f"resumed with 1 process after {nproc}: max |val loss diff| {gap:.2e}")
    return held and ok, "; ".join(notes)


def check_probes(tmp: Path, nproc: int) -> tuple[bool, str]:
    out, single = tmp / "probes", tmp / "probes_single"
    for folder, processes in ((out, nproc), (single, 1)):
        folder.mkdir()
        run = torchrun("probes", folder, processes)
        if run.returncode:
            return False, f"torchrun ({processes} processes) failed: {run.stderr[-2000:]}"
    files = ("results.csv", "predictions.csv", "meta.json")
    same = all((single / f).read_bytes() == (out / f).read_bytes() for f in files)
    scores = len(pd.read_csv(out / "results.csv"))
    return same, f"{scores} scores, identical files: {same}"


def check_errors(tmp: Path, nproc: int) -> tuple[bool, str]:
    from selm_lib.config import ParamsError
    from selm_lib.config.distributed import check_nproc

    out = tmp / "fail"
    out.mkdir()
    write_audio(tmp / "audio_fail").to_csv(out / "manifest.csv", index=False)
    run = torchrun("features_fail", out, nproc)
    named = "rank 1 cannot read" in run.stderr
    left = [p.name for p in out.iterdir() if p.name not in ("manifest.csv",)]
    try:
        check_nproc((os.cpu_count() or 1) + 1, "cpu")
        refused = False
    except ParamsError as error:
        refused = f"{os.cpu_count()} CPU core(s)" in str(error)
    ok = run.returncode != 0 and named and not (out / "store").exists() and refused
    return ok, (
        f"failing rank: exit {run.returncode}, its error shown: {named}, store written: "
        f"{(out / 'store').exists()} (left: {left}); nproc above the cores refused: {refused}"
    )


CHECKS = {
    "features": check_features,
    "training": check_training,
    "probes": check_probes,
    "errors": check_errors,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, choices=list(CHECKS))
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.out)
        return 0
    held = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only or CHECKS:
            tmp = Path(folder) / name
            tmp.mkdir()
            ok, note = CHECKS[name](tmp, args.nproc)
            held[name] = ok
            print(f"{name}: {'held' if ok else 'FAILED'} ({note})", flush=True)
    print(
        f"check-distributed (gloo, {args.nproc} processes): "
        + ", ".join(f"{n} {'held' if ok else 'FAILED'}" for n, ok in held.items())
    )
    return 0 if all(held.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
