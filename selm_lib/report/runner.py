"""Execute a report notebook and render it: the command of every report stage.

    python -m selm_lib.report.runner notebooks/01_curate.py [--params P] [--reports reports]

Reads the jupytext percent file, injects the report stage's params.yaml sections
(:data:`selm_lib.config.REPORT_SECTIONS`) with papermill (kernel
``python3``), executes it from the project root, strips volatile metadata (timestamps, durations,
random cell ids, stderr streams such as progress bars) so the same inputs give byte-identical
``reports/NN_name.ipynb`` and ``reports/NN_name.html``, and exits non-zero with the failing cell's
error when a cell fails.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from selm_lib.config import ParamsError, load_params, project_root, stage_params

NOTEBOOK_NAME = re.compile(r"^(?P<number>\d\d)_(?P<stage>[a-z0-9_]+)$")
KERNEL = "python3"
# Metadata that changes between runs of the same inputs.
VOLATILE_CELL_METADATA = ("papermill", "execution", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets", "jupytext")


class NotebookFailed(RuntimeError):
    """A cell raised; the message carries the cell number, the error and its traceback."""


# Notebooks whose name is not their compute stage's (the SER-Evals notebooks keep the paper's).
STAGE_OF_NOTEBOOK = {"ser_evals": "serevals"}


def stage_of(notebook: Path) -> str:
    """The report stage of a notebook: ``01_curate.py`` -> ``report_curate``,
    ``05_ser_evals.py`` -> ``report_serevals``, ``06_figures.py`` -> ``report_figures``."""
    match = NOTEBOOK_NAME.match(Path(notebook).stem)
    if not match:
        raise ValueError(f"{notebook}: notebook names are NN_stage.py (e.g. 01_curate.py)")
    return "report_" + STAGE_OF_NOTEBOOK.get(match["stage"], match["stage"])


def strip_volatile(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what differs between two runs of the same inputs, in place; returns the notebook."""
    for key in VOLATILE_NOTEBOOK_METADATA:
        notebook.metadata.pop(key, None)
    notebook.metadata["kernelspec"] = {
        "name": KERNEL,
        "display_name": "Python 3",
        "language": "python",
    }
    language_info = notebook.metadata.get("language_info", {})
    notebook.metadata["language_info"] = {"name": language_info.get("name", "python")}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"  # nbformat wants ids; random ones churn the report
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            # stderr carries progress bars, timings and warnings: shown on the console, not kept.
            cell.outputs = [
                output
                for output in cell.outputs
                if not (output.get("output_type") == "stream" and output.get("name") == "stderr")
            ]
    return notebook


def render_html(notebook: nbformat.NotebookNode) -> str:
    """Self-contained HTML of an executed notebook (images embedded)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(notebook)
    return body


def _failed_cell(notebook: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = "\n".join(output.get("traceback", []))
                trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)  # drop ANSI colours
                source = cell.source if len(cell.source) < 600 else cell.source[:600] + " ..."
                return (
                    f"cell {index} failed: {output.get('ename')}: {output.get('evalue')}\n"
                    f"--- cell source ---\n{source}\n--- traceback ---\n{trace}"
                )
    return "a cell failed (no error output recorded)"


def execute(
    notebook_path: str | Path,
    *,
    params_path: str | Path | None = None,
    reports_dir: str | Path = "reports",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Run one pipeline notebook and write its ipynb and HTML report; returns the ipynb path.

    Raises :class:`NotebookFailed` (after writing the partial report) when a cell fails.
    """
    import papermill

    notebook_path = Path(notebook_path).resolve()
    root = project_root(notebook_path.parent)
    stage = stage_of(notebook_path)
    params = load_params(params_path or root / "params.yaml")
    parameters = stage_params(stage, params)
    for section, values in (overrides or {}).items():
        parameters[section] = values

    reports = Path(root / reports_dir) if not Path(reports_dir).is_absolute() else Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    out_ipynb = reports / f"{notebook_path.stem}.ipynb"
    out_html = reports / f"{notebook_path.stem}.html"

    source = jupytext.read(notebook_path)
    source.metadata["kernelspec"] = {
        "name": KERNEL,
        "display_name": "Python 3",
        "language": "python",
    }
    # The kernel must import this project's selm_lib and find this venv's python3 kernel spec
    # first (a user-level "python3" spec could point at another interpreter).
    env_path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
    os.environ["PYTHONPATH"] = env_path
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")])
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_in = Path(tmp) / notebook_path.with_suffix(".ipynb").name
        tmp_out = Path(tmp) / f"out_{tmp_in.name}"
        nbformat.write(source, tmp_in)
        error: Exception | None = None
        try:
            papermill.execute_notebook(
                str(tmp_in),
                str(tmp_out),
                parameters=parameters,
                kernel_name=KERNEL,
                language="python",
                cwd=str(root),
                progress_bar=False,
                log_output=True,
                stdout_file=None,
                stderr_file=sys.stderr,
            )
        except papermill.PapermillExecutionError as exc:
            error = exc
        result = nbformat.read(tmp_out, as_version=4)

    strip_volatile(result)
    _remove_papermill_error_banner(result)
    nbformat.write(result, out_ipynb)
    out_html.write_text(render_html(result), encoding="utf-8")
    if error is not None:
        raise NotebookFailed(f"{notebook_path.name}: {_failed_cell(result)}") from None
    return out_ipynb


def _remove_papermill_error_banner(notebook: nbformat.NotebookNode) -> None:
    """Papermill inserts an 'Execution using papermill encountered an exception' cell on failure;
    the runner's own message says it better and the banner holds a random-looking anchor."""
    notebook.cells = [
        cell
        for cell in notebook.cells
        if "papermill-error-cell-tag" not in cell.metadata.get("tags", [])
        and "papermill-error-cell" not in str(cell.source)[:200]
    ]
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.report.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook", help="a pipeline notebook, e.g. notebooks/01_curate.py")
    parser.add_argument("--params", default=None, help="params file (default: project params.yaml)")
    parser.add_argument("--reports", default="reports", help="report folder (default: reports)")
    args = parser.parse_args(argv)
    try:
        out = execute(args.notebook, params_path=args.params, reports_dir=args.reports)
    except (ParamsError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NotebookFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out} and {out.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
