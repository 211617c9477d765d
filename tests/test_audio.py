from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from selm_lib.data.audio import AudioError, check_audio, load_audio, resample


def tone(freq: float, sr: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_good_file(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, tone(440, 16000), 16000)
    check = check_audio(path)
    assert check.quarantine == ""
    assert check.sample_rate == 16000 and check.channels == 1
    assert check.duration_s == pytest.approx(0.5)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("not a wav file at all"), "not readable as audio"),
        (
            lambda p: sf.write(p, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT"),
            "non-finite",
        ),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 16000), "silent"),
        (lambda p: sf.write(p, np.full(8000, 1e-5, np.float32), 16000, subtype="FLOAT"), "silent"),
        (lambda p: sf.write(p, tone(440, 16000, 0.05), 16000), "too short"),
    ],
)
def test_bad_files_are_quarantined_not_raised(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    assert reason in check_audio(path).quarantine


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(440, 16000, 1.0), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert check_audio(path).quarantine.startswith("truncated")


def test_header_only_file(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    assert check_audio(path).quarantine != ""


def test_missing_file(tmp_path):
    assert check_audio(tmp_path / "nope.wav").quarantine == "missing file"


def test_stereo_is_mixed_down_and_resampled(tmp_path):
    path = tmp_path / "stereo48k.wav"
    left, right = tone(440, 48000), np.zeros(24000, np.float32)
    sf.write(path, np.stack([left, right], axis=1), 48000)
    audio = load_audio(path)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert len(audio) == 8000  # 0.5 s at 16 kHz
    # mixdown halves the amplitude of a one-sided tone; the frequency survives resampling
    assert np.abs(audio).max() == pytest.approx(0.15, abs=0.01)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=4)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_every_rate_resamples_to_16k(sr):
    out = resample(tone(300, sr, 1.0), sr)
    assert abs(len(out) - 16000) <= 1


def test_load_audio_error_names_file(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_text("junk")
    with pytest.raises(AudioError, match="junk.wav"):
        load_audio(path)


def test_max_seconds_truncates(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 16000, 2.0), 16000)
    assert len(load_audio(path, max_seconds=1.0)) == 16000
