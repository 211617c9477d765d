"""Read and validate ``params.yaml``.

The dataclasses of :mod:`selm_lib.config.sections` are the contract of ``params.yaml``: every key
a stage may read is a field there, with its type. Unknown or misspelled keys fail with the nearest
valid key, so a typo never silently falls back to a default; values are checked against the field
types and across sections (a backbone named by SELM must exist, shares must be below one, ...).
Checks that need the corpus scanners or the synthetic writers live in
:mod:`selm_lib.stages.validate`, the first stage of the pipeline, so loading params imports
nothing else of the package.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from selm_lib.config import sections
from selm_lib.config.paths import project_root

PROFILES = sections.PROFILES
ROLES = get_args(sections.Role)
SCHEMA = sections.Params

# Sections each report notebook is given (the runner injects them; dvc.yaml lists them as the
# report stage's params). Compute stages list their keys in dvc.yaml directly.
REPORT_SECTIONS: dict[str, tuple[str, ...]] = {
    "report_curate": ("common", "curate"),
    "report_train_selm": ("common", "selm", "train_selm"),
    "report_eval_ood": ("common", "selm", "curate", "eval_ood"),
    "report_fewshot": ("common", "curate", "fewshot_sweep", "fewshot"),
    "report_serevals": ("common", "serevals_sweep", "serevals"),
    "report_figures": ("common", "serevals_sweep", "serevals", "serevals_figures"),
    "report_layers": ("common", "layer_sweep"),
}


class ParamsError(ValueError):
    """A problem in params.yaml; the message names the key and the fix."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sections))


def _is_optional(spec: Any) -> bool:
    return _union(spec) and type(None) in get_args(spec)


def _union(spec: Any) -> bool:
    return get_origin(spec) in (Union, types.UnionType)


def _type_name(spec: Any) -> str:
    origin = get_origin(spec)
    if origin is Literal:
        return "one of " + " | ".join(str(c) for c in get_args(spec))
    if origin is list:
        return f"a list of {_type_name(get_args(spec)[0])}"
    if origin is dict:
        return "a mapping"
    if _union(spec):
        options = [a for a in get_args(spec) if a is not type(None)]
        if sorted(options, key=str) == sorted((int, float), key=str):
            base = "a number"
        else:
            base = " or ".join(_type_name(a) for a in options)
        return f"{base} or null" if _is_optional(spec) else base
    if dataclasses.is_dataclass(spec):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(spec))
    return {int: "an integer", str: "a string", bool: "true or false", float: "a number"}.get(
        spec, str(spec)
    )


def _unknown_key_message(path: str, key: str, valid: list[str], source: str) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"did you mean '{path}{near[0]}'?" if near else "valid keys: " + ", ".join(valid)
    return f"{source}: unknown key '{path}{key}'; {hint}"


def _scalar_ok(value: Any, spec: Any) -> bool:
    if spec is bool:
        return isinstance(value, bool)
    if spec in (int, float):
        return isinstance(value, spec) and not isinstance(value, bool)
    return isinstance(value, spec)


def _check(value: Any, spec: Any, path: str, source: str) -> None:
    where = path.rstrip(".") or "(top level)"
    if _is_optional(spec):
        if value is None:
            return
        options = [a for a in get_args(spec) if a is not type(None)]
        spec = options[0] if len(options) == 1 else Union[tuple(options)]  # noqa: UP007
    origin = get_origin(spec)
    if dataclasses.is_dataclass(spec):
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")
        hints = _hints(spec)
        for key in value:
            if key not in hints:
                raise ParamsError(_unknown_key_message(path, str(key), list(hints), source))
        for key, sub in hints.items():
            if key not in value:
                if _is_optional(sub):
                    continue  # an optional key may be left out
                raise ParamsError(
                    f"{source}: missing key '{path}{key}' ({_type_name(sub)}); "
                    "see the committed params.yaml for its meaning and default"
                )
            _check(value[key], sub, f"{path}{key}.", source)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{where}' must be a mapping, got {value!r}")
        for key, sub in value.items():
            _check(sub, get_args(spec)[1], f"{path}{key}.", source)
        return
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")
        for i, item in enumerate(value):
            _check(item, get_args(spec)[0], f"{path}{i}.", source)
        return
    if origin is Literal:
        choices = get_args(spec)
        if value not in choices:
            near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.4)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ParamsError(
                f"{source}: '{where}' is {value!r}; it must be {_type_name(spec)}{hint}"
            )
        return
    options = [a for a in get_args(spec) if a is not type(None)] if _union(spec) else [spec]
    if not any(_scalar_ok(value, option) for option in options):
        raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")


def validate(params: dict[str, Any], source: str = "params.yaml") -> dict[str, Any]:
    """Check ``params`` against :data:`SCHEMA`; returns it or raises :class:`ParamsError`."""
    _check(params, SCHEMA, "", source)
    _check_cross_references(params, source)
    return params


def _check_cross_references(params: dict[str, Any], source: str) -> None:
    low, high = (
        params["synth"]["duration_s"] if len(params["synth"]["duration_s"]) == 2 else (0, -1)
    )
    if not 0 < low <= high:
        raise ParamsError(
            f"{source}: 'synth.duration_s' must be [min, max] seconds with 0 < min <= max"
        )
    selm = params["selm"]
    if selm["backbone"] not in params["features"]["backbones"]:
        raise ParamsError(
            f"{source}: 'selm.backbone' is '{selm['backbone']}', which is not a "
            "'features.backbones' entry (known: " + ", ".join(params["features"]["backbones"]) + ")"
        )
    for view in selm["views"]:
        if view not in ("categorical", "sentiment", "dimensional"):
            near = difflib.get_close_matches(view, ["categorical", "sentiment", "dimensional"], n=1)
            hint = (
                f"did you mean 'selm.views.{near[0]}'?"
                if near
                else "views: categorical, sentiment, dimensional"
            )
            raise ParamsError(f"{source}: unknown key 'selm.views.{view}'; {hint}")
    for name, spec in params["features"]["backbones"].items():
        layer = spec["layer"]
        if isinstance(layer, str) and layer not in ("last", "all"):
            raise ParamsError(
                f"{source}: 'features.backbones.{name}.layer' is {layer!r}; it must be an "
                "integer, 'last' or 'all'"
            )
    _check_feature_corpora(params, source)
    split = params["curate"]["split"]
    if not (0 <= split["validation"] < 1 and 0 <= split["test"] < 1):
        raise ParamsError(
            f"{source}: 'curate.split.validation' and 'curate.split.test' are shares in [0, 1)"
        )
    if split["validation"] + split["test"] >= 1:
        raise ParamsError(
            f"{source}: 'curate.split.validation' + 'curate.split.test' must be below 1"
        )
    if split["folds"] < 2:
        raise ParamsError(f"{source}: 'curate.split.folds' must be at least 2")


def _check_feature_corpora(params: dict[str, Any], source: str) -> None:
    """Each backbone's optional ``corpora`` list covers every corpus its consumers read."""
    curated = params["curate"]["corpora"]
    backbones = params["features"]["backbones"]
    for name, spec in backbones.items():
        for corpus in spec.get("corpora") or []:
            if corpus not in curated:
                raise ParamsError(
                    f"{source}: 'features.backbones.{name}.corpora' lists '{corpus}', which is "
                    "not a 'curate.corpora' entry; add it there or remove it from the list"
                )

    def need(backbone: str, corpora: list[str], key: str) -> None:
        listed = backbones[backbone].get("corpora")
        missing = [c for c in corpora if listed is not None and c not in listed]
        if missing:
            raise ParamsError(
                f"{source}: '{key}' needs features of {', '.join(missing)} from backbone "
                f"'{backbone}', but 'features.backbones.{backbone}.corpora' does not list "
                f"{'it' if len(missing) == 1 else 'them'}; add {', '.join(missing)} to that list"
            )

    selm = params["selm"]
    need(selm["backbone"], selm["train_corpora"], "selm.train_corpora")
    need(selm["backbone"], params["eval_ood"]["test_corpora"], "eval_ood.test_corpora")
    need(selm["backbone"], params["fewshot"]["corpora"], "fewshot.corpora")
    _check_layer_sweep(params, source, need)
    serevals = params["serevals"]
    for corpus in serevals["corpora"]:
        if corpus not in curated:
            raise ParamsError(
                f"{source}: 'serevals.corpora' lists '{corpus}', which is not a 'curate.corpora' "
                "entry; add it there (with its root) or remove it from serevals.corpora"
            )
    backbone_list = params["serevals_sweep"]["backbones"]
    if len(set(serevals["corpora"])) != len(serevals["corpora"]):
        raise ParamsError(f"{source}: 'serevals.corpora' lists a corpus twice")
    for backbone in backbone_list:
        if backbone not in backbones:
            raise ParamsError(
                f"{source}: 'serevals_sweep.backbones' lists '{backbone}', which is not a "
                "'features.backbones' entry (known: " + ", ".join(backbones) + ")"
            )
        need(backbone, serevals["corpora"], "serevals.corpora")
        cut = backbones[backbone].get("max_seconds")
        if cut is None or float(cut) != float(serevals["max_seconds"]):
            raise ParamsError(
                f"{source}: 'features.backbones.{backbone}.max_seconds' is {cut}, but the "
                f"SER-Evals protocol cuts audio to 'serevals.max_seconds' = "
                f"{serevals['max_seconds']} s before encoding: set both to the same value"
            )
    if len(set(backbone_list)) != len(backbone_list):
        raise ParamsError(f"{source}: 'serevals_sweep.backbones' lists a backbone twice")
    if not 0 < serevals["test_share"] < 1:
        raise ParamsError(f"{source}: 'serevals.test_share' must be a share in (0, 1)")
    if serevals["max_seconds"] <= 0:
        raise ParamsError(f"{source}: 'serevals.max_seconds' must be positive")


def _check_layer_sweep(params: dict[str, Any], source: str, need: Any) -> None:
    """``layer_sweep.backbone`` stores every layer of SELM's own encoder, for its corpora."""
    sweep, backbones = params["layer_sweep"], params["features"]["backbones"]
    name, selm = sweep["backbone"], params["selm"]
    if name not in backbones:
        raise ParamsError(
            f"{source}: 'layer_sweep.backbone' is '{name}', which is not a 'features.backbones' "
            "entry (known: " + ", ".join(backbones) + ")"
        )
    if backbones[name]["layer"] != "all":
        raise ParamsError(
            f"{source}: 'features.backbones.{name}.layer' is {backbones[name]['layer']!r}; the "
            "layer sweep (layer_sweep.backbone) needs every layer: set it to all"
        )
    if backbones[name]["source"] != backbones[selm["backbone"]]["source"]:
        raise ParamsError(
            f"{source}: 'features.backbones.{name}.source' is {backbones[name]['source']!r} but "
            f"SELM's backbone (selm.backbone = {selm['backbone']}) is "
            f"{backbones[selm['backbone']]['source']!r}; the layer sweep probes SELM's encoder: "
            "give both entries the same source"
        )
    if backbones[name].get("max_seconds") != backbones[selm["backbone"]].get("max_seconds"):
        raise ParamsError(
            f"{source}: 'features.backbones.{name}.max_seconds' differs from SELM's backbone's "
            f"('features.backbones.{selm['backbone']}.max_seconds'); give both the same value"
        )
    layers = sweep["layers"]
    if not layers or len(set(layers)) != len(layers) or min(layers) < 0:
        raise ParamsError(
            f"{source}: 'layer_sweep.layers' must list distinct layers >= 0 (0 = before the "
            f"first transformer layer), got {layers}"
        )
    need(name, selm["train_corpora"], "selm.train_corpora")
    need(name, params["eval_ood"]["test_corpora"], "eval_ood.test_corpora")


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Load and validate ``params.yaml`` (the project's one by default)."""
    path = Path(path) if path is not None else project_root() / "params.yaml"
    if not path.is_file():
        raise ParamsError(
            f"{path}: no such params file; run from the project root or pass --params"
        )
    with path.open() as handle:
        params = yaml.safe_load(handle) or {}
    return validate(params, source=str(path))


def stage_params(stage: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sections report stage ``stage`` is given, as ``{section: values}``."""
    if stage not in REPORT_SECTIONS:
        near = difflib.get_close_matches(stage, list(REPORT_SECTIONS), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ParamsError(
            f"unknown report stage '{stage}'{hint} (known: {', '.join(REPORT_SECTIONS)})"
        )
    return {section: params[section] for section in REPORT_SECTIONS[stage]}


def resolve_sections(stage: str, **injected: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
    """For a notebook's first cell: the injected sections, or params.yaml's when run by hand.

    Injected values are validated too, so a notebook never runs on a misspelled key.
    """
    params = load_params()
    if any(value is not None for value in injected.values()):
        for section, value in injected.items():
            if value is not None:
                params[section] = value
        validate(params, source="injected parameters")
    return tuple(params[section] for section in stage_params(stage, params))


def section_config(cls: type, section: dict[str, Any], **extra: Any) -> Any:
    """``cls`` (a config dataclass of a library module) built from the fields of a params
    section that it names, plus ``extra`` (e.g. the seed from ``common``). Values are taken as
    they are, so the dataclass holds exactly what params.yaml says."""
    names = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = required - set(section) - set(extra)
    if missing:
        raise ParamsError(
            f"{cls.__name__} needs {', '.join(sorted(missing))}, which the params section does "
            "not have"
        )
    return cls(**{k: v for k, v in section.items() if k in names}, **extra)
