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
# # 01 · Corpus curation
#
# Every corpus named in `params.yaml` (`curate.corpora`) is scanned from its distributed layout
# into a manifest: one row per file or labelled row, with the corpus's own label, the package's
# emotion name, the sentiment view, valence/arousal/dominance where the corpus has them, and a
# `quarantine` reason for every file that cannot be used (empty, truncated, not audio, NaN-filled,
# silent, too short, unlabelled). Nothing is dropped silently. Speakers are then split into
# speaker-disjoint train/validation/test sets and folds, deterministically from the seed.
#
# The `curate` stage (`python -m selm_lib.stages.curate`) does this and writes the manifests and
# splits; this report reads them.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
curate = None

# %%
import os

import pandas as pd
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.data import curate as curation
from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import quarantine_list
from selm_lib.report import plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner

os.chdir(project_root())
common, curate = resolve_sections("report_curate", common=common, curate=curate)
pd.set_option("display.max_rows", 200, "display.width", 160, "display.max_colwidth", None)

# %%
curated = curation.load_curated(common, curate)
summary = curation.summary_table(curated)
synthetic = [name for name, flag in curated.synthetic.items() if flag]
real = [name for name, flag in curated.synthetic.items() if not flag]
display(profile_note(common=common, curate=curate))
banner = synthetic_banner(
    curated.manifests,
    "Each synthetic voice's prosody follows the labelled emotion; counts and figures below "
    "describe the stand-ins, not the real corpora.",
)
display(banner or Markdown(f"Real corpora read from disk: {', '.join(real)}."))
if banner and real:
    display(Markdown(f"Real corpora read from disk: {', '.join(real)}."))

# %% [markdown]
# ## Corpora
# Files found, usable and quarantined, speakers, hours of usable audio, and the original sample
# rates (every clip is resampled to 16 kHz when it is loaded). `role` says whether a corpus is
# used for training or held out as an out-of-domain test set.

# %%
summary

# %% [markdown]
# ## Emotions per corpus and split
# Usable clips per emotion and speaker-disjoint split. Out-of-domain test corpora are evaluated
# whole; their splits exist for in-domain experiments only.

# %%
counts = curation.counts_by_split(curated)
table = counts.pivot_table(
    index=["corpus", "emotion"], columns="split", values="count", fill_value=0, aggfunc="sum"
)
table["total"] = table.sum(axis=1)
table

# %% [markdown]
# ## Evaluation class sets
# Each corpus's evaluation class set (`curate.class_sets`, tables in
# `selm_lib/data/tables/class_sets.csv`). IEMOCAP uses the standard 4-class set with *excited*
# merged into *happy* (5531 utterances on the real corpus); RAVDESS calm is treated as set by
# `curate.ravdess_calm`. Rows outside a set are counted as *(excluded)*.

# %%
class_counts = curation.eval_class_counts(curated)
display(
    Markdown(
        f"RAVDESS calm: **{curate['ravdess_calm']}**. Class sets: "
        + ", ".join(
            f"{c} → `{s}`" for c, s in curate["class_sets"].items() if c in curated.manifests
        )
    )
)
class_counts

# %%
fig = plots.count_heatmap(class_counts, "usable clips per evaluation class")

# %% [markdown]
# ## Durations and sample rates

# %%
all_rows = curated.combined()
good = usable(all_rows)
fig = plots.duration_histograms(good)

# %%
fig = plots.sample_rate_bars(good)

# %% [markdown]
# ## One spectrogram per emotion
# Log-mel spectrograms (64 bands, 10 ms hop) of the first usable clip of each emotion in the first
# corpus listed in `curate.corpora`, after resampling to 16 kHz.

# %%
first = next(iter(curated.manifests))
examples = (
    usable(curated.manifests[first]).groupby("emotion", sort=True).head(1).sort_values("emotion")
)
display(Markdown(f"Corpus: **{first}**"))
fig = plots.spectrogram_grid(examples)

# %% [markdown]
# ## Quarantine
# Files that cannot be used, with the reason. They stay in the manifests (column `quarantine`) so
# nothing is lost; fix or re-download them and rerun.

# %%
quarantined = pd.concat(
    [quarantine_list(m).assign(corpus=name) for name, m in curated.manifests.items()],
    ignore_index=True,
)[["corpus", "path", "quarantine"]]
quarantined if len(quarantined) else Markdown("No file is quarantined.")

# %%
kind = "synthetic" if synthetic and not real else ("real" if not synthetic else "mixed")
publish_summary(
    f"{len(curated.manifests)} corpora ({kind}): {int(summary['usable'].sum())} usable clips, "
    f"{int(summary['quarantined'].sum())} quarantined, "
    f"{int(summary['speakers'].sum())} speakers, speaker-disjoint splits."
)
