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
# # 06 · SER-Evals figures
#
# The figures of SER-Evals drawn from the train x test matrices of `05_ser_evals` (rows: the
# corpus a probe was trained on; columns: the corpus it was scored on; diagonal: in-domain;
# off-diagonal: out-of-domain within a cluster; blank: not evaluated):
#
# - **Figure 2**: mean OOD score per training corpus (row means without the diagonal), per backbone
#   and averaged over backbones;
# - **Figure 3**: mean score per test corpus when not trained on it (column means without the
#   diagonal);
# - train x test heatmaps with the diagonal and off-diagonal means;
# - backbones ranked in-domain, beside their OOD score;
# - the effect of each logit-adjustment variant on the mean OOD score.
#
# The metric and the adjustment variant drawn are `serevals_figures.metric` and
# `serevals_figures.variant`. With `serevals_figures.published_dir` set, the same figures are also
# drawn from results tables in the SER-Evals repository's CSV shape, so results from elsewhere can
# be compared: their corpus names are mapped to the package's (`baum` -> `baum1`, `thorsten` ->
# `thorsten_emotional`), a cluster with missing partners is named in a warning, and backbones
# trained on the benchmark's corpora (`emotionwhisper`) are flagged and, with
# `serevals_figures.exclude_contaminated` (the default), kept out of the averages. The package's
# own cells whose backbone's checkpoint saw the test corpus (the contamination ledger,
# `selm_lib/data/tables/contamination.csv`, as the `serevals` stage recorded it in
# `matrices.json`) are marked on the heatmaps, named in the legends and, with
# `serevals.exclude_contaminated` (the default), left out of every OOD average. Every figure is
# saved as PNG and SVG under `reports/figures/serevals/`.

# %% tags=["parameters"]
common = (
    None  # injected by `python -m selm_lib.report.runner` from params.yaml; read from it when None
)
serevals_sweep = None
serevals = None
serevals_figures = None

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from selm_lib.config import project_root, resolve_path, resolve_sections
from selm_lib.report.notebook import profile_note, publish_summary, synthetic_banner
from selm_lib.serevals import figures as sf
from selm_lib.serevals.results import VARIANTS

os.chdir(project_root())
common, serevals_sweep, serevals, serevals_figures = resolve_sections(
    "report_figures",
    common=common,
    serevals_sweep=serevals_sweep,
    serevals=serevals,
    serevals_figures=serevals_figures,
)
metric, variant = serevals_figures["metric"], serevals_figures["variant"]
label = metric.replace("_", " ")
backbones, corpora = list(serevals_sweep["backbones"]), list(serevals["corpora"])
matrix_dir = resolve_path(common["output_root"]) / "serevals" / "matrices"
saved: list[Path] = []


def show(fig: plt.Figure, name: str) -> None:
    display(fig)
    saved.extend(sf.save_figure(fig, Path("reports/figures/serevals"), name))


matrices = {b: sf.read_matrix(matrix_dir, b, variant, metric, corpora) for b in backbones}
display(
    profile_note(
        common=common,
        serevals_sweep=serevals_sweep,
        serevals=serevals,
        serevals_figures=serevals_figures,
    )
)
banner = synthetic_banner(corpora, "The figures show what the protocol measures.")
if banner:
    display(banner)
about = json.loads((matrix_dir / "matrices.json").read_text()).get("about", {})
if note := sf.split_note(about):
    display(Markdown(note))
oracle_note = " (an oracle: it reads the test labels)." if variant == "oracle" else "."
display(Markdown(f"Metric: **{label}**; OOD cells use the **{variant}** adjustment{oracle_note}"))
display(Markdown(sf.convention_note(about)))
convention = about.get("metric_convention", "present")
contaminated = {b: v for b, v in about.get("contaminated", {}).items() if v}
exclude = about.get("exclude_contaminated", serevals["exclude_contaminated"])
display(Markdown(sf.own_contamination_note(about)))
averaged = sf.mask_contaminated(matrices, contaminated) if exclude else matrices
labelled = sf.flagged_labels(averaged, contaminated, exclude)

# %% [markdown]
# ## Figure 2: mean OOD score per training corpus

# %%
fig2_table = sf.means_table(averaged, 0)
if fig2_table.empty:
    display(Markdown("No corpus has an OOD partner, so Figures 2 and 3 are empty."))
else:
    show(sf.figure2(labelled, ylabel=label), "figure2")
    display(Markdown(sf.transfer_sentence(fig2_table, label)))

# %% [markdown]
# ## Figure 3: mean score per test corpus when not trained on it

# %%
fig3_table = sf.means_table(averaged, 1)
if not fig3_table.empty:
    show(sf.figure3(labelled, ylabel=label), "figure3")
    display(Markdown(sf.difficulty_sentence(fig3_table)))

# %% [markdown]
# ## Train x test heatmaps
#
# The averaged matrix (mean over backbones) first, then one per backbone. Red outlines mark the
# diagonal (in-domain).

# %%
for name, fig in sf.heatmaps(matrices, label, variant, contaminated, exclude):
    show(fig, name)
means = sf.diagonal_vs_off(sf.mean_matrix(averaged))
display(Markdown(sf.loss_sentence(means)))

# %% [markdown]
# ## Backbone ranking: in-domain vs OOD

# %%
ranking = sf.ranking_table(averaged)
if contaminated:
    ranking["contaminated"] = [", ".join(contaminated.get(b, [])) for b in ranking.index]
show(sf.ranking_figure(ranking, ylabel=label), "ranking")
display(ranking.round(3))
text, in_order, ood_order = sf.ranking_sentence(ranking)
display(Markdown(text))

# %% [markdown]
# ## Effect of logit adjustment
#
# Mean OOD score per backbone under each variant (`oracle` reads the test labels; `estimated`
# estimates the test prior from unlabelled predictions by EM; `estimated_map` pulls that estimate
# toward the training prior).

# %%
effect, text = sf.adjustment_effect(
    matrix_dir, backbones, VARIANTS, metric, corpora, contaminated if exclude else None
)
show(sf.variant_figure(effect, ylabel=f"mean OOD {label}"), "logit_adjustment")
display(effect.round(3), Markdown(f"{text} (metric convention `{convention}`)"))

# %% [markdown]
# ## Published results (optional)
#
# With `serevals_figures.published_dir` pointing at a folder of results tables in the SER-Evals
# repository's shape (one folder per metric, one `<backbone>.csv` per backbone, training corpora
# as rows and test corpora as columns), the same figures are drawn from them.

# %%
published_dir, published_metric = (
    serevals_figures[k] for k in ("published_dir", "published_metric")
)
if not published_dir:
    display(Markdown("`serevals_figures.published_dir` is empty: no published table drawn."))
else:
    figures, published_means, notes = sf.published_figures(
        resolve_path(published_dir) / published_metric,
        published_metric,
        clusters=serevals["clusters"],
        exclude_contaminated=serevals_figures["exclude_contaminated"],
    )
    for note in notes:
        display(Markdown(note))
    for name, fig in figures:
        show(fig, name)
    display(published_means.round(3))

# %%
display(Markdown("Saved: " + ", ".join(f"`{p}`" for p in saved)))
publish_summary(
    f"SER-Evals figures ({label}, {variant} adjustment, metric convention {convention}"
    + (", synthetic data" if banner else "")
    + f"): diagonal mean {means['in_domain_mean']:.3f} vs off-diagonal {means['ood_mean']:.3f} "
    f"over {len(backbones)} backbones; best in-domain {in_order[0]}, best OOD {ood_order[0]}."
)
