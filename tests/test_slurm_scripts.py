"""The SLURM recipes in scripts/slurm: valid bash, modules that exist, params keys that exist."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from selm_lib.config.params import validate

from .conftest import PROJECT

SCRIPTS = sorted((PROJECT / "scripts" / "slurm").glob("*.sbatch"))
PARAMS = yaml.safe_load((PROJECT / "params.yaml").read_text())
MODULE = re.compile(r"selm_lib\.stages\.(\w+)")
# A dotted params key: a top-level section, then identifiers (not part of a module path or a
# file name such as selm_lib.stages.train_selm).
KEY = re.compile(
    r"(?<![\w./$-])(" + "|".join(sorted(PARAMS, key=len, reverse=True)) + r")((?:\.[A-Za-z_]\w*)+)"
)
# A grid line of selm_queue.sbatch's header: "#   key=value".
GRID_LINE = re.compile(r"^#\s+([a-z_]+(?:\.[a-z_]+)+)=(\S+)$", re.M)


def modules(text: str) -> set[str]:
    return set(MODULE.findall(text))


def unknown_keys(text: str, params: dict[str, Any]) -> list[str]:
    """Dotted keys named in ``text`` that do not resolve in ``params``."""
    missing = []
    for section, rest in KEY.findall(text):
        node: Any = params[section]
        for part in rest.strip(".").split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(section + rest)
                break
            node = node[part]
    return missing


def test_there_are_the_two_scripts():
    assert {p.name for p in SCRIPTS} == {"selm_stage.sbatch", "selm_queue.sbatch"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_with_bash_n(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_n_rejects_a_broken_script(tmp_path):
    broken = tmp_path / "broken.sbatch"
    broken.write_text("#!/bin/bash\nif [ -n x ]; then\n  echo\n")
    assert subprocess.run(["bash", "-n", str(broken)], capture_output=True).returncode != 0


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_named_stage_modules_exist(script):
    for name in modules(script.read_text()):
        assert (PROJECT / "selm_lib" / "stages" / f"{name}.py").is_file(), (
            f"{script.name} names selm_lib.stages.{name}, which does not exist"
        )


def test_stage_script_runs_exactly_the_distributed_stages():
    """selm_stage.sbatch offers the stages that call run_stage(..., distributed=True)."""
    named = modules((PROJECT / "scripts" / "slurm" / "selm_stage.sbatch").read_text())
    distributed = {
        p.stem
        for p in (PROJECT / "selm_lib" / "stages").glob("*.py")
        if "distributed=True" in p.read_text()
    }
    assert named == distributed == {"features", "train_selm", "serevals_probe"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_named_params_keys_exist(script):
    text = script.read_text()
    assert KEY.search(text), f"{script.name} names no params key (the check would be empty)"
    assert unknown_keys(text, PARAMS) == []


def test_key_check_finds_a_misspelled_key():
    text = "set common.nprocs and fewshot_sweep.seeds; not selm_lib.stages.train_selm.x"
    assert unknown_keys(text, PARAMS) == ["common.nprocs"]


def test_grid_examples_are_valid_params():
    """Each example grid point of selm_queue.sbatch, applied to params.yaml, passes validation."""
    text = (PROJECT / "scripts" / "slurm" / "selm_queue.sbatch").read_text()
    points = GRID_LINE.findall(text)
    assert len(points) >= 3
    for key, value in points:
        params = copy.deepcopy(PARAMS)
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        assert last in node, f"{key} is not a params.yaml key"
        node[last] = yaml.safe_load(value)
        validate(params)
