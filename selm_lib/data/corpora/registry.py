"""Every corpus scanner by name, and ``scan(name, root)``: a corpus root in its real distributed
layout -> a manifest (pandas DataFrame). ``scan`` is what the ``curate`` stage and
``python -m selm_lib.data.scan`` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from selm_lib.data.corpora import (
    aesdd,
    baum1,
    cafe,
    casia,
    cmu_mosei,
    crema_d,
    demos,
    eekk,
    emodb,
    emovo,
    enterface,
    expresso,
    iemocap,
    masc,
    mead,
    meld,
    mesd,
    msp_podcast,
    ravdess,
    resd,
    shemo,
    subesco,
    thorsten_emotional,
    urdu,
)
from selm_lib.data.corpora.base import (
    MANIFEST_COLUMNS,
    CorpusLayoutError,
    Item,
    Scanner,
    build_manifest,
    layout_error,
    usable,
)

SCANNERS: dict[str, Scanner] = {
    module.SCANNER.name: module.SCANNER
    for module in (
        ravdess,
        crema_d,
        iemocap,
        emodb,
        msp_podcast,
        meld,
        cmu_mosei,
        emovo,
        cafe,
        shemo,
        subesco,
        mesd,
        aesdd,
        urdu,
        casia,
        thorsten_emotional,
        resd,
        enterface,
        mead,
        expresso,
        baum1,
        eekk,
        demos,
        masc,
    )
}

__all__ = [
    "MANIFEST_COLUMNS",
    "SCANNERS",
    "CorpusLayoutError",
    "Item",
    "Scanner",
    "scan",
    "usable",
    "label_counts",
    "quarantine_list",
]


def get_scanner(name: str) -> Scanner:
    if name not in SCANNERS:
        import difflib

        near = difflib.get_close_matches(name, list(SCANNERS), n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise KeyError(f"no scanner named '{name}'; {hint}known: {', '.join(SCANNERS)}")
    return SCANNERS[name]


def scan(
    name: str,
    root: str | Path,
    *,
    options: dict[str, Any] | None = None,
    min_duration_s: float = 0.2,
    silence_dbfs: float = -60.0,
    params_key: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Scan corpus ``name`` at ``root`` into a manifest.

    A missing root or a folder that is not laid out as the corpus is distributed raises
    :class:`CorpusLayoutError` naming the expected layout and the params.yaml key. Bad files never
    raise: they are rows with a ``quarantine`` reason.
    """
    scanner = get_scanner(name)
    root = Path(root)
    key = params_key or f"curate.corpora.{name}.root"
    if not root.is_dir():
        raise layout_error(scanner, root, "the folder does not exist", key)
    missing = scanner.missing_parts(root)
    if missing:
        raise layout_error(scanner, root, "not found: " + "; ".join(missing), key)
    items = scanner.find(root, options or {})
    manifest = build_manifest(
        scanner, items, min_duration_s=min_duration_s, silence_dbfs=silence_dbfs, progress=progress
    )
    if manifest.empty:
        raise layout_error(scanner, root, "the layout holds no audio files or labelled rows", key)
    return manifest


def label_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Usable and quarantined rows per (label, emotion)."""
    frame = manifest.assign(
        status=manifest["quarantine"].fillna("").map(lambda r: "quarantined" if r else "usable")
    )
    table = frame.groupby(["label", "emotion", "status"]).size().unstack("status", fill_value=0)
    for column in ("usable", "quarantined"):
        if column not in table:
            table[column] = 0
    return table[["usable", "quarantined"]].reset_index()


def quarantine_list(manifest: pd.DataFrame) -> pd.DataFrame:
    """The quarantined rows: path and reason."""
    bad = manifest[manifest["quarantine"].fillna("") != ""]
    return bad[["path", "utterance_id", "quarantine"]].reset_index(drop=True)
