from __future__ import annotations

import copy
import dataclasses
import typing

import pytest
import yaml

from selm_lib.config import (
    REPORT_SECTIONS,
    ParamsError,
    load_params,
    resolve_sections,
    stage_params,
    validate,
)
from selm_lib.config.sections import Params
from selm_lib.report.runner import stage_of
from selm_lib.stages.validate import check_registries

from .conftest import PROJECT


@pytest.fixture()
def params() -> dict:
    return load_params(PROJECT / "params.yaml")


def test_committed_params_are_valid(params):
    assert params["common"]["profile"] in ("default", "smoke")
    assert list(params) == [f.name for f in dataclasses.fields(Params)]  # section order too


def test_schema_fields_have_no_defaults():
    """Every value lives in params.yaml: the only defaults are the optional (``| None``) keys."""

    def walk(cls):
        for f in dataclasses.fields(cls):
            hint = typing.get_type_hints(cls)[f.name]
            if f.default is not dataclasses.MISSING:
                assert f.default is None and type(None) in typing.get_args(hint), (cls, f.name)
            for arg in (hint, *typing.get_args(hint)):
                if dataclasses.is_dataclass(arg):
                    walk(arg)

    walk(Params)


def test_misspelled_key_names_the_nearest(params):
    bad = copy.deepcopy(params)
    bad["curate"]["ravdess_clam"] = bad["curate"].pop("ravdess_calm")
    with pytest.raises(
        ParamsError, match=r"unknown key 'curate.ravdess_clam'.*'curate.ravdess_calm'"
    ):
        validate(bad)


def test_nested_misspelled_key(params):
    bad = copy.deepcopy(params)
    bad["curate"]["split"]["fold"] = bad["curate"]["split"].pop("folds")
    with pytest.raises(ParamsError, match=r"curate.split.fold'.*did you mean 'curate.split.folds'"):
        validate(bad)


def test_unknown_section(params):
    bad = copy.deepcopy(params)
    bad["comon"] = bad.pop("common")
    with pytest.raises(ParamsError, match="did you mean 'common'"):
        validate(bad)


def test_bad_choice_and_type(params):
    bad = copy.deepcopy(params)
    bad["common"]["profile"] = "smok"
    with pytest.raises(ParamsError, match=r"common.profile.*did you mean 'smoke'"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["common"]["seed"] = "34"
    with pytest.raises(ParamsError, match="common.seed' must be an integer"):
        validate(bad)


def test_corpus_without_scanner(params):
    bad = copy.deepcopy(params)
    bad["curate"]["corpora"]["ravdes"] = bad["curate"]["corpora"].pop("ravdess")
    with pytest.raises(ParamsError, match="did you mean 'ravdess'"):
        check_registries(bad)
    bad = copy.deepcopy(params)
    bad["synth"]["corpora"].append("ravdes")
    with pytest.raises(ParamsError, match="'synth.corpora' lists 'ravdes'"):
        check_registries(bad)


def test_missing_key(params):
    bad = copy.deepcopy(params)
    del bad["curate"]["min_duration_s"]
    with pytest.raises(ParamsError, match="missing key 'curate.min_duration_s'"):
        validate(bad)


def test_split_shares_checked(params):
    bad = copy.deepcopy(params)
    bad["curate"]["split"]["validation"] = 0.6
    bad["curate"]["split"]["test"] = 0.5
    with pytest.raises(ParamsError, match="must be below 1"):
        validate(bad)


def test_report_sections_match_dvc_yaml():
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    for stage, sections in REPORT_SECTIONS.items():
        assert stage in stages, f"{stage} missing from dvc.yaml"
        assert tuple(stages[stage]["params"]) == sections


def test_every_notebook_is_a_stage():
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    for notebook in sorted((PROJECT / "notebooks").glob("[0-9][0-9]_*.py")):
        runs = [
            s for s, spec in stages.items() if f"notebooks/{notebook.name}" in spec.get("cmd", "")
        ]
        assert len(runs) == 1, f"{notebook.name} must be run by exactly one stage: {runs}"
        (stage,) = runs
        assert stage == stage_of(notebook)  # the runner injects this stage's sections
        assert stage in REPORT_SECTIONS
        assert f"notebooks/{notebook.name}" in stages[stage]["deps"]


def test_stage_params_unknown_stage(params):
    with pytest.raises(ParamsError, match="did you mean 'report_curate'"):
        stage_params("report_curat", params)


def test_injected_sections_are_validated(monkeypatch, params):
    monkeypatch.chdir(PROJECT)
    common, curate = resolve_sections("report_curate", common=None, curate=None)
    assert common == params["common"]
    bad = copy.deepcopy(params["curate"])
    bad["min_duration"] = 1
    with pytest.raises(ParamsError, match="injected parameters: unknown key 'curate.min_duration'"):
        resolve_sections("report_curate", common=params["common"], curate=bad)


def test_backbone_corpora_is_optional_and_checked(params):
    ok = copy.deepcopy(params)
    del ok["features"]["backbones"]["se_logmel"]["corpora"]  # left out: every curated corpus
    validate(ok)
    bad = copy.deepcopy(params)
    bad["features"]["backbones"]["se_hubert"]["corpora"] = ["emodb", "emovo_x"]
    with pytest.raises(ParamsError, match="features.backbones.se_hubert.corpora' lists 'emovo_x'"):
        validate(bad)


def test_consumers_need_their_corpora_encoded(params):
    bad = copy.deepcopy(params)
    bad["features"]["backbones"]["w2v_tiny"]["corpora"] = ["emodb", "meld"]
    with pytest.raises(ParamsError, match=r"'selm.train_corpora' needs features of msp_podcast"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["features"]["backbones"]["se_wavlm"]["corpora"] = ["emodb"]
    with pytest.raises(ParamsError, match=r"'serevals.corpora'.*'features.backbones.se_wavlm"):
        validate(bad)


def test_serevals_cross_references(params):
    bad = copy.deepcopy(params)
    bad["serevals_sweep"]["backbones"] = ["se_wavlm", "wavlm_large"]
    with pytest.raises(ParamsError, match="'serevals_sweep.backbones' lists 'wavlm_large'"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["serevals"]["corpora"] = [*bad["serevals"]["corpora"], "resd"]
    with pytest.raises(ParamsError, match="'serevals.corpora' lists 'resd'.*curate.corpora"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["serevals"]["split"] = "speakers"
    with pytest.raises(ParamsError, match="did you mean 'speaker'"):
        validate(bad)


def test_serevals_corpus_listed_twice(params):
    bad = copy.deepcopy(params)
    bad["serevals"]["corpora"] = [*bad["serevals"]["corpora"], "emodb"]
    with pytest.raises(ParamsError, match="'serevals.corpora' lists a corpus twice"):
        validate(bad)
