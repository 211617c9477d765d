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
# * **Prior-matched class scoring**: the same class log-likelihoods adjusted for label shift the
#   way SER-Evals adjusts its probes' logits (`selm_lib/evaluation/prior.py`, one implementation
#   for both): `selm_score_uniform` removes the prior of the categorical answers in SELM's
#   train-split triplets (their loss weights, over the test classes: `s - log pi_train`);
#   `selm_score_em` adds a test prior estimated by EM from the unlabelled scores of the test
#   items (MAP toward the training prior, `eval_ood.em_prior_strength`); `selm_score_content_free`
#   subtracts the log-softmax of the scores SELM gives a content-free clip
#   (`eval_ood.content_free`: repeated copies of the scored clips' mean encoder frame, or of an
#   all-zero frame, through SELM's projection and mappers: the cached features are all the
#   stage reads, so an all-silent clip through the encoder is not an option); and
#   `selm_score_oracle` uses the test labels' prior: an **oracle**, a reference line that no
#   headline may use.
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
from selm_lib.evaluation import vocab_results
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
                c: {evaluate.label(m): result.interval(m, c, metric) for m in evaluate.METHODS}
                for c in result.classes
            }
        )
    )

# %% [markdown]
# ### In domain
# The same SELM class scoring (plain and prior-matched) and baseline on the training corpora's
# own test speakers, a split nothing trained or stopped on, over the emotions each corpus has
# that are SELM training answers and baseline classes (corpora without categorical labels, such
# as CMU-MOSEI, are left out). The gap to the tables above is what leaving the training domain
# costs. In domain the test prior is close to the training prior, so removing it need not help.

# %%
in_domain = result.metrics.get("in_domain", {})
display(
    pd.DataFrame(
        {
            corpus: {
                f"{method} {metric}": scores[method][metric]
                for method in ("selm_score", *evaluate.SCORE_VARIANTS, "classifier_baseline")
                for metric in ("accuracy", "unweighted_accuracy", "n")
                if method in scores
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
    fig, axes = plt.subplots(
        1, len(result.classes), figsize=(5 * len(result.classes), 4), squeeze=False
    )
    for ax, corpus in zip(axes[0], result.classes, strict=True):
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
# ## Prior matching
# Each prior matching's unweighted accuracy on SELM class scoring, with its paired difference
# to plain `selm_score` (same speakers resampled for both, 95 % interval). The priors used and
# whether EM converged are in `ood.json` (`prior_matching`).

# %%
display(Markdown(result.headline_note()))
display(result.prior_effects("unweighted_accuracy"))
display(
    pd.DataFrame(
        {
            c: {
                "EM converged": r["em"]["converged"],
                "EM iterations": r["em"]["iterations"],
                "content-free input": r["content_free_input"],
                **{f"prior {k}": ", ".join(f"{v:.2f}" for v in p) for k, p in r["priors"].items()},
            }
            for c, r in result.metrics["prior_matching"].items()
        }
    )
)

# %% [markdown]
# ### Paired differences
# Per corpus: the headline variant against the classifier baseline, and each prior matching
# against plain `selm_score`: the accuracy difference and its 95 % interval from the paired
# bootstrap over speakers. An interval that excludes 0 is a difference the data support.

# %%
fig = plots.forest_plot(result.comparisons("accuracy"))
plt.show()

# %% [markdown]
# ## Calibration
# Softmax over SELM's class log-likelihoods (plain and after each prior matching) and over the
# baseline's logits restricted to the test classes: top-label ECE
# (`eval_ood.calibration_bins` equal-width bins), NLL and Brier score, OOD and in domain. With
# `eval_ood.temperature_scaling` each method also gets one temperature fitted on the training
# corpora's validation split (columns marked `(T)`; the baseline stopped early on that split,
# so its temperature is fitted on data it has seen). Temperature scaling never changes a
# prediction, only the confidence.

# %%
calibration = result.metrics["calibration"]
display(Markdown("**OOD**"))
display(result.calibration_table("ood"))
display(Markdown("**In domain** (the training corpora's test speakers)"))
display(result.calibration_table("in_domain"))

# %% [markdown]
# Reliability diagrams: accuracy of the top label against the mean top probability per
# confidence bin (bins without items are skipped); the dashed diagonal is perfect calibration,
# points below it are over-confident.

# %%
shown = ["selm_score", "selm_score_uniform", "selm_score_em", "classifier_baseline"]
corpora = list(result.classes)
fig = plots.reliability_diagrams(calibration["ood"], corpora, shown, title="OOD, raw scores")
plt.show()
if calibration["temperature_scaling"]:
    fig = plots.reliability_diagrams(
        calibration["ood"], corpora, shown, scaled=True, title="OOD, after temperature scaling"
    )
    plt.show()

# %% [markdown]
# ## Agreement with the annotators
#
# Where a test corpus ships its annotators' votes (CREMA-D `processedResults/tabulatedVotes.csv`,
# voice-only ratings; IEMOCAP's evaluator lines in `EmoEvaluation`; MSP-Podcast's detailed
# labels), each method's predicted class distribution is compared with the human one over the
# test classes: the Jensen-Shannon divergence (base 2: 0 = the same distribution, 1 = disjoint;
# for methods with class scores), the soft accuracy (the share of the votes that went to the
# predicted class) and the human ceiling (the share of the plurality class: what a method
# that always picks the annotators' favourite would get).

# %%
agreement = vocab_results.agreement_table(result.metrics)
if agreement.empty:
    display(Markdown("No test corpus of this run has annotator votes."))
else:
    display(agreement)

# %% [markdown]
# ## Open vocabulary: the label set and its words chosen at test time
#
# The `eval_vocab` stage scores label sets and verbalisations named in `params.yaml`
# (`eval_vocab`) with the trained model, without retraining: synonym ensembles (a class's score
# is the log of the mean probability of its words, or the best of them), other answer templates,
# a class never seen in training (RAVDESS calm as its own class) and CREMA-D's crowd-perceived
# labels as the truth. Each variant is paired with the reference verbalisation (the trained
# answer template with the class names, the same scores as `selm_score`) on the same clips.

# %%
vocab = vocab_results.load(project_root() / "reports/metrics/vocab.json")
display(vocab_results.variant_table(vocab))
lines = vocab_results.unseen_sentences(vocab)
if lines:
    display(Markdown("\n\n".join(lines)))

# %%
if result.metrics["contaminated"]:
    display(
        Markdown(
            "**Contaminated cells**: SELM's encoder checkpoint "
            f"(`{selm['backbone']}`) was trained on "
            + ", ".join(result.metrics["contaminated"])
            + " (the ledger `selm_lib/data/tables/contamination.csv`): those corpora are not "
            "out of domain for it, and their scores above are not OOD results."
        )
    )

# %% [markdown]
# ## What the numbers show
# Each claim compares the headline SELM variant (`eval_ood.headline`: fixed before looking at
# the test sets, or chosen on the training corpora's validation split; see above) with a
# baseline on the same clips: the 95 % interval of the accuracy
# *difference* from a paired bootstrap over speakers (the same resampled speakers for both
# methods), its p-value, and McNemar's test on the items where exactly one of them is right.
# "Better" / "worse" means the interval excludes 0; with few speakers the intervals are coarse
# and the sentence says so.


# %%
display(Markdown("\n\n".join(result.verdict(c) for c in result.classes)))
if banner:
    display(
        Markdown(
            "On synthetic corpora these numbers demonstrate the pipeline (prior matching, "
            "calibration and the paired tests run end to end); they say nothing about how SELM "
            "or the priors behave on real speech."
        )
    )

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
