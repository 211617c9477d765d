"""The DVC pipeline end to end on the smoke profile, in a temporary git + dvc repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import PROJECT

pytestmark = pytest.mark.slow


def sh(args: list[str], cwd: Path) -> str:
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
    )
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


# Downstream of SELM: they rerun when its outputs change, whatever the edit was.
FEWSHOT = {"fewshot_item@0-0", "fewshot_item@1-0", "fewshot_item@2-0", "fewshot", "report_fewshot"}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_param(project: Path, section: str, key: str, value) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    target = params[section]
    *parents, last = key.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    for name in ("params.yaml", "dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(PROJECT / name, root / name)
    for folder in ("selm_lib", "notebooks"):
        shutil.copytree(
            PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb")
        )
    set_param(root, "common", "profile", "smoke")
    set_param(root, "train_selm", "epochs", 2)  # the loop itself is tested in test_train.py
    set_param(root, "fewshot_sweep", "k", [0, 2])
    set_param(root, "fewshot_sweep", "seeds", [0])
    set_param(root, "fewshot", "cap_k", True)  # smoke corpora have a handful of clips per class
    set_param(root, "fewshot", "steps", 3)
    set_param(root, "fewshot", "baseline_steps", 3)
    # settings chosen on the inner split: two SELM candidates, one baseline candidate (both paths)
    set_param(
        root,
        "fewshot",
        "select",
        {"learning_rate": [0.001, 0.003], "baseline_learning_rate": [0.0005]},
    )
    # the layer sweep: two layers of the layer-all store (the others are the same code path)
    set_param(root, "layer_sweep", "layers", [0, 2])
    # SER-Evals: two backbones (the others are the same code path), a few epochs; SELM's backbone
    # and the layer sweep's layer-all store
    backbones = yaml.safe_load((root / "params.yaml").read_text())["features"]["backbones"]
    set_param(
        root,
        "features",
        "backbones",
        {
            k: v
            for k, v in backbones.items()
            if k in ("w2v_tiny", "w2v_layers", "se_wavlm", "se_logmel")
        },
    )
    set_param(root, "serevals_sweep", "backbones", ["se_wavlm"])
    set_param(root, "serevals", "probe.epochs", 3)
    sh(["git", "init", "-q"], root)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root)
    shutil.copy(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    return root


REPORTS = {
    "report_curate",
    "report_train_selm",
    "report_eval_ood",
    "report_fewshot",
    "report_serevals",
    "report_figures",
    "report_layers",
}

# The layer sweep over layer_sweep.layers [0, 2] of the fixture.
LAYERS = {"layer_pool", "layer_probe@0", "layer_probe@2", "layers"}


def status_stages(project: Path) -> set[str]:
    """Stages ``dvc status`` lists as changed."""
    out = sh([sys.executable, "-m", "dvc", "status", "--json"], project)
    return set(json.loads(out[out.index("{") :]))


def test_repro_then_nothing_to_do_then_only_what_changed(project):
    first = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert (
        ran(first)
        == {
            "validate",
            "synthesize",
            "curate",
            "features@w2v_tiny",
            "features@w2v_layers",
            "features@se_wavlm",
            "features@se_logmel",
            "train_selm",
            "eval_ood",
            "eval_vocab",
            "fewshot_item@0-0",
            "fewshot_item@2-0",
            "fewshot",
            "serevals_probe@se_wavlm",
            "serevals",
            "index",
        }
        | REPORTS
        | LAYERS
    )
    for report in (
        "01_curate.html",
        "01_curate.ipynb",
        "02_train_selm.html",
        "index.html",
        "03_eval_ood.html",
        "metrics/curate.json",
        "metrics/train_selm.json",
        "metrics/ood.json",
        "metrics/vocab.json",
        "05_ser_evals.html",
        "06_figures.html",
        "metrics/serevals.json",
        "figures/serevals/figure2.png",
        "figures/serevals/figure3.svg",
        "figures/serevals/heatmap_average.png",
        "figures/serevals/logit_adjustment.svg",
        "07_layers.html",
        "07_layers.ipynb",
        "metrics/layers.json",
        "plots/layer_accuracy.csv",
    ):
        assert (project / "reports" / report).is_file(), report
    serevals = json.loads((project / "reports" / "metrics" / "serevals.json").read_text())
    assert set(serevals["backbones"]) == {"se_wavlm"}
    assert set(serevals["backbones"]["se_wavlm"]["ood"]) == {
        "none",
        "train_prior",
        "oracle",
        "estimated",
        "estimated_map",
    }
    assert (project / "artifacts/serevals/matrices/se_wavlm/oracle/macro_f1.csv").is_file()
    params = yaml.safe_load((project / "params.yaml").read_text())
    # open-vocabulary scoring: every label set x every variant, each paired with the reference
    vocab = json.loads((project / "reports" / "metrics" / "vocab.json").read_text())
    assert vocab["reference"] == params["eval_vocab"]["reference"]
    assert set(vocab["label_sets"]) == set(params["eval_vocab"]["label_sets"])
    for name, entry in vocab["label_sets"].items():
        assert set(entry["variants"]) == set(params["eval_vocab"]["variants"]), name
        for variant, result in entry["variants"].items():
            assert result["n"] > 0, (name, variant)
            assert ("paired_vs_reference" in result) == (variant != vocab["reference"])
    assert "calm" in vocab["label_sets"]["ravdess_calm"]["unseen"]
    # the layer sweep: one item per listed layer, the pick made on validation accuracy
    layers = json.loads((project / "reports" / "metrics" / "layers.json").read_text())
    assert layers["backbone"] == "w2v_layers" and layers["layers"] == [0, 2]
    assert set(layers["items"]) == {"0", "2"}
    assert layers["picked_by_validation"] in (0, 2)
    assert (project / "artifacts/layer_sweep/probes/layer_2.json").is_file()
    # few-shot settings chosen on the inner split for k > 0 (none to choose at k = 0)
    fewshot = project / "artifacts" / "fewshot"
    assert json.loads((fewshot / "k0_seed0" / "metrics.json").read_text())["selected"] == {}
    selected = json.loads((fewshot / "k2_seed0" / "metrics.json").read_text())["selected"]
    assert set(selected) == set(params["fewshot"]["corpora"])
    for corpus, methods in selected.items():
        assert set(methods) == {"selm_mappers", "selm_full", "classifier_baseline"}, corpus
        for method, record in methods.items():
            key = "baseline_learning_rate" if method == "classifier_baseline" else "learning_rate"
            tried = [c["settings"] for c in record["candidates"]]
            assert tried == [{key: v} for v in params["fewshot"]["select"][key]], (corpus, method)
            assert record["chosen"] in tried and record["inner_validation"] > 0
    index = (project / "reports" / "index.html").read_text()
    assert "01_curate.html" in index and "02_train_selm.html" in index and "synthetic" in index
    assert "07_layers.html" in index
    html = (project / "reports" / "01_curate.html").read_text()
    assert "Synthetic data." in html

    second = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert ran(second) == set(), second
    status = sh([sys.executable, "-m", "dvc", "status"], project)
    assert "up to date" in status

    before = digest(project / "reports" / "01_curate.ipynb")
    set_param(project, "curate", "split.test", 0.3)
    third = sh([sys.executable, "-m", "dvc", "repro"], project)
    # synthesize does not read `curate`; the manifests did not change, so neither do the features;
    # the splits did, so SELM retrains and is evaluated again (open vocabulary included), and the
    # layer probes, trained on those splits, run again; the pooled layers (no split) are kept
    assert ran(third) - FEWSHOT == {
        "validate",
        "curate",
        "train_selm",
        "eval_ood",
        "eval_vocab",
        "layer_probe@0",
        "layer_probe@2",
        "layers",
        "report_layers",
        "report_curate",
        "report_train_selm",
        "report_eval_ood",
        "index",
    }, third
    assert digest(project / "reports" / "01_curate.ipynb") != before

    # beam width changes the generated answers only: the few-shot items (class scoring on the same
    # baseline) do not rerun
    set_param(project, "eval_ood", "num_beams", 2)
    fifth = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert ran(fifth) == {"validate", "eval_ood", "report_eval_ood", "index"}, fifth

    # a verbalisation is read at test time: only the open-vocabulary stage and the report rerun
    set_param(project, "eval_vocab", "variants.sounds.template", "the voice sounds {emotion}")
    vocab = ran(sh([sys.executable, "-m", "dvc", "repro"], project))
    assert vocab == {"validate", "eval_vocab", "report_eval_ood", "index"}, vocab
    sounds = json.loads((project / "reports" / "metrics" / "vocab.json").read_text())
    assert {entry["variants"]["sounds"]["template"] for entry in sounds["label_sets"].values()} == {
        "the voice sounds {emotion}"
    }

    # adding a layer runs only its probe (and the aggregate and its report)
    set_param(project, "layer_sweep", "layers", [0, 1, 2])
    layer = ran(sh([sys.executable, "-m", "dvc", "repro"], project))
    assert layer - {"index"} == {"validate", "layer_probe@1", "layers", "report_layers"}, layer
    summary = json.loads((project / "reports" / "metrics" / "layers.json").read_text())
    assert summary["layers"] == [0, 1, 2] and set(summary["items"]) == {"0", "1", "2"}

    # adding a k runs only the new item (and the aggregate and its report)
    set_param(project, "fewshot_sweep", "k", [0, 1, 2])
    sixth = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert ran(sixth) - {"index"} == {
        "validate",
        "fewshot_item@1-0",
        "fewshot",
        "report_fewshot",
    }, sixth

    # adding a SER-Evals backbone runs only its item (and the aggregate and its reports)
    set_param(project, "serevals_sweep", "backbones", ["se_wavlm", "se_logmel"])
    seventh = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert ran(seventh) - {"index"} == {
        "validate",
        "serevals_probe@se_logmel",
        "serevals",
        "report_serevals",
        "report_figures",
    }, seventh


def test_a_code_or_prose_edit_reruns_only_what_uses_it(project):
    """Touching the figures module stales only the figures report; editing the prose of the
    training report re-renders only that report; a new backbone entry encodes only itself."""
    sh([sys.executable, "-m", "dvc", "repro"], project)
    figures = project / "selm_lib" / "serevals" / "figures.py"
    figures.write_text(figures.read_text() + "\n# touched\n")
    assert status_stages(project) == {"report_figures"}
    notebook = project / "notebooks" / "02_train_selm.py"
    notebook.write_text(notebook.read_text().replace("## Loss curves", "## Loss curves (edited)"))
    assert status_stages(project) == {"report_figures", "report_train_selm"}
    out = sh([sys.executable, "-m", "dvc", "repro"], project)
    assert ran(out) == {"report_figures", "report_train_selm", "index"}, out
    assert "Loss curves (edited)" in (project / "reports" / "02_train_selm.html").read_text()

    backbones = yaml.safe_load((project / "params.yaml").read_text())["features"]["backbones"]
    set_param(project, "features", "backbones", {**backbones, "se_wavlm_2": backbones["se_wavlm"]})
    assert status_stages(project) == {"validate", "features@se_wavlm_2"}


def test_a_misspelled_key_fails_before_any_output_is_touched(project):
    sh([sys.executable, "-m", "dvc", "repro"], project)
    model = project / "artifacts" / "selm" / "model"
    metrics = project / "reports" / "metrics" / "train_selm.json"
    before = digest(metrics), sorted(p.name for p in model.iterdir())
    params = project / "params.yaml"
    good = params.read_text()
    params.write_text(good.replace("learning_rate:", "learnig_rate:", 1))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, capture_output=True, text=True
    )
    params.write_text(good)
    assert result.returncode != 0
    assert "did you mean 'train_selm.learning_rate'" in result.stdout + result.stderr
    assert (digest(metrics), sorted(p.name for p in model.iterdir())) == before
    assert set(re.findall(r"Running stage '([^']+)'", result.stdout)) == {"validate"}


def test_forced_rerun_is_byte_identical(project):
    reports = project / "reports"
    files = [
        "01_curate.ipynb",
        "01_curate.html",
        "metrics/curate.json",
        "index.html",
        "02_train_selm.ipynb",
        "02_train_selm.html",
        "metrics/train_selm.json",
        "03_eval_ood.ipynb",
        "03_eval_ood.html",
        "metrics/ood.json",
        "metrics/vocab.json",
        "metrics/layers.json",
        "plots/layer_accuracy.csv",
        "07_layers.ipynb",
        "07_layers.html",
        "05_ser_evals.ipynb",
        "metrics/serevals.json",
        "06_figures.ipynb",
        "figures/serevals/figure2.svg",
        "figures/serevals/heatmap_average.png",
    ]
    before = {name: digest(reports / name) for name in files}
    manifests = {p.name: digest(p) for p in (project / "artifacts").rglob("*.csv")}
    stages = [
        "curate",
        "train_selm",
        "eval_ood",
        "eval_vocab",
        "fewshot_item",
        "fewshot",
        "layer_probe",
        "layers",
        "serevals_probe",
        "serevals",
        *sorted(REPORTS),
        "index",
    ]
    sh([sys.executable, "-m", "dvc", "repro", "-f", *stages], project)
    assert {name: digest(reports / name) for name in files} == before
    assert {p.name: digest(p) for p in (project / "artifacts").rglob("*.csv")} == manifests


def test_fewshot_k0_equals_ood_predictions(project):
    """k = 0 is the unadapted model: on the evaluation speakers its predictions are the OOD
    stage's, for SELM (class scoring) and the baseline."""
    import pandas as pd

    ood = pd.read_csv(project / "artifacts" / "eval_ood" / "predictions.csv", keep_default_na=False)
    few = pd.read_csv(
        project / "artifacts" / "fewshot" / "k0_seed0" / "predictions.csv", keep_default_na=False
    )
    pairs = {
        "selm_mappers": "selm_score",
        "selm_full": "selm_score",
        "classifier_baseline": "classifier_baseline",
    }
    for few_method, ood_method in pairs.items():
        a = few[few["method"] == few_method].set_index(["corpus", "utterance_id"])["prediction"]
        b = ood[ood["method"] == ood_method].set_index(["corpus", "utterance_id"])["prediction"]
        assert len(a) > 0
        pd.testing.assert_series_equal(
            a.sort_index(), b.loc[a.index].sort_index(), check_names=False
        )
