"""Figures of the reports. Functions take tables and return a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from selm_lib.data.audio import TARGET_SAMPLE_RATE, load_audio
from selm_lib.data.corpora.base import row_channel


def duration_histograms(manifest: pd.DataFrame) -> plt.Figure:
    """Clip durations per corpus (usable rows)."""
    corpora = sorted(manifest["corpus"].unique())
    fig, axes = plt.subplots(1, len(corpora), figsize=(3 * len(corpora), 2.6), squeeze=False)
    for ax, corpus in zip(axes[0], corpora, strict=True):
        values = manifest.loc[manifest["corpus"] == corpus, "duration_s"]
        ax.hist(values, bins=20, color="#4c72b0")
        ax.set_title(corpus, fontsize=9)
        ax.set_xlabel("duration (s)")
    axes[0][0].set_ylabel("clips")
    fig.tight_layout()
    return fig


def sample_rate_bars(manifest: pd.DataFrame) -> plt.Figure:
    """Files per original sample rate and corpus (all are resampled to 16 kHz at load time)."""
    table = manifest.groupby(["corpus", "sample_rate"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    table.plot.bar(ax=ax, stacked=True)
    ax.set_ylabel("files")
    ax.set_xlabel("")
    ax.legend(title="sample rate (Hz)", fontsize=8)
    fig.tight_layout()
    return fig


def log_mel(
    signal: np.ndarray, sample_rate: int = TARGET_SAMPLE_RATE, n_mels: int = 64
) -> np.ndarray:
    """Log-mel spectrogram (n_mels, frames), 25 ms windows, 10 ms hop; numpy only."""
    n_fft, hop = 400, 160
    if len(signal) < n_fft:
        signal = np.pad(signal, (0, n_fft - len(signal)))
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, n_fft/2+1)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(sample_rate / 2), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    weights = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lo, mid, hi = edges[m : m + 3]
        weights[m] = np.clip(
            np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None
        )
    return np.log(weights @ power.T + 1e-8)


def spectrogram_grid(examples: pd.DataFrame, title_column: str = "emotion") -> plt.Figure:
    """One log-mel spectrogram per row of ``examples`` (columns path and ``title_column``)."""
    n = len(examples)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, examples.iterrows(), strict=False):
        spec = log_mel(load_audio(row["path"], channel=row_channel(row.get("channel", ""))))
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"{row[title_column]} ({row['speaker']})", fontsize=9)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def count_heatmap(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Annotated heatmap of a count table (rows x columns)."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * table.shape[1], 0.6 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def confusion_heatmap(table: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Row-normalised confusion matrix (rows = true class), counts annotated."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    shares = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    sns.heatmap(
        shares, annot=table.values, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title)
    return ax


def recall_bars(
    predictions: pd.DataFrame, classes: dict[str, list[str]], methods: list[str]
) -> plt.Figure:
    """Per-class recall per method, one panel per corpus."""
    fig, axes = plt.subplots(1, len(classes), figsize=(5 * len(classes), 3.2), squeeze=False)
    for ax, (corpus, names) in zip(axes[0], classes.items(), strict=True):
        rows = predictions[predictions["corpus"] == corpus]
        table = pd.DataFrame(
            {
                method: [
                    float((group["prediction"] == name).mean()) if len(group) else 0.0
                    for name in names
                    for group in [rows[(rows["method"] == method) & (rows["truth"] == name)]]
                ]
                for method in methods
            },
            index=names,
        )
        table.plot.bar(ax=ax, width=0.8)
        ax.set_ylim(0, 1)
        ax.set_title(corpus)
        ax.set_ylabel("recall")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fewshot_curves(summary: dict, corpora: list[str], methods: list[str]) -> plt.Figure:
    """Accuracy against k per corpus, one line per method with its 95 % band over seeds; a
    filled star marks every k from which the method is significantly better than k = 0
    (``significant_from_k`` of the aggregate, when present)."""
    fig, axes = plt.subplots(1, len(corpora), figsize=(5 * len(corpora), 3.4), squeeze=False)
    marks = summary.get("significant_from_k", {})
    for ax, corpus in zip(axes[0], corpora, strict=True):
        for method in methods:
            ks = sorted(int(k) for k in summary[corpus][method])
            entries = [summary[corpus][method][str(k)]["accuracy"] for k in ks]
            positions = range(len(ks))
            (line,) = ax.plot(positions, [e["mean"] for e in entries], marker="o", label=method)
            start = marks.get(corpus, {}).get(method)
            if start is not None:
                chosen = [i for i, k in enumerate(ks) if k >= start]
                ax.plot(
                    chosen,
                    [entries[i]["mean"] for i in chosen],
                    ls="none",
                    marker="*",
                    ms=12,
                    color=line.get_color(),
                )
            ax.fill_between(
                positions,
                [e["ci95"][0] for e in entries],
                [e["ci95"][1] for e in entries],
                alpha=0.2,
            )
            ax.set_xticks(list(positions), [str(k) for k in ks])
        ax.set_title(corpus)
        ax.set_xlabel("k (examples per class)")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame, metrics: dict) -> plt.Figure:
    """SELM's loss per epoch (train, validation, the kept epoch) and validation accuracy per
    view."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(history["epoch"], history["train_loss"], marker="o", label="train")
    axes[0].plot(history["epoch"], history["val_loss"], marker="o", label="validation")
    axes[0].axvline(metrics["best_epoch"], color="grey", ls="--", lw=1, label="best epoch")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy per answer token")
    axes[0].legend()
    for view in metrics["val_accuracy_by_view"]:
        axes[1].plot(history["epoch"], history[f"val_accuracy_{view}"], marker="o", label=view)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation accuracy (class scoring)")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.tight_layout()
    return fig


def reliability_diagrams(
    calibration: dict,
    corpora: list[str],
    methods: list[str],
    scaled: bool = False,
    title: str = "",
) -> plt.Figure:
    """Reliability diagrams, one panel per corpus: accuracy of the top label against the mean
    top probability in each non-empty confidence bin, one line per method, the diagonal for
    perfect calibration. ``calibration`` is one scope of ``ood.json``'s ``calibration``
    (``ood`` or ``in_domain``): corpus -> method -> ``raw`` / ``scaled`` records."""
    key = "scaled" if scaled else "raw"
    fig, axes = plt.subplots(1, len(corpora), figsize=(4 * len(corpora), 3.6), squeeze=False)
    for ax, corpus in zip(axes[0], corpora, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
        for method in methods:
            entry = calibration[corpus][method].get(key)
            if entry is None:
                continue
            table = entry["reliability"]
            points = [
                (c, a)
                for c, a, n in zip(
                    table["confidence"], table["accuracy"], table["count"], strict=True
                )
                if n
            ]
            ax.plot(
                [c for c, _ in points],
                [a for _, a in points],
                marker="o",
                ms=3,
                label=f"{method} (ECE {entry['ece']:.3f})",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(corpus)
        ax.set_xlabel("mean top probability")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def forest_plot(rows: pd.DataFrame, xlabel: str = "accuracy difference") -> plt.Figure:
    """Paired differences with their 95 % intervals, one panel per corpus, one row per
    comparison (columns corpus, comparison, difference, low, high), a line at 0."""
    corpora = list(dict.fromkeys(rows["corpus"]))
    comparisons = list(dict.fromkeys(rows["comparison"]))
    fig, axes = plt.subplots(
        1,
        len(corpora),
        figsize=(3 + 3.5 * len(corpora), 1.0 + 0.45 * len(comparisons)),
        squeeze=False,
        sharey=True,
    )
    for ax, corpus in zip(axes[0], corpora, strict=True):
        part = rows[rows["corpus"] == corpus].set_index("comparison").reindex(comparisons)
        y = np.arange(len(comparisons))[::-1]
        d = part["difference"].to_numpy(float)
        ax.errorbar(
            d,
            y,
            xerr=[d - part["low"].to_numpy(float), part["high"].to_numpy(float) - d],
            fmt="o",
            capsize=3,
        )
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, comparisons)
        ax.set_title(corpus)
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig
