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
# # 04 · Few-shot adaptation
#
# The trained SELM adapted to each out-of-domain corpus with k labelled examples per class, over
# several seeds, against the classification baseline fine-tuned on the same examples. Each test
# corpus's speakers (IEMOCAP: whole sessions, so no dialogue is on both sides) are split into an
# adaptation pool and evaluation speakers, so support examples never come from a speaker they are
# scored on. With `fewshot.partition_per_seed` each seed draws its own partition, so the interval
# over seeds includes the variance of the partition; every k of one seed is scored on the same
# evaluation speakers. k = 0 is the unadapted model (its predictions on a seed's evaluation
# speakers equal the OOD stage's on them). Methods: `selm_mappers` (the part in front of GPT-2
# named by `fewshot.tune` tuned, by default only the audio projection's input layer; GPT-2
# frozen), `selm_full` (the same and GPT-2 tuned), `classifier_baseline` (the OOD stage's
# classifier fine-tuned). Both SELM variants are scored by class scoring. Curves show the mean
# over seeds with a 95 % t-interval; a star marks each k from which a method is significantly
# better than k = 0.
#
# Where `fewshot.select` lists candidate settings (learning rates, steps, the tuned part), each
# item chooses them per corpus and method on an inner split of the adaptation pool (k examples
# per class from some pool speakers, scored on the other pool speakers by unweighted accuracy);
# the evaluated speakers never take part in the choice. Each k is compared with k = 0 on the same
# items by a paired bootstrap over speakers of the accuracy difference (seeds pooled: each seed's
# item is paired with its own k = 0 item) and McNemar's test.
#
# The `fewshot_item` stages adapt and score, the `fewshot` stage aggregates them into
# `reports/metrics/fewshot.json`; this report reads it.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
curate = None
fewshot_sweep = None
fewshot = None

# %%
import json
import os

from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_sections
from selm_lib.evaluation import compare
from selm_lib.report import plots
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner

os.chdir(project_root())
common, curate, fewshot_sweep, fewshot = resolve_sections(
    "report_fewshot", common=common, curate=curate, fewshot_sweep=fewshot_sweep, fewshot=fewshot
)
summary = json.loads((project_root() / "reports/metrics/fewshot.json").read_text())

# %%
display(profile_note(common=common, curate=curate, fewshot_sweep=fewshot_sweep, fewshot=fewshot))
banner = synthetic_banner(fewshot["corpora"], "The curves show the protocol.")
if banner:
    display(banner)
display(
    Markdown(
        f"k = {fewshot_sweep['k']}, seeds = {fewshot_sweep['seeds']}, {fewshot['steps']} "
        f"SELM adaptation steps (tuned: {fewshot['tune']}), {fewshot['baseline_steps']} for the "
        f"baseline, adaptation pool = {fewshot['support_share']:.0%} of each corpus's speakers; "
        + (
            "chosen per item on the pool's inner split "
            f"({fewshot['inner_share']:.0%} of its groups give the inner support): "
            + ", ".join(f"`{k}` from {v}" for k, v in fewshot["select"].items())
            + "."
            if fewshot["select"]
            else "no setting is chosen (`fewshot.select: {}`)."
        )
    )
)

# %%
if summary["capped_k"]:
    display(
        Markdown(
            "**k was capped** (`fewshot.cap_k: true`) where a class had fewer pool examples "
            "than k; "
            "examples used: " + json.dumps(summary["capped_k"])
        )
    )

# %% [markdown]
# ## Accuracy against k

# %%
methods, corpora, ks = list(fewshot["methods"]), list(fewshot["corpora"]), fewshot_sweep["k"]
fig = plots.fewshot_curves(summary, corpora, methods)

# %% [markdown]
# ## Table: mean over seeds (95 % interval)


# %%
for metric in ("accuracy", "unweighted_accuracy", "macro_f1"):
    display(Markdown(f"**{metric}**"), compare.fewshot_table(summary, corpora, methods, ks, metric))

# %% [markdown]
# ## Each k against k = 0 (paired)
#
# Accuracy difference to the unadapted model on the same evaluated items, its 95 % interval from
# the paired bootstrap over speakers and the verdict (`better` when the interval is above 0).

# %%
display(compare.fewshot_paired_table(summary, corpora, methods, ks))
display(Markdown("\n\n".join(compare.fewshot_significance_sentences(summary, corpora, methods))))

# %% [markdown]
# ## Settings chosen on the inner split
#
# How often each candidate of `fewshot.select` was chosen, over seeds (empty when nothing is
# selected: the settings are then the fixed ones above).

# %%
if summary["selected"]:
    display(compare.selection_table(summary["selected"]))
else:
    display(Markdown("`fewshot.select` is empty: the adaptation settings are fixed in advance."))

# %% [markdown]
# ## Where the curves cross


# %%
display(Markdown("\n\n".join(compare.fewshot_sentences(summary, corpora, methods, ks))))

# %%
best = methods[0]
kmax, kmin = str(max(fewshot_sweep["k"])), str(min(fewshot_sweep["k"]))
publish_summary(
    f"{best}: accuracy at k={kmin} -> k={kmax}: "
    + ", ".join(
        f"{c} {summary[c][best][kmin]['accuracy']['mean']:.2f} -> "
        f"{summary[c][best][kmax]['accuracy']['mean']:.2f}"
        for c in corpora
    )
    + f" (mean of {len(fewshot_sweep['seeds'])} seeds)."
)
