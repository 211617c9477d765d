"""Stage ``synthesize``: write the embedded synthetic corpora.

    python -m selm_lib.stages.synthesize [--params params.yaml]

Reads ``common`` (seed, profile) and ``synth`` (sizes, label noise, which corpora) and writes each
corpus in its real layout under ``synth.out_dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from selm_lib.config import ParamsError, resolve_path
from selm_lib.config.cli import run_stage
from selm_lib.data.provenance import SYNTHETIC_MARKER, SYNTHETIC_NOTE
from selm_lib.data.synth.common import Plan
from selm_lib.data.synth.registry import WRITERS, write_corpus


def plans(params: dict) -> dict[str, Plan]:
    """The write plan of every corpus in ``synth.corpora`` for the active profile."""
    common, synth = params["common"], params["synth"]
    profile = common["profile"]
    out = {}
    for name in synth["corpora"]:
        if name not in WRITERS:
            raise ParamsError(
                f"params.yaml: 'synth.corpora' lists '{name}', which has no synthetic layout; "
                "known: " + ", ".join(WRITERS)
            )
        for key in ("speakers", "utterances_per_speaker"):
            if name not in synth[key][profile]:
                raise ParamsError(f"params.yaml: 'synth.{key}.{profile}.{name}' is missing")
        speakers = synth["speakers"][profile][name]
        out[name] = Plan(
            speakers=10 if name == "iemocap" else speakers,  # IEMOCAP: 5 sessions x 2 speakers
            utterances_per_speaker=synth["utterances_per_speaker"][profile][name],
            duration_s=tuple(synth["duration_s"]),
            label_noise=float(synth["label_noise"].get(name, 0.0)),
            seed=common["seed"],
            bad_files=synth["bad_files"],
        )
    return out


def _write(args: tuple[str, Path, Plan]) -> tuple[str, float]:
    name, out_dir, plan = args
    start = time.perf_counter()
    write_corpus(name, out_dir, plan)
    return name, time.perf_counter() - start


def synthesize(params: dict[str, Any], args: argparse.Namespace) -> str:
    out_dir = resolve_path(params["synth"]["out_dir"])
    jobs = [(name, out_dir, plan) for name, plan in plans(params).items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SYNTHETIC_MARKER).write_text(SYNTHETIC_NOTE)
    # Largest corpora first so the two workers finish together.
    jobs.sort(key=lambda job: -job[2].speakers * job[2].utterances_per_speaker)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for name, seconds in pool.map(_write, jobs):
            print(f"synthesised {name:12s} in {seconds:5.1f} s", flush=True)
    return f"synthesize: {len(jobs)} corpora -> {out_dir}"


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")

    return run_stage("selm_lib.stages.synthesize", __doc__, argv, synthesize, options)


if __name__ == "__main__":
    sys.exit(main())
