"""The layer sweep: per-layer pooled caches of a layer-``all`` store, the probe of one layer, the
aggregate, the report's figure and tables, and the DVC matrix (a new layer reruns only its
item and the aggregate). Every store here is a small fake written with ``write_store``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from selm_lib.config import load_params
from selm_lib.config.params import ParamsError, validate
from selm_lib.evaluation import layer_results as LR
from selm_lib.evaluation import layers as LY
from selm_lib.evaluation.baseline import pool_frames
from selm_lib.features.frames import ArrayFrames
from selm_lib.features.pooled import PooledLayers, pool_layers, pooled_folder
from selm_lib.features.store import MissingFeatures, store_folder, write_store

from .conftest import PROJECT

EMOTIONS = ["angry", "happy", "neutral", "sad"]
STATES, WIDTH, FRAMES = 3, 4, 5  # layers 0..2; layer 1 carries the emotion, 0 and 2 are noise
BACKBONE = "w2v_layers"


def clip(rng: np.random.Generator, emotion: str) -> np.ndarray:
    """(frames, states, width): noise, plus a class offset at state 1."""
    frames = rng.normal(size=(FRAMES, STATES, WIDTH))
    if emotion in EMOTIONS:
        frames[:, 1, EMOTIONS.index(emotion)] += 3.0
    return frames


def corpus_rows(corpus: str, speakers: int, per_speaker: int) -> pd.DataFrame:
    rows = []
    for s in range(speakers):
        for u in range(per_speaker):
            emotion = EMOTIONS[(s + u) % len(EMOTIONS)]
            rows.append(
                {
                    "corpus": corpus,
                    "utterance_id": f"{corpus}_{s}_{u}",
                    "speaker": f"s{s}",
                    "emotion": emotion,
                    "eval_class": emotion,
                    "quarantine": "",
                }
            )
    rows[1]["emotion"] = "other"  # no categorical answer: never trained on
    rows[1]["eval_class"] = ""
    rows.append({**rows[0], "utterance_id": f"{corpus}_bad", "quarantine": "silent"})
    table = pd.DataFrame(rows)
    table["path"] = table["utterance_id"] + ".wav"
    for column in ("valence", "arousal", "dominance"):
        table[column] = ""
    return table


def build_world(tmp_path: Path, seed: int = 0) -> dict:
    """Manifests, splits and layer-all stores of two training corpora and one OOD corpus under
    ``tmp_path/out``; returns params pointing at them."""
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "splits").mkdir()
    rng = np.random.default_rng(seed)
    for corpus, speakers in (("emodb", 8), ("meld", 8), ("ravdess", 4)):
        manifest = corpus_rows(corpus, speakers, 8)
        manifest.to_csv(out / "manifests" / f"{corpus}.csv", index=False)
        number = manifest["speaker"].str[1:].astype(int)
        split = np.where(number < 5, "train", np.where(number == 5, "validation", "test"))
        pd.DataFrame({"utterance_id": manifest["utterance_id"], "split": split}).to_csv(
            out / "splits" / f"{corpus}.csv", index=False
        )
        good = manifest[manifest["quarantine"] == ""]
        items = [
            (u, clip(rng, e)) for u, e in zip(good["utterance_id"], good["emotion"], strict=True)
        ]
        meta = {
            "corpus": corpus,
            "backbone_name": BACKBONE,
            "backbone": {"source": "preset:fake"},
            "layer": "all",
            "num_layers": STATES - 1,
        }
        write_store(
            store_folder(out / "features", BACKBONE, "all", corpus), items, meta, dtype="float32"
        )
    params = load_params(PROJECT / "params.yaml")
    params["common"]["output_root"] = str(out)
    params["common"]["device"] = "cpu"
    params["features"]["backbones"][BACKBONE]["corpora"] = ["emodb", "meld", "ravdess"]
    params["selm"]["train_corpora"] = ["emodb", "meld"]
    params["eval_ood"]["test_corpora"] = ["ravdess"]
    params["fewshot"]["corpora"] = ["ravdess"]
    params["eval_ood"]["bootstrap"] = 60
    params["eval_ood"]["baseline"].update(epochs=25, hidden=32, patience=25)
    params["layer_sweep"] = {"backbone": BACKBONE, "layers": [0, 1, 2]}
    return params


def write_params(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def pool_all(params: dict) -> None:
    from selm_lib.stages import layer_pool

    args = type("Args", (), {})()
    layer_pool.pool(params, args)


# ----------------------------------------------------------------------------- pooled caches


def test_pooled_cache_is_the_baselines_pooling_of_each_layer_and_skips_an_unchanged_store(tmp_path):
    rng = np.random.default_rng(3)
    arrays = [rng.normal(size=(n, STATES, WIDTH)).astype(np.float32) for n in (4, 7, 1, 0)]
    store = write_store(
        tmp_path / "store",
        [(f"u{i}", a) for i, a in enumerate(arrays)],
        {"corpus": "c", "backbone_name": BACKBONE},
        dtype="float32",
    )
    folder = tmp_path / "pooled"
    assert pool_layers(store, folder) is True
    cache = PooledLayers.open(folder)
    assert cache.num_layers == STATES - 1
    for layer in range(STATES):
        expected = pool_frames(ArrayFrames([a[:, layer, :] for a in arrays]))
        got = cache.take(layer, ["u0", "u1", "u2", "u3"])
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(cache.take(1, ["u3"]), np.zeros((1, 2 * WIDTH), np.float32))
    np.testing.assert_array_equal(cache.take(2, ["u2", "u0"])[1], cache.take(2, ["u0"])[0])
    before = (folder / "pooled.npy").read_bytes()
    assert pool_layers(store, folder) is False  # the same store: nothing recomputed
    shutil.rmtree(folder)
    pool_layers(store, folder)
    assert (folder / "pooled.npy").read_bytes() == before  # byte-reproducible

    with pytest.raises(ValueError, match="layer_sweep.layers"):
        cache.take(STATES, ["u0"])
    with pytest.raises(KeyError, match="layer_pool"):
        cache.take(0, ["nope"])
    with pytest.raises(MissingFeatures, match="dvc repro layer_pool"):
        PooledLayers.open(tmp_path / "absent")


def test_a_one_layer_store_is_refused_with_the_key_to_fix(tmp_path):
    store = write_store(tmp_path / "s", [("u", np.ones((3, WIDTH)))], {"corpus": "c"})
    with pytest.raises(ValueError, match="layer: all"):
        pool_layers(store, tmp_path / "p")


def test_a_changed_store_is_pooled_again(tmp_path):
    params = build_world(tmp_path)
    pool_all(params)
    folder = pooled_folder(Path(params["common"]["output_root"]), BACKBONE, "ravdess")
    before = (folder / "pooled.npy").read_bytes()
    pool_all(params)
    assert (folder / "pooled.npy").read_bytes() == before
    store_dir = store_folder(
        Path(params["common"]["output_root"]) / "features", BACKBONE, "all", "ravdess"
    )
    shutil.rmtree(store_dir)
    write_store(
        store_dir,
        [("ravdess_0_0", np.ones((2, STATES, WIDTH)))],
        {"corpus": "ravdess", "backbone_name": BACKBONE},
        dtype="float32",
    )
    pool_all(params)
    assert PooledLayers.open(folder).meta["n_utterances"] == 1


# ----------------------------------------------------------------------------- the probe


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layers")
    params = build_world(tmp)
    pool_all(params)
    items = {layer: LY.probe_layer(params, layer) for layer in params["layer_sweep"]["layers"]}
    return params, items


def test_the_probe_finds_the_layer_that_carries_the_emotion(probed):
    _, items = probed
    signal, noise = items[1], items[0]
    assert signal["in_domain_pooled"]["accuracy"] > 0.75
    assert signal["ood_pooled"]["accuracy"] > 0.75
    assert noise["in_domain_pooled"]["accuracy"] < 0.6 and items[2]["ood_pooled"]["accuracy"] < 0.6
    assert signal["train"]["val_accuracy"] > noise["train"]["val_accuracy"]
    lo, hi = signal["ood"]["ravdess"]["ci95"]["accuracy"]
    assert lo <= signal["ood"]["ravdess"]["accuracy"] <= hi


def test_the_probe_uses_the_ood_stages_rows_and_counts(probed):
    _, items = probed
    item = items[1]
    # 5 train and 1 validation speakers of 8 clips per training corpus, less the "other" row
    assert item["train"]["n_train"] == 2 * (5 * 8 - 1) and item["train"]["n_validation"] == 16
    assert item["train"]["classes"] == EMOTIONS
    assert set(item["in_domain"]) == {"emodb", "meld"}
    assert item["in_domain"]["emodb"]["n"] == 16  # two test speakers, quarantined row left out
    assert item["in_domain_pooled"]["n"] == 32
    assert item["ood"]["ravdess"]["n"] == 4 * 8 - 1  # the "other" row is outside the class set
    assert item["num_layers"] == STATES - 1 and item["source"] == "preset:fake"
    assert 1 <= item["train"]["best_epoch"] <= item["train"]["epochs_run"]


def test_the_item_is_deterministic(probed, tmp_path):
    params, items = probed
    again = LY.probe_layer(params, 2)
    assert json.dumps(again, sort_keys=True) == json.dumps(items[2], sort_keys=True)


def test_the_probe_stage_writes_its_json_and_refuses_a_layer_outside_the_encoder(
    probed, tmp_path, capsys
):
    from selm_lib.stages import layer_probe

    params, items = probed
    path = write_params(tmp_path, params)
    assert layer_probe.main(["--params", str(path), "--layer", "1"]) == 0
    written = json.loads(LR.item_path(params["common"], 1).read_text())
    assert written == json.loads(json.dumps(items[1]))
    assert layer_probe.main(["--params", str(path), "--layer", "7"]) == 2
    assert "layer_sweep.layers" in capsys.readouterr().err


def test_train_to_test_is_the_ood_stages_mapping():
    from selm_lib.data.labels import class_map, classes_of
    from selm_lib.evaluation.ood import map_answer
    from selm_lib.evaluation.results import UNMAPPED

    params = load_params(PROJECT / "params.yaml")
    curate = params["curate"]
    trained = [
        "angry",
        "disgusted",
        "excited",
        "fearful",
        "frustrated",
        "happy",
        "neutral",
        "sad",
        "surprised",
        "calm",
        "contempt",
    ]
    for corpus in params["eval_ood"]["test_corpora"]:
        class_set = curate["class_sets"][corpus]
        classes = classes_of(class_set, curate["ravdess_calm"])
        to_class = class_map(class_set, curate["ravdess_calm"])
        theirs = {e: map_answer(e, to_class) for e in trained}
        theirs = {e: c for e, c in theirs.items() if c != UNMAPPED and c in classes}
        assert LY.train_to_test(trained, to_class, classes) == theirs, corpus


def test_the_categorical_filter_is_the_triplets_one():
    from selm_lib.selm.triplets import NON_ANSWERS

    assert set(LY.NOT_CATEGORICAL) == set(NON_ANSWERS)


# ----------------------------------------------------------------------------- aggregate, report


def test_aggregate_table_pick_and_missing_item(probed):
    params, items = probed
    for layer, item in items.items():
        path = LR.item_path(params["common"], layer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(item, indent=2, sort_keys=True) + "\n")
    summary, table = LR.aggregate(params)
    assert summary["picked_by_validation"] == 1
    assert summary["selm_layer"] == params["features"]["backbones"]["w2v_tiny"]["layer"]
    assert summary["layers"] == [0, 1, 2] and set(summary["items"]) == {"0", "1", "2"}
    assert len(table) == 3 * (2 + 1 + 1 + 1)  # layers x (2 in-domain + pooled, 1 OOD + pooled)
    wide = LR.score_table(table, "ood")
    assert list(wide.columns) == ["ravdess", LR.POOLED] and list(wide.index) == [0, 1, 2]

    from selm_lib.report.layer_plots import layer_curves

    fig = layer_curves(table, summary["selm_layer"], summary["picked_by_validation"])
    assert len(fig.axes) == 2 and fig.axes[1].get_title().startswith("OOD")

    stale = dict(params, layer_sweep={"backbone": "other", "layers": [0]})
    with pytest.raises(LR.LayerSweepError, match="layer_sweep.backbone"):
        LR.aggregate(stale)
    more = dict(params, layer_sweep={"backbone": BACKBONE, "layers": [0, 1, 2, 9]})
    with pytest.raises(LR.LayerSweepError, match="dvc repro layer_probe@9"):
        LR.aggregate(more)


def test_validate_checks_the_sweep_backbone():
    params = load_params(PROJECT / "params.yaml")
    wrong = json.loads(json.dumps(params))
    wrong["features"]["backbones"][BACKBONE]["layer"] = 4
    with pytest.raises(ParamsError, match=f"features.backbones.{BACKBONE}.layer"):
        validate(wrong)
    wrong = json.loads(json.dumps(params))
    wrong["features"]["backbones"][BACKBONE]["source"] = "preset:tiny-hubert"
    with pytest.raises(ParamsError, match="same source"):
        validate(wrong)
    wrong = json.loads(json.dumps(params))
    wrong["features"]["backbones"][BACKBONE]["corpora"] = ["emodb"]
    with pytest.raises(ParamsError, match="layer_sweep|w2v_layers"):
        validate(wrong)
    wrong = json.loads(json.dumps(params))
    wrong["layer_sweep"]["layers"] = [1, 1]
    with pytest.raises(ParamsError, match="layer_sweep.layers"):
        validate(wrong)


# ----------------------------------------------------------------------------- the DVC matrix


def _dvc(args: list[str], cwd: Path) -> str:
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_new_layer_reruns_only_its_item_and_the_aggregate(tmp_path):
    """The sweep's stages of the real dvc.yaml and params.yaml, their inputs and outputs faked and
    recorded with ``dvc commit``; then one more layer in layer_sweep.layers."""
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    wanted = ("layer_probe", "layers", "report_layers")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {s: stages[s] for s in wanted}}))
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(
        PROJECT / "selm_lib", tmp_path / "selm_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        PROJECT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb")
    )
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    out = tmp_path / params["common"]["output_root"]
    for folder in ("manifests", "splits", "layer_sweep/pooled"):
        (out / folder).mkdir(parents=True)
        (out / folder / "x.csv").write_text("a\n")
    (out / "params_validated.txt").write_text("ok\n")
    layers = params["layer_sweep"]["layers"]
    for layer in layers:
        path = out / "layer_sweep" / "probes" / f"layer_{layer}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"layer": layer}))
    for name in (
        "metrics/layers.json",
        "plots/layer_accuracy.csv",
        "metrics/curate.json",
        "07_layers.ipynb",
        "07_layers.html",
    ):
        (tmp_path / "reports" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "reports" / name).write_text("{}")
    _dvc(["init", "--no-scm", "-q"], tmp_path)
    _dvc(["commit", "-f", "-q"], tmp_path)
    assert json.loads(_dvc(["status", "--json"], tmp_path)) == {}

    text = (tmp_path / "params.yaml").read_text()
    old = "  layers: " + yaml.safe_dump(layers, default_flow_style=True).strip()
    assert old in text
    new_layer = max(layers) + 1
    (tmp_path / "params.yaml").write_text(
        text.replace(old, "  layers: " + str([*layers, new_layer]).replace("'", ""), 1)
    )
    changed = set(json.loads(_dvc(["status", "--json"], tmp_path)))
    assert changed == {f"layer_probe@{new_layer}", "layers", "report_layers"}, changed

    # a key no sweep stage reads changes nothing; the probe's own config reruns every item
    (tmp_path / "params.yaml").write_text(text.replace("  num_beams: 3", "  num_beams: 2", 1))
    assert json.loads(_dvc(["status", "--json"], tmp_path)) == {}
    (tmp_path / "params.yaml").write_text(text.replace("    hidden: 256", "    hidden: 128", 1))
    changed = set(json.loads(_dvc(["status", "--json"], tmp_path)))
    assert changed == {f"layer_probe@{layer}" for layer in layers}, changed


@pytest.mark.slow
def test_the_report_renders_the_figure_the_notes_and_the_summary(probed, tmp_path):
    """07_layers.py executed by the report runner in a copy of the project whose reports/ holds
    the aggregate of the fake sweep."""
    from selm_lib.report.runner import execute

    params, items = probed
    for layer, item in items.items():
        path = LR.item_path(params["common"], layer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(item, indent=2, sort_keys=True) + "\n")
    summary, table = LR.aggregate(params)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(PROJECT / "notebooks" / "07_layers.py", tmp_path / "notebooks" / "07_layers.py")
    shutil.copytree(
        PROJECT / "selm_lib", tmp_path / "selm_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "reports" / "metrics").mkdir(parents=True)
    (tmp_path / "reports" / "plots").mkdir()
    (tmp_path / "reports" / "metrics" / "layers.json").write_text(json.dumps(summary))
    table.to_csv(tmp_path / "reports" / "plots" / "layer_accuracy.csv", index=False)
    flags = {c: {"synthetic": True} for c in ("emodb", "meld", "ravdess")}
    (tmp_path / "reports" / "metrics" / "curate.json").write_text(json.dumps(flags))
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        ipynb = execute(tmp_path / "notebooks" / "07_layers.py", reports_dir=tmp_path / "reports")
    finally:
        os.chdir(cwd)
    html = ipynb.with_suffix(".html").read_text()
    assert "Synthetic data." in html and "Profile: " in html
    assert "4th transformer layer of wav2vec2-base" in html
    assert "last layer" in html and "image/png" in html
    assert "validation picks layer 1" in html
