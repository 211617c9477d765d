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
    distributed: bool = False,
) -> int:
    """Parse ``argv``, load ``params.yaml`` and run ``work(params, args)``; prints the line it
    returns. Returns the process exit status.

    ``distributed``: the stage can run as several processes (:mod:`selm_lib.config.distributed`).
    With ``common.nproc > 1`` and no torchrun around it, the stage starts itself under torchrun
    and returns torchrun's status; under torchrun it joins the process group, and only rank 0
    prints."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=None, help="params file (default: ./params.yaml)")
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    rank = 0
    try:
        params = load_params(args.params)
        if distributed:
            from selm_lib.config import distributed as D

            common = params["common"]
            if not D.under_torchrun() and common["nproc"] > 1:
                D.check_nproc(common["nproc"], common["device"])
                return D.launch(
                    module, list(sys.argv[1:] if argv is None else argv), common["nproc"]
                )
            rank = D.init(common["device"]).rank
            try:
                message = work(params, args)
            finally:
                D.finish()
        else:
            message = work(params, args)
    except INPUT_ERRORS as error:
        where = f"rank {rank}: " if distributed and rank else ""
        print(f"error: {where}{error}", file=sys.stderr)
        return 2
    if rank == 0:
        print(message, flush=True)
    return 0
