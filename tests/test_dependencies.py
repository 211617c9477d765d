"""Each DVC stage depends on exactly the selm_lib code it runs, and the package is layered:
library modules never import stages, stages never import each other, no import cycles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import PROJECT
from .import_closure import PACKAGE, _imports, closure, minimal_deps, module_file, package_files

STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def _body(spec: dict) -> dict:
    return spec.get("do", spec)  # foreach stages keep their definition under "do"


def entries(cmd: str) -> list[Path]:
    """The files a stage's command runs: its ``-m`` module and, for the report runner, the
    notebook."""
    module = re.search(r"-m (selm_lib[\w.]*)", cmd)
    assert module, f"stage command {cmd!r} does not run a selm_lib module"
    files = [module_file(module[1])]
    assert files[0] is not None, f"{module[1]} is not a module of selm_lib"
    files += [PROJECT / n for n in re.findall(r"notebooks/\S+\.py", cmd)]
    return files


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_exactly_the_code_it_imports(stage):
    body = _body(STAGES[stage])
    needed = closure(*entries(body["cmd"]))
    listed = [d for d in body["deps"] if d.startswith("selm_lib")]
    covered: set[Path] = set()
    for dep in listed:
        path = PROJECT / dep
        assert path.exists(), f"dvc.yaml stage {stage} lists {dep}, which does not exist"
        covered |= package_files(path) if path.is_dir() else {path}
    expected = "\n".join(f"      - {d}" for d in minimal_deps(needed))
    missing = sorted(p.relative_to(PROJECT).as_posix() for p in needed - covered)
    assert not missing, (
        f"stage {stage} runs {missing} but dvc.yaml does not list them; use\n{expected}"
    )
    extra = sorted(p.relative_to(PROJECT).as_posix() for p in covered - needed)
    assert not extra, f"stage {stage} lists {extra}, which it never imports; use\n{expected}"


def test_closure_follows_imports_inside_functions_and_packages():
    """The closure is what Python executes: package __init__ files, imports in function
    bodies, and the data tables a module names."""
    found = closure(PACKAGE / "stages" / "index.py")
    assert PACKAGE / "__init__.py" in found and PACKAGE / "report" / "__init__.py" in found
    found = closure(PACKAGE / "features" / "frames.py")  # open_frames imports config lazily
    assert PACKAGE / "config" / "paths.py" in found
    assert PACKAGE / "data" / "tables" / "synonyms.csv" in closure(
        PACKAGE / "evaluation" / "ood.py"
    )
    assert PACKAGE / "stages" / "train_selm.py" not in closure(PACKAGE / "stages" / "eval_ood.py")


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT).with_suffix("").parts).removesuffix(".__init__")


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        graph[_module_of(path)] = {
            _module_of(f) for n in _imports(path) if (f := module_file(n)) is not None
        } - {_module_of(path)}
    return graph


def test_library_never_imports_stages_and_stages_never_import_each_other():
    for module, imported in _graph().items():
        stages = {m for m in imported if m.startswith("selm_lib.stages.")}
        if module.startswith("selm_lib.stages."):
            assert not stages, f"stage {module} imports stage(s) {sorted(stages)}"
        else:
            assert not stages, f"library module {module} imports stage(s) {sorted(stages)}"


def test_no_import_cycles():
    graph = _graph()
    # packages import their parents' __init__ implicitly; only module -> module edges count
    edges = {
        m: {i for i in deps if i in graph and not m.startswith(i + ".")}
        for m, deps in graph.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
