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
# # 03 · Out-of-domain evaluation
#
# The trained SELM and its baselines on corpora never seen in training (by default RAVDESS
# speech, CREMA-D and IEMOCAP, each evaluated whole). Methods:
#
# * **SELM, generation** (`selm_generate`): the model writes an answer to the categorical prompt
#   (beam search); the text is mapped to a test class through the synonym table
#   `selm_lib/data/tables/synonyms.csv`. Answers that name no class of the test set are
#   *unmapped* and count as errors.
# * **SELM, class scoring** (`selm_score`): every test class's verbalisation is ranked by its
#   log-likelihood under the model, `argmax_e p(e | x, w)`; never unmappable.
# * **Classification baseline** (`classifier_baseline`): the traditional formulation, a small MLP
#   on the same frozen cached features and training corpora, restricted to the test classes. Its
#   loss weights classes the way SELM's training weights its answers
#   (`eval_ood.baseline.class_weights`, default `same_as_selm`: class-balanced exactly when
#   `selm.balance_answers` is true), so both see the training class priors alike; the line below
#   states the setting of this run.
# * **Majority** (the test corpus's most frequent class; it reads the test labels, so it is a
#   reference line) and **chance** (uniform random classes).
#
# WA is plain accuracy, UA the unweighted accuracy (mean per-class recall); 95 % intervals come
# from a bootstrap over speakers.
#
# The `eval_ood` stage (`python -m selm_lib.stages.eval_ood`) scores every method and writes the
# predictions and `reports/metrics/ood.json`; this report reads them.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
selm = None
curate = None
eval_ood = None

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.evaluation import results as evaluate
from selm_lib.evaluation.baseline import baseline_balanced
from selm_lib.report import plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner

os.chdir(project_root())
common, selm, curate, eval_ood = resolve_sections(
    "report_eval_ood", common=common, selm=selm, curate=curate, eval_ood=eval_ood
)
pd.set_option("display.width", 160)
result = evaluate.OODResult.load(
    common, project_root() / "reports/metrics/ood.json", eval_ood["test_corpora"]
)

# %%
display(profile_note(common=common, selm=selm, curate=curate, eval_ood=eval_ood))
banner = synthetic_banner(
    eval_ood["test_corpora"] + selm["train_corpora"],
    "They are not the paper's RAVDESS / CREMA-D / IEMOCAP results.",
)
if banner:
    display(banner)
policy = eval_ood["baseline"]["class_weights"]
weighting = "class-balanced" if baseline_balanced(policy, selm) else "natural"
triplet_weighting = "answer-balanced" if selm["balance_answers"] else "natural"
display(
    Markdown(
        f"Class priors: SELM trains on {triplet_weighting} triplets (`selm.balance_answers`); "
        f"the baseline's loss is {weighting} (`eval_ood.baseline.class_weights: {policy}`)."
    )
)

# %% [markdown]
# ## Test sets
# Class set per corpus (`curate.class_sets`; RAVDESS calm per `curate.ravdess_calm`), items
# evaluated, and items excluded: quarantined files and rows outside the class set (e.g. IEMOCAP
# frustrated, or calm when dropped).

# %%
result.test_sets(curate["class_sets"])

# %% [markdown]
# ## Results
# Methods x test corpora, as in the paper's table: accuracy (WA), unweighted accuracy (UA) and
# macro-F1, each with its 95 % bootstrap interval over speakers.


# %%
for metric, title in (
    ("accuracy", "Accuracy (WA)"),
    ("unweighted_accuracy", "UA"),
    ("macro_f1", "Macro-F1"),
):
    display(Markdown(f"**{title}**"))
    display(
        pd.DataFrame(
            {
                c: {m: result.interval(m, c, metric) for m in evaluate.METHODS}
                for c in result.classes
            }
        )
    )

# %% [markdown]
# ### In domain
# The same SELM (class scoring) and baseline on the training corpora's own test speakers, a
# split nothing trained or stopped on, over the trained emotions each corpus has (corpora
# without categorical labels, such as CMU-MOSEI, are left out). The gap to the tables above is
# what leaving the training domain costs.

# %%
in_domain = result.metrics.get("in_domain", {})
display(
    pd.DataFrame(
        {
            corpus: {
                f"{method} {metric}": scores[method][metric]
                for method in ("selm_score", "classifier_baseline")
                for metric in ("accuracy", "unweighted_accuracy", "n")
            }
            for corpus, scores in in_domain.items()
        }
    ).T
)

# %% [markdown]
# Relative accuracy gain of each SELM variant over the best baseline of the corpus (the paper
# states its headline this way: +17 % on RAVDESS and +7 % on CREMA-D on the real data), and the
# share of generated answers that named no test class.

# %%
result.gains()

# %% [markdown]
# ## Confusion matrices (SELM class scoring and the baseline)

# %%
for method in ("selm_score", "classifier_baseline", "selm_generate"):
    fig, axes = plt.subplots(1, len(result.classes), figsize=(5 * len(result.classes), 4))
    for ax, corpus in zip(axes, result.classes, strict=True):
        plots.confusion_heatmap(result.confusion(method, corpus), ax=ax, title=f"{corpus}")
    fig.suptitle(method)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Per-class recall

# %%
fig = plots.recall_bars(
    result.predictions,
    result.classes,
    methods=["selm_score", "selm_generate", "classifier_baseline"],
)

# %% [markdown]
# ## What the numbers show
# Each claim compares the headline SELM variant (`eval_ood.headline`, fixed before looking at
# the test sets) with a baseline on the same clips: the 95 % interval of the accuracy
# *difference* from a paired bootstrap over speakers (the same resampled speakers for both
# methods), its p-value, and McNemar's test on the items where exactly one of them is right.
# "Better" / "worse" means the interval excludes 0; with few speakers the intervals are coarse
# and the sentence says so.


# %%
display(Markdown("\n\n".join(result.verdict(c) for c in result.classes)))

# %%
acc = {c: result.metrics["selm_score"][c]["accuracy"] for c in result.classes}
publish_summary(
    "OOD accuracy of SELM (class scoring): "
    + ", ".join(f"{c} {a:.2f}" for c, a in acc.items())
    + "; baseline: "
    + ", ".join(
        f"{c} {result.metrics['classifier_baseline'][c]['accuracy']:.2f}" for c in result.classes
    )
    + (" (synthetic data)." if banner else ".")
)
