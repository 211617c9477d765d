# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Which layer carries emotion
#
# SELM reads one layer of a frozen speech encoder. Summaries of the SELM paper describe the output
# of the **4th transformer layer of wav2vec2-base** (medium trust; this package's reconstruction
# uses layer 4); SER-Evals probes the **last layer** of every backbone. This report measures
# every layer of SELM's own encoder with one fixed probe: the classification baseline of the OOD
# report (mean and standard deviation of the layer's frames, a two-layer MLP, `eval_ood.baseline`),
# trained on SELM's training corpora (train and validation splits, early stopping on
# validation) and scored on their test speakers (in-domain) and on every OOD test corpus, whole,
# on its own class set. Intervals are 95 % bootstraps over speakers; "all together" pools the
# items of every corpus of a scope. The layer the validation split picks is marked: it is the
# choice one could make without looking at a test speaker; reading the best layer off the OOD
# curve would select on the test set.
#
# The stage `layer_pool` pools the layer-`all` store once per layer, one `layer_probe@L` item per
# layer of `layer_sweep.layers` trains and scores, and `layers` aggregates them into
# `reports/metrics/layers.json`; this report reads it.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
layer_sweep = None

# %%
import json
import os

import pandas as pd
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.evaluation.layer_results import POOLED, score_table
from selm_lib.report import layer_plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner

os.chdir(project_root())
common, layer_sweep = resolve_sections("report_layers", common=common, layer_sweep=layer_sweep)
summary = json.loads((project_root() / "reports/metrics/layers.json").read_text())
probe = summary["probe"]  # eval_ood.baseline and eval_ood.bootstrap as the items ran them
table = pd.read_csv(project_root() / "reports/plots/layer_accuracy.csv", keep_default_na=False)

# %%
display(profile_note(common=common, layer_sweep=layer_sweep))
banner = synthetic_banner(
    summary["train_corpora"] + summary["test_corpora"],
    "The curves show the protocol, not where a pretrained encoder keeps emotion.",
)
if banner:
    display(banner)
display(
    Markdown(
        f"Backbone `{summary['backbone']}` (`{summary['source']}`, {summary['num_layers']} "
        f"transformer layers), layers {summary['layers']}; SELM (`{summary['selm_backbone']}`) "
        f"reads layer {summary['selm_layer']}. Trained on {', '.join(summary['train_corpora'])}; "
        f"OOD: {', '.join(summary['test_corpora'])}. Probe: hidden "
        f"{probe['hidden']}, at most {probe['epochs']} epochs "
        f"(patience {probe['patience']}), {probe['bootstrap']} bootstrap "
        "resamples."
    )
)

# %% [markdown]
# ## Accuracy by layer

# %%
fig = layer_plots.layer_curves(table, summary["selm_layer"], summary["picked_by_validation"])

# %% [markdown]
# ## Unweighted accuracy by layer

# %%
fig_ua = layer_plots.layer_curves(
    table, summary["selm_layer"], summary["picked_by_validation"], metric="unweighted_accuracy"
)

# %% [markdown]
# ## Tables: value [95 % interval]

# %%
for scope in ("in_domain", "ood"):
    for metric in ("accuracy", "unweighted_accuracy"):
        display(Markdown(f"**{scope}, {metric}**"), score_table(table, scope, metric))
display(
    Markdown("**validation accuracy of the probe (the split early stopping uses)**"),
    pd.Series(summary["validation_accuracy"], name="val_accuracy").rename_axis("layer").to_frame(),
)

# %%
pooled = table[table["corpus"] == POOLED].set_index(["scope", "layer"])["accuracy"]
selm_layer, picked = summary["selm_layer"], summary["picked_by_validation"]
ood_best = int(pooled["ood"].idxmax())
lines = [
    f"The validation split picks layer {picked} (in-domain accuracy "
    f"{pooled['in_domain'][picked]:.3f}, OOD {pooled['ood'][picked]:.3f})."
]
if selm_layer in pooled["ood"].index:
    lines.append(
        f"SELM's layer {selm_layer}: in-domain {pooled['in_domain'][selm_layer]:.3f}, OOD "
        f"{pooled['ood'][selm_layer]:.3f}."
    )
else:
    lines.append(f"SELM's layer {selm_layer} is not in `layer_sweep.layers`.")
lines.append(
    f"The highest OOD accuracy is at layer {ood_best} ({pooled['ood'][ood_best]:.3f}); a layer "
    "chosen this way is chosen on the test corpora."
)
display(Markdown(" ".join(lines)))

# %%
publish_summary(
    f"{summary['backbone']}: validation picks layer {picked}; pooled OOD accuracy by layer "
    + ", ".join(f"{layer}: {pooled['ood'][layer]:.2f}" for layer in summary["layers"])
    + f" (SELM reads layer {selm_layer})."
)
