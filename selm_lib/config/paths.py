"""Where things are: the project root and the folders named in ``params.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def project_root(start: str | Path | None = None) -> Path:
    """The folder holding ``dvc.yaml`` and ``params.yaml``: ``start`` (default: cwd) or a parent.

    Paths in params.yaml are relative to it. Found by walking up, so a notebook opened by hand in
    ``notebooks/`` resolves the same paths as the runner, which executes from the project root.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file() and (folder / "dvc.yaml").is_file():
            return folder
    return here


def resolve_path(path: str | Path, base: str | Path | None = None) -> Path:
    """A params path: absolute as given, else relative to ``base`` (default: the project root)."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    return Path(base if base is not None else project_root()) / path


def corpus_root(params: dict[str, Any], name: str) -> Path:
    """Root folder of corpus ``name``: ``curate.corpora.NAME.root`` under ``common.data_root``."""
    data_root = resolve_path(params["common"]["data_root"])
    return resolve_path(params["curate"]["corpora"][name]["root"], data_root)


def output_dir(params: dict[str, Any], *parts: str) -> Path:
    """A folder under ``common.output_root`` (created)."""
    path = resolve_path(params["common"]["output_root"]).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
