"""Corpora whose labels and speakers come from file-name tokens or folder names, described as
data (:class:`NameRule`) and read by one walker (:meth:`NameRule.find`).

A rule names the folders to walk under the corpus root (all of it, the folders matching a
pattern, or a table of folder names with the value each one stands for), a regular expression
whose named groups take a file name apart, and format strings that build the manifest fields from
those groups. Inside a format, ``{folder}`` is the walked folder's name, ``{folder_value}`` its
value from the table, ``{stem}`` the file name without extension, ``{relative}`` the file's
path below the walked folder without extension, ``!u`` upper-cases, ``!l`` lower-cases and a
precision (``:.1``) keeps the first characters; an optional group that did not match is empty. A
file whose name does not parse, or whose name disagrees with its folder, is kept with the reason
as its quarantine.

Corpora with label files or several cross-checks (IEMOCAP, MSP-Podcast, MELD, RESD, CMU-MOSEI,
RAVDESS, CREMA-D, CaFE, CASIA, Thorsten) keep their own scanner code.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selm_lib.data.corpora.base import Item, unparsed, wav_files


class _Formatter(string.Formatter):
    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "u":
            return str(value).upper()
        if conversion == "l":
            return str(value).lower()
        return super().convert_field(value, conversion)


_FORMAT = _Formatter()


@dataclass(frozen=True)
class Lookup:
    """A derived field: ``table[group]`` (``default`` when the group's value is not in it)."""

    name: str
    group: str
    table: Mapping[str, str]
    default: str = ""


@dataclass(frozen=True)
class Agreement:
    """The name must agree with its folder: ``left`` and ``right`` (formats) are equal, else the
    file is quarantined with ``reason`` (a format)."""

    left: str
    right: str
    reason: str


@dataclass(frozen=True)
class NameRule:
    name_pattern: str  # regex with named groups, matched against the whole file stem
    bad_name: str  # quarantine reason of a file whose name does not match
    speaker: str  # formats over the groups (see the module docstring)
    label: str
    gender: str = ""
    uid: str = "{stem}"
    extra: tuple[tuple[str, str], ...] = ()  # (manifest column, format), in column order
    folders: Mapping[str, str] | str | None = None  # table name -> value, a name regex, or root
    lookups: tuple[Lookup, ...] = ()
    agree: tuple[Agreement, ...] = ()
    # fields of a file whose name does not parse (formats over folder, folder_value and stem)
    unparsed_fields: Mapping[str, str] = field(default_factory=dict)

    def folders_under(self, root: Path) -> Iterator[tuple[Path, str]]:
        """(folder, its value) for every folder walked under ``root``."""
        if self.folders is None:
            yield root, ""
        elif isinstance(self.folders, str):
            pattern = re.compile(self.folders)
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                if pattern.fullmatch(folder.name):
                    yield folder, folder.name
        else:
            for name, value in self.folders.items():
                if (root / name).is_dir():
                    yield root / name, value

    def item(self, path: Path, folder: str, folder_value: str, root: Path | None = None) -> Item:
        """The manifest record of one file found in ``folder`` (the folder's path is ``root``)."""
        relative = path.relative_to(root).with_suffix("").as_posix() if root else path.stem
        context = {
            "folder": folder,
            "folder_value": folder_value,
            "stem": path.stem,
            "relative": relative,
        }
        match = re.fullmatch(self.name_pattern, path.stem)
        if match is None:
            fields = {k: _FORMAT.format(v, **context) for k, v in self.unparsed_fields.items()}
            uid = fields.pop("uid", path.stem)
            return unparsed(path, uid, self.bad_name, **fields)
        values = {**context, **match.groupdict("")}
        for lookup in self.lookups:
            values[lookup.name] = lookup.table.get(values[lookup.group], lookup.default)
        reason = ""
        for rule in self.agree:
            if _FORMAT.format(rule.left, **values) != _FORMAT.format(rule.right, **values):
                reason = _FORMAT.format(rule.reason, **values)
                break
        return Item(
            path=path,
            utterance_id=_FORMAT.format(self.uid, **values),
            speaker=_FORMAT.format(self.speaker, **values),
            gender=_FORMAT.format(self.gender, **values),
            label=_FORMAT.format(self.label, **values),
            extra={column: _FORMAT.format(spec, **values) for column, spec in self.extra},
            quarantine=reason,
        )

    def find(self, root: Path, options: dict[str, Any]) -> Iterator[Item]:
        """Every wav file below the walked folders, as manifest records (the scanner's ``find``)."""
        for folder, value in self.folders_under(root):
            for path in wav_files(folder):
                yield self.item(path, folder.name, value, folder)


def label_folders(label_map: Mapping[str, str] | None = None) -> NameRule:
    """The generic label-folder layout ``ROOT/<label>/**/*.wav``: the label is the folder name
    (through ``label_map.csv`` like every label), there is no speaker (splits of such a corpus
    are labelled speaker-unknown), the utterance id is the file's path below the corpus root
    without extension (``<label>/<sub>/<stem>``: unique even when two subfolders hold the same
    name). ``label_map`` limits
    the folders read (folder name -> label); by default every folder is a label."""
    return NameRule(
        name_pattern=r".+",
        bad_name="",
        speaker="",
        label="{folder_value}",
        uid="{folder}/{relative}",
        folders=label_map if label_map is not None else r"[^.].*",
        unparsed_fields={},
    )
