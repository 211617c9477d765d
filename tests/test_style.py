"""The code base stays ruff-clean (line length 100), as the style guide asks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT


def ruff() -> list[str]:
    local = Path(sys.executable).parent / "ruff"
    if local.is_file():
        return [str(local)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (pip install -e '.[dev]')")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    paths = ["selm_lib", "tests", "notebooks", "benchmarks"]
    result = subprocess.run(ruff() + command + paths, cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
