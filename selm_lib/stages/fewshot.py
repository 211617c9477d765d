"""Stage ``fewshot``: the few-shot sweep's items aggregated over seeds.

    python -m selm_lib.stages.fewshot [--params params.yaml]

Reads every ``fewshot_item`` output of ``fewshot_sweep`` (k x seeds) and writes
``reports/metrics/fewshot.json`` (mean and 95 % interval over seeds per corpus x method x k) and
``reports/plots/fewshot_curves.csv``. The report ``04_fewshot.py`` reads them.
"""

from __future__ import annotations

import argparse
import json
import sys

from selm_lib.config import ParamsError, load_params, project_root
from selm_lib.selm.adapt import FewshotError, aggregate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.stages.fewshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=None, help="params file (default: ./params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        summary, table = aggregate(params)
    except (ParamsError, FewshotError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    root = project_root()
    (root / "reports" / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "reports" / "metrics" / "fewshot.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    (root / "reports" / "plots").mkdir(parents=True, exist_ok=True)
    curves = table.groupby(["corpus", "method", "k"], as_index=False)["accuracy"].mean()
    curves.to_csv(root / "reports" / "plots" / "fewshot_curves.csv", index=False)
    print(
        f"fewshot: {len(table)} scores from {table[['k', 'seed']].drop_duplicates().shape[0]} "
        "items aggregated"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
