"""Figures of the layer-sweep report (``07_layers.py``): accuracy by encoder layer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from selm_lib.evaluation.layer_results import POOLED

TITLES = {"in_domain": "in-domain (training corpora's test speakers)", "ood": "OOD test corpora"}


def layer_curves(
    table: pd.DataFrame,
    selm_layer: int | None = None,
    picked: int | None = None,
    metric: str = "accuracy",
) -> plt.Figure:
    """One panel per scope (in-domain, OOD): ``metric`` against the layer for each corpus (thin
    lines) and all corpora of the scope together (thick, with its 95 % interval as a band), the
    per-corpus intervals as error bars; a dashed line at SELM's layer (when swept) and a dotted
    one at the layer the validation split picks."""
    scopes = [s for s in TITLES if s in set(table["scope"])]
    fig, axes = plt.subplots(1, len(scopes), figsize=(5.2 * len(scopes), 3.6), squeeze=False)
    for ax, scope in zip(axes[0], scopes, strict=True):
        part = table[table["scope"] == scope].sort_values("layer")
        for corpus in dict.fromkeys(part["corpus"]):
            rows = part[part["corpus"] == corpus]
            x, y = rows["layer"].to_numpy(), rows[metric].to_numpy()
            low, high = rows[f"{metric}_low"].to_numpy(), rows[f"{metric}_high"].to_numpy()
            if corpus == POOLED:
                ax.plot(x, y, color="black", lw=2.2, marker="o", label="all together", zorder=3)
                ax.fill_between(x, low, high, color="black", alpha=0.12, lw=0)
            else:
                ax.errorbar(
                    x,
                    y,
                    yerr=[y - low, high - y],
                    lw=1,
                    marker=".",
                    capsize=2,
                    label=corpus,
                    alpha=0.8,
                )
        if selm_layer is not None and selm_layer in set(part["layer"]):
            ax.axvline(
                selm_layer, color="#c44e52", ls="--", lw=1, label=f"SELM (layer {selm_layer})"
            )
        if picked is not None:
            ax.axvline(picked, color="#55a868", ls=":", lw=1.5, label=f"validation pick ({picked})")
        ax.set_title(TITLES[scope], fontsize=10)
        ax.set_xlabel("encoder layer (0 = before the first transformer layer)")
        ax.set_xticks(sorted(set(part["layer"])))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"{metric} (95 % speaker-bootstrap interval)")
    fig.tight_layout()
    return fig
