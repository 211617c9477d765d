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
# whole, on every other corpus of its cluster (off-diagonal cells), under five logit adjustments:
#
# - `none`: raw logits;
# - `train_prior`: the training prior removed;
# - `oracle`: the paper's adjustment, with the test prior computed from the **test labels** (an
#   oracle: it reads the answers);
# - `estimated`: the test prior estimated from the unlabelled test predictions by EM (Saerens et
#   al. 2002), which needs no emotion labels; it is fitted on the scored items only (the `other`
#   items, dropped from scoring, are left out of the fit);
# - `estimated_map`: the same EM with a Dirichlet prior pulling the estimate toward the training
#   prior (MAP-EM; strength `serevals.em_prior_strength`, in units of the test set's size; 0 is
#   plain EM), which bounds how far the estimate can move onto one class.
#
# Every EM fit records whether it converged and its iteration count (the backbone items' meta,
# summarised in `serevals.json` and below).
#
# With `serevals.normalize: corpus` (the default; the paper uses raw features) every corpus's
# frame features are first standardised with that corpus's own statistics (all its clips, no
# labels), which removes the channel offset a frozen encoder carries; for an OOD test corpus this
# uses its unlabelled audio, so it is transductive. The setting is printed below and stored in
# `serevals.json`.
#
# In OOD scoring `other` is masked and its items dropped, as in the paper; classes absent from
# the training corpus are masked (`serevals.mask_absent`; false reproduces the paper's
# behaviour, where they get a +27.6 logit bonus). The macro averages follow
# `serevals.metric_convention`: `present` averages over the classes present in the scored truth;
# `published` also over classes predicted but absent from the truth (the published tables'
# torchmetrics convention). Every table below names the convention it uses.
#
# A (backbone, test corpus) cell whose backbone's checkpoint was trained on the test corpus (the
# contamination ledger, a data table of the package named below, joined with each backbone's
# `features.backbones.<name>.source`) is not out-of-domain: it is flagged in every table below
# and, with `serevals.exclude_contaminated` (the default), left out of the OOD averages.
#
# Claims that one backbone beats another, or that an adjustment beats none, rest on paired
# comparisons per cell: a bootstrap over speakers of the *difference* (the same resamples for
# both systems) with its 95 % interval and p-value, and McNemar's test on the same items
# (`serevals.paired`).
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

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.report import plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner
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
display(profile_note(common=common, serevals_sweep=serevals_sweep, serevals=serevals))
banner = synthetic_banner(
    corpora,
    "Each synthetic corpus has its own language, speakers and channel; the backbones include a "
    "log-mel front end. The scores show what the protocol measures.",
)
if banner:
    display(banner)
display(Markdown(sr.setup_text(serevals, backbones, results)))
contaminated = sr.contaminated_map(summary)
exclude = summary.get("contamination", {}).get("exclude_contaminated", True)
display(Markdown(sr.contamination_text(summary, results)))

# %% [markdown]
# ## In-domain scores (the diagonal)
#
# Macro-F1 per corpus and backbone on the corpus's held-out part, with the split each corpus
# used and the chance level of unweighted accuracy (1 / classes).

# %%
convention = summary.get("metric_convention", serevals["metric_convention"])
table, text = sr.in_domain_table(results, corpora, backbones, convention, contaminated)
display(table.round(3), Markdown(text))

# %% [markdown]
# ## Out-of-domain scores (off the diagonal)
#
# Mean over the OOD pairs of each backbone, per logit-adjustment variant, the share of pairs
# whose unweighted accuracy is above chance and the share of cells collapsed onto one class.
# `oracle` uses the test labels. Contaminated cells are left out of these means when
# `serevals.exclude_contaminated` (see the contamination note above).

# %%
ood_table = sr.ood_frame(summary, backbones)
if ood_table.empty:
    display(Markdown("No OOD pair: no cluster has two available corpora."))
else:
    display(Markdown(f"OOD macro-F1 (metric convention `{convention}`):"))
    display(sr.ood_pivot(ood_table, backbones, "macro_f1").round(3))
    display(Markdown("Share of pairs whose unweighted accuracy is above chance:"))
    display(sr.ood_pivot(ood_table, backbones, "share_above_chance_ua").round(2))

# %%
if not ood_table.empty:
    means = ood_table[ood_table["backbone"] == "mean_over_backbones"].set_index("variant")
    display(
        Markdown(
            f"Averaged over backbones and pairs, OOD macro-F1 (convention `{convention}`) is "
            + ", ".join(f"{v} {means.loc[v, 'macro_f1']:.3f}" for v in means.index)
            + ". The `estimated` prior comes from EM, which assumes that only the class "
            "proportions change between corpora and that the probe's posteriors are calibrated; "
            "across corpora the features shift too, and EM can move the whole prior onto one or "
            "two classes, after which nearly every clip is predicted as those classes; "
            "`estimated_map` limits that move. The share of cells whose predictions are (nearly) "
            "all one class, per variant, is below."
        )
    )

# %%
if not ood_table.empty:
    ood_predictions = sr.read_ood_predictions(params)
    collapse = pd.DataFrame(
        {
            f"share of OOD cells whose top class takes >= {sr.COLLAPSE_SHARE:.0%}": (
                sr.collapse_share(ood_predictions)
            ),
            "share of OOD cells predicting a single class": sr.collapse_share(ood_predictions, 1.0),
        }
    )
    display(collapse.round(3))

# %% [markdown]
# ### Convergence of the EM fits
#
# One fit per OOD pair, backbone and EM variant, on the scored items only.

# %%
em = summary.get("em", {})
if em.get("variants"):
    display(pd.DataFrame(em["variants"]).T)
    failed = em.get("not_converged", [])
    display(
        Markdown(
            "Every EM fit converged."
            if not failed
            else f"{len(failed)} EM fit(s) did not converge: "
            + ", ".join(
                f"{f['backbone']} {f['train']} -> {f['test']} ({f['variant']}, "
                f"{f['iterations']} iterations)"
                for f in failed[:20]
            )
            + (" ..." if len(failed) > 20 else "")
        )
    )
elif not ood_table.empty:
    display(Markdown("No EM record in `serevals.json` (rerun dvc repro serevals_probe)."))

# %% [markdown]
# ### Calibration of the probes
#
# ECE (15 equal-width bins, top label), NLL and Brier score of each probe's softmax, averaged
# over the cells of a backbone: in domain over all 8 classes of the test part, OOD over the
# scored items per logit adjustment (`other` and masked classes at probability 0, so a truth
# the probe cannot predict costs a large NLL). No temperature scaling: the protocol has no
# validation split to fit a temperature on. The diagrams pool the cells' bins per backbone.

# %%
calibration = summary.get("calibration", {})
if calibration:
    display(Markdown("**In domain**"), sr.calibration_table(calibration, "in_domain").round(3))
    display(Markdown("**OOD**"), sr.calibration_table(calibration, "ood").round(3))
    pooled = {
        b: {v: {"raw": r} for v, r in kinds.get("ood", {}).items()}
        for b, kinds in calibration.items()
        if kinds.get("ood")
    }
    if pooled:
        variants = sorted({v for b in pooled.values() for v in b})
        fig = plots.reliability_diagrams(pooled, list(pooled), variants, title="OOD probes")
        plt.show()
else:
    display(Markdown("No calibration record in `serevals.json` (rerun dvc repro serevals)."))

# %% [markdown]
# ### Every OOD pair (mean over backbones, no adjustment)
#
# The `contaminated` column (when a cell is flagged) counts the backbones whose checkpoint saw
# the test corpus; they are left out of the pair's mean when `serevals.exclude_contaminated`.

# %%
if not ood_table.empty:
    display(Markdown(f"Metric convention `{convention}`."))
    display(sr.pair_table(results, "none", contaminated, exclude).round(3))

# %% [markdown]
# ## Paired comparisons
#
# Per cell, each backbone against the reference backbone (in-domain and OOD), and each
# logit-adjustment variant against `none` (OOD), from the paired bootstrap over speakers and
# McNemar's test. The verdict counts run over the cells; `few_clusters` counts cells whose
# interval is coarse (fewer clusters than the threshold below), `contaminated` the flagged
# cells.

# %%
display(Markdown(sr.paired_text(summary)))
versus = sr.verdict_table(summary, "backbones")
if not versus.empty:
    display(Markdown("Each backbone against the reference (a minus reference), verdict counts:"))
    display(versus)
    display(Markdown("In-domain differences from the reference per corpus (`*`: few clusters):"))
    display(sr.in_domain_verdicts(summary))
adjust = sr.verdict_table(summary, "adjustment")
if not adjust.empty:
    display(
        Markdown("Each adjustment variant against `none` on the same OOD cell, verdict counts:")
    )
    display(adjust)
    rows = sr.paired_rows(summary, "adjustment")
    display(
        Markdown("Mean paired difference per backbone and variant (the verdict metric):"),
        rows.pivot_table(index="backbone", columns="a", values="difference").round(3),
    )

# %%
publish_summary(sr.summary_sentence(summary, corpora, backbones, synthetic=banner is not None))
