"""Helpers the report notebooks share: the synthetic-data banner, the profile note, the one-line
summary each report publishes for the index, and formatting of a value with its interval."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from selm_lib.config import project_root
from selm_lib.report.index import SUMMARY_KEY

SYNTHETIC_TEXT = (
    "> **Synthetic data.** {corpora} {verb} the embedded synthetic stand-ins (written by "
    "`selm_lib.data.synth` in the real corpora's layouts), and the encoders and language model "
    "of the embedded default are tiny random-initialised models. {detail} These numbers "
    "demonstrate the pipeline; they are **not** reproductions of the papers' results and must "
    "not be compared with them."
)


def synthetic_corpora(corpora: Iterable[str], metrics: str | Path | None = None) -> list[str]:
    """The corpora among ``corpora`` that the curate stage found synthetic (from its
    ``reports/metrics/curate.json``, which records it per corpus)."""
    path = Path(metrics) if metrics is not None else project_root() / "reports/metrics/curate.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run dvc repro curate")
    flags = json.loads(path.read_text())
    return [c for c in corpora if flags.get(c, {}).get("synthetic", False)]


def synthetic_banner(corpora: Iterable[str], detail: str = "", metrics: str | Path | None = None):
    """The banner every report shows first when any of its corpora is synthetic (else None)."""
    from IPython.display import Markdown

    synthetic = synthetic_corpora(corpora, metrics)
    if not synthetic:
        return None
    verb = "is" if len(synthetic) == 1 else "are"
    return Markdown(SYNTHETIC_TEXT.format(corpora=", ".join(synthetic), verb=verb, detail=detail))


def profile_note(**sections: dict):
    """The report's profile (``common.profile``) and its departures from that profile and from
    the papers, within the params sections the report reads (passed by name)."""
    from IPython.display import Markdown

    from selm_lib.config.profiles import describe

    return Markdown(describe(dict(sections), set(sections)))


def publish_summary(text: str) -> None:
    """Show ``text`` in the notebook and mark it as the report's one-line summary for the index."""
    from IPython.display import Markdown, display

    display(Markdown(f"**Summary.** {text}"), metadata={SUMMARY_KEY: text})


def with_interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """``0.412 [0.380, 0.445]``: a value and its 95 % interval."""
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
