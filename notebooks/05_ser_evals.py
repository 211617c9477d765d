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
# # 05 · SER-Evals: backbone probes in-domain and across corpora
#
# The SER-Evals protocol (Osman, Kaplan & Nadeem 2024), re-implemented from its description: for
# every backbone of `serevals_sweep.backbones` and every corpus of `serevals.corpora`, a
# frame-MLP probe (Linear(D, 512), LayerNorm, GELU, dropout 0.1, Linear(512, 8); logits averaged
# over frames; label smoothing 0.1, AdamW with weight decay 0.1, one-cycle schedule, gradient clip
# 0.5, last epoch kept) is trained on frozen, cached frame features of the corpus's training part.
# It is scored in-domain on the held-out part (the diagonal of the train x test matrix) and,
# whole, on every other corpus of its cluster (off-diagonal cells), under four logit adjustments:
#
# - `none`: raw logits;
# - `train_prior`: the training prior removed;
# - `oracle`: the paper's adjustment, with the test prior computed from the **test labels** (an
#   oracle: it reads the answers);
# - `estimated`: the test prior estimated from the unlabelled test predictions by EM (Saerens et
#   al. 2002), which needs no labels.
#
# With `serevals.normalize: corpus` (the default; the paper uses raw features) every corpus's
# frame features are first standardised with that corpus's own statistics (all its clips, no
# labels), which removes the channel offset a frozen encoder carries; for an OOD test corpus this
# uses its unlabelled audio, so it is transductive. The setting is printed below and stored in
# `serevals.json`.
#
# In OOD scoring `other` is masked and its items dropped, as in the paper; classes absent from
# the training corpus are masked (`serevals.mask_absent`; false reproduces the paper's
# behaviour, where they get a +27.6 logit bonus). Scores are over the classes present in the
# scored truth.
#
# The `serevals_probe` stages (one per backbone) train and score the probes; the `serevals` stage
# builds the matrices and `reports/metrics/serevals.json`; this report reads them.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
serevals_sweep = None
serevals = None

# %%
import json
import os

from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.report.notebook import publish_summary, synthetic_banner
from selm_lib.serevals import results as sr

os.chdir(project_root())
common, serevals_sweep, serevals = resolve_sections(
    "report_serevals", common=common, serevals_sweep=serevals_sweep, serevals=serevals
)
params = {"common": common, "serevals_sweep": serevals_sweep, "serevals": serevals}
corpora, backbones = list(serevals["corpora"]), list(serevals_sweep["backbones"])
results = sr.read_results(params)
summary = json.loads((project_root() / "reports/metrics/serevals.json").read_text())

# %%
banner = synthetic_banner(
    corpora,
    "Each synthetic corpus has its own language, speakers and channel; the backbones include a "
    "log-mel front end. The scores show what the protocol measures.",
)
if banner:
    display(banner)
display(Markdown(sr.setup_text(serevals, backbones, results)))

# %% [markdown]
# ## In-domain scores (the diagonal)
#
# Macro-F1 per corpus and backbone on the corpus's held-out part, with the split each corpus
# used and the chance level of unweighted accuracy (1 / classes).

# %%
in_domain = results[results["kind"] == "in_domain"]
table = in_domain.pivot(index="train", columns="backbone", values="macro_f1").reindex(
    index=corpora, columns=backbones
)
info = in_domain.drop_duplicates("train").set_index("train")
table["split"] = info["split"]
table["classes"] = info["classes"]
table["chance_ua"] = info["chance_ua"]
table.index.name = "corpus"
display(table.round(3))
ua = in_domain.pivot(index="train", columns="backbone", values="unweighted_accuracy")
above = (ua.to_numpy() > info.loc[ua.index, "chance_ua"].to_numpy()[:, None]).mean()
display(
    Markdown(
        f"In-domain unweighted accuracy is above chance in {above:.0%} of the "
        f"{ua.size} corpus x backbone cells; the mean macro-F1 per backbone is "
        + ", ".join(
            f"{b} {in_domain[in_domain.backbone == b].macro_f1.mean():.3f}" for b in backbones
        )
        + "."
    )
)

# %% [markdown]
# ## Out-of-domain scores (off the diagonal)
#
# Mean over the OOD pairs of each backbone, per logit-adjustment variant, and the share of
# pairs whose unweighted accuracy is above chance. `oracle` uses the test labels.

# %%
ood_table = sr.ood_frame(summary, backbones)
if ood_table.empty:
    display(Markdown("No OOD pair: no cluster has two available corpora."))
else:
    display(
        ood_table.pivot(index="backbone", columns="variant", values="macro_f1")
        .reindex(index=[*backbones, "mean_over_backbones"])
        .round(3)
    )
    display(
        ood_table.pivot(index="backbone", columns="variant", values="share_above_chance_ua")
        .reindex(index=[*backbones, "mean_over_backbones"])
        .round(2)
    )

# %%
if not ood_table.empty:
    means = ood_table[ood_table["backbone"] == "mean_over_backbones"].set_index("variant")
    display(
        Markdown(
            "Averaged over backbones and pairs, OOD macro-F1 is "
            + ", ".join(f"{v} {means.loc[v, 'macro_f1']:.3f}" for v in means.index)
            + ". The `estimated` prior comes from EM, which assumes that only the class "
            "proportions change between corpora and that the probe's posteriors are calibrated; "
            "across corpora the features shift too, and EM can move the whole prior onto one or "
            "two classes, after which nearly every clip is predicted as those classes. The share "
            "of pairs where a single class takes every prediction is below."
        )
    )

# %%
if not ood_table.empty:
    collapse = sr.single_class_share(params)
    display(collapse.to_frame("share of OOD cells predicting a single class").round(3))

# %% [markdown]
# ### Every OOD pair (mean over backbones, no adjustment)

# %%
ood = results[(results["kind"] == "ood") & (results["variant"] == "none")]
if not ood.empty:
    pair_table = (
        ood.groupby(["train", "test"], sort=False)[
            ["macro_f1", "unweighted_accuracy", "chance_ua", "n"]
        ]
        .mean()
        .round(3)
    )
    display(pair_table)

# %%
mean = summary["mean_over_backbones"]
ood_means = mean["ood"]
text = (
    f"SER-Evals probes, {len(backbones)} backbones x {len(corpora)} corpora"
    + (" (synthetic data)" if banner else "")
    + f": in-domain macro-F1 {mean['in_domain']['macro_f1']:.3f} on average ("
    + ", ".join(summary["split_labels"])
    + ")"
    + (
        f"; OOD macro-F1 over {ood_means['none']['pairs']} pairs "
        + ", ".join(f"{v} {ood_means[v]['macro_f1']:.3f}" for v in ood_means)
        + f"; {ood_means['none']['share_above_chance_ua']:.0%} of pair x backbone scores above "
        "chance without adjustment"
        if ood_means
        else "; no OOD pair"
    )
    + "."
)
publish_summary(text)
