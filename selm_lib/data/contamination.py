"""The contamination ledger: which public checkpoints were trained on which corpora
(``selm_lib/data/tables/contamination.csv``), and the test corpora it flags for a backbone.

A (backbone, test corpus) cell is *contaminated* when the checkpoint behind the backbone saw the
test corpus in training: its score is not out-of-domain (and not a held-out in-domain score
either). The SER-Evals aggregate flags such cells and keeps them out of the OOD averages
(``serevals.exclude_contaminated``); :func:`contaminated_cells` is the entry point for any other
evaluation (SELM's ``eval_ood`` can flag its backbone with it).

Ledger columns: ``pattern`` (a shell-style pattern over checkpoint names, see below),
``checkpoint`` (a readable name), ``corpora`` (package corpus names separated by ``;``),
``coverage`` (``lower_bound``: the checkpoint saw at least these corpora, more may be missing;
``conservative``: every corpus it may have seen is listed, some perhaps wrongly), ``source``
(where the fact comes from) and ``note`` (what is uncertain).

**Matching rule.** A backbone's ``source`` (``features.backbones.<name>.source``: a Hugging Face
name ``org/name``, a local folder, or ``preset:NAME``) names its checkpoint by its *last path
component*: ``emotion2vec/emotion2vec_plus_large`` -> ``emotion2vec_plus_large``;
``/models/emotion2vec-plus-base/`` -> ``emotion2vec-plus-base``; ``preset:tiny-wavlm`` ->
``tiny-wavlm``. In a Hugging Face cache path (``.../models--org--name/snapshots/<hash>``) the
``models--org--name`` component names it instead (``name``). Parent folders never count (a
checkpoint kept under ``/runs/emotion2vec_plus_tests/wavlm-large`` is ``wavlm-large``). Names and
patterns are compared after :func:`normalise`: lower case, ``+`` read as ``plus``, and every
character other than a letter, a digit, ``*`` or ``?`` dropped, so ``emotion2vec_plus_large``,
``emotion2vec-plus-large``, ``Emotion2Vec+Large`` and the published tables' flattened
``emotion2vecpluslarge`` are one name. A pattern matches when :func:`fnmatch.fnmatchcase` says so
on the normalised forms; patterns start and end with ``*`` where an organisation prefix or a size
suffix may surround the name.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

LEDGER = Path(__file__).resolve().parent / "tables" / "contamination.csv"
LEDGER_PATH = "selm_lib/data/tables/contamination.csv"  # as the reports name it
COLUMNS = ("pattern", "checkpoint", "corpora", "coverage", "source", "note")
COVERAGE = ("lower_bound", "conservative")
_DROP = re.compile(r"[^a-z0-9*?]")
_HF_CACHE = re.compile(r"^models--(?:.+--)?(?P<name>[^-].*)$")


class ContaminationError(ValueError):
    """A malformed ledger; names the file, the row and the fix."""


@dataclass(frozen=True)
class Entry:
    """One ledger row."""

    pattern: str
    checkpoint: str
    corpora: tuple[str, ...]
    coverage: str
    source: str
    note: str

    def matches(self, name: str) -> bool:
        """Whether a checkpoint name (already a last path component) matches the pattern."""
        return fnmatchcase(normalise(name), normalise(self.pattern))


def normalise(name: str) -> str:
    """Lower case, ``+`` as ``plus``, only letters, digits and the wildcards ``*`` ``?`` kept."""
    return _DROP.sub("", str(name).lower().replace("+", "plus"))


def checkpoint_name(source: str) -> str:
    """The name a backbone ``source`` gives its checkpoint (the module docstring's rule): the
    ``name`` of a Hugging Face cache component ``models--org--name`` when the path has one, else
    the last path component (``preset:`` dropped; ``/`` and ``\\`` both separate)."""
    text = str(source).strip()
    if text.startswith("preset:"):
        text = text[len("preset:") :]
    parts = [p for p in re.split(r"[/\\]+", text) if p]
    for part in reversed(parts):
        found = _HF_CACHE.match(part)
        if found:
            return found.group("name")
    return parts[-1] if parts else ""


@lru_cache(maxsize=8)
def read_ledger(path: Path = LEDGER) -> tuple[Entry, ...]:
    """The ledger's rows (checked: every column present, a pattern and at least one corpus per
    row, a known ``coverage``)."""
    path = Path(path)
    if not path.is_file():
        raise ContaminationError(
            f"{path} is missing: the contamination ledger ships with the package"
        )
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ContaminationError(
                f"{path}: missing column(s) {missing}; the ledger's header is {','.join(COLUMNS)}"
            )
        entries = []
        for line, row in enumerate(reader, start=2):
            corpora = tuple(c.strip() for c in (row["corpora"] or "").split(";") if c.strip())
            if not (row["pattern"] or "").strip() or not corpora:
                raise ContaminationError(
                    f"{path} line {line}: every row needs a pattern and at least one corpus "
                    "(package corpus names separated by ';')"
                )
            if row["coverage"] not in COVERAGE:
                raise ContaminationError(
                    f"{path} line {line}: coverage is {row['coverage']!r}; use one of "
                    f"{', '.join(COVERAGE)}"
                )
            entries.append(
                Entry(
                    pattern=row["pattern"].strip(),
                    checkpoint=row["checkpoint"].strip(),
                    corpora=corpora,
                    coverage=row["coverage"],
                    source=row["source"].strip(),
                    note=row["note"].strip(),
                )
            )
    return tuple(entries)


def entries_for(source: str, ledger: Sequence[Entry] | None = None) -> list[Entry]:
    """The ledger rows whose pattern matches the checkpoint named by ``source``."""
    name = checkpoint_name(source)
    return [e for e in (read_ledger() if ledger is None else ledger) if name and e.matches(name)]


def trained_on(source: str, ledger: Sequence[Entry] | None = None) -> set[str]:
    """Every corpus the ledger says the checkpoint named by ``source`` was trained on."""
    return {c for e in entries_for(source, ledger) for c in e.corpora}


def contaminated_cells(
    source: str, corpora: Iterable[str], ledger: Sequence[Entry] | None = None
) -> list[str]:
    """The corpora of ``corpora`` (in their order, each once) that the checkpoint named by
    ``source`` (a ``features.backbones.<name>.source``) saw in training, by the ledger: the test
    corpora whose (backbone, corpus) cells are contaminated. ``[]`` for a checkpoint the ledger
    does not name (absence from the ledger is no proof of a clean checkpoint)."""
    seen = trained_on(source, ledger)
    return [c for c in dict.fromkeys(corpora) if c in seen]


def describe(source: str, ledger: Sequence[Entry] | None = None) -> str:
    """One line per matching ledger row: checkpoint, corpora, coverage and its note ("" when
    none matches), for a report."""
    return "; ".join(
        f"{e.checkpoint} (ledger pattern `{e.pattern}`, {e.coverage.replace('_', ' ')}: "
        f"{', '.join(e.corpora)}; {e.note})"
        for e in entries_for(source, ledger)
    )
