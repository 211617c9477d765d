"""Audio I/O: read with soundfile, mix to mono, resample to 16 kHz, and check files for quarantine.

``torchaudio.load`` needs TorchCodec and FFmpeg since torchaudio 2.9, so everything goes through
soundfile (libsndfile). Resampling is polyphase (scipy), exact for the usual rate ratios.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

TARGET_SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class AudioCheck:
    """What a scan learns from one file. ``quarantine`` is empty for a usable file."""

    duration_s: float
    sample_rate: int
    channels: int
    quarantine: str


def resample(signal: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of a mono float signal from ``orig_sr`` to ``target_sr``."""
    if orig_sr == target_sr:
        return signal
    ratio = Fraction(target_sr, orig_sr)
    out = resample_poly(signal, ratio.numerator, ratio.denominator)
    return out.astype(np.float32, copy=False)


def read_raw(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples as float32 ``(frames, channels)`` and the file's sample rate (no conversion)."""
    data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, int(sample_rate)


def load_audio(
    path: str | Path,
    target_sr: int = TARGET_SAMPLE_RATE,
    max_seconds: float | None = None,
    channel: int | None = None,
) -> np.ndarray:
    """Mono float32 samples at ``target_sr``: stereo is averaged (or one ``channel``, 1-based,
    is taken: a stereo dialogue with one actor per channel), any rate is resampled.

    ``max_seconds`` truncates after resampling (SER-Evals truncates to 30 s).
    Raises :class:`AudioError` naming the file when it cannot be read or lacks the channel.
    """
    try:
        data, sample_rate = read_raw(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot read audio ({error})") from error
    if channel is not None:
        if not 1 <= int(channel) <= data.shape[1]:
            raise AudioError(
                f"{path}: channel {channel} requested (manifest column 'channel') but the file "
                f"has {data.shape[1]}; rerun dvc repro curate"
            )
        mono = data[:, int(channel) - 1]
    else:
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    mono = resample(mono, sample_rate, target_sr)
    if max_seconds is not None:
        mono = mono[: int(round(max_seconds * target_sr))]
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_audio(
    path: str | Path, min_duration_s: float = 0.2, silence_dbfs: float = -60.0
) -> AudioCheck:
    """Open and read a file fully; return its facts and, if unusable, the quarantine reason.

    Never raises for a bad file: empty, truncated, non-audio, unreadable, NaN-filled, silent and
    too-short files come back with a reason so the scan can list them.
    """
    path = Path(path)
    if not path.is_file():
        return AudioCheck(0.0, 0, 0, "missing file")
    size = path.stat().st_size
    if size == 0:
        return AudioCheck(0.0, 0, 0, "empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        return AudioCheck(0.0, 0, 0, f"not readable as audio ({_short(error)})")
    sample_rate, channels = int(info.samplerate), int(info.channels)
    if info.frames <= 0:
        return AudioCheck(0.0, sample_rate, channels, "no audio frames (header only)")
    try:
        data, _ = read_raw(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        return AudioCheck(0.0, sample_rate, channels, f"unreadable samples ({_short(error)})")
    frames = data.shape[0]
    duration = frames / sample_rate
    expected = _declared_frames(path, info)
    if expected is not None and frames < expected:
        return AudioCheck(
            duration,
            sample_rate,
            channels,
            f"truncated: header declares {expected} frames, file holds {frames}",
        )
    if frames == 0:
        return AudioCheck(0.0, sample_rate, channels, "no audio frames")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        return AudioCheck(duration, sample_rate, channels, f"non-finite samples ({bad} NaN/Inf)")
    peak = float(np.abs(data).max())
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    if peak_dbfs < silence_dbfs:
        level = "digital silence" if peak == 0 else f"peak {peak_dbfs:.1f} dBFS"
        return AudioCheck(
            duration, sample_rate, channels, f"silent ({level} < {silence_dbfs:g} dBFS)"
        )
    if duration < min_duration_s:
        return AudioCheck(
            duration, sample_rate, channels, f"too short ({duration:.3f} s < {min_duration_s:g} s)"
        )
    return AudioCheck(duration, sample_rate, channels, "")


def _short(error: BaseException) -> str:
    """libsndfile's message without the path it repeats (manifests must not depend on where the
    project lives)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^Error opening '.*?': ", "", text)
    return text[:120]


def _declared_frames(path: Path, info: sf._SoundFileInfo) -> int | None:
    """Frames a WAV header declares in its data chunk (libsndfile clamps to what is present)."""
    if info.format != "WAV":
        return None
    try:
        with path.open("rb") as handle:
            header = handle.read(4096)
    except OSError:
        return None
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    offset, block_align = 12, None
    while offset + 8 <= len(header):
        chunk_id, chunk_size = (
            header[offset : offset + 4],
            int.from_bytes(header[offset + 4 : offset + 8], "little"),
        )
        if chunk_id == b"fmt ":
            block_align = int.from_bytes(header[offset + 20 : offset + 22], "little")
        elif chunk_id == b"data":
            if not block_align or chunk_size in (0, 0xFFFFFFFF):
                return None  # streaming writers leave the size open; nothing to compare
            return chunk_size // block_align
        offset += 8 + chunk_size + (chunk_size & 1)
    return None
