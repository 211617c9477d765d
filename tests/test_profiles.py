"""Parameter profiles: the default column is what params.yaml ships, `use` writes a profile into
the file in place (and back), `show` resolves it, the reports and `validate` name departures,
and the README's table is the profiles table."""

from __future__ import annotations

import shutil

import pytest
import yaml

from selm_lib import params as cli
from selm_lib.config import load_params, project_root
from selm_lib.config.profiles import apply_profile, departures, describe, get, resolve, table

PARAMS = project_root() / "params.yaml"


def test_the_default_column_is_the_shipped_params_file():
    params = load_params(PARAMS)
    assert params["common"]["profile"] == "default"
    assert departures(params, "default") == []
    assert len(departures(params, "paper")) >= 15  # the CPU demo departs from both papers


def test_use_paper_writes_values_in_place_and_use_default_restores_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    original = path.read_text()
    changed = apply_profile(path, "paper")
    params = load_params(path)  # still valid
    assert params["common"]["profile"] == "paper" and "common.profile" in changed
    assert departures(params, "paper") == []
    assert params["selm"]["audio_prefix_len"] == 40 and params["serevals"]["split"] == "random"
    assert params["serevals"]["max_seconds"] == 30  # the anchor and its aliases are untouched
    text = path.read_text()
    assert "# audio prefix tokens" in text and text.count("\n") == original.count("\n")
    apply_profile(path, "default")
    assert path.read_text() == original  # byte for byte: comments, quotes and columns kept


def test_show_resolves_without_writing(capsys):
    before = PARAMS.read_text()
    assert cli.main(["show", "--profile", "paper"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert PARAMS.read_text() == before
    for key, entry in table().items():
        assert get(shown, key) == entry["paper"], key
    assert shown["common"]["profile"] == "paper"
    assert resolve(load_params(PARAMS), "paper") == shown


def test_reports_name_the_profile_and_their_departures():
    params = load_params(PARAMS)
    note = describe({"common": params["common"], "selm": params["selm"]}, {"common", "selm"})
    assert note.startswith("Profile: **`default`**")
    assert "`selm.audio_prefix_len` = 16 (paper: 40)" in note
    assert "serevals" not in note  # only the report's own sections
    paper = resolve(params, "paper")
    paper["selm"]["mapper_layers"] = 6  # an ablation from the paper profile
    note = describe({"common": paper["common"], "selm": paper["selm"]}, {"common", "selm"})
    assert "Profile: **`paper`**" in note
    assert "`selm.mapper_layers` = 6 (paper: 4)" in note


def test_validate_names_departures_from_the_profile(tmp_path, capsys):
    from selm_lib.stages import validate

    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    apply_profile(path, "paper")
    path.write_text(path.read_text().replace("mapper_layers: 4", "mapper_layers: 6", 1))
    params = load_params(path)
    params["common"]["output_root"] = str(tmp_path / "out")
    args = type("Args", (), {"params": str(path)})()
    message = validate.validated(params, args)
    assert "profile paper, 1 departures" in message
    assert "selm.mapper_layers = 6 departs from profile paper" in capsys.readouterr().out


def test_the_readme_table_is_the_profiles_table():
    readme = (project_root() / "README.md").read_text()
    assert cli.markdown_table() in readme, (
        "README's profile table is stale: paste `python -m selm_lib.params table`"
    )


def test_an_unknown_profile_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["show", "--profile", "papers"])
    assert "invalid choice: 'papers'" in capsys.readouterr().err


def test_use_refuses_block_values_and_invalid_results_without_writing(tmp_path):
    from selm_lib.config.params import ParamsError

    path = tmp_path / "params.yaml"
    text = PARAMS.read_text().replace(
        "  backbones: [se_wav2vec2, se_hubert, se_wavlm, se_whisper, se_logmel]",
        "  backbones:\n    - se_wav2vec2\n    - se_hubert\n    - se_wavlm\n    - se_whisper\n"
        "    - se_logmel",
        1,
    )
    path.write_text(text)
    with pytest.raises(ParamsError, match="serevals_sweep.backbones is written as a block"):
        apply_profile(path, "paper")
    assert path.read_text() == text  # nothing written
