"""Figures of SER-Evals from train x test result matrices.

A matrix is a ``pd.DataFrame`` with training corpora as rows and test corpora as columns; the
diagonal (same label in row and column) is in-domain, off-diagonal cells are out-of-domain, and
NaN marks pairs that were not evaluated (corpora from different clusters).

- Figure 2: mean OOD score per training corpus = row means without the diagonal;
- Figure 3: mean score per test corpus when not trained on it = column means without the diagonal.

Published mode (:func:`published_figures`) reads result tables in the SER-Evals repository's
shape: their corpus names are mapped to the package's (:data:`PUBLISHED_NAMES`), a cluster whose
members or pairs are missing from them is named in a warning, and backbones trained on the
benchmark's own corpora (by the contamination ledger, :func:`contaminated_backbones`: the
file stem is the checkpoint name) are flagged and, by default
(``serevals_figures.exclude_contaminated``), kept out of the averages.

The package's own matrices carry the cells the ledger flags (``matrices.json``'s ``about``:
``contaminated``, backbone -> test corpora its checkpoint saw): :func:`mask_contaminated` takes
them out of the OOD (off-diagonal) averages of Figures 2 and 3, the ranking and the adjustment
effect when ``serevals.exclude_contaminated``; the heatmaps mark them and the legends name
the backbones that have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from selm_lib.data.contamination import LEDGER_PATH, entries_for

AVERAGE = "average"
# corpus names of the published SER-Evals tables -> the package's corpus names (registry names);
# every other published name is already the package's
PUBLISHED_NAMES: dict[str, str] = {"baum": "baum1", "thorsten": "thorsten_emotional"}
PUBLISHED_CONVENTION = "published"  # the published tables' metric convention (torchmetrics)


def _off_diagonal(matrix: pd.DataFrame) -> pd.DataFrame:
    """A float copy with every cell whose row label equals its column label set to NaN."""
    values = matrix.astype(float).copy()
    for label in values.index:
        if label in values.columns:
            values.loc[label, label] = np.nan
    return values


def off_diagonal_means(matrix: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(row means, column means) over the off-diagonal cells, NaN cells ignored.

    Row means are Figure 2 (per training corpus), column means Figure 3 (per test corpus). A
    corpus with no off-diagonal cell gets NaN.
    """
    off = _off_diagonal(matrix)
    rows = off.mean(axis=1, skipna=True)
    cols = off.mean(axis=0, skipna=True)
    rows.name, cols.name = "ood_by_train", "ood_by_test"
    return rows, cols


def diagonal_vs_off(matrix: pd.DataFrame) -> dict[str, float]:
    """Mean of the in-domain (diagonal) cells and of all off-diagonal cells, NaN ignored."""
    values = matrix.astype(float)
    diag = [values.loc[c, c] for c in values.index if c in values.columns]
    diag = np.asarray(diag, dtype=float)
    off = _off_diagonal(matrix).to_numpy().ravel()
    return {
        "in_domain_mean": float(np.nanmean(diag)) if np.isfinite(diag).any() else float("nan"),
        "ood_mean": float(np.nanmean(off)) if np.isfinite(off).any() else float("nan"),
    }


def means_table(
    matrices: Mapping[str, pd.DataFrame], which: int, exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """corpus x backbone table of off-diagonal means, plus the average over backbones (those in
    ``exclude`` keep their column but stay out of the average)."""
    columns = {name: off_diagonal_means(m)[which] for name, m in matrices.items()}
    table = pd.DataFrame(columns)
    table = table.dropna(how="all")
    kept = [c for c in table.columns if c not in set(exclude)]
    table[AVERAGE] = table[kept].mean(axis=1, skipna=True)
    return table


def _grouped_bars(table: pd.DataFrame, title: str, ylabel: str) -> plt.Figure:
    n_groups, n_series = table.shape
    width = 0.8 / max(n_series, 1)
    width_in = min(16.0, max(6.0, 0.22 * n_groups * max(n_series, 1) + 3))  # capped: many series
    fig, ax = plt.subplots(figsize=(width_in, 4.5))
    x = np.arange(n_groups)
    for j, column in enumerate(table.columns):
        offset = (j - (n_series - 1) / 2) * width
        values = table[column].to_numpy(dtype=float)
        kwargs = {"edgecolor": "black", "hatch": "//"} if column == AVERAGE else {}
        ax.bar(x + offset, np.nan_to_num(values), width, label=str(column), **kwargs)
    ax.set_xticks(x)
    ax.set_xticklabels([str(i) for i in table.index], rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def figure2(
    matrices: Mapping[str, pd.DataFrame],
    *,
    title: str = "Mean OOD score per training corpus",
    ylabel: str = "macro F1",
    exclude: Sequence[str] = (),
) -> plt.Figure:
    """Grouped bars: per training corpus, one bar per backbone plus the backbone average.
    ``matrices`` maps a backbone name to its train x test matrix; ``exclude``: backbones left
    out of the average."""
    return _grouped_bars(means_table(matrices, 0, exclude), title, ylabel)


def figure3(
    matrices: Mapping[str, pd.DataFrame],
    *,
    title: str = "Mean score per test corpus when not trained on it",
    ylabel: str = "macro F1",
    exclude: Sequence[str] = (),
) -> plt.Figure:
    """Grouped bars: per test corpus, one bar per backbone plus the backbone average
    (``exclude``: backbones left out of it)."""
    return _grouped_bars(means_table(matrices, 1, exclude), title, ylabel)


def heatmap(
    matrix: pd.DataFrame,
    title: str = "",
    *,
    fmt: str = "{:.2f}",
    cmap: str = "viridis",
    flagged: Sequence[str] = (),
) -> plt.Figure:
    """Annotated train x test heatmap (NaN cells blank) with the diagonal cells outlined; the
    columns of ``flagged`` (test corpora whose cells are contaminated) carry a ``(c)`` after the
    value and a dashed outline."""
    values = matrix.astype(float)
    data = values.to_numpy()
    n_rows, n_cols = data.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * n_cols + 2), max(3.0, 0.45 * n_rows + 1.5)))
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax)
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(data[i, j]):
                mark = " (c)" if values.columns[j] in set(flagged) else ""
                ax.text(j, i, fmt.format(data[i, j]) + mark, ha="center", va="center", fontsize=7)
                if mark:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.45, i - 0.45),
                            0.9,
                            0.9,
                            fill=False,
                            linestyle="--",
                            edgecolor="white",
                            linewidth=1.0,
                        )
                    )
    columns = list(values.columns)
    for i, label in enumerate(values.index):
        if label in columns:
            j = columns.index(label)
            ax.add_patch(
                Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
            )
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels([str(c) for c in columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([str(r) for r in values.index])
    ax.set_xlabel("test corpus")
    ax.set_ylabel("training corpus")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def read_published_matrix(
    path: str | Path, names: Mapping[str, str] = PUBLISHED_NAMES
) -> pd.DataFrame:
    """A results CSV in the SER-Evals repository's shape: the first column names the training
    corpus (header ``Training Dataset``), the other columns are test corpora; empty cells (pairs
    not evaluated) become NaN. Corpus names are mapped through ``names`` (the published tables'
    names -> the package's, :data:`PUBLISHED_NAMES`; ``{}`` keeps them). Returns a float frame
    with train rows x test columns."""
    frame = pd.read_csv(path, index_col=0)
    frame.index = [names.get(n, n) for n in frame.index.astype(str).str.strip()]
    frame.columns = [names.get(str(c).strip(), str(c).strip()) for c in frame.columns]
    frame.index.name = "train"
    frame.columns.name = "test"
    return frame.apply(pd.to_numeric, errors="coerce").astype(float)


def read_published_matrices(
    folder: str | Path, backbones: Sequence[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Every ``*.csv`` in one metric folder, keyed by file stem (the backbone), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder: set params.yaml 'serevals_figures.published_dir' to the "
            "folder holding the metric folders and 'serevals_figures.published_metric' to one "
            "of them"
        )
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"{folder} holds no *.csv (serevals_figures.published_metric)")
    if backbones is not None:
        paths = [p for p in paths if p.stem in set(backbones)]
    return {p.stem: read_published_matrix(p) for p in paths}


def mean_matrix(matrices: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Cell-wise mean over backbones (NaN ignored; a cell NaN for every backbone stays NaN)."""
    frames = list(matrices.values())
    if not frames:
        raise ValueError("no matrices given")
    stacked = np.stack([f.reindex_like(frames[0]).astype(float).to_numpy() for f in frames])
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(stacked).sum(axis=0)
        total = np.nansum(stacked, axis=0)
        values = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    return pd.DataFrame(values, index=frames[0].index, columns=frames[0].columns)


def ranking_figure(table: pd.DataFrame, *, ylabel: str = "macro F1") -> plt.Figure:
    """Backbones ranked by in-domain mean, with their OOD mean beside it. ``table`` has one row
    per backbone and columns ``in_domain`` and ``ood``."""
    ordered = table.sort_values("in_domain", ascending=False)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(ordered) + 2), 3.8))
    x = np.arange(len(ordered))
    ax.bar(x - 0.2, ordered["in_domain"].to_numpy(float), 0.4, label="in-domain (diagonal)")
    ax.bar(x + 0.2, ordered["ood"].to_numpy(float), 0.4, label="OOD (off-diagonal)")
    for i, (a, b) in enumerate(zip(ordered["in_domain"], ordered["ood"], strict=True)):
        ax.text(i - 0.2, a, f"{a:.2f}", ha="center", va="bottom", fontsize=7)
        ax.text(i + 0.2, b, f"{b:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels([str(i) for i in ordered.index], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title("Backbones ranked by in-domain score, with their OOD score")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def variant_figure(table: pd.DataFrame, *, ylabel: str = "mean OOD macro F1") -> plt.Figure:
    """Grouped bars: per backbone (rows of ``table``), one bar per logit-adjustment variant
    (columns)."""
    return _grouped_bars(table, "Effect of logit adjustment on the mean OOD score", ylabel)


def save_figure(fig: plt.Figure, folder: str | Path, name: str) -> list[Path]:
    """``name.png`` and ``name.svg`` under ``folder``, without volatile metadata (no date, fixed
    SVG ids), so the same figure gives the same bytes. Closes the figure."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    with plt.rc_context({"svg.hashsalt": "selm", "svg.fonttype": "none"}):
        fig.savefig(paths[0], dpi=120, metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def read_matrix(
    folder: str | Path, backbone: str, variant: str, metric: str, corpora: Sequence[str]
) -> pd.DataFrame:
    """One matrix the ``serevals`` stage wrote (``<backbone>/<variant>/<metric>.csv`` under
    ``folder``), rows and columns in ``corpora`` order."""
    path = Path(folder) / backbone / variant / f"{metric}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run dvc repro serevals")
    return pd.read_csv(path, index_col=0).reindex(index=list(corpora), columns=list(corpora))


def transfer_sentence(table: pd.DataFrame, label: str) -> str:
    """Figure 2 in words: the training corpora that transfer best and worst."""
    best, worst = table[AVERAGE].idxmax(), table[AVERAGE].idxmin()
    return (
        f"Averaged over backbones, probes trained on **{best}** transfer best "
        f"({table[AVERAGE].max():.3f} mean OOD {label}) and those trained on **{worst}** worst "
        f"({table[AVERAGE].min():.3f})."
    )


def difficulty_sentence(table: pd.DataFrame) -> str:
    """Figure 3 in words: the test corpora easiest and hardest to score without training."""
    return (
        f"**{table[AVERAGE].idxmax()}** is the easiest corpus to score without training on it "
        f"({table[AVERAGE].max():.3f}), **{table[AVERAGE].idxmin()}** the hardest "
        f"({table[AVERAGE].min():.3f})."
    )


def ranking_table(matrices: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per backbone the diagonal (in-domain) and off-diagonal (OOD) mean."""
    rows = {b: diagonal_vs_off(m) for b, m in matrices.items()}
    return pd.DataFrame(
        {
            "in_domain": {b: r["in_domain_mean"] for b, r in rows.items()},
            "ood": {b: r["ood_mean"] for b, r in rows.items()},
        }
    ).rename_axis("backbone")


def ranking_sentence(ranking: pd.DataFrame) -> tuple[str, list[str], list[str]]:
    """The in-domain and OOD orders of the backbones, in words, and the two orders."""
    in_order = list(ranking.sort_values("in_domain", ascending=False).index)
    ood_order = list(ranking.sort_values("ood", ascending=False).index)
    verdict = (
        "The two rankings agree."
        if in_order == ood_order
        else "The rankings differ: the best in-domain backbone is not the best across corpora."
    )
    text = f"In-domain ranking: {' > '.join(in_order)}. OOD ranking: {' > '.join(ood_order)}. "
    return text + verdict, in_order, ood_order


def heatmaps(
    matrices: Mapping[str, pd.DataFrame],
    label: str,
    variant: str,
    contaminated: Mapping[str, Sequence[str]] | None = None,
    exclude: bool = True,
) -> list[tuple[str, plt.Figure]]:
    """(name, figure) of the averaged train x test heatmap, then one per backbone, each titled
    with its diagonal and off-diagonal means. ``contaminated`` (backbone -> test corpora its
    checkpoint saw): those cells are marked on the backbone's heatmap, and with ``exclude`` the
    averaged matrix and every off-diagonal mean leave them out (their values stay drawn on the
    backbone's own heatmap)."""
    contaminated = {b: list(v) for b, v in (contaminated or {}).items() if v}
    kept = mask_contaminated(matrices, contaminated) if exclude else dict(matrices)
    out = []
    for name, table in {"average": mean_matrix(kept), **matrices}.items():
        m = diagonal_vs_off(table if name == "average" else kept[name])
        title = "mean over backbones" if name == "average" else name
        flagged = contaminated.get(name, []) if name != "average" else []
        note = f"; (c) contaminated{', left out of the mean' if exclude else ''}" if flagged else ""
        out.append(
            (
                f"heatmap_{name}",
                heatmap(
                    table,
                    f"{title}: {label}, {variant} (diagonal {m['in_domain_mean']:.2f}, "
                    f"off-diagonal {m['ood_mean']:.2f}{note})",
                    flagged=flagged,
                ),
            )
        )
    return out


def mask_contaminated(
    matrices: Mapping[str, pd.DataFrame], contaminated: Mapping[str, Sequence[str]]
) -> dict[str, pd.DataFrame]:
    """Copies of ``matrices`` with every off-diagonal cell of a contaminated test corpus (per
    backbone, ``contaminated``) set to NaN, so OOD averages leave it out; diagonal (in-domain)
    cells are kept."""
    out = {}
    for name, table in matrices.items():
        masked = table.astype(float).copy()
        for test in contaminated.get(name, ()):
            if test in masked.columns:
                rows = [r for r in masked.index if r != test]
                masked.loc[rows, test] = np.nan
        out[name] = masked
    return out


def flagged_labels(
    matrices: Mapping[str, pd.DataFrame],
    contaminated: Mapping[str, Sequence[str]],
    exclude: bool,
) -> dict[str, pd.DataFrame]:
    """``matrices`` keyed by legend labels: a backbone with contaminated cells is named
    ``NAME (contaminated cells excluded)`` (or ``included``), the others by their name."""
    how = "excluded" if exclude else "included"
    return {
        (f"{b} (contaminated cells {how})" if contaminated.get(b) else b): m
        for b, m in matrices.items()
    }


def own_contamination_note(about: Mapping[str, Any]) -> str:
    """The figures report's sentence on the package's contaminated cells (from
    ``matrices.json``'s ``about``): which backbone saw which test corpora and how the figures
    treat them ("" when none)."""
    cells = {b: v for b, v in about.get("contaminated", {}).items() if v}
    if not cells:
        return (
            "No backbone's source matches the contamination ledger "
            f"(`{LEDGER_PATH}`): no cell is flagged."
        )
    exclude = about.get("exclude_contaminated", True)
    named = "; ".join(f"`{b}` on {', '.join(v)}" for b, v in cells.items())
    return f"Contaminated cells (the backbone's checkpoint saw the test corpus): {named}. " + (
        "They are marked (c) on the heatmaps and left out of every OOD average, bar and "
        "ranking (`serevals.exclude_contaminated: true`)."
        if exclude
        else "They are marked (c) on the heatmaps and kept in the averages "
        "(`serevals.exclude_contaminated: false`)."
    )


def loss_sentence(means: Mapping[str, float]) -> str:
    """The averaged matrix in words: how much the probes lose across corpora."""
    lower = means["ood_mean"] < means["in_domain_mean"]
    return (
        f"Averaged over backbones the diagonal (in-domain) mean is {means['in_domain_mean']:.3f} "
        f"and the off-diagonal (OOD) mean {means['ood_mean']:.3f}: "
        + (
            "the probes lose most of their score across corpora."
            if lower
            else "the OOD cells are not below the in-domain ones."
        )
    )


def adjustment_effect(
    folder: str | Path,
    backbones: Sequence[str],
    variants: Sequence[str],
    metric: str,
    corpora: Sequence[str],
    contaminated: Mapping[str, Sequence[str]] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Mean OOD score per backbone (and their average) under each adjustment variant, and the
    change of the average against no adjustment in words; the cells of ``contaminated``
    (backbone -> test corpora, pass it only when they are to be excluded) are left out."""
    contaminated = contaminated or {}

    def ood_mean(backbone: str, variant: str) -> float:
        table = read_matrix(folder, backbone, variant, metric, corpora)
        table = mask_contaminated({backbone: table}, contaminated)[backbone]
        return diagonal_vs_off(table)["ood_mean"]

    effect = pd.DataFrame({v: {b: ood_mean(b, v) for b in backbones} for v in variants})
    effect.loc[AVERAGE] = effect.mean(axis=0)
    gain = effect.loc[AVERAGE] - effect.loc[AVERAGE, "none"]
    text = (
        "Change of the mean OOD score against no adjustment, averaged over backbones: "
        + ", ".join(f"{v} {gain[v]:+.3f}" for v in variants if v != "none")
        + "."
    )
    return effect, text


def missing_partners(
    matrices: Mapping[str, pd.DataFrame], clusters: Mapping[str, Sequence[str]]
) -> list[str]:
    """Warnings, one per cluster of ``clusters`` (``serevals.clusters``, package names) whose
    members are absent from every published table, or whose OOD pairs (both members present)
    have no cell in any table: Figures 2 and 3 then average such a corpus over fewer partners
    than its cluster has."""
    frames = list(matrices.values())
    rows = set().union(*(f.index for f in frames)) if frames else set()
    columns = set().union(*(f.columns for f in frames)) if frames else set()
    warnings = []
    for name, members in clusters.items():
        absent = [m for m in members if m not in rows and m not in columns]
        present = [m for m in members if m not in absent]
        empty = [
            f"{a} -> {b}"
            for a in present
            for b in present
            if a != b
            and not any(
                a in f.index and b in f.columns and np.isfinite(float(f.loc[a, b])) for f in frames
            )
        ]
        if not absent and not empty:
            continue
        parts = []
        if absent:
            parts.append(f"not in the published tables: {', '.join(absent)}")
        if empty:
            parts.append(f"pairs without a published cell: {', '.join(empty)}")
        warnings.append(
            f"**Warning:** cluster `{name}` has partners missing ({'; '.join(parts)}); its "
            "corpora's Figure 2 and 3 means run over the partners that are there."
        )
    return warnings


def contaminated_backbones(published: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """The published backbones (file stems, read as checkpoint names by the contamination
    ledger's rule) whose ledger entry names a corpus of their own table: ``{name: what the
    ledger says}``. Flagged as a whole: their every cell is suspect."""
    out = {}
    for name, table in published.items():
        corpora = set(table.index) | set(table.columns)
        hits = [e for e in entries_for(name) if corpora & set(e.corpora)]
        if hits:
            out[name] = "; ".join(f"{e.checkpoint}: {e.source} ({e.note})" for e in hits)
    return out


def contamination_note(flagged: Mapping[str, str], excluded: bool) -> str:
    """The report's sentence on the contaminated published backbones ``flagged`` (name -> the
    ledger's words, :func:`contaminated_backbones`; "" when none)."""
    found = list(flagged)
    if not found:
        return ""
    what = "; ".join(f"`{b}`: {flagged[b]}" for b in found)
    return f"Contaminated backbones ({what}): their OOD cells are not out-of-domain. " + (
        "They are drawn, flagged, and kept out of every average "
        "(`serevals_figures.exclude_contaminated: true`)."
        if excluded
        else "They are included in the averages (`serevals_figures.exclude_contaminated: false`)."
    )


def published_figures(
    folder: str | Path,
    metric: str,
    *,
    clusters: Mapping[str, Sequence[str]] | None = None,
    exclude_contaminated: bool = True,
) -> tuple[list[tuple[str, plt.Figure]], pd.DataFrame, list[str]]:
    """Figures 2 and 3 drawn from result tables in the SER-Evals repository's shape (one
    ``<backbone>.csv`` per backbone in ``folder``, corpus names mapped to the package's), their
    diagonal / off-diagonal means per backbone (column ``contaminated`` flags the backbones of
    :func:`contaminated_backbones`; the ``average`` row leaves them out when
    ``exclude_contaminated``) and the notes to show: the metric convention of the tables, the
    contaminated backbones and a warning per cluster with missing partners
    (:func:`missing_partners`)."""
    published = read_published_matrices(folder)
    dirty = contaminated_backbones(published)
    flagged = {(f"{b} (contaminated)" if b in dirty else b): m for b, m in published.items()}
    exclude = [f"{b} (contaminated)" for b in published if b in dirty]
    exclude = exclude if exclude_contaminated else []
    figures = [
        (
            "published_figure2",
            figure2(
                flagged,
                title="Published: mean OOD score per training corpus",
                ylabel=metric,
                exclude=exclude,
            ),
        ),
        (
            "published_figure3",
            figure3(
                flagged,
                title="Published: mean score per test corpus",
                ylabel=metric,
                exclude=exclude,
            ),
        ),
    ]
    means = pd.DataFrame({b: diagonal_vs_off(m) for b, m in published.items()}).T
    means["contaminated"] = [b in dirty for b in means.index]
    kept = means[~means["contaminated"]] if exclude_contaminated else means
    means.loc[AVERAGE] = {
        "in_domain_mean": kept["in_domain_mean"].mean(),
        "ood_mean": kept["ood_mean"].mean(),
        "contaminated": False,
    }
    notes = [
        f"The published tables use the `{PUBLISHED_CONVENTION}` metric convention (torchmetrics "
        "over the 8-class space: macro averages include classes predicted but absent from the "
        "truth)."
    ]
    if note := contamination_note(dirty, exclude_contaminated):
        notes.append(note)
    notes.extend(missing_partners(published, clusters or {}))
    return figures, means, notes


def split_note(about: Mapping[str, Any]) -> str:
    """Which corpora's in-domain cells come from a split that is not speaker-disjoint (from the
    ``about`` block of ``matrices.json``); "" when every corpus is speaker-disjoint."""
    other = {c: s for c, s in about.get("split_per_corpus", {}).items() if s != "speaker_disjoint"}
    if not other:
        return ""
    return (
        "In-domain (diagonal) cells of "
        + ", ".join(f"{c} ({s})" for c, s in other.items())
        + " do not come from a speaker-disjoint split (`serevals.split: random`, a corpus with "
        "one speaker, one without speaker ids, `official`: the corpus's own split, or "
        "`group_disjoint`: one whose speaker column holds groups that are not speakers, such as "
        "MESD's voice groups or RESD's dialogues); the others are speaker-disjoint."
    )


def convention_note(about: Mapping[str, Any]) -> str:
    """The metric convention of the package's matrices (from ``matrices.json``'s ``about``)."""
    convention = about.get("metric_convention", "present")
    text = about.get("metric_convention_text", "")
    return f"Metric convention `serevals.metric_convention: {convention}`" + (
        f" ({text})." if text else "."
    )
