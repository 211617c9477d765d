"""Read and validate ``params.yaml``.

The schema below is the contract of ``params.yaml``: every key a stage may read is listed, with its
type. Unknown or misspelled keys fail with the nearest valid key, so a typo never silently falls
back to a default. ``STAGE_SECTIONS`` says which sections each stage reads; ``dvc.yaml`` lists the
same sections (a test checks they agree).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


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


class ParamsError(ValueError):
    """A problem in params.yaml; the message names the key and the fix."""


@dataclass(frozen=True)
class MapOf:
    """A mapping with keys the user chooses (e.g. corpus names) and values that follow ``spec``."""

    spec: Any


@dataclass(frozen=True)
class OneOf:
    """A string restricted to ``choices``."""

    choices: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class Optional:
    spec: Any


NUMBER = (int, float)
PROFILES = ("default", "smoke")
ROLES = ("train", "test", "none")

SCHEMA: dict[str, Any] = {
    "common": {
        "seed": int,
        "device": OneOf(("auto", "cpu", "cuda")),
        "profile": OneOf(PROFILES),
        "data_root": str,
        "output_root": str,
    },
    "synth": {
        "out_dir": str,
        "corpora": ListOf(str),
        "speakers": {p: MapOf(int) for p in PROFILES},
        "utterances_per_speaker": {p: MapOf(int) for p in PROFILES},
        "duration_s": ListOf(NUMBER),
        "label_noise": MapOf(NUMBER),
        "bad_files": bool,
    },
    "curate": {
        "corpora": MapOf({"root": str, "role": OneOf(ROLES)}),
        "ravdess_include_song": bool,
        "ravdess_calm": OneOf(("own_class", "neutral", "drop")),
        "class_sets": MapOf(str),
        "min_duration_s": NUMBER,
        "silence_dbfs": NUMBER,
        "split": {
            "strategy": OneOf(("speaker", "official")),
            "validation": NUMBER,
            "test": NUMBER,
            "folds": int,
        },
    },
    "features": {
        "backbones": MapOf({"source": str, "layer": (int, str), "corpora": Optional(ListOf(str))}),
        "batch_seconds": NUMBER,
        "chunk_seconds": NUMBER,
        "dtype": OneOf(("float16", "float32")),
    },
    "selm": {
        "backbone": str,
        "lm": str,
        "tokenizer": str,
        "tokenizer_vocab_size": int,
        "tiny_lm": {"n_embd": int, "n_layer": int, "n_head": int, "n_positions": int},
        "lm_trainable": bool,
        "audio_prefix_len": int,
        "text_prefix_len": int,
        "projection_dim": int,
        "mapper_layers": int,
        "mapper_heads": int,
        "dropout": NUMBER,
        "train_corpora": ListOf(str),
        "allow_ood_training": bool,
        "views": MapOf({"prompt": str, "answer": str, "weight": NUMBER}),
        "balance_answers": bool,
        "dimensional_bins": ListOf(NUMBER),
        "dimensional_words": ListOf(str),
    },
    "train_selm": {
        "epochs": int,
        "batch_size": int,
        "learning_rate": NUMBER,
        "weight_decay": NUMBER,
        "warmup_ratio": NUMBER,
        "grad_clip": NUMBER,
        "patience": int,
        "samples_per_view": int,
    },
    "eval_ood": {
        "test_corpora": ListOf(str),
        "num_beams": int,
        "max_new_tokens": int,
        "batch_size": int,
        "bootstrap": int,
        "baseline": {"hidden": int, "dropout": NUMBER, "epochs": int, "learning_rate": NUMBER},
    },
    "fewshot_sweep": {"k": ListOf(int), "seeds": ListOf(int)},
    "fewshot": {
        "corpora": ListOf(str),
        "methods": ListOf(OneOf(("selm_mappers", "selm_full", "classifier_baseline"))),
        "support_share": NUMBER,
        "cap_k": bool,
        "tune": OneOf(("input_layer", "projection", "mappers")),
        "steps": int,
        "batch_size": int,
        "learning_rate": NUMBER,
        "lm_learning_rate": NUMBER,
        "baseline_steps": int,
        "baseline_learning_rate": NUMBER,
    },
    "serevals": {
        "corpora": ListOf(str),
        "clusters": MapOf(ListOf(str)),
        "split": OneOf(("speaker", "random")),
        "test_share": NUMBER,
        "max_seconds": NUMBER,
        "normalize": OneOf(("corpus", "none")),
        "mask_absent": bool,
        "probe": {
            "epochs": int,
            "batch_size": int,
            "learning_rate": NUMBER,
            "weight_decay": NUMBER,
            "label_smoothing": NUMBER,
            "grad_clip": NUMBER,
            "warmup": NUMBER,
            "hidden": int,
            "dropout": NUMBER,
        },
    },
    "serevals_sweep": {"backbones": ListOf(str)},
    "serevals_figures": {
        "metric": OneOf(("macro_f1", "unweighted_accuracy", "accuracy", "weighted_f1")),
        "variant": OneOf(("none", "train_prior", "oracle", "estimated")),
        "published_dir": str,
        "published_metric": str,
    },
    "index": {"title": str},
}

# Sections each stage reads (dvc.yaml lists the same ones as whole sections).
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "synthesize": ("common", "synth"),
    "curate": ("common", "curate"),
    "features": ("common", "features"),
    "train_selm": ("common", "features", "selm", "train_selm"),
    "eval_ood": ("common", "features", "selm", "curate", "eval_ood"),
    "fewshot_item": ("common", "features", "selm", "curate", "eval_ood", "fewshot"),
    "fewshot": ("common", "curate", "fewshot_sweep", "fewshot"),
    "serevals_probe": ("common", "features", "serevals"),
    "serevals": ("common", "serevals_sweep", "serevals"),
    "serevals_figures": ("common", "serevals_sweep", "serevals", "serevals_figures"),
    "index": ("index",),
}


def _type_name(spec: Any) -> str:
    if isinstance(spec, OneOf):
        return "one of " + " | ".join(spec.choices)
    if isinstance(spec, ListOf):
        return f"a list of {_type_name(spec.item)}"
    if isinstance(spec, MapOf):
        return "a mapping"
    if isinstance(spec, Optional):
        return f"{_type_name(spec.spec)} or null"
    if isinstance(spec, dict):
        return "a mapping with keys " + ", ".join(spec)
    if isinstance(spec, tuple):
        return "a number" if spec == NUMBER else " or ".join(_type_name(t) for t in spec)
    return {int: "an integer", str: "a string", bool: "true or false", float: "a number"}.get(
        spec, str(spec)
    )


def _unknown_key_message(path: str, key: str, valid: list[str], source: str) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"did you mean '{path}{near[0]}'?" if near else "valid keys: " + ", ".join(valid)
    return f"{source}: unknown key '{path}{key}'; {hint}"


def _check(value: Any, spec: Any, path: str, source: str) -> None:
    where = path.rstrip(".") or "(top level)"
    if isinstance(spec, Optional):
        if value is None:
            return
        spec = spec.spec
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")
        for key in value:
            if key not in spec:
                raise ParamsError(_unknown_key_message(path, str(key), list(spec), source))
        for key, sub in spec.items():
            if key not in value:
                if isinstance(sub, Optional):
                    continue  # an optional key may be left out
                raise ParamsError(
                    f"{source}: missing key '{path}{key}' ({_type_name(sub)}); "
                    "see the committed params.yaml for its meaning and default"
                )
            _check(value[key], sub, f"{path}{key}.", source)
        return
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{where}' must be a mapping, got {value!r}")
        for key, sub in value.items():
            _check(sub, spec.spec, f"{path}{key}.", source)
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")
        for i, item in enumerate(value):
            _check(item, spec.item, f"{path}{i}.", source)
        return
    if isinstance(spec, OneOf):
        if value not in spec.choices:
            near = difflib.get_close_matches(str(value), spec.choices, n=1, cutoff=0.4)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ParamsError(
                f"{source}: '{where}' is {value!r}; it must be {_type_name(spec)}{hint}"
            )
        return
    ok = (
        isinstance(value, spec)
        if not (spec in (int,) or spec == NUMBER)
        else isinstance(value, spec) and not isinstance(value, bool)
    )
    if not ok:
        raise ParamsError(f"{source}: '{where}' must be {_type_name(spec)}, got {value!r}")


def validate(params: dict[str, Any], source: str = "params.yaml") -> dict[str, Any]:
    """Check ``params`` against :data:`SCHEMA`; returns it or raises :class:`ParamsError`."""
    _check(params, SCHEMA, "", source)
    _check_cross_references(params, source)
    return params


def _check_cross_references(params: dict[str, Any], source: str) -> None:
    from selm_lib.corpora import SCANNERS  # late import: corpora imports params for its errors

    for name in params["curate"]["corpora"]:
        if name not in SCANNERS:
            near = difflib.get_close_matches(name, list(SCANNERS), n=1, cutoff=0.5)
            hint = f"did you mean '{near[0]}'?" if near else "known: " + ", ".join(SCANNERS)
            raise ParamsError(f"{source}: 'curate.corpora.{name}' names no scanner; {hint}")
    from selm_lib.synth.layouts import WRITERS

    for name in params["synth"]["corpora"]:
        if name not in WRITERS:
            raise ParamsError(
                f"{source}: 'synth.corpora' lists '{name}', which has no synthetic layout; "
                "known: " + ", ".join(WRITERS)
            )
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
    if len(set(backbone_list)) != len(backbone_list):
        raise ParamsError(f"{source}: 'serevals_sweep.backbones' lists a backbone twice")
    if not 0 < serevals["test_share"] < 1:
        raise ParamsError(f"{source}: 'serevals.test_share' must be a share in (0, 1)")
    if serevals["max_seconds"] <= 0:
        raise ParamsError(f"{source}: 'serevals.max_seconds' must be positive")


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
    """The sections ``stage`` reads, as ``{section: values}``."""
    if stage not in STAGE_SECTIONS:
        near = difflib.get_close_matches(stage, list(STAGE_SECTIONS), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ParamsError(f"unknown stage '{stage}'{hint} (known: {', '.join(STAGE_SECTIONS)})")
    return {section: params[section] for section in STAGE_SECTIONS[stage]}


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
