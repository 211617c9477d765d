"""Named parameter profiles (``selm_lib/config/profiles.yaml``): the embedded CPU demo
(``default``) and the reconstruction of both papers (``paper``), key by key.

A profile is applied by writing its values into ``params.yaml`` (:func:`apply_profile`), so DVC
tracks the values themselves and switching reruns exactly the stages whose keys change.
``common.profile`` records which profile the file was set to; :func:`departures` lists where the
file departs from it (or from the paper), which the ``validate`` stage prints and every report
shows in its first lines. ``smoke`` (the tests' smaller synthetic corpora) has the ``default``
column's values.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from selm_lib.config.params import ParamsError, validate

COLUMNS = ("default", "paper")
COLUMN_OF = {"default": "default", "smoke": "default", "paper": "paper"}  # common.profile -> column
_MISSING = object()


@dataclass(frozen=True)
class Departure:
    """One key whose value differs from a profile's."""

    key: str
    value: Any
    expected: Any
    source: str


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, Any]]:
    """``{dotted key: {default, paper, source}}`` from profiles.yaml."""
    text = resources.files("selm_lib.config").joinpath("profiles.yaml").read_text()
    keys = yaml.safe_load(text)["keys"]
    for key, entry in keys.items():
        missing = [c for c in (*COLUMNS, "source") if c not in entry]
        if missing:
            raise ParamsError(f"selm_lib/config/profiles.yaml: {key} lacks {', '.join(missing)}")
    return keys


def column(profile: str) -> str:
    if profile not in COLUMN_OF:
        raise ParamsError(
            f"unknown profile '{profile}'; choose one of {', '.join(sorted(COLUMN_OF))}"
        )
    return COLUMN_OF[profile]


def get(params: dict[str, Any], key: str) -> Any:
    """The value at a dotted key (``_MISSING`` when a part of the path is absent)."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set(params: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = params
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ParamsError(f"params.yaml has no section '{part}' for profile key {key}")
        node = node[part]
    node[last] = copy.deepcopy(value)


def resolve(params: dict[str, Any], profile: str) -> dict[str, Any]:
    """A copy of ``params`` with every profile key set to ``profile``'s value and
    ``common.profile`` set to ``profile``."""
    col = column(profile)
    out = copy.deepcopy(params)
    for key, entry in table().items():
        if get(out, key) is _MISSING:
            raise ParamsError(f"params.yaml has no key {key} (named in profiles.yaml)")
        _set(out, key, entry[col])
    out.setdefault("common", {})["profile"] = profile
    return out


def departures(
    params: dict[str, Any], profile: str, sections: set[str] | None = None
) -> list[Departure]:
    """Profile keys (within ``sections``, when given) whose value in ``params`` differs from
    ``profile``'s; keys absent from ``params`` (a section not given) are skipped."""
    col = column(profile)
    out = []
    for key, entry in table().items():
        if sections is not None and key.split(".")[0] not in sections:
            continue
        value = get(params, key)
        if value is _MISSING:
            continue
        if not _same(value, entry[col]):
            out.append(Departure(key, value, entry[col], entry["source"]))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


def describe(params: dict[str, Any], sections: set[str] | None = None) -> str:
    """Markdown for a report's first lines: the profile and this report's departures from the
    paper (and from the named profile, when that is not the paper)."""
    profile = str(get(params, "common.profile"))
    if profile not in COLUMN_OF:
        return f"Profile: `{profile}` (not a named profile)."
    lines = [f"Profile: **`{profile}`** (`common.profile`; see `selm_lib/config/profiles.yaml`)."]
    own = departures(params, profile, sections)
    if own:
        lines.append(
            f"Departures from the `{profile}` profile in this report's parameters: "
            + "; ".join(_pair(d, profile) for d in own)
            + "."
        )
    if column(profile) != "paper":
        paper = departures(params, "paper", sections)
        if paper:
            lines.append(
                "Departures from the papers' settings in this report's parameters (restore with "
                "`python -m selm_lib.params use paper`): "
                + "; ".join(_pair(d, "paper") for d in paper)
                + "."
            )
        else:
            lines.append("This report's parameters are the papers' settings.")
    return "\n\n".join(lines)


def _pair(d: Departure, profile: str) -> str:
    return f"`{d.key}` = {_text(d.value)} ({profile}: {_text(d.expected)})"


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def apply_profile(path: str | Path, profile: str) -> list[str]:
    """Write ``profile``'s values into the params file at ``path`` in place and set
    ``common.profile``; returns the keys whose value changed.

    Only the value text of each key changes (found through the YAML node positions), so
    comments, layout, flow mappings and anchors stay as they are; an aliased value is changed at
    its anchor, so every alias follows."""
    col = column(profile)
    path = Path(path)
    text = path.read_text()
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from None
    wanted = {key: entry[col] for key, entry in table().items()}
    wanted["common.profile"] = profile
    edits, changed = [], []
    for key, value in wanted.items():
        node = _node_at(root, key, path)
        block = isinstance(node, yaml.CollectionNode) and not node.flow_style
        if block or node.start_mark.index == node.end_mark.index:
            raise ParamsError(
                f"{path}: {key} is written as a block or empty value, which `use` does not edit "
                f"in place; write it in flow style on one line (e.g. `[a, b]`) or set it by hand"
            )
        current = yaml.safe_load(text[node.start_mark.index : node.end_mark.index] or "null")
        if _same(current, value):
            continue
        start, end = node.start_mark.index, node.end_mark.index
        old = text[start:end]
        anchor = old.split()[0] + " " if old.startswith("&") else ""
        new = anchor + _value_text(value)
        # keep a trailing comment in its column: absorb or add spaces after the value
        spaces = len(text[end:]) - len(text[end:].lstrip(" "))
        if text[end + spaces : end + spaces + 1] == "#" and spaces:
            shift = len(new) - len(old)
            end += min(max(shift, 0), spaces - 1)
            new += " " * max(-shift, 0)
        edits.append((start, end, new))
        changed.append(key)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: the edit would not parse ({error}); edit it by hand") from None
    for key, value in wanted.items():  # the edit did what it says, or nothing is written
        if not _same(get(loaded, key), value):
            raise ParamsError(f"{path}: could not set {key} to {value!r}; edit it by hand")
    validate(loaded, source=str(path))  # nothing is written unless the result is valid
    path.write_text(text)
    return changed


def _value_text(value: Any) -> str:
    """YAML text for a value in place: strings with a colon double-quoted (as params.yaml
    writes its preset sources), everything else in flow style."""
    if isinstance(value, str) and ":" in value:
        return json.dumps(value)
    return _text(value)


def _node_at(root: Any, key: str, path: Path) -> Any:
    node = root
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            raise ParamsError(f"{path}: {key}: '{part}' is not inside a mapping")
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == part:
                node = v
                break
        else:
            raise ParamsError(f"{path} has no key {key} (named in selm_lib/config/profiles.yaml)")
    return node
