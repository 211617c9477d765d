"""The command line every compute stage shares: ``--params`` (and the stage's own options),
``params.yaml`` loaded and validated, and any input error printed as one ``error:`` line with
exit status 2 (the message names the file or params key and the fix), never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from selm_lib.config.params import load_params

# Input errors: every error class of the package is one of these (ParamsError, EvalError,
# TrainingError, FewshotError, SerevalsError are ValueErrors; missing stage outputs and corpus
# layout errors are FileNotFoundErrors).
INPUT_ERRORS = (ValueError, FileNotFoundError)


def run_stage(
    module: str,
    doc: str | None,
    argv: Sequence[str] | None,
    work: Callable[[dict[str, Any], argparse.Namespace], str],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse ``argv``, load ``params.yaml`` and run ``work(params, args)``; prints the line it
    returns. Returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=None, help="params file (default: ./params.yaml)")
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    try:
        message = work(load_params(args.params), args)
    except INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(message, flush=True)
    return 0
