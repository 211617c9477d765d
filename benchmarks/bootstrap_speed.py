"""Speed of the speaker bootstrap (``selm_lib.evaluation.metrics.bootstrap_ci``) against the plain
loop it replaces (resample speakers, stack their items, score), on the same draws.

    .venv/bin/python benchmarks/bootstrap_speed.py [--speakers 20] [--per-speaker 75] [--boot 1000]

Prints both times and their ratio and writes ``benchmarks/results/bootstrap_speed.json``. The
vectorised version must also equal the loop (tests/test_metrics.py checks that on a small case).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from selm_lib.evaluation import metrics as M

CLASSES = ["angry", "happy", "neutral", "sad"]


def data(speakers: int, per_speaker: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES, size=speakers * per_speaker).tolist()
    skill = np.repeat(rng.uniform(0.3, 0.9, speakers), per_speaker)
    guess = rng.choice(CLASSES, size=len(truth))
    pred = [t if rng.random() < s else g for t, s, g in zip(truth, skill, guess, strict=True)]
    groups = np.repeat([f"s{i}" for i in range(speakers)], per_speaker).tolist()
    return truth, pred, groups


def loop(truth, pred, groups, n_boot: int, seed: int) -> None:
    speakers = list(dict.fromkeys(groups))
    items = {s: [i for i, g in enumerate(groups) if g == s] for s in speakers}
    draws = np.random.default_rng(seed).integers(0, len(speakers), size=(n_boot, len(speakers)))
    for draw in draws:
        chosen = [i for d in draw for i in items[speakers[d]]]
        M.summary([truth[i] for i in chosen], [pred[i] for i in chosen], CLASSES)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--per-speaker", type=int, default=75)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results/bootstrap_speed.json")
    )
    args = parser.parse_args()
    truth, pred, groups = data(args.speakers, args.per_speaker)
    start = time.perf_counter()
    M.bootstrap_ci(truth, pred, groups, CLASSES, metrics=M.METRIC_NAMES, n_boot=args.boot)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    loop(truth, pred, groups, args.boot, seed=0)
    slow = time.perf_counter() - start
    record = {
        "items": len(truth),
        "speakers": args.speakers,
        "resamples": args.boot,
        "bootstrap_ci_seconds": round(fast, 3),
        "loop_seconds": round(slow, 3),
        "speed_up": round(slow / fast, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print(json.dumps(record, indent=2))
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
