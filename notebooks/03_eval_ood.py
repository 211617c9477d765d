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
#   `selm_lib/data/synonyms.csv`. Answers that name no class of the test set are *unmapped* and
#   count as errors.
# * **SELM, class scoring** (`selm_score`): every test class's verbalisation is ranked by its
#   log-likelihood under the model, `argmax_e p(e | x, w)`; never unmappable.
# * **Classification baseline** (`classifier_baseline`): the traditional formulation, a small MLP
#   on the same frozen cached features and training corpora, restricted to the test classes.
# * **Majority** (the test corpus's most frequent class; it reads the test labels, so it is a
#   reference line) and **chance** (uniform random classes).
#
# WA is plain accuracy, UA the unweighted accuracy (mean per-class recall); 95 % intervals come
# from a bootstrap over speakers.

# %% tags=["parameters"]
common = None  # injected by `python -m selm_lib.run` from params.yaml; read from it when None
features = None
selm = None
curate = None
eval_ood = None

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from selm_lib import evaluate, plots
from selm_lib.curate import is_synthetic
from selm_lib.params import corpus_root, load_params, project_root, resolve_sections
from selm_lib.report import publish_summary

os.chdir(project_root())
common, features, selm, curate, eval_ood = resolve_sections(
    "eval_ood", common=common, features=features, selm=selm, curate=curate, eval_ood=eval_ood
)
pd.set_option("display.width", 160)

# %%
used = eval_ood["test_corpora"] + selm["train_corpora"]
synthetic = [c for c in used if is_synthetic(corpus_root(load_params(), c))]
if synthetic:
    display(
        Markdown(
            "> **Synthetic data.** "
            + ", ".join(synthetic)
            + " are the embedded synthetic stand-ins "
            "(and the encoder and language model are tiny random models). These figures show the "
            "protocol at work; they are **not** the paper's RAVDESS / CREMA-D / IEMOCAP results "
            "and "
            "must not be compared with them."
        )
    )

# %%
result = evaluate.run_eval_ood(common, features, selm, curate, eval_ood)
evaluate.write_outputs(
    result,
    project_root() / "reports" / "metrics" / "ood.json",
    project_root() / "reports" / "plots" / "ood_accuracy.csv",
)

# %% [markdown]
# ## Test sets
# Class set per corpus (`curate.class_sets`; RAVDESS calm per `curate.ravdess_calm`), items
# evaluated, and items excluded: quarantined files and rows outside the class set (e.g. IEMOCAP
# frustrated, or calm when dropped).

# %%
pd.DataFrame(
    {
        corpus: {
            "class set": curate["class_sets"][corpus],
            "classes": ", ".join(classes),
            "evaluated": result.metrics["selm_score"][corpus]["n"],
            "quarantined": result.excluded[corpus]["quarantined"],
            "outside class set": result.excluded[corpus]["outside_class_set"],
        }
        for corpus, classes in result.classes.items()
    }
).T

# %% [markdown]
# ## Results
# Methods x test corpora, as in the paper's table: accuracy (WA), unweighted accuracy (UA) and
# macro-F1, each with its 95 % bootstrap interval over speakers.


# %%
def cell(method: str, corpus: str, metric: str) -> str:
    values = result.metrics[method][corpus]
    lo, hi = values["ci95"][metric]
    return f"{values[metric]:.3f} [{lo:.3f}, {hi:.3f}]"


for metric, title in (
    ("accuracy", "Accuracy (WA)"),
    ("unweighted_accuracy", "UA"),
    ("macro_f1", "Macro-F1"),
):
    display(Markdown(f"**{title}**"))
    display(
        pd.DataFrame({c: {m: cell(m, c, metric) for m in evaluate.METHODS} for c in result.classes})
    )

# %% [markdown]
# Relative accuracy gain of each SELM variant over the best baseline of the corpus (the paper
# states its headline this way: +17 % on RAVDESS and +7 % on CREMA-D on the real data), and the
# share of generated answers that named no test class.

# %%
gains = result.metrics["relative_gain_over_best_baseline"]
pd.DataFrame(
    {
        c: {
            "best baseline": g["best_baseline"],
            "selm_generate gain": f"{100 * g['selm_generate']:+.1f} %",
            "selm_score gain": f"{100 * g['selm_score']:+.1f} %",
            "unmapped answers": f"{100 * result.unmapped_rate[c]:.1f} %",
        }
        for c, g in gains.items()
    }
)

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


# %%
def sentence(corpus: str) -> str:
    m = result.metrics
    acc = {k: m[k][corpus]["accuracy"] for k in evaluate.METHODS}
    best_selm = max(evaluate.SELM_METHODS, key=acc.get)
    lo, hi = m[best_selm][corpus]["ci95"]["accuracy"]
    base = gains[corpus]["best_baseline"]
    verdict = (
        "above" if lo > acc[base] else "not distinguishable from" if hi >= acc[base] else "below"
    )
    return (
        f"**{corpus}** ({m[best_selm][corpus]['n']} items, {len(result.classes[corpus])} classes, "
        f"chance {1 / len(result.classes[corpus]):.2f}): the better SELM variant, {best_selm}, "
        f"reaches accuracy {acc[best_selm]:.3f} (95 % CI {lo:.3f}-{hi:.3f}), "
        f"{verdict} the best baseline ({base}, {acc[base]:.3f}); the classifier baseline "
        f"scores {acc['classifier_baseline']:.3f} and the majority class {acc['majority']:.3f}. "
        f"{100 * result.unmapped_rate[corpus]:.1f} % of generated answers were unmappable."
    )


display(Markdown("\n\n".join(sentence(c) for c in result.classes)))

# %%
acc = {c: result.metrics["selm_score"][c]["accuracy"] for c in result.classes}
publish_summary(
    "OOD accuracy of SELM (class scoring): "
    + ", ".join(f"{c} {a:.2f}" for c, a in acc.items())
    + "; baseline: "
    + ", ".join(
        f"{c} {result.metrics['classifier_baseline'][c]['accuracy']:.2f}" for c in result.classes
    )
    + (" (synthetic data)." if synthetic else ".")
)
