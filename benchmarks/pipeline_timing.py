"""Time every pipeline stage and the whole `dvc repro`, and record peak memory.

    .venv/bin/python benchmarks/pipeline_timing.py [--profile default] [--out FILE.json]

Works on a temporary copy of the project (git init + dvc init), so the checkout's own outputs are
left alone. Each stage is run on its own (`dvc repro -f -s STAGE`, in pipeline order) and timed;
then the whole pipeline is run again with `dvc repro -f`. Peak memory is the largest resident
set of any process a stage started (the notebook kernel included). Targets on 2 CPU cores
(issue 2): curate < 60 s, whole pipeline < 15 min, peak memory < 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent


def run(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the largest process the command started."""
    start = time.perf_counter()
    process = subprocess.Popen(command, shell=True, cwd=cwd, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"'{command}' failed")
    # ru_maxrss of a waited child covers its own descendants (the Jupyter kernel).
    return seconds, usage.ru_maxrss / 1024


def order(stages: dict) -> list[str]:
    """dvc.yaml lists stages in pipeline order."""
    return list(stages)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="default", choices=["default", "smoke"])
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/pipeline_timing.json"))
    parser.add_argument("--keep-reports", default=None, help="copy the run's reports/ here")
    args = parser.parse_args()

    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
    )
    with tempfile.TemporaryDirectory(prefix="selm-bench-") as tmp:
        root = Path(tmp)
        for name in ("params.yaml", "dvc.yaml", ".gitignore", ".dvcignore"):
            shutil.copy(PROJECT / name, root / name)
        for folder in ("selm_lib", "notebooks"):
            shutil.copytree(
                PROJECT / folder,
                root / folder,
                ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"),
            )
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["common"]["profile"] = args.profile
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env)
        shutil.copy(PROJECT / ".dvc" / "config", root / ".dvc" / "config")

        stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
        results = {}
        for stage in order(stages):
            # through DVC, so matrix stages (fewshot_item) run all their items
            seconds, peak_mb = run(f"{sys.executable} -m dvc repro -q -f -s {stage}", root, env)
            results[stage] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
            print(f"{stage:14s} {seconds:7.1f} s   peak {peak_mb:7.0f} MB", flush=True)
        seconds, peak_mb = run(f"{sys.executable} -m dvc repro -f -q", root, env)
        print(f"{'dvc repro -f':14s} {seconds:7.1f} s   peak {peak_mb:7.0f} MB")
        if args.keep_reports:
            shutil.copytree(root / "reports", args.keep_reports, dirs_exist_ok=True)

    record = {
        "profile": args.profile,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        },
        "stages": results,
        "dvc_repro_seconds": round(seconds, 1),
        "dvc_repro_peak_rss_mb": round(peak_mb),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
