"""Audio cut before encoding (``features.backbones.<name>.max_seconds``) and the SER-Evals frame
loader on real feature stores (not monkeypatched)."""

from __future__ import annotations

import numpy as np
import pytest

from selm_lib.data.audio import load_audio
from selm_lib.features.backbones import BackboneSpec, load_backbone
from selm_lib.features.extract import compute_features
from selm_lib.features.store import FeatureStore, store_folder
from selm_lib.serevals import protocol as sr
from selm_lib.serevals.results import SerevalsError

from .test_features import write_corpus
from .test_serevals_run import fake_params

LIMIT = 1.2  # seconds; the test clips are 0.5-3 s


def stores(tmp_path, source, manifest, **kw):
    """The same corpus encoded whole and cut to LIMIT seconds before encoding."""
    out = {}
    for name, cut in (("whole", None), ("cut", LIMIT)):
        backbone = load_backbone(BackboneSpec(source, layer="last", max_seconds=cut), "cpu")
        folder = store_folder(tmp_path / "artifacts" / "features", name, "last", "c1")
        store, _ = compute_features(
            backbone, manifest, folder, backbone_name=name, progress=False, corpus="c1", **kw
        )
        out[name] = (store, backbone)
    return out


@pytest.mark.parametrize("source", ["preset:logmel", "odd"])
def test_cutting_before_encoding_keeps_short_clips_and_encodes_long_ones_cut(
    tmp_path, source, odd_wav2vec2_dir
):
    """Clips under the limit get exactly the frames of whole-clip encoding; a longer clip gets
    the frames of its first LIMIT seconds encoded on their own (one window, the encoder never
    sees the rest), and the cut is part of the cache key."""
    source = str(odd_wav2vec2_dir) if source == "odd" else source
    manifest = write_corpus(tmp_path / "audio", count=9, corpus="c1")
    # every clip alone in its batch, so batch composition cannot change a clip's frames
    made = stores(tmp_path, source, manifest, batch_seconds=0.01)
    (whole, _), (cut, backbone) = made["whole"], made["cut"]
    assert whole.meta["key"] != cut.meta["key"]
    assert cut.meta["max_seconds"] == LIMIT and whole.meta["max_seconds"] is None
    usable = manifest[manifest["quarantine"] == ""]
    long = short = 0
    for uid, path, duration in zip(
        usable["utterance_id"], usable["path"], usable["duration_s"], strict=True
    ):
        if duration <= LIMIT:
            short += 1
            np.testing.assert_array_equal(cut.get(uid), whole.get(uid))
        else:
            long += 1
            (direct,) = backbone.encode([load_audio(path)[: int(LIMIT * 16000)]])
            np.testing.assert_array_equal(cut.get(uid), direct.astype(np.float16))
            assert len(cut.get(uid)) == backbone.num_frames(int(LIMIT * 16000))
            assert len(whole.get(uid)) > len(cut.get(uid))
    assert long and short


def test_load_frames_reads_a_store_cut_as_the_protocol_says(tmp_path):
    manifest = write_corpus(tmp_path / "audio", count=6, corpus="c1")
    made = stores(tmp_path, "preset:logmel", manifest)
    params = fake_params(tmp_path)
    params["serevals"]["max_seconds"] = LIMIT
    ids = list(FeatureStore.open(made["cut"][0].folder).utterance_ids)
    params["features"]["backbones"] = {
        "cut": {"source": "preset:logmel", "layer": "last", "max_seconds": LIMIT},
        "whole": {"source": "preset:logmel", "layer": "last"},
    }
    frames = sr.load_frames(params, "cut", "c1", ids)
    assert len(frames) == len(ids) and frames.lengths.max() <= LIMIT * 50 + 1
    np.testing.assert_array_equal(frames[0], made["cut"][0].read_row(0))
    with pytest.raises(SerevalsError, match=r"features.backbones.whole.max_seconds: 1.2"):
        sr.load_frames(params, "whole", "c1", ids)


def test_params_require_the_serevals_backbones_to_cut_as_the_protocol(tmp_path):
    from selm_lib.config.params import ParamsError, load_params, project_root

    text = (project_root() / "params.yaml").read_text()
    bad = text.replace("max_seconds: *serevals_cut,", "max_seconds: 20,", 1)
    assert bad != text
    path = tmp_path / "params.yaml"
    path.write_text(bad)
    with pytest.raises(ParamsError, match=r"features.backbones.se_\w+.max_seconds.*serevals"):
        load_params(path)
