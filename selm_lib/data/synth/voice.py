"""Deterministic source-filter synthesiser of emotional, word-free "speech".

It stands in for real emotional speech corpora (RAVDESS, CREMA-D, IEMOCAP, ...) in tests and
in the synthetic pipeline. An utterance is a sequence of vowel-like syllables:

* glottal source: Rosenberg-like flow-derivative pulses built by phase accumulation of a
  time-varying F0 contour (declination, per-syllable accents, emotion-dependent level, range and
  global slope), with per-cycle jitter and shimmer, vocal fry (creak), aspiration noise
  (breathiness) and a one-pole low-pass whose cut-off sets the spectral tilt;
* vocal tract: each syllable's vowel is a cascade of four 2-pole formant resonators, preceded by
  an optional noise-burst consonant; syllables are separated by short pauses;
* recording channel (:class:`CorpusStyle`): microphone colouring (peaking filters), room reverb
  (exponentially decaying noise impulse response), additive noise, band limitation (telephone)
  and recording level.

Emotion prosody comes from ``selm_lib/data/tables/emotion_prosody.yaml``. A corpus style's
``expressiveness`` and the ``intensity`` argument scale each emotion's deviation from neutral, so
acted and spontaneous corpora differ in how clearly emotions are expressed, and corpora differ in
language, speakers and channel: training on one synthetic corpus and testing on another is a real
domain shift.

The voice is synthesised at 16 kHz (``VOICE_SAMPLE_RATE``) and resampled to the corpus rate before
the channel is applied, so the same voice sounds the same below 8 kHz in a 16 kHz and a 48 kHz
corpus. Everything is vectorised with numpy/scipy (one ``lfilter`` per syllable for the formants,
no per-sample Python loops): about 1.5-2 ms of CPU per second of 16 kHz audio, ~4 ms at 48 kHz
(``benchmarks/voice_separability.py`` prints the figure).
"""

from __future__ import annotations

import copy
import functools
import math
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import numpy as np
import yaml
from scipy import signal as sps

_PROSODY_PATH = Path(__file__).resolve().parents[1] / "tables" / "emotion_prosody.yaml"

# Fields every emotion row must have; render_utterance reads the prosody ones.
PROSODY_FIELDS: tuple[str, ...] = (
    "f0_shift_st",
    "f0_range",
    "contour_st",
    "loudness_db",
    "rate",
    "tilt_hz",
    "jitter",
    "shimmer",
    "breathiness",
    "creak",
    "pause",
    "formant_shift",
)
DIMENSION_FIELDS: tuple[str, ...] = ("valence", "arousal", "dominance")

# The voice itself is always synthesised at this rate and then resampled to the corpus rate
# (the channel is applied at the corpus rate). Digital resonators and noise behave differently at
# different rates; synthesising at one rate keeps the voice below 8 kHz identical across corpora,
# so the sample rate is not a hidden emotion-independent cue. It is also 3x cheaper at 48 kHz.
VOICE_SAMPLE_RATE = 16_000

# Signal-model constants (not emotion dependent).
_CONTROL_RATE_HZ = 200.0  # F0 contour is computed at this rate, then linearly upsampled
_DECLINATION_ST = -2.0  # F0 falls by this much over an utterance (phrase declination)
_ACCENT_ST = 3.0  # pitch-accent size at neutral, f0_range = 1, speaker range 1
_ACCENT_PROB = 0.5  # share of syllables that carry a pitch accent
_BANDWIDTHS_HZ = (70.0, 100.0, 140.0, 200.0)  # formant bandwidths F1..F4
_F4_HZ = 3500.0  # fourth formant of the reference (male) tract
_FORMANT_TAIL_S = 0.03  # formant ringing kept after a syllable's excitation ends
_CLEAN_SNR_DB = 50.0  # noise floor of a "clean" (noise_snr_db=None) studio recording


# --------------------------------------------------------------------------- emotion table


@functools.lru_cache(maxsize=1)
def _load_table() -> dict[str, dict[str, float]]:
    """Parse and validate the yaml once."""
    with open(_PROSODY_PATH, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    rows = raw["emotions"]
    table: dict[str, dict[str, float]] = {}
    for name, row in rows.items():
        missing = [f for f in (*PROSODY_FIELDS, *DIMENSION_FIELDS) if f not in row]
        if missing:
            raise ValueError(f"{_PROSODY_PATH}: emotion {name!r} lacks fields {missing}")
        table[str(name)] = {k: float(v) for k, v in row.items()}
    return table


def emotion_table() -> dict[str, dict[str, float]]:
    """Emotion -> {field: value} from ``emotion_prosody.yaml`` (parsed once; a fresh copy)."""
    # A copy, so a caller editing its dict cannot change what later renders use.
    return copy.deepcopy(_load_table())


EMOTIONS: tuple[str, ...] = tuple(_load_table())


def _check_emotion(emotion: str) -> None:
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")


# --------------------------------------------------------------------------- determinism helpers


def _named_rng(name: str, seed: int, salt: str = "") -> np.random.Generator:
    """A generator that depends only on (name, seed, salt): stable across runs and platforms."""
    key = zlib.crc32(f"{salt}\x00{name}".encode())
    return np.random.default_rng([int(seed) % (2**63), key])


# --------------------------------------------------------------------------- language


@dataclass(frozen=True)
class Language:
    """A synthetic "language": vowel inventory and timing."""

    name: str
    vowels: tuple[tuple[float, float, float], ...]  # (F1, F2, F3) Hz, reference adult male tract
    syllable_rate: float  # syllables per second at neutral
    consonant_ratio: float  # share of syllables with a noise-burst onset


# Corner vowels of the reference male tract: /i/, /a/, /u/ (F1, F2, F3 in Hz).
_CORNERS = np.array([[280.0, 2250.0, 2890.0], [730.0, 1090.0, 2440.0], [300.0, 870.0, 2240.0]])


def make_language(name: str, seed: int) -> Language:
    """A language drawn deterministically from ``(name, seed)``.

    Vowels are points of the /i/-/a/-/u/ triangle (Dirichlet weights favour the corners, as real
    inventories do), so different names get different inventories, syllable rates and consonant
    ratios.
    """
    rng = _named_rng(name, seed, "language")
    n_vowels = int(rng.integers(5, 9))
    weights = rng.dirichlet([0.6, 0.6, 0.6], size=n_vowels)
    vowels = weights @ _CORNERS
    vowels *= rng.normal(1.0, 0.04, size=vowels.shape)  # language-specific vowel quality
    vowels[:, 2] = np.maximum(vowels[:, 2], vowels[:, 1] + 300.0)  # keep F3 above F2
    vowels = vowels[np.argsort(vowels[:, 0] * 10_000 + vowels[:, 1])]
    return Language(
        name=name,
        vowels=tuple(tuple(round(float(f), 1) for f in v) for v in vowels),
        syllable_rate=round(float(rng.uniform(3.8, 5.8)), 3),
        consonant_ratio=round(float(rng.uniform(0.45, 0.9)), 3),
    )


# --------------------------------------------------------------------------- speaker


@dataclass(frozen=True)
class Speaker:
    """Voice traits of one synthetic speaker."""

    speaker_id: str
    gender: str  # "M" or "F"
    f0_hz: float  # habitual F0
    f0_range_scale: float  # multiplier of pitch-accent size
    formant_scale: float  # vocal-tract length factor (> 1: shorter tract, higher formants)
    rate_scale: float  # speaking-rate multiplier
    breathiness: float  # aspiration-noise level, 0..1
    loudness_db: float  # vocal level offset


def make_speaker(speaker_id: str, gender: str, rng: np.random.Generator) -> Speaker:
    """Draw a speaker's traits from ``rng`` (ranges of adult voices)."""
    if gender not in ("M", "F"):
        raise ValueError(f"gender must be 'M' or 'F', got {gender!r}")
    if gender == "M":
        f0 = float(np.clip(rng.normal(118.0, 17.0), 85.0, 155.0))
        formant_scale = float(np.clip(rng.normal(1.0, 0.035), 0.92, 1.08))
        breath = float(rng.uniform(0.0, 0.12))
    else:
        f0 = float(np.clip(rng.normal(208.0, 22.0), 165.0, 255.0))
        formant_scale = float(np.clip(rng.normal(1.17, 0.03), 1.10, 1.25))
        breath = float(rng.uniform(0.03, 0.2))  # female voices are on average breathier
    return Speaker(
        speaker_id=speaker_id,
        gender=gender,
        f0_hz=round(f0, 2),
        f0_range_scale=round(float(rng.uniform(0.7, 1.3)), 3),
        formant_scale=round(formant_scale, 4),
        rate_scale=round(float(rng.uniform(0.85, 1.15)), 3),
        breathiness=round(breath, 3),
        loudness_db=round(float(np.clip(rng.normal(0.0, 2.0), -5.0, 5.0)), 2),
    )


# --------------------------------------------------------------------------- corpus style


@dataclass(frozen=True)
class CorpusStyle:
    """Recording conditions and expressiveness of one corpus."""

    name: str
    language: Language
    sample_rate: int
    expressiveness: float  # 1 = acted (full prosody); ~0.4-0.6 spontaneous (towards neutral)
    mic_eq: tuple[tuple[float, float, float], ...]  # (centre Hz, gain dB, Q) peaking filters
    noise_snr_db: float | None  # noise re the average speech level (None: clean, 50 dB floor)
    reverb_rt60_s: float  # 0 = dry
    bandpass_hz: tuple[float, float] | None  # e.g. (300, 3400) telephone channel
    level_dbfs: float  # average recording level (RMS, dB re full scale)


def make_style(
    name: str,
    *,
    language: str,
    seed: int,
    sample_rate: int = 16000,
    expressiveness: float = 1.0,
    noise_snr_db: float | None = None,
    reverb_rt60_s: float = 0.0,
    bandpass_hz: tuple[float, float] | None = None,
) -> CorpusStyle:
    """A corpus style; microphone EQ and recording level are drawn from ``(name, seed)``.

    ``language`` names the synthetic language (built with :func:`make_language` from the same
    seed), so two corpora sharing a language name share its vowels and timing.
    """
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000, got {sample_rate}")
    if not 0.0 <= expressiveness <= 2.0:
        raise ValueError(f"expressiveness must be in [0, 2], got {expressiveness}")
    if reverb_rt60_s < 0:
        raise ValueError(f"reverb_rt60_s must be >= 0, got {reverb_rt60_s}")
    if bandpass_hz is not None:
        lo, hi = bandpass_hz
        if not 0 < lo < hi < sample_rate / 2:
            raise ValueError(f"bandpass_hz must satisfy 0 < lo < hi < {sample_rate / 2}")
        bandpass_hz = (float(lo), float(hi))
    rng = _named_rng(name, seed, "style")
    # Three peaking filters: low-end (proximity/cabinet), mid colouring, presence region.
    mic_eq = (
        (float(rng.uniform(80, 250)), float(rng.uniform(-6, 4)), float(rng.uniform(0.6, 1.0))),
        (float(rng.uniform(500, 2500)), float(rng.uniform(-4, 4)), float(rng.uniform(0.8, 2.0))),
        (float(rng.uniform(2500, 7000)), float(rng.uniform(-6, 6)), float(rng.uniform(0.8, 2.0))),
    )
    mic_eq = tuple(tuple(round(x, 3) for x in band) for band in mic_eq)
    return CorpusStyle(
        name=name,
        language=make_language(language, seed),
        sample_rate=int(sample_rate),
        expressiveness=float(expressiveness),
        mic_eq=mic_eq,
        noise_snr_db=None if noise_snr_db is None else float(noise_snr_db),
        reverb_rt60_s=float(reverb_rt60_s),
        bandpass_hz=bandpass_hz,
        level_dbfs=round(float(rng.uniform(-34.0, -26.0)), 2),
    )


# --------------------------------------------------------------------------- prosody parameters


def _utterance_params(emotion: str, strength: float, rng: np.random.Generator) -> dict[str, float]:
    """Prosody of one utterance: neutral + strength * (emotion - neutral), then random variation."""
    table = _load_table()
    neutral = table["neutral"]
    if emotion == "other":
        # A random blend of the non-neutral emotions at mild strength: "other" is heterogeneous.
        pool = [e for e in EMOTIONS if e not in ("neutral", "other")]
        weights = rng.dirichlet(np.full(len(pool), 0.7))
        target = {
            f: sum(w * table[e][f] for w, e in zip(weights, pool, strict=True))
            for f in PROSODY_FIELDS
        }
        strength = strength * float(rng.uniform(0.3, 0.6))
    else:
        target = table[emotion]
    p = {f: neutral[f] + strength * (target[f] - neutral[f]) for f in PROSODY_FIELDS}
    # Within-emotion variability: no two renditions of an emotion are alike.
    p["f0_shift_st"] += rng.normal(0.0, 0.7)
    p["f0_range"] *= math.exp(rng.normal(0.0, 0.12))
    p["contour_st"] += rng.normal(0.0, 0.7)
    p["loudness_db"] += rng.normal(0.0, 1.2)
    p["rate"] *= math.exp(rng.normal(0.0, 0.07))
    p["tilt_hz"] *= math.exp(rng.normal(0.0, 0.12))
    p["breathiness"] = max(0.0, p["breathiness"] + rng.normal(0.0, 0.02))
    p["creak"] = float(np.clip(p["creak"] + rng.normal(0.0, 0.03), 0.0, 0.9))
    p["pause"] = float(np.clip(p["pause"], 0.0, 0.6))
    p["jitter"] = max(0.0, p["jitter"])
    p["shimmer"] = max(0.0, p["shimmer"])
    return p


# --------------------------------------------------------------------------- filters (cached)


@functools.lru_cache(maxsize=64)
def _mic_sos(mic_eq: tuple[tuple[float, float, float], ...], sr: int) -> np.ndarray | None:
    """Second-order sections of the peaking filters (bilinear-transform peaking EQ)."""
    sections = []
    for fc, gain_db, q in mic_eq:
        if fc >= 0.45 * sr or abs(gain_db) < 1e-3:
            continue
        amp = 10.0 ** (gain_db / 40.0)
        w0 = 2.0 * math.pi * fc / sr
        alpha = math.sin(w0) / (2.0 * q)
        cw = math.cos(w0)
        b = np.array([1 + alpha * amp, -2 * cw, 1 - alpha * amp])
        a = np.array([1 + alpha / amp, -2 * cw, 1 - alpha / amp])
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.array(sections) if sections else None


@functools.lru_cache(maxsize=16)
def _bandpass_sos(band: tuple[float, float], sr: int) -> np.ndarray:
    """A steep Butterworth band-pass for channel band limitation (telephone)."""
    return sps.butter(10, band, btype="bandpass", fs=sr, output="sos")


@functools.lru_cache(maxsize=16)
def _room_ir(style_name: str, rt60: float, sr: int) -> np.ndarray:
    """Synthetic room impulse response: direct path + exponentially decaying noise tail."""
    rng = _named_rng(style_name, sr, "room")
    n = max(int(1.2 * rt60 * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # -60 dB at rt60
    pre_delay = int(0.004 * sr)  # the first reflections arrive a few ms after the direct sound
    tail[:pre_delay] = 0.0
    tail *= 0.8 / np.sqrt(np.sum(tail**2))  # direct-to-reverberant ratio about 2 dB
    tail[0] = 1.0
    return tail / np.sqrt(np.sum(tail**2))


def _resonator_poly(freq: float, bw: float, sr: int) -> np.ndarray:
    """Denominator of a 2-pole resonator at ``freq`` Hz with bandwidth ``bw`` Hz."""
    r = math.exp(-math.pi * bw / sr)
    return np.array([1.0, -2.0 * r * math.cos(2.0 * math.pi * freq / sr), r * r])


def _vowel_filter(formants: np.ndarray, bandwidths: np.ndarray, sr: int) -> np.ndarray:
    """Cascade of formant resonators as one denominator (unit gain at DC)."""
    a = np.ones(1)
    for f, bw in zip(formants, bandwidths, strict=True):
        if f < 0.45 * sr:  # formants above Nyquist are dropped (low sample rates)
            a = np.convolve(a, _resonator_poly(float(f), float(bw), sr))
    return a


# --------------------------------------------------------------------------- rendering


@dataclass
class _Syllable:
    start: int  # first sample of the vowel nucleus
    length: int  # nucleus length in samples
    vowel: int
    accent_st: float
    gain: float
    burst_start: int  # consonant onset (burst_len == 0: none)
    burst_len: int


def _plan_syllables(
    n: int,
    sr: int,
    rate: float,
    cons_ratio: float,
    pause: float,
    n_vowels: int,
    rng: np.random.Generator,
) -> list[_Syllable]:
    """Timeline of syllables and pauses filling ``n`` samples (at least one syllable)."""
    dur = n / sr
    lead = min(rng.uniform(0.04, 0.18), 0.15 * dur)
    end = dur - min(rng.uniform(0.04, 0.18), 0.15 * dur)
    mean_syl = 1.0 / rate
    t = lead
    syllables: list[_Syllable] = []
    while True:
        syl = mean_syl * math.exp(rng.normal(0.0, 0.22))
        burst = rng.uniform(0.02, 0.06) if rng.random() < cons_ratio else 0.0
        nucleus = max(syl - burst, 0.05)
        if syllables and t + burst + nucleus > end:
            break
        nucleus = min(nucleus, max(end - t - burst, 0.03))
        accent = rng.uniform(0.4, 1.0) if rng.random() < _ACCENT_PROB else rng.normal(0.0, 0.1)
        syllables.append(
            _Syllable(
                start=int((t + burst) * sr),
                length=max(int(nucleus * sr), 8),
                vowel=int(rng.integers(n_vowels)),
                accent_st=float(accent),
                gain=10.0 ** (rng.normal(0.0, 1.5) / 20.0),
                burst_start=int(t * sr),
                burst_len=int(burst * sr),
            )
        )
        t += burst + nucleus
        if rng.random() < pause:
            t += rng.uniform(0.08, 0.3)
        if t >= end:
            break
    return syllables


def _f0_contour(
    n: int,
    sr: int,
    speaker: Speaker,
    p: dict[str, float],
    syllables: list[_Syllable],
    rng: np.random.Generator,
) -> np.ndarray:
    """Per-sample F0 in Hz: level, declination, global slope, accents and slow wander."""
    hop = max(int(round(sr / _CONTROL_RATE_HZ)), 1)
    n_ctrl = n // hop + 2
    tc = np.arange(n_ctrl) * (hop / sr)
    x = tc / max(tc[-1], 1e-3)  # 0..1 position in the utterance
    st = np.full(n_ctrl, p["f0_shift_st"]) + _DECLINATION_ST * x
    # Rising contours rise mostly at the end (question-like); falling ones fall throughout.
    st += p["contour_st"] * (x**1.5 if p["contour_st"] > 0 else x)
    if syllables:
        centres = np.array([(s.start + 0.4 * s.length) / sr for s in syllables])
        widths = np.array([0.35 * s.length / sr + 0.02 for s in syllables])
        sizes = np.array([s.accent_st for s in syllables])
        sizes *= _ACCENT_ST * p["f0_range"] * speaker.f0_range_scale
        bumps = np.exp(-0.5 * ((tc[None, :] - centres[:, None]) / widths[:, None]) ** 2)
        st += sizes @ bumps
    # Slow random wander (~3 Hz) so that contours are never perfectly smooth.
    knots = rng.normal(0.0, 0.3, size=int(tc[-1] * 3) + 2)
    st += np.interp(x, np.linspace(0.0, 1.0, len(knots)), knots)
    f0c = speaker.f0_hz * 2.0 ** (st / 12.0)
    f0c = np.clip(f0c, 50.0, min(600.0, sr / 8))
    # Linear upsampling to the sample rate by broadcasting (cheaper than np.interp).
    ramp = np.arange(hop) / hop
    f0 = (f0c[:-1, None] + np.diff(f0c)[:, None] * ramp[None, :]).ravel()
    return f0[:n]


def _glottal_source(
    f0: np.ndarray, sr: int, p: dict[str, float], breathiness: float, rng: np.random.Generator
) -> np.ndarray:
    """Excitation: jittered/shimmered Rosenberg flow-derivative pulses + aspiration noise."""
    n = len(f0)
    # Per-cycle jitter: index cycles of the unperturbed phase, perturb each cycle's F0.
    phase0 = np.cumsum(f0 / sr)
    n_cyc = int(phase0[-1]) + 2
    cyc_f0 = 1.0 + rng.normal(0.0, p["jitter"], n_cyc)
    creak = p["creak"]
    if creak > 0:
        # Vocal fry: alternate cycles lengthened (period doubling) and damped below.
        cyc_f0[1::2] *= 1.0 - 0.3 * creak
    phase = np.cumsum(f0 * cyc_f0[phase0.astype(np.int64)] / sr)
    cyc = phase.astype(np.int64)
    frac = phase - cyc
    cyc_amp = 1.0 + rng.normal(0.0, p["shimmer"], int(phase[-1]) + 2)
    if creak > 0:
        cyc_amp[1::2] *= 1.0 - 0.8 * creak
    # Rosenberg pulse: opening (0..tp) and closing (tp..tp+tn) phase of the flow derivative;
    # breathier voices have a longer open phase.
    oq = float(np.clip(0.55 + 0.5 * (breathiness + p["breathiness"]), 0.5, 0.85))
    tp, tn = 0.7 * oq, 0.3 * oq
    opening = frac < tp
    arg = np.where(opening, frac * (math.pi / tp), (frac - tp) * (math.pi / (2.0 * tn)))
    gain = np.where(opening, 1.0 / tp, -2.0 / tn)  # steep closure = main excitation
    pulses = np.sin(arg) * gain
    pulses[frac >= oq] = 0.0
    pulses *= cyc_amp[cyc]
    # The abrupt closure is a step in the flow derivative; a naive step aliases (and would make
    # 16 kHz and 48 kHz renderings differ below 8 kHz), so smooth it with a 2-sample polyBLEP.
    q = phase - oq
    k = np.floor(q).astype(np.int64)
    hit = np.flatnonzero(k[1:] > k[:-1]) + 1  # first sample after each closure
    if hit.size:
        dphi = phase[hit] - phase[hit - 1]
        x = np.clip((q[hit] - k[hit]) / dphi, 0.0, 1.0)  # samples elapsed since the closure
        step = (2.0 / tn) * cyc_amp[k[hit]]
        pulses[hit] -= step * (1.0 - x) ** 2 / 2.0
        pulses[hit - 1] += step * x**2 / 2.0
    # Aspiration: noise, stronger while the glottis is open.
    # White noise spreads its power up to Nyquist: scale with sqrt(sr) so that its spectral
    # density (what matters below 8 kHz) is the same at every sample rate.
    asp_level = 4.0 * (breathiness + p["breathiness"]) * math.sqrt(sr / 16000.0)
    noise = rng.standard_normal(n) * (asp_level * (0.4 + 0.6 * (frac < oq)))
    src = pulses + noise
    # Spectral tilt: one-pole low-pass; its cut-off is the emotion's (voice effort) tilt.
    fc = float(np.clip(p["tilt_hz"], 100.0, 0.45 * sr))
    pole = math.exp(-2.0 * math.pi * fc / sr)
    return sps.lfilter([1.0 - pole], [1.0, -pole], src)


def _envelope(length: int, sr: int) -> np.ndarray:
    """Vowel amplitude envelope: raised-cosine attack (~25 ms) and release (~45 ms)."""
    env = np.ones(length)
    na = min(int(0.025 * sr), length // 3)
    nr = min(int(0.045 * sr), length // 2)
    if na > 0:
        env[:na] = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, na))
    if nr > 0:
        env[-nr:] = 0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, nr))
    return env


def _render_dry(
    emotion: str,
    speaker: Speaker,
    style: CorpusStyle,
    n: int,
    rng: np.random.Generator,
    intensity: float,
) -> tuple[np.ndarray, dict[str, object]]:
    """Dry (channel-free) speech at ``VOICE_SAMPLE_RATE``, arbitrary level, and render info."""
    sr = VOICE_SAMPLE_RATE
    lang = style.language
    p = _utterance_params(emotion, intensity * style.expressiveness, rng)
    rate = lang.syllable_rate * p["rate"] * speaker.rate_scale
    syllables = _plan_syllables(
        n, sr, rate, lang.consonant_ratio, p["pause"], len(lang.vowels), rng
    )
    f0 = _f0_contour(n, sr, speaker, p, syllables, rng)
    src = _glottal_source(f0, sr, p, speaker.breathiness, rng)

    out = np.zeros(n + int(_FORMANT_TAIL_S * sr) + 1)
    voiced = np.zeros(n, dtype=bool)
    vowels = np.asarray(lang.vowels)
    scale = speaker.formant_scale * (1.0 + p["formant_shift"])
    # Breathy phonation widens F1 (glottal losses).
    bws = np.array(_BANDWIDTHS_HZ) * np.array([1.0 + 2.0 * p["breathiness"], 1.0, 1.0, 1.0])
    tail = int(_FORMANT_TAIL_S * sr)
    for s in syllables:
        end = min(s.start + s.length, n)
        if end <= s.start:
            continue
        formants = np.append(vowels[s.vowel], _F4_HZ) * scale
        formants = formants * np.exp(rng.normal(0.0, 0.03, 4))  # token-to-token variation
        a = _vowel_filter(formants, bws, sr)
        # Stressed (accented) syllables are louder.
        amp = s.gain * (1.0 + 0.3 * max(s.accent_st, 0.0))
        x = np.zeros(end - s.start + tail)
        x[: end - s.start] = src[s.start : end] * _envelope(end - s.start, sr) * amp
        out[s.start : s.start + len(x)] += sps.lfilter([a.sum()], a, x)
        voiced[s.start : end] = True
        if s.burst_len > 0:
            # Consonant onset: band-pass noise burst (fricative/stop release) with decaying env.
            centre = min(rng.uniform(1800.0, 6000.0), 0.4 * sr)
            b_a = _resonator_poly(centre, 0.4 * centre, sr)
            burst = rng.standard_normal(s.burst_len) * np.linspace(1.0, 0.3, s.burst_len)
            burst = sps.lfilter([b_a.sum() * 0.15 * math.sqrt(sr / 16000.0)], b_a, burst)
            b0 = s.burst_start
            out[b0 : b0 + s.burst_len] += burst  # ends where the nucleus starts (< n)
    info: dict[str, object] = {
        "f0_hz": f0,
        "voiced": voiced,
        "params": p,
        "n_syllables": len(syllables),
    }
    return out[:n], info


def _render(
    emotion: str,
    speaker: Speaker,
    style: CorpusStyle,
    duration_s: float,
    rng: np.random.Generator,
    intensity: float = 1.0,
) -> tuple[np.ndarray, dict[str, object]]:
    """:func:`render_utterance` plus render info for tests and diagnostics.

    ``info`` holds ``f0_hz`` (per-sample F0 contour) and ``voiced`` (vowel-nucleus mask), both at
    ``VOICE_SAMPLE_RATE``, ``params`` (the utterance's prosody) and ``n_syllables``.
    """
    _check_emotion(emotion)
    sr = style.sample_rate
    n = int(round(duration_s * sr))
    if duration_s < 0.1:
        raise ValueError(f"duration_s must be >= 0.1 s, got {duration_s}")
    if intensity < 0:
        raise ValueError(f"intensity must be >= 0, got {intensity}")
    n_voice = int(round(duration_s * VOICE_SAMPLE_RATE))
    dry, info = _render_dry(emotion, speaker, style, n_voice, rng, intensity)
    if sr != VOICE_SAMPLE_RATE:
        ratio = Fraction(sr, VOICE_SAMPLE_RATE)
        dry = sps.resample_poly(dry, ratio.numerator, ratio.denominator)
        dry = np.pad(dry[:n], (0, max(0, n - len(dry))))
    p = cast(dict[str, float], info["params"])

    # Recording level: the style's level plus the speaker's and the emotion's vocal level.
    level_db = style.level_dbfs + speaker.loudness_db + p["loudness_db"]
    rms = math.sqrt(float(np.mean(dry**2))) + 1e-12
    y = dry * (10.0 ** (level_db / 20.0) / rms)

    sos = _mic_sos(style.mic_eq, sr)
    if sos is not None:
        y = sps.sosfilt(sos, y)
    if style.reverb_rt60_s > 0:
        ir = _room_ir(style.name, style.reverb_rt60_s, sr)
        y = sps.oaconvolve(y, ir)[:n]
    # Background noise of the room/line: its level is fixed relative to the corpus' average
    # speech level (not to this utterance), so quiet (sad) speech has a lower SNR than loud.
    # A "clean" corpus still has a microphone/preamp floor: digital silence would make log
    # spectra of pauses meaningless (-inf) and no real recording has it.
    snr_db = _CLEAN_SNR_DB if style.noise_snr_db is None else style.noise_snr_db
    white = rng.standard_normal(n)
    pole = math.exp(-2.0 * math.pi * 150.0 / sr)  # pinkish: low-passed white + some white
    pink = sps.lfilter([1.0 - pole], [1.0, -pole], white)
    pink /= float(np.std(pink)) + 1e-20
    # The white part's density, not its total power, is kept independent of the sample rate.
    noise = pink + (0.3 * math.sqrt(sr / 16000.0)) * white
    noise_db = style.level_dbfs - snr_db + rng.normal(0.0, 1.5)
    y = y + noise * 10.0 ** (noise_db / 20.0)
    if style.bandpass_hz is not None:
        y = sps.sosfilt(_bandpass_sos(style.bandpass_hz, sr), y)
    peak = float(np.max(np.abs(y)))
    if peak > 0.985:
        # A recording engineer would have lowered the gain (margin: float32 rounding of 0.99).
        y *= 0.985 / peak
    return y.astype(np.float32), info


def render_utterance(
    emotion: str,
    speaker: Speaker,
    style: CorpusStyle,
    duration_s: float,
    rng: np.random.Generator,
    intensity: float = 1.0,
) -> np.ndarray:
    """Render one utterance: float32 mono at ``style.sample_rate``, ``round(duration_s * sr)`` long.

    ``intensity`` scales the emotion's deviation from neutral (on top of the style's
    expressiveness): 1.0 for strong acted emotion, ~0.6 for "normal" intensity. The output is a
    deterministic function of the arguments and ``rng``'s state; its peak is at most 0.99.
    Raises ``ValueError`` for an unknown emotion.
    """
    return _render(emotion, speaker, style, duration_s, rng, intensity)[0]
