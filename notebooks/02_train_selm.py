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
# # 02 · SELM training
#
# SELM treats speech emotion recognition as conditional text generation: cached frame features of
# a frozen audio encoder go through an audio projection and an audio mapper (a fixed number of
# prefix tokens), the text prompt goes through a text mapper, and a GPT-2 language model writes the
# answer. The loss is next-token cross-entropy on the answer tokens only. Training uses
# (audio, prompt, answer) triplets in three views (categorical, sentiment, dimensional) from the
# training corpora in `selm.train_corpora`; RAVDESS, CREMA-D and IEMOCAP are held out as the
# out-of-domain test sets. Where the paper is silent, defaults are reconstructions (see
# `params.yaml` comments).
#
# The `train_selm` stage (`python -m selm_lib.stages.train_selm`) trains the model and writes it
# with its triplets, history and sample generations under `artifacts/selm/`; this report reads
# them, so editing it never retrains SELM.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
selm = None
train_selm = None

# %%
import json
import os

import pandas as pd
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_path, resolve_sections
from selm_lib.report import plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner
from selm_lib.selm.triplets import counts_by_view

os.chdir(project_root())
common, selm, train_selm = resolve_sections(
    "report_train_selm", common=common, selm=selm, train_selm=train_selm
)
pd.set_option("display.max_colwidth", None, "display.width", 160)
folder = resolve_path(common["output_root"]) / "selm"
triplets = pd.read_csv(folder / "triplets.csv", keep_default_na=False)
history = pd.read_csv(folder / "history.csv")
generations = pd.read_csv(folder / "generations.csv", keep_default_na=False)
metrics = json.loads((project_root() / "reports/metrics/train_selm.json").read_text())

# %%
display(profile_note(common=common, selm=selm, train_selm=train_selm))
banner = synthetic_banner(selm["train_corpora"], "The numbers show that the pipeline learns.")
if banner:
    display(banner)
backbone = json.loads((folder / "backbone.json").read_text())
display(
    Markdown(
        f"Encoder: `{backbone['name']}` = `{backbone['source']}`, layer {backbone['layer']} "
        "(frozen, cached). "
        f"Language model: `{selm['lm']}` ({'trainable' if selm['lm_trainable'] else 'frozen'}). "
        f"Prefix lengths: audio {selm['audio_prefix_len']}, prompt {selm['text_prefix_len']}."
    )
)

# %% [markdown]
# ## Triplets
# Triplets per training corpus and view, and a sample. Every triplet of a speaker is in the same
# speaker-disjoint split (from the curate stage); the model trains on `train` and is validated and
# early-stopped on `validation`.

# %%
counts = counts_by_view(triplets)
counts.loc["total"] = counts.sum()
counts

# %%
split_counts = triplets.groupby(["view", "split"]).size().unstack(fill_value=0)
split_counts

# %%
triplets.groupby("view").head(3)[["corpus", "utterance_id", "view", "prompt", "answer"]]

# %% [markdown]
# ## Parameters
# The encoder is not in the model (its features are cached); the language model is frozen unless
# `selm.lm_trainable`.

# %%
pd.DataFrame(
    [
        {
            "trainable": metrics["trainable_parameters"],
            "frozen (language model)": metrics["frozen_parameters"],
        }
    ],
    index=["parameters"],
)

# %% [markdown]
# ## Loss curves

# %%
fig = plots.training_curves(history, metrics)

# %% [markdown]
# ## Validation by view
# Accuracy ranks every candidate answer of the view by its log-likelihood under the model
# (`argmax_e p(e | x, w)`); chance is one over the number of candidates, majority is the share of
# the most frequent answer among the validation triplets.

# %%
views = sorted(metrics["val_accuracy_by_view"])
by_view = pd.DataFrame(
    {
        "validation loss": [metrics["val_loss_by_view"][v] for v in views],
        "accuracy": [metrics["val_accuracy_by_view"][v] for v in views],
        "chance": [metrics["chance_accuracy_by_view"][v] for v in views],
        "majority": [metrics["majority_accuracy_by_view"][v] for v in views],
    },
    index=views,
).round(3)
by_view

# %% [markdown]
# ## Generated answers
# Greedy decoding (stops at end of text) for the first validation clips of each view.

# %%
generations

# %%
acc = metrics["val_accuracy_by_view"]
publish_summary(
    f"SELM trained {metrics['epochs']} epochs on {', '.join(selm['train_corpora'])}; validation "
    f"categorical accuracy {acc.get('categorical', float('nan')):.2f} "
    f"(chance {metrics['chance_accuracy_by_view'].get('categorical', float('nan')):.2f})."
)
