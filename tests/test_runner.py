from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from selm_lib.report.runner import stage_of, strip_volatile

from .conftest import PROJECT


def test_stage_of():
    assert stage_of(Path("notebooks/01_curate.py")) == "report_curate"
    assert stage_of(Path("notebooks/05_ser_evals.py")) == "report_serevals"
    assert stage_of(Path("notebooks/06_figures.py")) == "report_figures"
    with pytest.raises(ValueError, match="NN_stage.py"):
        stage_of(Path("notebooks/curate.py"))


def test_strip_volatile_removes_run_specific_fields():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 1.2}
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00"}
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("stream", name="stderr", text="100%|####| 3/3 [00:01<00:00]\n"),
    ]
    notebook.cells = [cell]
    notebook.metadata["papermill"] = {"start_time": "x", "end_time": "y", "duration": 3.0}
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    stripped = strip_volatile(notebook)
    assert "papermill" not in stripped.metadata
    assert stripped.metadata["language_info"] == {"name": "python"}
    assert stripped.cells[0]["id"] == "cell-000"
    assert stripped.cells[0].metadata == {}
    assert [o["name"] for o in stripped.cells[0].outputs] == ["stdout"]


FAILING_NOTEBOOK = """\
# %% tags=["parameters"]
common = None
curate = None

# %%
x = 1

# %%
raise ValueError("boom: the manifest is empty")
"""


@pytest.fixture()
def tiny_project(tmp_path):
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    shutil.copytree(PROJECT / "selm_lib", tmp_path / "selm_lib")
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def run_notebook(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "selm_lib.report.runner", "notebooks/01_curate.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_failing_cell_exits_nonzero_with_its_error(tiny_project):
    (tiny_project / "notebooks" / "01_curate.py").write_text(FAILING_NOTEBOOK)
    result = run_notebook(tiny_project)
    assert result.returncode == 1
    assert "ValueError: boom: the manifest is empty" in result.stderr
    assert "cell 3 failed" in result.stderr  # markdown/param/injected cells counted
    report = nbformat.read(tiny_project / "reports" / "01_curate.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in report.cells for o in c.get("outputs", []))


def test_parameters_are_injected_and_misspelled_keys_fail(tiny_project):
    notebook = FAILING_NOTEBOOK.split("# %%\nraise")[0] + "# %%\nprint(sorted(curate))\n"
    (tiny_project / "notebooks" / "01_curate.py").write_text(notebook)
    assert run_notebook(tiny_project).returncode == 0
    report = nbformat.read(tiny_project / "reports" / "01_curate.ipynb", as_version=4)
    injected = [c for c in report.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "ravdess_calm" in injected[0].source
    params = (tiny_project / "params.yaml").read_text()
    (tiny_project / "params.yaml").write_text(params.replace("min_duration_s:", "min_durations:"))
    result = run_notebook(tiny_project)
    assert result.returncode == 2
    assert "did you mean 'curate.min_duration_s'" in result.stderr
