"""Time of every SER-Evals probe of the current params (backbones x corpora, plus the OOD pairs),
on features that are already cached.

    .venv/bin/python benchmarks/serevals_probes.py [--out benchmarks/results/serevals_probes.json]

Run it in the project after ``dvc repro features`` (every features@NAME stage) or a full
``make repro``: it reads ``artifacts/manifests`` and ``artifacts/features`` and runs, for each
backbone of ``serevals_sweep.backbones``, exactly what the ``serevals_probe`` stage item runs
(:func:`selm_lib.serevals.protocol.run_backbone`: one probe trained per corpus on length-grouped
batches of cached frames, in-domain scoring, OOD scoring of every cluster pair under four logit
adjustments), each in its own process so that its peak memory is its own. Nothing is written to
the project. The target is all probes under 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

CHILD = """
import json, resource, sys, time
from selm_lib.config import load_params
from selm_lib.serevals.protocol import run_backbone
params = load_params()
start = time.perf_counter()
results, predictions, meta = run_backbone(params, sys.argv[1])
print(json.dumps({
    "seconds": round(time.perf_counter() - start, 2),
    "scores": len(results),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/serevals_probes.json"))
    args = parser.parse_args(argv)
    from selm_lib.config import load_params
    from selm_lib.serevals.results import cluster_pairs

    os.chdir(PROJECT)
    params = load_params()
    serevals = params["serevals"]
    rows = {}
    total_start = time.perf_counter()
    for backbone in params["serevals_sweep"]["backbones"]:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, backbone],
            capture_output=True,
            text=True,
            check=False,
            cwd=PROJECT,
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        rows[backbone] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{backbone}: {rows[backbone]}", flush=True)
    total = round(time.perf_counter() - total_start, 1)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "profile": params["common"]["profile"],
        "corpora": len(serevals["corpora"]),
        "ood_pairs": len(cluster_pairs(serevals["clusters"], list(serevals["corpora"]))),
        "epochs": serevals["probe"]["epochs"],
        "backbones": rows,
        "total_seconds": total,
        "target_seconds": 240,
        "within_target": total < 240,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"all probes: {total} s (target 240 s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
