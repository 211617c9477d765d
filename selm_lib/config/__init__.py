"""``params.yaml``: its schema, loading and validation (``params``) and the paths it names
(``paths``). Nothing here imports the rest of the package, so every stage can read its params
without depending on code it does not run."""

from selm_lib.config.params import (
    REPORT_SECTIONS,
    ParamsError,
    load_params,
    resolve_sections,
    section_config,
    stage_params,
    validate,
)
from selm_lib.config.paths import corpus_root, output_dir, project_root, resolve_path

__all__ = [
    "REPORT_SECTIONS",
    "ParamsError",
    "corpus_root",
    "load_params",
    "output_dir",
    "project_root",
    "resolve_path",
    "resolve_sections",
    "section_config",
    "stage_params",
    "validate",
]
