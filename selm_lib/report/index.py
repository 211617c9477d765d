"""``reports/index.html``: every rendered report with the one-line summary it published
(:func:`selm_lib.report.notebook.publish_summary`). Written by the ``index`` stage."""

from __future__ import annotations

import html
from pathlib import Path

import nbformat

SUMMARY_MIME = "text/markdown"
SUMMARY_KEY = "selm_summary"


def read_summary(report: Path) -> str:
    """The summary a rendered report published, else its first heading."""
    notebook = nbformat.read(report, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {})
            if SUMMARY_KEY in meta:
                return str(meta[SUMMARY_KEY])
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
    return "(no summary)"


def title_of(report: Path) -> str:
    notebook = nbformat.read(report, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return report.stem


def build_index(reports_dir: Path, title: str) -> str:
    """HTML page linking every rendered report (``NN_*.html`` with its ipynb) and its summary."""
    items = []
    for report in sorted(reports_dir.glob("[0-9][0-9]_*.ipynb")):
        page = report.with_suffix(".html").name
        items.append(
            f'<li><a href="{html.escape(page)}">{html.escape(title_of(report))}</a>'
            f" <code>{html.escape(report.stem)}</code><br>{html.escape(read_summary(report))}</li>"
        )
    body = "\n".join(items) if items else "<li>No report has been rendered yet.</li>"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}"
        "li{margin-bottom:1em}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        "<p>Rendered by <code>dvc repro</code>. With the embedded default every corpus is "
        "<b>synthetic</b>: the figures demonstrate the pipeline and are not reproductions of the "
        "papers' numbers. Each report says which data it ran on.</p>\n"
        f"<ol>\n{body}\n</ol>\n</body></html>\n"
    )
