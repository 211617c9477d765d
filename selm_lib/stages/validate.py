"""Stage ``validate``: check the whole ``params.yaml`` before any stage touches an output.

    python -m selm_lib.stages.validate [--params params.yaml]

Every other stage depends on this stage's output, so ``dvc repro`` and ``dvc exp run`` run it
first whenever ``params.yaml`` changes: a misspelled or mistyped key fails here, with the nearest
valid key, before DVC deletes any stage's outputs for a rerun. Besides the schema and the cross
references of :func:`selm_lib.config.validate` it checks the names that need the registries: a
scanner for every ``curate.corpora`` entry and a synthetic writer for every ``synth.corpora``
entry. It prints where the file departs from the profile ``common.profile`` names
(:mod:`selm_lib.config.profiles`). The output holds a fixed sentence, so a passing check never
makes a later stage stale.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from selm_lib.config import ParamsError, load_params, output_dir
from selm_lib.config.cli import run_stage
from selm_lib.config.profiles import departures
from selm_lib.data.corpora.registry import SCANNERS
from selm_lib.data.synth.registry import WRITERS

OK_FILE = "params_validated.txt"
OK_TEXT = "params.yaml passed selm_lib.stages.validate\n"


def check_registries(params: dict[str, Any], source: str = "params.yaml") -> None:
    """Every corpus named in ``curate.corpora`` has a scanner, every ``synth.corpora`` a writer."""
    for name in params["curate"]["corpora"]:
        if name not in SCANNERS:
            near = difflib.get_close_matches(name, list(SCANNERS), n=1, cutoff=0.5)
            hint = f"did you mean '{near[0]}'?" if near else "known: " + ", ".join(SCANNERS)
            raise ParamsError(f"{source}: 'curate.corpora.{name}' names no scanner; {hint}")
    for name in params["synth"]["corpora"]:
        if name not in WRITERS:
            raise ParamsError(
                f"{source}: 'synth.corpora' lists '{name}', which has no synthetic layout; "
                "known: " + ", ".join(WRITERS)
            )


def check(path: str | Path | None = None) -> dict[str, Any]:
    """Load ``params.yaml`` (schema and cross references) and check the registry names."""
    params = load_params(path)
    check_registries(params, str(path or "params.yaml"))
    return params


def validated(params: dict[str, Any], args: argparse.Namespace) -> str:
    check_registries(params, args.params or "params.yaml")
    (output_dir(params) / OK_FILE).write_text(OK_TEXT)
    profile = params["common"]["profile"]
    found = departures(params, profile)
    for d in found:  # a departure is allowed (an ablation); it is named, here and in the reports
        print(f"note: {d.key} = {d.value!r} departs from profile {profile} ({d.expected!r})")
    return f"params.yaml is valid (profile {profile}, {len(found)} departures from it)"


def main(argv: list[str] | None = None) -> int:
    status = run_stage("selm_lib.stages.validate", __doc__, argv, validated)
    if status:
        print(
            "Nothing was run and no output was touched: fix params.yaml and rerun.", file=sys.stderr
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
