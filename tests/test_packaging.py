"""The environment files agree, and nothing the project runs may reach the network."""

from __future__ import annotations

import configparser
import tomllib

import yaml

from .conftest import PROJECT


def pins_of(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_pyproject_and_environment_name_the_same_pins():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = pins_of(project["dependencies"] + project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((PROJECT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pins_of(pip_section) == declared
    assert all(version for version in declared.values()), "every dependency is pinned exactly"
    assert declared["torch"] == "2.11.0" and declared["torchaudio"] == "2.11.0"
    assert declared["transformers"].startswith("5.")


def test_dvc_analytics_and_update_check_are_off():
    config = configparser.ConfigParser()
    config.read(PROJECT / ".dvc" / "config")
    assert config["core"]["analytics"] == "false"
    assert config["core"]["check_update"] == "false"


def test_makefile_keeps_everything_offline():
    makefile = (PROJECT / "Makefile").read_text()
    assert "export HF_HUB_OFFLINE := 1" in makefile
    assert "export DVC_NO_ANALYTICS := 1" in makefile
    assert "ipykernel install --sys-prefix --name python3" in makefile


def test_no_paired_ipynb_committed():
    assert not list((PROJECT / "notebooks").glob("*.ipynb")) or (
        "notebooks/*.ipynb" in (PROJECT / ".gitignore").read_text()
    )


def test_readme_opens_with_the_two_commands():
    head = (PROJECT / "README.md").read_text().split("\n## ")[0]
    assert "make repro" in head and "make test" in head
