"""Every synthetic corpus writer, by corpus name, and :func:`write_corpus`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from selm_lib.data.provenance import SYNTHETIC_MARKER, SYNTHETIC_NOTE
from selm_lib.data.synth.common import Plan
from selm_lib.data.synth.layouts import SELM_WRITERS
from selm_lib.data.synth.serevals_layouts import SEREVALS_WRITERS

# Corpus name -> (folder under the synthetic root, writer).
WRITERS: dict[str, tuple[str, Callable[[Path, Plan], None]]] = {**SELM_WRITERS, **SEREVALS_WRITERS}


def write_corpus(name: str, out_dir: Path, plan: Plan) -> Path:
    """Write corpus ``name`` under ``out_dir`` (replacing an older copy); returns its root."""
    if name not in WRITERS:
        raise KeyError(
            f"no synthetic layout for '{name}' (synth.corpora); known: {', '.join(WRITERS)}"
        )
    folder, writer = WRITERS[name]
    root = out_dir / folder
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    writer(root, plan)
    (root / SYNTHETIC_MARKER).write_text(SYNTHETIC_NOTE)
    return root
