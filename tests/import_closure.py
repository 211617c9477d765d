"""The files of ``selm_lib`` a stage runs: the import closure of its entry module (and, for a
report stage, of its notebook), computed with ``ast``, plus the package data tables the modules
name. ``dvc.yaml`` must list them as the stage's dependencies (``tests/test_dependencies.py``).

    python tests/import_closure.py selm_lib/stages/train_selm.py [notebooks/02_train_selm.py]

prints the smallest dependency list that covers the closure: a folder where every file under it
is in the closure, else the files.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "selm_lib"
TABLES = PACKAGE / "data" / "tables"


def module_file(name: str) -> Path | None:
    """``selm_lib.a.b`` -> its ``.py`` file or package ``__init__.py`` (None: not ours)."""
    if name != "selm_lib" and not name.startswith("selm_lib."):
        return None
    path = PROJECT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``path`` may load (imports
    inside functions run too), with the packages above each."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path) if path.is_relative_to(PROJECT) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def _tables(path: Path) -> set[Path]:
    """Package data tables whose file name appears as a string in ``path``."""
    text = path.read_text()
    return {t for t in TABLES.iterdir() if t.is_file() and t.name in text}


def closure(*entries: str | Path) -> set[Path]:
    """Files of ``selm_lib`` (modules and data tables) that ``entries`` import, transitively."""
    seen: set[Path] = set()
    todo = [Path(e).resolve() for e in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix != ".py":
            continue
        seen.update(_tables(path))
        for name in _imports(path):
            found = module_file(name)
            if found is not None and found not in seen:
                todo.append(found)
    return {p for p in seen if p.is_relative_to(PACKAGE)}


def package_files(folder: Path) -> set[Path]:
    """Every module and data table under ``folder`` (what a folder dependency hashes)."""
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def minimal_deps(files: set[Path]) -> list[str]:
    """The fewest paths (folders where all their files are in ``files``) covering ``files``."""

    def walk(folder: Path) -> list[Path]:
        inside = package_files(folder)
        if inside and inside <= files:
            return [folder]
        out: list[Path] = []
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name != "__pycache__":
                out += walk(child)
            elif child in files:
                out.append(child)
        return out

    return [p.relative_to(PROJECT).as_posix() for p in walk(PACKAGE)]


if __name__ == "__main__":
    for dep in minimal_deps(closure(*sys.argv[1:])):
        print(f"      - {dep}")
