"""The compute stages' shared command line: input errors are one line and exit status 2."""

from __future__ import annotations

import yaml

from selm_lib.stages import features, validate

from .conftest import PROJECT


def write_params(tmp_path, edit):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_validate_names_the_nearest_key_and_touches_nothing(tmp_path, capsys):
    def typo(params):
        params["train_selm"]["learnig_rate"] = params["train_selm"].pop("learning_rate")
        params["common"]["output_root"] = str(tmp_path / "artifacts")

    assert validate.main(["--params", str(write_params(tmp_path, typo))]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'train_selm.learning_rate'" in err and "no output was touched" in err
    assert not (tmp_path / "artifacts").exists()


def test_validate_writes_its_fixed_output(tmp_path, capsys):
    def relocate(params):
        params["common"]["output_root"] = str(tmp_path / "artifacts")

    path = write_params(tmp_path, relocate)
    assert validate.main(["--params", str(path)]) == 0
    assert (tmp_path / "artifacts" / validate.OK_FILE).read_text() == validate.OK_TEXT
    assert (
        capsys.readouterr().out.strip()
        == "params.yaml is valid (profile default, 0 departures from it)"
    )


def test_a_stage_refuses_an_unknown_backbone(tmp_path, capsys):
    path = write_params(tmp_path, lambda params: None)
    assert features.main(["--params", str(path), "--backbone", "w2v_tiyn"]) == 2
    assert "'w2v_tiyn' is not a params.yaml 'features.backbones' entry" in capsys.readouterr().err
