"""The few-shot and SER-Evals grids through DVC's experiments queue, on the smoke profile.

    .venv/bin/python benchmarks/queue_sweep.py [--jobs 2] [--out FILE]

1. A temporary git + DVC project (``$TMPDIR``): the working tree's ``params.yaml``, ``dvc.yaml``,
   ``selm_lib`` and ``notebooks`` with the smoke settings of ``tests/test_pipeline.py``; one
   ``dvc repro`` and a commit of ``dvc.lock`` give the experiments their baseline.
2. Two experiments, each changing one grid key, queued with
   ``dvc exp run --queue -n NAME -S KEY=VALUE -C data -C artifacts -C reports``. The queue runs
   every experiment in its own copy of the baseline commit under ``.dvc/tmp/exps``, which holds
   the git-tracked files and the DVC-cached outputs only: ``-C`` copies the outputs the pipeline
   keeps out of the cache (the synthetic corpora, the feature stores, SELM's checkpoint folder,
   the rendered reports) so that only the stages the key reaches rerun.
3. ``dvc queue start -j JOBS``, ``dvc queue status`` until no task is queued or running, then
   ``dvc exp show --json``: each experiment succeeded, carries its params and the metrics they
   imply, and ran no stage upstream of its grid (no synthesize, features or train_selm).
4. ``dvc exp apply`` of the first experiment: its params and metrics land in the workspace.

Prints one line with the result and writes the wall times to ``--out``; exits non-zero when a
check fails. ``--out`` defaults to ``benchmarks/results/queue_sweep.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
# Outputs kept out of DVC's cache (cache: false in dvc.yaml) live under these folders; a queued
# experiment's workspace lacks them unless they are copied in.
COPY_PATHS = ("data", "artifacts", "reports")
# Stages upstream of both grids: an experiment that reruns one of them copied nothing in.
UPSTREAM = re.compile(r"^(synthesize|curate|features@.*|train_selm|eval_ood)$")


def environment() -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
    )


def sh(args: list[str], cwd: Path, timeout: int = 1800) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr}")
    return result.stdout + result.stderr


def dvc(*args: str, cwd: Path, timeout: int = 1800) -> str:
    return sh([sys.executable, "-m", "dvc", *args], cwd, timeout)


def set_param(root: Path, dotted: str, value) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    *parents, last = dotted.split(".")
    target = params
    for part in parents:
        target = target[part]
    target[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def smoke_project(root: Path) -> None:
    """The pipeline on the smoke profile with the small grids of tests/test_pipeline.py."""
    root.mkdir()
    for name in ("params.yaml", "dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(PROJECT / name, root / name)
    for folder in ("selm_lib", "notebooks"):
        shutil.copytree(
            PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb")
        )
    set_param(root, "common.profile", "smoke")
    set_param(root, "train_selm.epochs", 2)
    set_param(root, "fewshot_sweep.k", [0, 2])
    set_param(root, "fewshot_sweep.seeds", [0])
    set_param(root, "fewshot.cap_k", True)
    set_param(root, "fewshot.steps", 3)
    set_param(root, "fewshot.baseline_steps", 3)
    set_param(
        root, "fewshot.select", {"learning_rate": [0.001], "baseline_learning_rate": [0.0005]}
    )
    set_param(root, "layer_sweep.layers", [0, 2])
    backbones = yaml.safe_load((root / "params.yaml").read_text())["features"]["backbones"]
    keep = ("w2v_tiny", "w2v_layers", "se_wavlm", "se_logmel")
    set_param(root, "features.backbones", {k: v for k, v in backbones.items() if k in keep})
    set_param(root, "serevals_sweep.backbones", ["se_wavlm"])
    set_param(root, "serevals.probe.epochs", 3)
    sh(["git", "init", "-q"], root)
    sh(["git", "config", "user.name", "queue_sweep"], root)
    sh(["git", "config", "user.email", "queue_sweep@localhost"], root)
    dvc("init", "-q", cwd=root)
    shutil.copy(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    sh(["git", "add", "-A"], root)
    sh(["git", "commit", "-qm", "smoke project"], root)


def ran(log: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", log)


def queue_states(root: Path) -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) from ``dvc queue status``."""
    states = {}
    for line in dvc("queue", "status", cwd=root).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[-1] in {"Queued", "Running", "Success", "Failed"}:
            states[parts[1]] = parts[-1]
    return states


def experiments(root: Path) -> dict[str, dict]:
    """Experiment name -> its revision entry of ``dvc exp show --json``."""
    out = dvc("exp", "show", "--json", cwd=root)
    found = {}
    for baseline in json.loads(out[out.index("[") :]):
        for experiment in baseline.get("experiments") or []:
            rev = experiment["revs"][0]
            found[rev["name"]] = rev
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2, help="dvc queue start -j (workers)")
    parser.add_argument("--out", default=str(PROJECT / "benchmarks/results/queue_sweep.json"))
    args = parser.parse_args()

    grid = {  # name -> (-S override, what the metrics must then show)
        "fewshot-seeds": "fewshot_sweep.seeds=[0,1]",
        "serevals-backbones": "serevals_sweep.backbones=[se_wavlm,se_logmel]",
    }
    record: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        },
        "dvc": dvc("--version", cwd=PROJECT).strip(),
        "profile": "smoke (tests/test_pipeline.py settings)",
        "jobs": args.jobs,
    }
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="selm-queue-") as tmp:
        root = Path(tmp) / "selm"
        smoke_project(root)
        start = time.perf_counter()
        baseline_log = dvc("repro", cwd=root)
        record["baseline_repro"] = {
            "seconds": round(time.perf_counter() - start, 1),
            "stages": len(ran(baseline_log)),
        }
        print(f"baseline dvc repro: {record['baseline_repro']['seconds']} s", flush=True)
        sh(["git", "add", "-A"], root)
        sh(["git", "commit", "-qm", "baseline: dvc.lock"], root)
        tracked = {p.split("/")[0] for p in sh(["git", "ls-files"], root).splitlines()}
        clash = sorted(set(COPY_PATHS) & tracked)
        if clash:
            raise SystemExit(
                f"{', '.join(clash)} hold git-tracked files in {root}: `dvc exp run -C` cannot "
                "copy a folder the experiment's checkout already has"
            )
        copies = [arg for path in COPY_PATHS for arg in ("-C", path)]
        record["copy_paths_mb"] = round(
            sum(f.stat().st_size for p in COPY_PATHS for f in (root / p).rglob("*") if f.is_file())
            / 2**20,
            1,
        )

        start = time.perf_counter()
        for name, override in grid.items():
            dvc("exp", "run", "--queue", "-n", name, "-S", override, *copies, cwd=root)
        record["queue_seconds"] = round(time.perf_counter() - start, 1)

        start, clock = time.perf_counter(), datetime.now()
        # The workers inherit this call's captured stdout and stderr, so it returns once they
        # have exited (in a terminal `dvc queue start` returns at once); the polls confirm it.
        dvc("queue", "start", "-j", str(args.jobs), cwd=root)
        polls: list[float] = []
        while True:
            polled = time.perf_counter()
            states = queue_states(root)
            polls.append(time.perf_counter() - polled)
            if not any(s in {"Queued", "Running"} for s in states.values()):
                break
            if time.perf_counter() - start > 3600:
                dvc("queue", "kill", *grid, cwd=root)
                raise SystemExit(f"queue still busy after an hour: {states}")
            time.sleep(5)
        record["queue_wall_seconds"] = round(time.perf_counter() - start, 1)
        record["status_polls"] = {"count": len(polls), "slowest_seconds": round(max(polls), 1)}

        shown = experiments(root)
        record["experiments"] = {}
        for name, override in grid.items():
            log = dvc("queue", "logs", name, cwd=root)
            stages = ran(log)
            rev = shown.get(name)
            entry = {
                "set": override,
                "status": states.get(name),
                # the experiment's commit time, counted from `dvc queue start`
                "finished_after_seconds": None
                if rev is None
                else round(
                    (datetime.fromisoformat(rev["data"]["timestamp"]) - clock).total_seconds()
                ),
                "stages": stages,
            }
            record["experiments"][name] = entry
            if rev is None or rev.get("error") or states.get(name) != "Success":
                failures.append(f"{name}: {states.get(name)} ({log[-1500:]})")
                continue
            params = rev["data"]["params"]["params.yaml"]["data"]
            metrics = rev["data"]["metrics"]
            upstream = [s for s in stages if UPSTREAM.match(s)]
            if upstream:
                failures.append(f"{name}: reran {', '.join(upstream)} (the copies did not help)")
            if name == "fewshot-seeds":
                fewshot = metrics["reports/metrics/fewshot.json"]["data"]
                seeds = {
                    cell["seeds"]
                    for corpus in ("ravdess", "crema_d", "iemocap")
                    for by_k in fewshot[corpus].values()
                    for cell in by_k.values()
                }
                entry["checked"] = {
                    "params": params["fewshot_sweep"],
                    "seeds_per_cell": sorted(seeds),
                }
                if params["fewshot_sweep"]["seeds"] != [0, 1] or seeds != {2}:
                    failures.append(f"{name}: params or metrics do not show seeds [0, 1]: {seeds}")
                if not {"fewshot_item@0-1", "fewshot_item@2-1", "fewshot"} <= set(stages):
                    failures.append(f"{name}: the new few-shot items did not run: {stages}")
            else:
                serevals = metrics["reports/metrics/serevals.json"]["data"]
                entry["checked"] = {
                    "params": params["serevals_sweep"],
                    "backbones_in_metrics": sorted(serevals["backbones"]),
                }
                if sorted(serevals["backbones"]) != ["se_logmel", "se_wavlm"]:
                    failures.append(f"{name}: serevals.json has {sorted(serevals['backbones'])}")
                if not {"serevals_probe@se_logmel", "serevals"} <= set(stages):
                    failures.append(f"{name}: the new probe item did not run: {stages}")

        if not failures:
            dvc("exp", "apply", "fewshot-seeds", cwd=root)
            applied = yaml.safe_load((root / "params.yaml").read_text())["fewshot_sweep"]["seeds"]
            metrics = root / "reports/metrics/fewshot.json"
            lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["fewshot"]["outs"]
            locked = {out["path"]: out["md5"] for out in lock}[str(metrics.relative_to(root))]
            same = hashlib.md5(metrics.read_bytes()).hexdigest() == locked
            record["exp_apply"] = {"seeds": applied, "metrics_match_experiment_lock": same}
            if applied != [0, 1] or not same:
                failures.append(f"dvc exp apply: seeds {applied}, metrics match its lock: {same}")

    record["ok"] = not failures
    record["failures"] = failures
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    times = ", ".join(
        f"{n} done after {e['finished_after_seconds']} s" for n, e in record["experiments"].items()
    )
    print(
        f"queue_sweep: {'OK' if not failures else 'FAILED'}: {len(grid)} experiments with "
        f"dvc queue start -j {args.jobs} in {record['queue_wall_seconds']} s ({times}); "
        f"baseline dvc repro {record['baseline_repro']['seconds']} s; wrote {args.out}"
    )
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
