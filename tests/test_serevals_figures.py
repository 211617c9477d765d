"""SER-Evals figure helpers: off-diagonal means, bar figures, heatmap, published CSV reader."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from selm_lib.serevals import figures as sf  # noqa: E402

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "serevals_published"
NAN = np.nan


def _matrix():
    return pd.DataFrame(
        [[0.9, 0.2, NAN], [0.4, 0.8, 0.6], [NAN, 0.1, 0.7]],
        index=["a", "b", "c"],
        columns=["a", "b", "c"],
    )


def test_off_diagonal_means_hand_computed():
    rows, cols = sf.off_diagonal_means(_matrix())
    pd.testing.assert_series_equal(
        rows, pd.Series([0.2, 0.5, 0.1], index=["a", "b", "c"], name="ood_by_train")
    )
    pd.testing.assert_series_equal(
        cols, pd.Series([0.4, 0.15, 0.6], index=["a", "b", "c"], name="ood_by_test")
    )


def test_off_diagonal_means_non_square_and_empty_row():
    m = pd.DataFrame([[0.5, 0.3], [NAN, 0.9]], index=["a", "b"], columns=["a", "x"])
    m.loc["b", "a"] = NAN
    rows, cols = sf.off_diagonal_means(m.rename(index={"b": "x"}))
    assert rows["a"] == pytest.approx(0.3)
    assert np.isnan(rows["x"])
    assert np.isnan(cols["a"])


def test_diagonal_vs_off():
    out = sf.diagonal_vs_off(_matrix())
    assert out["in_domain_mean"] == pytest.approx(0.8)
    assert out["ood_mean"] == pytest.approx((0.2 + 0.4 + 0.6 + 0.1) / 4)


def _bars(fig):
    return [p for p in fig.axes[0].patches]


def test_figures_bar_counts():
    matrices = {"wavlm": _matrix(), "hubert": _matrix() * 0.5}
    fig2 = sf.figure2(matrices)
    fig3 = sf.figure3(matrices)
    # 3 corpora x (2 backbones + average)
    assert len(_bars(fig2)) == 9
    assert len(_bars(fig3)) == 9
    heights = [p.get_height() for p in _bars(fig2)]
    # average bars come last: mean of 0.2 and 0.1 for corpus a
    assert heights[6] == pytest.approx(0.15)
    labels = [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    assert labels == ["wavlm", "hubert", "average"]
    plt.close(fig2)
    plt.close(fig3)


def test_heatmap_cells_and_diagonal():
    fig = sf.heatmap(_matrix(), "toy")
    ax = fig.axes[0]
    assert len(ax.texts) == 7  # two NaN cells left blank
    assert len(ax.patches) == 3  # one outline per diagonal cell
    assert ax.get_title() == "toy"
    plt.close(fig)


def test_read_published_matrix_shape(tmp_path):
    csv = tmp_path / "toy.csv"
    csv.write_text("Training Dataset,a,b\na,0.9,\nb,0.1,0.8\n")
    m = sf.read_published_matrix(csv)
    assert list(m.index) == ["a", "b"]
    assert list(m.columns) == ["a", "b"]
    assert np.isnan(m.loc["a", "b"])
    assert m.loc["b", "a"] == pytest.approx(0.1)


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"shared fixtures absent: {PUBLISHED}")
def test_read_published_fixture():
    path = PUBLISHED / "valid_macro_f1" / "microsoftwavlmlarge.csv"
    m = sf.read_published_matrix(path)
    assert all(np.issubdtype(dtype, np.floating) for dtype in m.dtypes)
    assert set(m.index) <= set(m.columns)
    assert len(m.index) >= 10 and abs(len(m.index) - len(m.columns)) <= 2
    diag = np.array([m.loc[c, c] for c in m.index if c in m.columns])
    assert np.isfinite(diag).all() and ((diag > 0) & (diag <= 1)).all()
    summary = sf.diagonal_vs_off(m)
    assert summary["in_domain_mean"] > summary["ood_mean"]
    # MESD collapse: every MESD-trained OOD macro recall is exactly 1/7 (one class predicted)
    recall = sf.read_published_matrix(PUBLISHED / "valid_macro_recall" / path.name)
    rows, _ = sf.off_diagonal_means(recall)
    off = recall.loc["mesd"].drop("mesd").dropna()
    assert len(off) > 0
    np.testing.assert_allclose(off.to_numpy(), 1 / 7, atol=1e-4)
    assert rows["mesd"] == pytest.approx(1 / 7, abs=1e-4)
