"""The SER-Evals frame loader on a real feature store (not monkeypatched)."""

from __future__ import annotations

import numpy as np

from selm_lib.serevals import protocol as sr

from .test_features import write_corpus
from .test_serevals_run import fake_params


def test_load_frames_truncates_on_read_and_owns_its_memory(tmp_path):
    """The package's own loader on a real store: clips longer than serevals.max_seconds come back
    cut to max_seconds x 50 frames, equal to the first frames of the whole clip, as arrays that
    own their memory (no view keeps the whole clip alive)."""
    from selm_lib.features.backbones import BackboneSpec, load_backbone
    from selm_lib.features.extract import compute_features
    from selm_lib.features.store import FeatureStore, store_folder

    manifest = write_corpus(tmp_path / "audio", count=9, corpus="c1")
    backbone = load_backbone(BackboneSpec("preset:logmel", layer="last"), device="cpu")
    folder = store_folder(tmp_path / "artifacts" / "features", "b", "last", "c1")
    compute_features(backbone, manifest, folder, backbone_name="b", progress=False, corpus="c1")
    params = fake_params(tmp_path)
    params["serevals"]["max_seconds"] = 1.2  # 60 frames; the clips are 0.5-3 s
    ids = list(FeatureStore.open(folder).utterance_ids)
    whole = FeatureStore.open(folder).get_many(ids)
    cut = sr.load_frames(params, "b", "c1", ids)
    assert any(len(w) > 60 for w in whole) and any(len(w) <= 60 for w in whole)
    for full, part in zip(whole, cut, strict=True):
        assert len(part) == min(len(full), 60)
        np.testing.assert_array_equal(part, full[: len(part)])
        assert part.base is None or part.base.size == part.size  # not a view of the whole clip
        assert part.dtype == np.float32
