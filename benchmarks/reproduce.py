"""Reproduce the embedded default from a fresh clone, compare it with the committed dvc.lock, and
measure what a code, prose or params edit costs to rerun.

    .venv/bin/python benchmarks/reproduce.py [--out benchmarks/results/reproduce.json]

1. ``git clone`` of this checkout's HEAD into a temporary folder, ``dvc repro`` of the whole
   default pipeline (about 20 minutes on 2 cores: 1160.7 s in the last run).
2. For every stage of the committed ``dvc.lock``, its outputs' hashes against the new run's.
   Stages in ``NOT_BYTE_STABLE`` are reported but not required to match (see the README).
3. Rerun cost: ``dvc repro`` after (a) touching ``selm_lib/serevals/figures.py``, (b) editing the
   prose of ``notebooks/02_train_selm.py``, (c) adding a SER-Evals backbone entry (a copy of
   ``se_hubert``) to ``features.backbones`` and ``serevals_sweep.backbones``: seconds and the
   stages that ran.

Exits non-zero when a byte-stable stage's outputs differ from the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
# features@*: each store's stats.json records the run's own timings (speed, seconds), so a
# recomputed store differs in that file alone; every shard, index and meta.json is byte-stable.
NOT_BYTE_STABLE = re.compile(r"^features@")


def repro(root: Path, env: dict[str, str]) -> tuple[float, list[str], dict[str, float]]:
    """``dvc repro`` in ``root``: wall seconds, the stages that ran, and each stage's seconds
    (from the moment DVC announces it to the next announcement or the end)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=root,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    stages, began, tail = [], [], []
    for line in process.stdout:
        tail = (tail + [line])[-60:]
        found = re.match(r"Running stage '([^']+)'", line)
        if found:
            stages.append(found[1])
            began.append(time.perf_counter())
    process.wait()
    end = time.perf_counter()
    if process.returncode != 0:
        raise SystemExit("dvc repro failed:\n" + "".join(tail))
    ends = began[1:] + [end]
    durations = {s: round(e - b, 1) for s, b, e in zip(stages, began, ends, strict=True)}
    return end - start, stages, durations


def out_hashes(lock: dict) -> dict[str, dict[str, str]]:
    return {
        stage: {out["path"]: out.get("md5", "") for out in spec.get("outs", [])}
        for stage, spec in lock["stages"].items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/reproduce.json"))
    args = parser.parse_args()
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
    )
    committed = out_hashes(yaml.safe_load((PROJECT / "dvc.lock").read_text()))
    record: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="selm-reproduce-") as tmp:
        root = Path(tmp) / "selm"
        subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
        (root / "dvc.lock").unlink(missing_ok=True)  # run everything, as on a fresh machine
        seconds, stages, durations = repro(root, env)
        record["full_repro"] = {
            "seconds": round(seconds, 1),
            "stages": len(stages),
            "stage_seconds": durations,
        }
        print(f"full dvc repro: {seconds:.1f} s, {len(stages)} stages", flush=True)

        fresh = out_hashes(yaml.safe_load((root / "dvc.lock").read_text()))
        comparison, failed = {}, []
        for stage, outs in committed.items():
            same = fresh.get(stage) == outs
            stable = not NOT_BYTE_STABLE.match(stage)
            comparison[stage] = {"identical": same, "byte_stable": stable}
            if stable and not same:
                failed.append(stage)
            print(
                f"  {stage:28s} {'identical' if same else 'DIFFERS'}"
                + ("" if stable else " (not byte-stable by design)")
            )
        record["lock_comparison"] = comparison
        record["lock_matches"] = not failed

        edits = {}
        figures = root / "selm_lib" / "serevals" / "figures.py"
        figures.write_text(figures.read_text() + "\n# touched by benchmarks/reproduce.py\n")
        edits["touch selm_lib/serevals/figures.py"] = repro(root, env)[:2]
        notebook = root / "notebooks" / "02_train_selm.py"
        notebook.write_text(
            notebook.read_text().replace("## Loss curves", "## Loss curves, by epoch")
        )
        edits["edit the prose of notebooks/02_train_selm.py"] = repro(root, env)[:2]
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["features"]["backbones"]["se_hubert_b"] = params["features"]["backbones"][
            "se_hubert"
        ]
        params["serevals_sweep"]["backbones"].append("se_hubert_b")
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        edits["add SER-Evals backbone se_hubert_b"] = repro(root, env)[:2]
        record["rerun_cost"] = {
            name: {"seconds": round(s, 1), "stages": ran} for name, (s, ran) in edits.items()
        }
        for name, (s, ran) in edits.items():
            print(f"{name}: {s:.1f} s, ran {', '.join(ran)}")

    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    if failed:
        print(f"outputs differ from dvc.lock: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
