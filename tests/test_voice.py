"""Tests of the synthetic emotional voice (selm_lib.data.synth.voice)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from selm_lib.data.synth.voice import (
    EMOTIONS,
    CorpusStyle,
    Language,
    Speaker,
    emotion_table,
    make_language,
    make_speaker,
    make_style,
    render_utterance,
)

EXPECTED_EMOTIONS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
    "excited",
    "frustrated",
    "contempt",
    "bored",
    "other",
)


@pytest.fixture(scope="module")
def style() -> CorpusStyle:
    return make_style("test_acted", language="lang_t", seed=3)


@pytest.fixture(scope="module")
def male() -> Speaker:
    return make_speaker("m01", "M", np.random.default_rng(11))


@pytest.fixture(scope="module")
def female() -> Speaker:
    return make_speaker("f01", "F", np.random.default_rng(12))


def estimate_f0(y: np.ndarray, sr: int) -> float:
    """Median autocorrelation F0 (Hz) over the loudest (voiced) 40 ms frames."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    idx = np.arange(frame)[None, :] + hop * np.arange(1 + (len(y) - frame) // hop)[:, None]
    frames = y[idx].astype(np.float64) * np.hanning(frame)
    energy = np.sum(frames**2, axis=1)
    frames = frames[energy > 0.3 * energy.max()]
    spec = np.fft.rfft(frames, n=2 * frame)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :frame]
    lo, hi = int(sr / 500), int(sr / 60)
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    return float(np.median(sr / lags))


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))


# ----------------------------------------------------------------------------- emotion table


def test_emotions_in_file_order() -> None:
    assert EMOTIONS == EXPECTED_EMOTIONS


def test_yaml_rows_complete_with_vad_in_unit_interval() -> None:
    table = emotion_table()
    assert tuple(table) == EMOTIONS
    fields = set(table["neutral"])
    for emotion, row in table.items():
        assert set(row) == fields, emotion
        for dim in ("valence", "arousal", "dominance"):
            assert 0.0 <= row[dim] <= 1.0, (emotion, dim)
    assert table["angry"]["arousal"] > table["sad"]["arousal"]
    assert table["happy"]["valence"] > table["sad"]["valence"]
    # Literature directions the synthesiser relies on.
    assert (
        table["angry"]["f0_shift_st"]
        > table["neutral"]["f0_shift_st"]
        > table["sad"]["f0_shift_st"]
    )
    assert table["angry"]["tilt_hz"] > table["neutral"]["tilt_hz"] > table["sad"]["tilt_hz"]


def test_emotion_table_is_a_copy() -> None:
    emotion_table()["angry"]["loudness_db"] = -99.0
    assert emotion_table()["angry"]["loudness_db"] != -99.0


# ----------------------------------------------------------------------------- factories


def test_language_deterministic_and_name_dependent() -> None:
    a, b = make_language("lang_x", 1), make_language("lang_x", 1)
    assert a == b
    assert isinstance(a, Language)
    c = make_language("lang_y", 1)
    assert c.vowels != a.vowels
    assert make_language("lang_x", 2).vowels != a.vowels
    for lang in (a, c):
        assert 5 <= len(lang.vowels) <= 8
        for f1, f2, f3 in lang.vowels:
            assert 200 < f1 < f2 < f3 < 4000
        assert 3.0 < lang.syllable_rate < 7.0
        assert 0.0 < lang.consonant_ratio < 1.0


def test_style_deterministic_from_name_and_seed() -> None:
    s1 = make_style("corpus_a", language="l1", seed=5)
    assert s1 == make_style("corpus_a", language="l1", seed=5)
    s2 = make_style("corpus_b", language="l1", seed=5)
    assert s2.mic_eq != s1.mic_eq
    assert s2.language == s1.language  # same language name and seed -> same language
    with pytest.raises(ValueError):
        make_style("bad", language="l1", seed=5, bandpass_hz=(300.0, 9000.0))


def test_speaker_traits_by_gender() -> None:
    rng = np.random.default_rng(0)
    men = [make_speaker(f"m{i}", "M", rng) for i in range(30)]
    women = [make_speaker(f"f{i}", "F", rng) for i in range(30)]
    assert max(s.f0_hz for s in men) < min(s.f0_hz for s in women)
    assert all(85 <= s.f0_hz <= 155 for s in men)
    assert all(165 <= s.f0_hz <= 255 for s in women)
    assert np.mean([s.formant_scale for s in women]) > np.mean([s.formant_scale for s in men])
    with pytest.raises(ValueError, match="gender"):
        make_speaker("x", "X", rng)


# ----------------------------------------------------------------------------- rendering


def test_deterministic(style: CorpusStyle, male: Speaker) -> None:
    a = render_utterance("happy", male, style, 1.5, np.random.default_rng(7))
    b = render_utterance("happy", male, style, 1.5, np.random.default_rng(7))
    c = render_utterance("happy", male, style, 1.5, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("sample_rate", "duration", "extra"),
    [
        (16000, 1.2345, {}),
        (48000, 2.0, {}),
        (16000, 1.7, {"noise_snr_db": 15.0, "reverb_rt60_s": 0.5}),
        (8000, 1.01, {"bandpass_hz": (300.0, 3400.0)}),
    ],
)
def test_length_rate_finite_peak(
    sample_rate: int, duration: float, extra: dict, male: Speaker
) -> None:
    style = make_style("shape", language="l", seed=1, sample_rate=sample_rate, **extra)
    for i, emotion in enumerate(EMOTIONS):
        y = render_utterance(emotion, male, style, duration, np.random.default_rng(i))
        assert y.dtype == np.float32
        assert y.ndim == 1
        assert len(y) == round(duration * sample_rate)
        assert np.all(np.isfinite(y))
        assert np.max(np.abs(y)) <= 0.99
        assert rms(y) > 1e-4, emotion  # not silent


def test_loud_emotion_never_exceeds_peak(male: Speaker) -> None:
    # A hot recording level plus anger would clip without the gain guard.
    style = dataclasses.replace(make_style("hot", language="l", seed=1), level_dbfs=-8.0)
    y = render_utterance("angry", male, style, 1.0, np.random.default_rng(0))
    assert np.max(np.abs(y)) <= 0.99


def test_unknown_emotion(style: CorpusStyle, male: Speaker) -> None:
    with pytest.raises(ValueError, match="joyful") as err:
        render_utterance("joyful", male, style, 1.0, np.random.default_rng(0))
    assert "neutral" in str(err.value) and "bored" in str(err.value)


def test_angry_higher_f0_and_louder_than_sad(style: CorpusStyle, male: Speaker) -> None:
    sr = style.sample_rate
    angry = [
        render_utterance("angry", male, style, 2.0, np.random.default_rng(i)) for i in range(4)
    ]
    sad = [render_utterance("sad", male, style, 2.0, np.random.default_rng(i)) for i in range(4)]
    f0_angry = np.mean([estimate_f0(y, sr) for y in angry])
    f0_sad = np.mean([estimate_f0(y, sr) for y in sad])
    assert f0_angry > 1.3 * f0_sad  # ~8 semitones apart in the table
    assert np.mean([rms(y) for y in angry]) > 2.0 * np.mean([rms(y) for y in sad])


def test_female_voice_higher_f0(style: CorpusStyle, male: Speaker, female: Speaker) -> None:
    sr = style.sample_rate
    f0_m = np.mean(
        [
            estimate_f0(render_utterance("neutral", male, style, 2.0, np.random.default_rng(i)), sr)
            for i in range(3)
        ]
    )
    f0_f = np.mean(
        [
            estimate_f0(
                render_utterance("neutral", female, style, 2.0, np.random.default_rng(i)), sr
            )
            for i in range(3)
        ]
    )
    assert f0_f > 1.3 * f0_m
    assert abs(np.log(f0_m / male.f0_hz)) < np.log(1.5)  # the estimate tracks the habitual F0


def test_intensity_and_expressiveness_scale_the_emotion(style: CorpusStyle, male: Speaker) -> None:
    def loudness_ratio(st: CorpusStyle, intensity: float) -> float:
        a = [
            rms(render_utterance("angry", male, st, 1.5, np.random.default_rng(i), intensity))
            for i in range(3)
        ]
        s = [
            rms(render_utterance("sad", male, st, 1.5, np.random.default_rng(i), intensity))
            for i in range(3)
        ]
        return float(np.mean(a) / np.mean(s))

    strong = loudness_ratio(style, 1.0)
    assert loudness_ratio(style, 0.5) < strong
    natural = dataclasses.replace(style, expressiveness=0.4)
    assert loudness_ratio(natural, 1.0) < strong
    assert loudness_ratio(style, 0.0) == pytest.approx(1.0, abs=0.35)  # neutral prosody


def test_telephone_band_removes_low_frequencies(male: Speaker) -> None:
    wide = make_style("tel", language="l", seed=2)
    phone = make_style("tel", language="l", seed=2, bandpass_hz=(300.0, 3400.0))

    def band_shares(st: CorpusStyle) -> tuple[float, float, float]:
        y = render_utterance("neutral", male, st, 2.0, np.random.default_rng(4)).astype(float)
        power = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1.0 / st.sample_rate)
        total = power.sum()
        return (
            float(power[freqs < 200].sum() / total),
            float(power[freqs < 300].sum() / total),
            float(power[freqs > 4000].sum() / total),
        )

    wide_200, wide_300, wide_4k = band_shares(wide)
    tel_200, tel_300, tel_4k = band_shares(phone)
    assert wide_200 > 0.02  # the male voice's F0 is there in the wide-band recording
    assert tel_200 < 1e-4 * wide_200  # > 40 dB down below 200 Hz
    assert tel_300 < 1e-2 * wide_300  # > 20 dB down below 300 Hz (filter skirt included)
    assert tel_4k < 1e-2 * wide_4k  # and above the upper edge


def test_other_is_heterogeneous(style: CorpusStyle, male: Speaker) -> None:
    f0s = [
        estimate_f0(render_utterance("other", male, style, 1.5, np.random.default_rng(i)), 16000)
        for i in range(6)
    ]
    assert np.all(np.isfinite(f0s))
    assert np.ptp(np.log(f0s)) > 0.02
