"""The real CREMA-D file list, demographics and votes from ../shared/fixtures/crema_d."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from selm_lib.data.corpora.base import usable
from selm_lib.data.corpora.registry import scan


@pytest.fixture(scope="module")
def crema_root(shared_dir, tmp_path_factory):
    fixture = shared_dir / "fixtures" / "crema_d"
    root = tmp_path_factory.mktemp("crema_d")
    names = [
        n.strip() for n in (fixture / "AudioWAV_files.txt").read_text().splitlines() if n.strip()
    ]
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(2400)).astype(np.float32)  # 0.3 s at 8 kHz
    (root / "AudioWAV").mkdir()
    for name in names:
        path = root / name
        if path.name == "1076_MTI_SAD_XX.wav":
            path.write_bytes(b"")  # empty in the real corpus
        else:
            sf.write(path, clip, 8000)
    shutil.copy(fixture / "VideoDemographics.csv", root / "VideoDemographics.csv")
    (root / "processedResults").mkdir()
    shutil.copy(fixture / "tabulatedVotes.csv", root / "processedResults" / "tabulatedVotes.csv")
    return root, names


def test_published_counts(crema_root):
    root, names = crema_root
    assert len(names) == 7442
    manifest = scan("crema_d", root)
    assert len(manifest) == 7442
    counts = manifest.groupby("label").size().to_dict()
    assert counts == {"NEU": 1087, "ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "SAD": 1271}
    bad = manifest[manifest["quarantine"] != ""]
    assert list(bad["utterance_id"]) == ["1076_MTI_SAD_XX"]
    assert bad.iloc[0]["quarantine"] == "empty file (0 bytes)"
    good = usable(manifest)
    assert good["speaker"].nunique() == 91
    assert set(good["gender"]) == {"M", "F"}
    assert good["perceived"].ne("").mean() > 0.99  # crowd votes joined for nearly every file
    assert set(good["level"]) == {"low", "medium", "high", "unspecified"}
