"""Stage ``index``: ``reports/index.html`` linking every rendered report with its summary.

python -m selm_lib.stages.index [--reports reports] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from selm_lib.config.cli import run_stage
from selm_lib.report.index import build_index


def index(params: dict[str, Any], args: argparse.Namespace) -> str:
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "index.html").write_text(build_index(reports, params["index"]["title"]))
    return f"wrote {reports / 'index.html'}"


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reports", default="reports", help="report folder")

    return run_stage("selm_lib.stages.index", __doc__, argv, index, options)


if __name__ == "__main__":
    sys.exit(main())
