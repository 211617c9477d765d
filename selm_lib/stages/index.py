"""Stage ``index``: ``reports/index.html`` linking every rendered report with its summary.

python -m selm_lib.stages.index [--reports reports] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selm_lib.config import ParamsError, load_params
from selm_lib.report.index import build_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selm_lib.stages.index", description=__doc__)
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--params", default=None)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "index.html").write_text(build_index(reports, params["index"]["title"]))
    print(f"wrote {reports / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
