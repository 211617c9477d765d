"""Calibration of the SER-Evals probes: one record per scored cell and variant in the item's meta,
pooled per backbone in serevals.json, contaminated OOD cells left out when asked."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.serevals import results as rs
from selm_lib.serevals.results import VARIANTS

from .test_serevals_run import project  # noqa: F401 (the module-scoped fixture)


def test_every_scored_cell_has_a_calibration_record(project):  # noqa: F811
    _, _, (results, predictions, meta) = project
    records = meta["calibration"]
    in_domain = [r for r in records if r["kind"] == "in_domain"]
    ood = [r for r in records if r["kind"] == "ood"]
    assert len(in_domain) == (results["kind"] == "in_domain").sum()
    assert len(ood) == (results["kind"] == "ood").sum()
    assert {r["variant"] for r in ood} == set(VARIANTS)
    for r in records:
        assert 0 <= r["ece"] <= 1 and r["nll"] > 0 and 0 <= r["brier"] <= 2
        assert sum(r["reliability"]["count"]) == r["n"]
    # a cell's n is the items it scored (OOD: other dropped), as in results
    for r in ood:
        row = results[
            (results["train"] == r["train"])
            & (results["test"] == r["test"])
            & (results["variant"] == r["variant"])
        ]
        assert int(row["n"].iloc[0]) == r["n"]


def test_summary_pools_bins_and_leaves_contaminated_cells_out(project):  # noqa: F811
    _, _, (results, _, meta) = project
    block = rs.calibration_summary({"b": meta}, {}, exclude=True)
    ood = block["b"]["ood"]["none"]
    cells = [r for r in meta["calibration"] if r["kind"] == "ood" and r["variant"] == "none"]
    assert ood["cells"] == len(cells)
    assert sum(ood["reliability"]["count"]) == sum(r["n"] for r in cells)
    assert ood["ece"] == pytest.approx(np.mean([r["ece"] for r in cells]), abs=1e-6)
    test = cells[0]["test"]
    flagged = rs.calibration_summary({"b": meta}, {"b": [test]}, exclude=True)
    kept = rs.calibration_summary({"b": meta}, {"b": [test]}, exclude=False)
    assert flagged["b"]["ood"]["none"]["cells"] == len([c for c in cells if c["test"] != test])
    assert kept["b"]["ood"]["none"]["cells"] == len(cells)
    assert flagged["b"]["in_domain"] == block["b"]["in_domain"]  # in-domain cells stay
    table = rs.calibration_table(block, "ood")
    assert set(table.index.get_level_values("variant")) == set(VARIANTS)
