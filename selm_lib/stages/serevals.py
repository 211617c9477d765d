"""Stage ``serevals``: the SER-Evals probes of every backbone as train x test matrices.

    python -m selm_lib.stages.serevals [--params params.yaml]

Reads every ``serevals_probe`` item of ``serevals_sweep.backbones`` and writes the matrices per
backbone x variant x metric (``common.output_root/serevals/matrices/``, CSV and one
``matrices.json``) and ``reports/metrics/serevals.json`` (in-domain and OOD means per backbone).
The reports ``05_ser_evals.py`` and ``06_figures.py`` read them.
"""

from __future__ import annotations

import argparse
import json
import sys

from selm_lib.config import ParamsError, load_params, output_dir, project_root
from selm_lib.serevals.results import SerevalsError, matrices, read_results, summary, write_matrices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.stages.serevals",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=None, help="params file (default: ./params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        results = read_results(params)
    except (ParamsError, SerevalsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scores = summary(results, params)
    folder = output_dir(params, "serevals", "matrices")
    serevals = params["serevals"]
    about = {
        "split_per_corpus": scores["split_per_corpus"],
        "normalize": serevals["normalize"],
        "mask_absent": serevals["mask_absent"],
    }
    write_matrices(matrices(results, params), folder, about=about)
    path = project_root() / "reports" / "metrics" / "serevals.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    print(f"serevals: {len(list(folder.rglob('*.csv')))} matrices -> {folder}; {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
