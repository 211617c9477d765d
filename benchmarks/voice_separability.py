"""Calibration of the synthetic voice: are emotions learnable, and is a corpus change a shift?

Renders a few synthetic corpora with different styles (acted clean 48 kHz "A"; natural, noisy,
reverberant 16 kHz "B"; telephone-band "C"), computes log-mel statistics (mean and std over
frames of 40 log-mel bands, after resampling to 16 kHz) and fits a logistic regression:

* in-domain: speaker-disjoint grouped cross-validation within each style;
* cross-style: train on all of one style, test on all of another (different speakers, language
  and channel), on raw features and with per-corpus feature standardisation ("corpus-z").

It also reports the rendering speed. Run from the repository root::

    .venv/bin/python benchmarks/voice_separability.py            # 6 emotions
    .venv/bin/python benchmarks/voice_separability.py --emotions 8
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from selm_lib.data.synth.voice import CorpusStyle, make_speaker, make_style, render_utterance

EMOTION_SETS = {
    6: ("neutral", "happy", "sad", "angry", "fearful", "disgusted"),
    8: ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised"),
}
FEATURE_SR = 16_000


def styles(seed: int) -> dict[str, CorpusStyle]:
    """The three calibration styles."""
    return {
        "A": make_style("A_acted", language="lang_a", seed=seed, sample_rate=48_000),
        "B": make_style(
            "B_natural",
            language="lang_b",
            seed=seed,
            expressiveness=0.6,
            noise_snr_db=20.0,
            reverb_rt60_s=0.4,
        ),
        "C": make_style(
            "C_phone",
            language="lang_c",
            seed=seed,
            expressiveness=0.8,
            noise_snr_db=25.0,
            bandpass_hz=(300.0, 3400.0),
        ),
    }


def mel_filterbank(n_mels: int = 40, n_fft: int = 512, sr: int = FEATURE_SR) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(20.0)), hz_to_mel(np.array(sr / 2)), n_mels + 2)
    )
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down))


MEL = mel_filterbank()


def features(y: np.ndarray, sr: int) -> np.ndarray:
    """Mean and std over 25 ms / 10 ms frames of 40 log-mel bands (80 values)."""
    if sr != FEATURE_SR:
        r = Fraction(FEATURE_SR, sr)
        y = resample_poly(y, r.numerator, r.denominator)
    frame, hop = 400, 160
    n_frames = 1 + (len(y) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(y[idx] * np.hanning(frame), n=512)) ** 2
    logmel = np.log(spec @ MEL.T + 1e-10)
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)])


def render_corpus(
    style: CorpusStyle, emotions: tuple[str, ...], n_speakers: int, n_utts: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Features, labels, speaker groups, render seconds and seconds of audio of one corpus."""
    rng = np.random.default_rng([seed, sum(map(ord, style.name))])
    speakers = [make_speaker(f"{style.name}_{i:02d}", "MF"[i % 2], rng) for i in range(n_speakers)]
    feats, labels, groups = [], [], []
    render_s = audio_s = 0.0
    for spk_i, spk in enumerate(speakers):
        for emo_i, emo in enumerate(emotions):
            for _ in range(n_utts):
                dur = float(rng.uniform(1.5, 3.0))
                # Acted corpora have two intensities (RAVDESS normal/strong).
                intensity = float(rng.choice([0.6, 1.0])) if style.expressiveness >= 1 else 1.0
                t0 = time.process_time()
                y = render_utterance(emo, spk, style, dur, rng, intensity=intensity)
                render_s += time.process_time() - t0
                audio_s += dur
                feats.append(features(y.astype(np.float64), style.sample_rate))
                labels.append(emo_i)
                groups.append(spk_i)
    return np.array(feats), np.array(labels), np.array(groups), render_s, audio_s


def model() -> object:
    """Standardised features + multinomial logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))


def prepare(X: np.ndarray, norm: str) -> np.ndarray:
    """``raw``, or ``corpus-z``: each feature z-scored within its own corpus (the usual
    cross-corpus baseline; it removes the channel's and recording level's constant offsets)."""
    if norm == "raw":
        return X
    return (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emotions", type=int, choices=sorted(EMOTION_SETS), default=6)
    ap.add_argument("--speakers", type=int, default=12)
    ap.add_argument("--utts", type=int, default=8, help="utterances per speaker and emotion")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    emotions = EMOTION_SETS[args.emotions]

    data = {}
    for key, style in styles(args.seed).items():
        X, y, g, render_s, audio_s = render_corpus(
            style, emotions, args.speakers, args.utts, args.seed
        )
        data[key] = (X, y, g)
        print(
            f"style {key} ({style.name}, {style.sample_rate} Hz): {len(y)} utterances, "
            f"{audio_s:.0f} s audio rendered in {render_s:.2f} s CPU = "
            f"{1000 * render_s / audio_s:.2f} ms per s of audio"
        )

    print(f"\nemotions ({len(emotions)}, chance {1 / len(emotions):.2f}): {', '.join(emotions)}")
    print("in-domain, speaker-disjoint 4-fold CV:")
    for key, (X, y, g) in data.items():
        accs = []
        for tr, te in GroupKFold(n_splits=4).split(X, y, g):
            clf = model().fit(X[tr], y[tr])
            accs.append(float(np.mean(clf.predict(X[te]) == y[te])))
        print(f"  {key}: {np.mean(accs):.3f} (folds {', '.join(f'{a:.2f}' for a in accs)})")
    keys = list(data)
    for norm in ("raw", "corpus-z"):
        print(f"cross-style, {norm} features (rows: train, columns: test):")
        print("  train\\test " + " ".join(f"{k:>6}" for k in keys))
        for a in keys:
            clf = model().fit(prepare(data[a][0], norm), data[a][1])
            row = []
            for b in keys:
                if a == b:
                    row.append("     -")
                else:
                    pred = clf.predict(prepare(data[b][0], norm))
                    row.append(f"{float(np.mean(pred == data[b][1])):6.3f}")
            print(f"  {a:>10} " + " ".join(row))


if __name__ == "__main__":
    main()
