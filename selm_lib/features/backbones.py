"""Frozen speech encoders behind one interface: SELM, the baselines, few-shot and SER-Evals probes.

A :class:`BackboneSpec` names the encoder (a tiny random preset, a Hugging Face name found in the
local cache, or a local folder written with ``save_pretrained``) and the hidden state to keep.
:func:`load_backbone` turns it into a :class:`Backbone` whose :meth:`Backbone.encode` maps a batch
of mono 16 kHz clips to per-clip frame features. No call ever reaches the network.

Which hidden state ``layer`` selects (wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper and
w2v-BERT 2.0; CLAP: see its section below):

* ``0``: the input of the first transformer layer (CNN features after the feature projection and
  the convolutional position embedding; Whisper: conv stem + sinusoidal positions; w2v-BERT: the
  feature projection of the stacked log-mel rows).
* ``i`` (1..num_layers): the output of transformer layer ``i``, before any final encoder LayerNorm.
* ``"last"``: the model's ``last_hidden_state``. For post-LN encoders (wav2vec2-base, HuBERT-base,
  data2vec-audio) it equals ``num_layers``; for pre-LN encoders (``do_stable_layer_norm`` large
  models, Whisper) it carries the encoder's final LayerNorm, as SER-Evals uses it. w2v-BERT's
  Conformer layers end in their own LayerNorm and the encoder adds none, so ``"last"`` equals
  ``num_layers`` (unless the config adds an intermediate FFN, which ``"last"`` then includes).
* ``"all"``: the ``num_layers + 1`` states ``0..num_layers`` stacked, ``(L+1, frames, hidden)``.

For an integer layer only the first ``layer`` transformer layers are kept in memory and the forward
pass stops there (SELM's layer 4 of a wav2vec2-base-sized model: 1.7x faster on CPU than the full
model; the CNN front end is the rest of the cost).

Padding, and why batching is exact here. transformers 5 zeroes padded frames and masks attention
when it gets an ``attention_mask``, which makes batched output equal single-clip output for the
LayerNorm-CNN models (HuBERT/WavLM/wav2vec2 large, ``feat_extract_norm="layer"``). Two
architectures still leak padding into a clip's own frames, and both are corrected by hooks:

* ``feat_extract_norm="group"`` (wav2vec2-base, HuBERT-base, WavLM-base): the first CNN layer's
  GroupNorm normalises each channel over the whole padded time axis, so the zeros of the padding
  shift every frame of a shorter clip (measured 0.1-0.3 absolute on a random tiny model). Hugging
  Face's advice for such checkpoints is "pad with zeros, pass no mask", which keeps that error and
  adds attention to padded frames. We instead pass the mask and recompute that GroupNorm over each
  clip's own frames, so every clip is encoded exactly as it would be alone.
* data2vec-audio: its stack of positional conv layers spreads non-zero values from padded frames
  back into the last ~``layers * kernel/2`` frames of a shorter clip; a hook re-zeroes padded
  frames after each positional conv layer.

With these, batch encode equals single encode to float32 rounding (about 1e-5) for every preset.
Whisper needs none of it: each clip is padded to its fixed 30 s log-mel window on its own.
w2v-BERT and CLAP need none either (see their sections).

Long clips are encoded in chunks so that memory does not grow with clip length. Chunks are cut on
the frame grid with a context margin (1 s each side, fewer for tiny chunks) that is encoded but
dropped, and each chunk's sample range is chosen so its CNN yields exactly the frames it owns; the
concatenation has exactly :meth:`Backbone.num_frames` frames. Values differ from a whole-clip pass
only through the limited attention context (and, for GroupNorm CNNs, the per-chunk normalisation
statistics): see ``tests/test_backbones.py`` for the measured tolerance.

w2v-BERT 2.0 (arch ``"wav2vec2-bert"``, ``facebook/w2v-bert-2.0``; preset ``tiny-w2v-bert``). The
input is the checkpoint's ``SeamlessM4TFeatureExtractor``: Kaldi-style 80-bin log-mel frames
(25 ms window, 10 ms hop, no centring, so ``m = 1 + (n - 400) // 160`` frames for ``n >= 400``
samples), normalised per mel bin over the whole clip (mean, ``ddof=1`` variance) and stacked in
pairs into 160-dimensional rows at 50 rows/s. An odd last frame enters the statistics but makes
no row, so a clip gives ``m // 2`` frames, one per row (the same count as a CNN with a 560-sample
receptive field and a 320-sample hop; rows past the end of a clip are what the extractor's own
``attention_mask`` marks as padding). The log-mel frames are computed in bounded segments (frames
are local; the extractor's output is unchanged) and normalised with the whole clip's statistics
before any chunking, as the CNN models' waveforms are. Batches are padded in row space with an
attention mask: the encoder zeroes padded rows, masks attention, masks the Conformer convolution
module's input and its depthwise convolution is causal (left padded), so right padding never
reaches a clip's own frames. Long clips are chunked on the row grid with the same context margins
as the CNN models.

CLAP audio encoder (arch ``"clap"``: ``ClapAudioModel``, the HTS-AT Swin transformer of
``laion/clap-htsat-unfused``, ``laion/clap-htsat-fused``, ``laion/larger_clap_music_and_speech``;
preset ``tiny-clap-audio``). The package's audio is 16 kHz; CLAP's extractor expects its own rate
(48 kHz), so every clip (or chunk) is resampled inside the backbone with the package's polyphase
resampler (:func:`selm_lib.data.audio.resample`, ratio 3/1), then turned into the log-mel window by
the checkpoint's own ``ClapFeatureExtractor`` (``max_length_s`` = 10 s, padding as it ships,
``"repeatpad"``: a short clip is repeated to fill the window, then zero padded). The model sees a
fixed window, like Whisper: a clip's window never depends on the other clips of a batch, so batch
encode equals single encode. Its ``last_hidden_state`` is not a sequence of 20 ms frames but a
token grid, ``(hidden, F, T)`` per window: with the real geometry (spec_size 256, 4x4 patches, four
stages) ``T = 32`` time steps of 10 s / 32 = 312.5 ms and ``F = 2`` frequency bands (low, high half
of the mel axis). SER-Evals applies its head to every one of these tokens and averages the logits
(its embeddings are the whole grid flattened), so a *frame* here is one token: the grid is
flattened time-major, frame ``k = t * F + f``, which keeps every token the head would see and keeps
the frame axis in time order (``frame_rate = F * T / 10 s = 6.4`` frames/s). A clip of ``n``
samples keeps the time steps that overlap it, ``F * ceil(n / S)`` frames with ``S`` = 10 s * 16 kHz
/ T samples per step (5000): at least one step for any non-empty clip; the steps after the clip,
which hold only the repeat padding, are dropped (as Whisper keeps its first ``len // 320``
frames; SER-Evals keeps the whole window). Longer clips are cut into windows on the step grid with
the usual context margin (3 steps each side), never with the extractor's random crop
(``rand_trunc``) or random fusion crops, so encoding is deterministic. Fused checkpoints
(``enable_fusion``) run their global branch with ``is_longer = False``, what they do for every clip
that fits the window; the extractor's random ``is_longer`` flag is discarded and NumPy's global
random state is left untouched. A *layer* is a Swin block of the last stage, the only blocks on the
final token grid and width (earlier stages have finer grids and narrower states): ``0`` is the
input of the last stage (the patch merging output of the stage before), ``i`` the output of its
block ``i`` (``num_layers = depths[-1]``, 2 for HTS-AT's depths (2, 2, 6, 2)), ``"last"`` the
encoder's ``last_hidden_state`` (after its final LayerNorm), ``"all"`` the ``depths[-1] + 1``
states. Every state is reordered to the same time-major frames.

``preset:logmel`` (arch ``"logmel"``) is a non-neural baseline with no weights
(:class:`LogMelBackbone`): ``log(mel + 1e-6)`` of the power spectrum, 80 Slaney mel bands over
0-8 kHz (librosa/Whisper filterbank), 25 ms periodic Hann window (400 samples), hop 320 samples so
it runs at 50 frames/s like the neural backbones. Frames are centred (the clip is zero padded by
200 samples each side), so frame ``i`` is centred on sample ``320 * i`` and a clip of ``n``
samples gives ``1 + n // 320`` frames (at least one, even for a clip shorter than a window). No
per-utterance normalisation (the probe head has its own LayerNorm). ``hidden_size`` 80,
``num_layers`` 0: layer ``0`` and ``"last"`` are the log-mel frames, ``"all"`` stacks them as
``(1, frames, 80)``. Every clip is transformed on its own length, so batch encode equals single
encode exactly. It has nothing to save: :func:`save_preset` refuses it with a clear error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16_000
PRESET_PREFIX = "preset:"
CNN_ARCHITECTURES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")  # raw waveform + CNN
ARCHITECTURES = (*CNN_ARCHITECTURES, "whisper", "wav2vec2-bert", "clap")
_ARCH_ALIASES = {"clap_audio_model": "clap"}  # a bare ClapAudioModel folder is the CLAP family
CHUNK_CONTEXT_SECONDS = 1.0  # context encoded (and dropped) on each side of a chunk
WHISPER_SAMPLES_PER_FRAME = 320  # 10 ms mel hop x conv stride 2
# SeamlessM4TFeatureExtractor (w2v-BERT): Kaldi frames of 400 samples every 160 (fixed in its code).
KALDI_WINDOW, KALDI_HOP = 400, 160

# Standard wav2vec2 CNN: kernels/strides give 400-sample receptive field, 320-sample hop (50 Hz).
_CONV = {
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
}
# 128 random CNN channels keep more of the spectrum than 32 (a random filterbank: measured
# emotion probe on synthetic EmoDB 0.64 vs 0.48 with 32), at ~2x the cost of a tiny model.
_SMALL_CNN = {"conv_dim": (128, 128, 128, 128, 128, 128, 128), **_CONV}
_PROVENANCE_KEYS = {
    "_name_or_path",
    "architectures",
    "transformers_version",
    "dtype",
    "torch_dtype",
}
_NO_SPEC_AUGMENT = {"mask_time_prob": 0.0, "mask_feature_prob": 0.0, "layerdrop": 0.0}

#: Weight-free signal-processing presets (``preset:<name>``): not transformers models.
LOGMEL = {
    "n_mels": 80,
    "n_fft": 400,  # 25 ms periodic Hann window at 16 kHz
    "hop": 320,  # 20 ms: 50 frames/s like the CNN backbones
    "f_min": 0.0,
    "f_max": SAMPLE_RATE / 2,
    "mel_scale": "slaney",
    "eps": 1e-6,
}
SIGNAL_PRESETS: dict[str, dict[str, Any]] = {"logmel": LOGMEL}

#: Tiny random configurations (model_type + config keyword arguments). Each mirrors one real family:
#: wav2vec2/HuBERT-base (GroupNorm CNN, post-LN), HuBERT/WavLM-large (LayerNorm CNN, pre-LN),
#: data2vec-audio (LayerNorm CNN, positional conv stack) and a Whisper encoder with its real 30 s
#: window (1500 positions, 80 mel bins). All run at 50 frames/s.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-wav2vec2": {
        "model_type": "wav2vec2",
        **_SMALL_CNN,
        **_NO_SPEC_AUGMENT,
        "hidden_size": 64,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "feat_extract_norm": "group",
        "do_stable_layer_norm": False,
    },
    "tiny-hubert": {
        "model_type": "hubert",
        **_SMALL_CNN,
        **_NO_SPEC_AUGMENT,
        "hidden_size": 80,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 160,
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
    },
    "tiny-wavlm": {
        "model_type": "wavlm",
        **_SMALL_CNN,
        **_NO_SPEC_AUGMENT,
        "hidden_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 192,
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
        "num_buckets": 64,
        "max_bucket_distance": 200,
    },
    "tiny-data2vec-audio": {
        "model_type": "data2vec-audio",
        **_SMALL_CNN,
        **_NO_SPEC_AUGMENT,
        "hidden_size": 64,
        "num_hidden_layers": 5,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    },
    "tiny-whisper": {
        "model_type": "whisper",
        "num_mel_bins": 80,
        "d_model": 64,
        "encoder_layers": 4,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_layers": 1,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": 128,
        "max_source_positions": 1500,  # the real 30 s window: 3000 mel frames -> 1500 positions
        "max_target_positions": 32,
        "vocab_size": 64,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 1,
        "suppress_tokens": [],
        "begin_suppress_tokens": [],
        "forced_decoder_ids": None,
    },
}
PRESETS["tiny-w2v-bert"] = {
    # w2v-BERT 2.0 (Conformer over stacked log-mel rows): relative_key positions (64 left, 8 right)
    # and the causal depthwise convolution of the real model, at a fraction of its width.
    "model_type": "wav2vec2-bert",
    **_NO_SPEC_AUGMENT,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "feature_projection_input_dim": 160,  # 80 mel bins x stride 2
    "conv_depthwise_kernel_size": 15,
    "position_embeddings_type": "relative_key",
    "left_max_position_embeddings": 64,
    "right_max_position_embeddings": 8,
    "add_adapter": False,
    "use_intermediate_ffn_before_adapter": False,
}
PRESETS["tiny-clap-audio"] = {
    # A whole ClapModel as LAION ships it (the text tower is tiny and dropped at load). The audio
    # tower keeps the real HTS-AT geometry, so the real 10 s window, 64 mel bins and 2 x 32 token
    # grid, with narrow stages (8, 16, 32, 64 channels) and the real last stage of two blocks.
    "model_type": "clap",
    "audio_config": {
        "spec_size": 256,
        "num_mel_bins": 64,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "window_size": 8,
        "patch_embeds_hidden_size": 8,
        "depths": [1, 1, 1, 2],
        "num_attention_heads": [1, 2, 4, 8],
        "hidden_size": 64,
        "enable_fusion": False,
        "hidden_dropout_prob": 0.0,
        "drop_path_rate": 0.0,
    },
    "text_config": {
        "vocab_size": 64,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 40,
    },
    "projection_dim": 16,
}
# The same Whisper encoder with a 10 s window (500 positions): clips are still padded to the
# window and cut to len // 320 frames, longer ones chunked by window, at a third of the cost of
# the 30 s window on a CPU. The SER-Evals default uses it; real Whisper checkpoints are 30 s.
PRESETS["tiny-whisper-10s"] = {**PRESETS["tiny-whisper"], "max_source_positions": 500}


class BackboneError(ValueError):
    """A backbone that cannot be loaded or used; the message names the params key and the fix."""


@dataclass(frozen=True)
class BackboneSpec:
    """What to load and which hidden state to keep. Hashable; part of the feature cache key."""

    source: str  # "preset:tiny-wav2vec2" | Hugging Face name (local cache only) | local folder
    layer: int | str  # 0..num_layers | "last" | "all" (see the module docstring)
    seed: int = 0  # init seed for presets (ignored for pretrained weights)
    chunk_seconds: float = 20.0  # longer clips are encoded in bounded chunks (Whisper: its 30 s)
    max_seconds: float | None = None  # audio cut to this length before encoding (None: whole)
    params_key: str = "features.backbones"  # prefix for error messages

    def key(self, field: str) -> str:
        """The params key of one field, e.g. ``features.backbones.tiny_w2v.layer``."""
        prefix = self.params_key
        if prefix.rstrip(".").endswith("backbones"):  # no backbone name given: show a placeholder
            prefix = f"{prefix.rstrip('.')}.<name>"
        return f"{prefix}.{field}"

    def as_dict(self) -> dict[str, Any]:
        """The fields that change the features (``params_key`` only changes messages)."""
        data = dataclasses.asdict(self)
        data.pop("params_key")
        return data


class _StopForward(Exception):
    """Raised by a hook once the requested hidden state is captured (skips the later layers)."""


class Backbone:
    """A frozen encoder in eval mode; see the module docstring for layers, padding and chunks."""

    spec: BackboneSpec
    arch: str
    hidden_size: int
    num_layers: int
    frame_rate: float
    device: torch.device

    def __init__(
        self,
        model: nn.Module,
        config: Any,
        spec: BackboneSpec,
        device: torch.device,
        *,
        normalize: bool = True,
        feature_extractor: Any = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.arch = _arch(config, spec)
        self.device = device
        self.normalize = normalize  # zero-mean unit-variance per clip, as the checkpoint expects
        # The checkpoint's own front end: Whisper / SeamlessM4T (w2v-BERT) / CLAP log-mel extractor.
        self.feature_extractor = feature_extractor
        self._freq_bins = 1  # frames per time step (CLAP: its F frequency bands; else 1)
        window_frames = 0  # fixed input window in time steps (Whisper, CLAP; 0: none)
        if self.arch == "whisper":
            self.hidden_size = int(config.d_model)
            self.num_layers = int(config.encoder_layers)
            self._stride, self._receptive = WHISPER_SAMPLES_PER_FRAME, WHISPER_SAMPLES_PER_FRAME
            self._conv: list[tuple[int, int]] = []
            window_frames = int(config.max_source_positions)
            self._max_samples = window_frames * WHISPER_SAMPLES_PER_FRAME
        elif self.arch == "clap":
            window_frames, self._freq_bins, step = _clap_geometry(config, feature_extractor, spec)
            self.hidden_size = int(config.patch_embeds_hidden_size * 2 ** (len(config.depths) - 1))
            self.num_layers = int(config.depths[-1])
            self._stride, self._receptive, self._conv = step, step, []
            self._clap_segments = int(config.spec_size) // int(config.num_mel_bins)  # freq_ratio
            self._max_samples = window_frames * step
        else:
            if getattr(config, "add_adapter", False):
                raise BackboneError(
                    f"{spec.key('source')} = {spec.source!r}: configs with add_adapter=True "
                    "change the frame rate and are not supported; use the encoder without adapter"
                )
            self.hidden_size = int(config.hidden_size)
            self.num_layers = int(config.num_hidden_layers)
            if self.arch == "wav2vec2-bert":
                _check_seamless_extractor(feature_extractor, config, spec)
                stack = int(feature_extractor.stride)
                # Kaldi frames, then rows of `stack` frames: frame counts as a two-layer "CNN".
                self._conv = [(KALDI_WINDOW, KALDI_HOP), (stack, stack)]
            else:
                self._conv = list(zip(config.conv_kernel, config.conv_stride, strict=True))
            self._stride = math.prod(s for _, s in self._conv)
            self._receptive = 1 + sum(
                (k - 1) * math.prod(s for _, s in self._conv[:i])
                for i, (k, _) in enumerate(self._conv)
            )
            self._max_samples = int(round(spec.chunk_seconds * SAMPLE_RATE))
        step_rate = SAMPLE_RATE / self._stride  # time steps per second
        self.frame_rate = step_rate * self._freq_bins
        self.layer = _check_layer(spec, self.num_layers, self.arch)

        # Chunk plan in time steps: K kept steps per chunk plus C context steps on each side.
        if window_frames:
            chunk_frames = window_frames  # the fixed window bounds memory whatever the clip
        else:
            chunk_frames = int(spec.chunk_seconds * step_rate)
        if chunk_frames < 4:
            raise BackboneError(
                f"chunk_seconds = {spec.chunk_seconds} is too small (at least "
                f"{4 / step_rate:g} s); set features.chunk_seconds to a larger value"
            )
        self._context = min(round(CHUNK_CONTEXT_SECONDS * step_rate), chunk_frames // 4)
        self._chunk_keep = chunk_frames - 2 * self._context

        self.model = model.eval().requires_grad_(False).to(device)
        self._layers = _transformer_layers(self.model, self.arch)
        if isinstance(self.layer, int) and self.layer < self.num_layers:
            # Free the layers never reached (keep one for layer 0: its pre-hook stops the pass).
            del self._layers[max(self.layer, 1) :]
        self._captured: list[torch.Tensor] | None = None
        self._stop_at: int | None = None
        self._lengths: list[int] | None = None  # per-clip samples of a padded batch (else None)
        self._install_hooks()
        self._fingerprint: str | None = None

    # ----------------------------------------------------------------------------- public API
    def num_frames(self, num_samples: int) -> int:
        """Exact number of output frames for a clip of ``num_samples`` 16 kHz samples."""
        n = int(num_samples)
        if self.arch == "whisper":
            return max(n, 0) // WHISPER_SAMPLES_PER_FRAME
        if self.arch == "clap":  # every time step that overlaps the clip, F frames each
            return self._freq_bins * -(-max(n, 0) // self._stride)
        for kernel, stride in self._conv:
            if n < kernel:
                return 0
            n = (n - kernel) // stride + 1
        return n

    def cost_samples(self, num_samples: int) -> int:
        """Samples the encoder actually processes for a clip (Whisper pads to 30 s windows,
        CLAP to its 10 s windows, one per chunk)."""
        if self.arch == "whisper":
            return max(1, math.ceil(num_samples / self._max_samples)) * self._max_samples
        if self.arch == "clap":
            steps = self.num_frames(num_samples) // self._freq_bins
            windows = 1 if num_samples <= self._max_samples else -(-steps // self._chunk_keep)
            return windows * self._max_samples
        return int(num_samples)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encode one batch of mono 16 kHz clips of any lengths.

        Returns per clip a float32 array ``(frames, hidden)`` (int or ``"last"`` layer) or
        ``(num_layers + 1, frames, hidden)`` (``"all"``), with ``frames == num_frames(len(clip))``.
        Clips up to ``chunk_seconds`` (Whisper: its 30 s window, CLAP: its 10 s window) go through
        one padded forward pass; longer clips are encoded chunk by chunk.
        """
        clips = [self._prepare(w, i) for i, w in enumerate(waveforms)]
        outputs: list[np.ndarray | None] = [None] * len(clips)
        short = []
        for i, clip in enumerate(clips):
            if self.num_frames(len(clip)) == 0:
                outputs[i] = self._empty(0)
            elif len(clip) <= self._max_samples:
                short.append(i)
            else:
                outputs[i] = self._encode_long(clip)
        if short:
            encoded = self._forward([clips[i] for i in short])
            for i, array in zip(short, encoded, strict=True):
                outputs[i] = array
        return [o for o in outputs if o is not None]

    def fingerprint(self) -> str:
        """sha256 of the kept weights and the config: changes when the backbone's weights do."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            config = {
                k: v for k, v in self.config.to_dict().items() if k not in _PROVENANCE_KEYS
            }  # where the weights came from does not change them
            digest.update(json.dumps(config, sort_keys=True, default=str).encode())
            digest.update(f"normalize={self.normalize}".encode())
            if self.arch in _FRONT_END_KEYS:  # the log-mel settings these models are fed with
                keys = _FRONT_END_KEYS[self.arch]
                front = {k: getattr(self.feature_extractor, k, None) for k in keys}
                digest.update(json.dumps(front, sort_keys=True, default=str).encode())
            for name, tensor in sorted(self.model.state_dict().items()):
                array = tensor.detach().to("cpu").contiguous()
                digest.update(f"{name}:{array.dtype}:{tuple(array.shape)}".encode())
                # reshape: 0-d buffers (BatchNorm's num_batches_tracked) cannot be viewed as bytes
                digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def __repr__(self) -> str:
        return (
            f"Backbone({self.spec.source!r}, arch={self.arch}, layer={self.layer!r}, "
            f"hidden={self.hidden_size}, layers={self.num_layers}, device={self.device})"
        )

    # ----------------------------------------------------------------------------- internals
    def _prepare(self, waveform: np.ndarray, index: int) -> np.ndarray:
        clip = np.asarray(waveform, dtype=np.float32)
        if clip.ndim != 1:
            raise ValueError(f"clip {index}: expected a mono 1-D waveform, got shape {clip.shape}")
        if not np.isfinite(clip).all():
            raise ValueError(f"clip {index}: waveform holds NaN or Inf samples")
        if self.normalize and clip.size:
            # Whole-clip statistics (before chunking), as Wav2Vec2FeatureExtractor does per clip.
            mean, var = float(clip.mean(dtype=np.float64)), float(clip.var(dtype=np.float64))
            clip = ((clip - mean) / math.sqrt(var + 1e-7)).astype(np.float32)
        return clip

    def _empty(self, frames: int) -> np.ndarray:
        shape = (frames, self.hidden_size)
        if self.layer == "all":
            shape = (self.num_layers + 1, *shape)
        return np.zeros(shape, dtype=np.float32)

    def _encode_long(self, clip: np.ndarray) -> np.ndarray:
        """Chunks on the step grid: steps [lo, hi) need samples [lo*S, (hi-1)*S + R).

        w2v-BERT chunks its whole-clip normalised rows instead (one row per step); CLAP's steps
        hold ``F`` frames each."""
        total = self.num_frames(len(clip)) // self._freq_bins
        rows = self._bert_rows(clip) if self.arch == "wav2vec2-bert" else None
        per_step = self._freq_bins
        pieces = []
        for start in range(0, total, self._chunk_keep):
            stop = min(total, start + self._chunk_keep)
            lo, hi = max(0, start - self._context), min(total, stop + self._context)
            if rows is not None:
                (array,) = self._forward_rows([rows[lo:hi]])
            else:
                end = len(clip) if hi == total else (hi - 1) * self._stride + self._receptive
                (array,) = self._forward([clip[lo * self._stride : end]])
            # drop the context steps
            pieces.append(array[..., (start - lo) * per_step : (stop - lo) * per_step, :])
        return np.concatenate(pieces, axis=-2)

    def _forward(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """One padded forward pass; every output cut to its clip's own frame count."""
        if self.arch == "wav2vec2-bert":
            return self._forward_rows([self._bert_rows(c) for c in clips])
        frames = [self.num_frames(len(c)) for c in clips]
        if self.arch == "whisper":
            features = self.feature_extractor(
                clips, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding="max_length"
            ).input_features  # (B, mels, 3000): each clip padded to the window on its own
            inputs = {"input_features": features.to(self.device)}
        elif self.arch == "clap":
            inputs = self._clap_inputs(clips)
        else:
            longest = max(len(c) for c in clips)
            batch = np.zeros((len(clips), longest), dtype=np.float32)  # (B, N) zero padded
            for row, clip in enumerate(clips):
                batch[row, : len(clip)] = clip
            inputs = {"input_values": torch.from_numpy(batch).to(self.device)}
            if any(len(c) < longest for c in clips):
                self._lengths = [len(c) for c in clips]
                lengths = torch.tensor(self._lengths, device=self.device)
                mask = torch.arange(longest, device=self.device)[None, :] < lengths[:, None]
                inputs["attention_mask"] = mask.long()  # (B, N)
        return self._run(inputs, frames)

    def _forward_rows(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """w2v-BERT: one forward pass over per-clip feature rows, padded with a row mask."""
        frames = [len(r) for r in rows]
        longest, width = max(frames), rows[0].shape[1]
        pad = float(getattr(self.feature_extractor, "padding_value", 0.0))
        batch = np.full((len(rows), longest, width), pad, dtype=np.float32)  # (B, T, 160)
        for row, array in enumerate(rows):
            batch[row, : len(array)] = array
        inputs = {"input_features": torch.from_numpy(batch).to(self.device)}
        if any(n < longest for n in frames):
            lengths = torch.tensor(frames, device=self.device)
            mask = torch.arange(longest, device=self.device)[None, :] < lengths[:, None]
            inputs["attention_mask"] = mask.long()  # (B, T): what the extractor returns
        return self._run(inputs, frames)

    def _run(self, inputs: dict[str, torch.Tensor], frames: list[int]) -> list[np.ndarray]:
        """Run the model on prepared inputs; keep the requested state, cut to ``frames``."""
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda"
            else torch.autocast("cpu", enabled=False)
        )
        self._captured = []
        self._stop_at = self.layer if isinstance(self.layer, int) else None
        try:
            with torch.inference_mode(), autocast, warnings.catch_warnings():
                # WavLM hands torch a bool padding mask with a float position bias: harmless.
                warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
                try:
                    output = self.model(**inputs)
                    last = self._frames_of_last(output.last_hidden_state)
                except _StopForward:
                    last = None
            captured = [self._frames_of_state(state) for state in self._captured]
            if self.layer == "all":
                hidden = torch.stack(captured, dim=1)  # (B, L+1, T, D)
            elif self.layer == "last":
                hidden = last  # (B, T, D)
            else:
                hidden = captured[0]  # (B, T, D)
            hidden = hidden.float().cpu().numpy()
        finally:
            self._captured, self._stop_at, self._lengths = None, None, None
        return [np.ascontiguousarray(hidden[row, ..., :n, :]) for row, n in enumerate(frames)]

    def _frames_of_state(self, state: torch.Tensor) -> torch.Tensor:
        """A captured hidden state as ``(B, frames, D)``. CLAP's Swin tokens ``(B, H*W, D)`` are
        row-major over the last stage's image grid, whose rows are ``freq_ratio`` time segments
        of ``F`` bands and whose columns are time within a segment: reorder to time-major."""
        if self.arch != "clap":
            return state
        batch, _, width = state.shape
        segments = self._clap_segments
        grid = state.reshape(batch, segments, self._freq_bins, -1, width)  # (B, S, F, W, D)
        return grid.permute(0, 1, 3, 2, 4).reshape(batch, -1, width)  # frame = t * F + f

    def _frames_of_last(self, last: torch.Tensor) -> torch.Tensor:
        """``last_hidden_state`` as ``(B, frames, D)``; CLAP's is ``(B, D, F, T)``."""
        if self.arch != "clap":
            return last
        batch, width = last.shape[:2]
        return last.permute(0, 3, 2, 1).reshape(batch, -1, width)  # frame = t * F + f

    def _bert_rows(self, clip: np.ndarray) -> np.ndarray:
        """w2v-BERT input rows of one clip, ``(num_frames, mels * stride)`` float32: the
        checkpoint's SeamlessM4T log-mel frames, computed in bounded segments, normalised per mel
        bin over the whole clip and stacked (see the module docstring)."""
        extractor = self.feature_extractor
        mels, stack = int(extractor.num_mel_bins), int(extractor.stride)
        kaldi = 0 if len(clip) < KALDI_WINDOW else 1 + (len(clip) - KALDI_WINDOW) // KALDI_HOP
        rows = kaldi // stack
        if rows == 0:
            return np.zeros((0, mels * stack), dtype=np.float32)
        # Segments of an even multiple of `stack` frames (frames are local: exact output).
        segment = max(
            stack, int(self.spec.chunk_seconds * SAMPLE_RATE / KALDI_HOP) // stack * stack
        )
        pieces = []
        for first in range(0, kaldi, segment):
            last = min(kaldi, first + segment)
            samples = clip[first * KALDI_HOP : (last - 1) * KALDI_HOP + KALDI_WINDOW]
            stacked = extractor(
                [samples],
                sampling_rate=SAMPLE_RATE,
                do_normalize_per_mel_bins=False,
                pad_to_multiple_of=stack,
                return_tensors="np",
            ).input_features[0]  # (ceil(frames / stack), mels * stack), zero-row padded
            pieces.append(stacked.reshape(-1, mels)[: last - first])
        # (kaldi, mels) laid out frame-contiguous like the extractor's own array, so that NumPy
        # sums in the same order and the normalised rows equal the extractor's bit for bit.
        logmel = np.asfortranarray(np.concatenate(pieces, axis=0))
        # The extractor's own normalisation, over every frame of the clip (ddof=1 variance).
        normed = (logmel - logmel.mean(0, keepdims=True)) / np.sqrt(
            logmel.var(0, ddof=1, keepdims=True) + 1e-7
        )
        return np.ascontiguousarray(normed[: rows * stack].reshape(rows, mels * stack), np.float32)

    def _clap_inputs(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """CLAP: each clip resampled to the extractor's rate (48 kHz) and made into its own
        log-mel window by the checkpoint's extractor (see the module docstring)."""
        from selm_lib.data.audio import resample

        extractor = self.feature_extractor
        rate, window = int(extractor.sampling_rate), int(extractor.nb_max_samples)
        waves = [resample(clip, SAMPLE_RATE, rate)[:window] for clip in clips]
        state = np.random.get_state()  # "fusion" draws a random is_longer flag: leave no trace
        try:
            mel = extractor(
                waves, max_length=window, sampling_rate=rate, return_tensors="np"
            ).input_features  # (B, 1 or 4, mel frames, mels); the 4 fusion copies are equal
        finally:
            np.random.set_state(state)
        features = torch.from_numpy(np.ascontiguousarray(mel[:, :1], dtype=np.float32))
        inputs = {"input_features": features.to(self.device)}
        if getattr(self.config, "enable_fusion", False):  # global branch only: no clip is longer
            inputs["is_longer"] = torch.zeros(len(clips), 1, dtype=torch.bool, device=self.device)
        return inputs

    def _install_hooks(self) -> None:
        """Hooks that capture hidden states and keep padding out of each clip's frames."""

        def capture(state: torch.Tensor, index: int) -> None:
            if self._captured is None:
                return
            if self.layer == "all" or index == self._stop_at:
                self._captured.append(state)
            if index == self._stop_at:
                raise _StopForward

        def before_first(_module, args, kwargs):
            state = args[0] if args else kwargs["hidden_states"]
            capture(state, 0)

        self._layers[0].register_forward_pre_hook(before_first, with_kwargs=True)
        for position, layer in enumerate(self._layers, start=1):

            def after(_module, _args, output, index=position):
                capture(output[0] if isinstance(output, tuple) else output, index)

            layer.register_forward_hook(after)

        if self.arch not in CNN_ARCHITECTURES:
            return  # log-mel front ends: nothing of the padding reaches a clip's own frames
        # GroupNorm in the CNN: recompute over each clip's own frames (see module docstring).
        conv_layers = getattr(self.model.feature_extractor, "conv_layers", [])
        for depth, conv_layer in enumerate(conv_layers):
            for module in conv_layer.modules():
                if isinstance(module, nn.GroupNorm):
                    module.register_forward_hook(self._masked_group_norm_hook(depth + 1))
        # data2vec-audio positional conv stack: re-zero padded frames between its layers.
        pos_conv = getattr(getattr(self.model, "encoder", None), "pos_conv_embed", None)
        for module in getattr(pos_conv, "layers", []):
            module.register_forward_hook(self._zero_padding_hook())

    def _lengths_after(self, convs: int | None) -> list[int] | None:
        """Each clip's own length after the first ``convs`` CNN layers (None: all of them)."""
        if self._lengths is None:
            return None
        lengths = []
        for n in self._lengths:
            for kernel, stride in self._conv[: len(self._conv) if convs is None else convs]:
                n = max(0, (n - kernel) // stride + 1)
            lengths.append(n)
        return lengths

    def _masked_group_norm_hook(self, convs: int) -> Callable:
        def hook(module: nn.GroupNorm, args, output):
            lengths = self._lengths_after(convs)
            if lengths is None:
                return None  # single clip or equal lengths: the native result is exact
            x = args[0]  # (B, C, T)
            for row, n in enumerate(lengths):
                if n < x.shape[-1]:
                    # The same kernel on the clip's own frames = what the clip gets alone;
                    # row by row so no batch-sized temporaries (this layer is the largest).
                    alone = nn.functional.group_norm(
                        x[row : row + 1, :, :n],
                        module.num_groups,
                        module.weight,
                        module.bias,
                        module.eps,
                    )  # (1, C, n)
                    output[row, :, :n] = alone[0].to(output.dtype)
            return output

        return hook

    def _zero_padding_hook(self) -> Callable:
        def hook(_module, _args, output):
            lengths = self._lengths_after(None)
            if lengths is None:
                return None
            for row, n in enumerate(lengths):
                output[row, :, n:] = 0  # (B, D, T): padded frames back to zero
            return output

        return hook


class LogMelBackbone(Backbone):
    """``preset:logmel``: log-mel frames with no weights (see the module docstring).

    Same interface as :class:`Backbone` (``encode``, ``num_frames``, ``cost_samples``,
    ``fingerprint``, ``layer``, ``hidden_size``, ``num_layers``, ``frame_rate``), so
    :func:`selm_lib.features.extract.compute_features` uses it unchanged. Runs on CPU or CUDA,
    float32.
    """

    def __init__(self, spec: BackboneSpec, device: torch.device) -> None:
        self.spec = spec
        self.arch = "logmel"
        self.device = device
        self.config = dict(LOGMEL)
        self.normalize = False  # raw waveform, raw log-mel: no per-utterance normalisation
        self.feature_extractor = None
        self.model = None
        self.hidden_size = int(LOGMEL["n_mels"])
        self.num_layers = 0
        self._n_fft, self._stride = int(LOGMEL["n_fft"]), int(LOGMEL["hop"])
        self.frame_rate = SAMPLE_RATE / self._stride
        self.layer = _check_logmel_layer(spec)
        # Bounded memory for long clips: frames are independent, so chunks change nothing.
        self._chunk_frames = max(1, int(spec.chunk_seconds * self.frame_rate))
        self._window = torch.hann_window(self._n_fft, periodic=True, dtype=torch.float64)
        self._window = self._window.float().to(device)
        self._fbank = mel_filterbank().to(device)  # (n_fft // 2 + 1, n_mels)
        self._fingerprint = None

    def num_frames(self, num_samples: int) -> int:
        """``1 + n // 320``: centred frames (zero padding of half a window on each side)."""
        return 1 + max(int(num_samples), 0) // self._stride

    def cost_samples(self, num_samples: int) -> int:
        return int(num_samples)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per clip float32 ``(frames, 80)`` (layer 0 / ``"last"``) or ``(1, frames, 80)``
        (``"all"``), ``frames == num_frames(len(clip))``; each clip on its own length."""
        clips = [self._prepare(w, i) for i, w in enumerate(waveforms)]
        outputs = []
        for clip in clips:
            frames = self._log_mel(clip)
            outputs.append(frames[None] if self.layer == "all" else frames)
        return outputs

    def fingerprint(self) -> str:
        """Constant: sha256 of the log-mel settings (there are no weights)."""
        if self._fingerprint is None:
            payload = json.dumps({"arch": self.arch, **LOGMEL}, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()
        return self._fingerprint

    def _log_mel(self, clip: np.ndarray) -> np.ndarray:
        total, half = self.num_frames(len(clip)), self._n_fft // 2
        with torch.inference_mode():
            signal = torch.from_numpy(clip).to(self.device)
            signal = nn.functional.pad(signal, (half, half))  # centred frames, zero padding
            pieces = []
            for start in range(0, total, self._chunk_frames):
                stop = min(total, start + self._chunk_frames)
                segment = signal[start * self._stride : (stop - 1) * self._stride + self._n_fft]
                spectrum = torch.stft(
                    segment,
                    n_fft=self._n_fft,
                    hop_length=self._stride,
                    window=self._window,
                    center=False,
                    return_complex=True,
                )  # (n_fft // 2 + 1, frames)
                power = spectrum.abs().square().T  # (frames, freqs)
                pieces.append(torch.log(power @ self._fbank + float(LOGMEL["eps"])))
            out = torch.cat(pieces, dim=0).cpu().numpy()
        assert out.shape[0] == total
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"LogMelBackbone(layer={self.layer!r}, mels={self.hidden_size}, device={self.device})"
        )


def mel_filterbank(
    n_mels: int = LOGMEL["n_mels"],
    n_fft: int = LOGMEL["n_fft"],
    f_min: float = LOGMEL["f_min"],
    f_max: float = LOGMEL["f_max"],
) -> torch.Tensor:
    """Slaney mel filterbank ``(n_fft // 2 + 1, n_mels)``, float32, area-normalised triangles
    (librosa's default and Whisper's; equals torchaudio's ``melscale_fbanks(norm="slaney",
    mel_scale="slaney")``). With a 400-point FFT no band is empty."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        hz = np.asarray(hz, dtype=np.float64)
        linear = hz / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log, linear)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        linear = mel * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log, linear)

    freqs = np.linspace(0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return torch.from_numpy(bank.astype(np.float32))


def _check_logmel_layer(spec: BackboneSpec) -> int | str:
    layer = spec.layer
    if isinstance(layer, str) and layer.strip() == "0":
        layer = 0
    if isinstance(layer, str) and layer in ("last", "all"):
        return layer
    if isinstance(layer, int) and not isinstance(layer, bool) and layer == 0:
        return layer
    raise BackboneError(
        f"{spec.key('layer')} = {spec.layer!r} is not valid for {spec.source}: it has no "
        "transformer layers (log-mel frames only), so use 0 or 'last' (the log-mel frames) or "
        "'all' (the same frames as (1, frames, 80))"
    )


def _known_presets() -> str:
    return ", ".join(PRESET_PREFIX + p for p in (*PRESETS, *SIGNAL_PRESETS))


# --------------------------------------------------------------------------------- loading
@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers 5 draws a bar per load/save; a feature stage logs enough without them."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def preset_config(name: str) -> Any:
    """The transformers config of a preset (``tiny-wav2vec2`` ... ``tiny-clap-audio``)."""
    from transformers import AutoConfig

    if name not in PRESETS:
        raise KeyError(name)
    kwargs = dict(PRESETS[name])
    return AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)


def _build_preset(name: str, seed: int) -> tuple[nn.Module, Any]:
    """Seeded random model from a preset config: the full model (Whisper: encoder + decoder,
    CLAP: audio + text towers), as the real checkpoint holds it."""
    from transformers import AutoModel

    config = preset_config(name)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config, dtype=torch.float32)
    return model, config


def _audio_extractor(arch: str, config: Any):
    """Default preprocessing for a preset (what save_preset writes next to the weights)."""
    from transformers import Wav2Vec2FeatureExtractor

    if arch == "whisper":
        return _whisper_extractor(config)
    if arch == "wav2vec2-bert":
        return _seamless_extractor(config)
    if arch in ("clap", "clap_audio_model"):
        return _clap_extractor(getattr(config, "audio_config", config))
    # return_attention_mask as Hugging Face ships it (False for GroupNorm CNNs); encode() always
    # masks and corrects GroupNorm itself, so this flag only matters to other readers.
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=getattr(config, "feat_extract_norm", "layer") == "layer",
    )


def _whisper_extractor(config: Any):
    """WhisperFeatureExtractor built from the model config (no download)."""
    from transformers import WhisperFeatureExtractor

    window_s = config.max_source_positions * 2 * 160 / SAMPLE_RATE  # 1500 pos -> 3000 mels -> 30 s
    return WhisperFeatureExtractor(
        feature_size=config.num_mel_bins,
        sampling_rate=SAMPLE_RATE,
        hop_length=160,
        chunk_length=int(round(window_s)),
        n_fft=400,
    )


def _seamless_extractor(config: Any):
    """w2v-BERT's SeamlessM4TFeatureExtractor (80 Kaldi mel bins stacked by 2), no download.
    Its ``padding_value`` never matters here: padded rows are masked."""
    from transformers import SeamlessM4TFeatureExtractor

    stride = 2
    mels = int(config.feature_projection_input_dim) // stride
    return SeamlessM4TFeatureExtractor(
        feature_size=mels,
        num_mel_bins=mels,
        sampling_rate=SAMPLE_RATE,
        stride=stride,
    )


def _clap_extractor(config: Any):
    """ClapFeatureExtractor for a CLAP audio config, no download: 48 kHz, 10 s window,
    ``repeatpad``; fused models get ``truncation="fusion"`` (torchaudio/HTK mel filters), unfused
    ones ``"rand_trunc"`` (librosa/Slaney filters), as LAION's checkpoints pair them. Clips never
    exceed the window here, so neither random crop is ever drawn."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(
        feature_size=int(config.num_mel_bins),
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        truncation="fusion" if config.enable_fusion else "rand_trunc",
        padding="repeatpad",
    )


def save_preset(preset: str, folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny preset with ``save_pretrained`` (weights, config, preprocessor config).

    Loading ``BackboneSpec(source=str(folder))`` then gives the same weights as
    ``BackboneSpec(source=f"preset:{preset}", seed=seed)``. ``logmel`` has no weights: it raises
    :class:`BackboneError` (use ``source="preset:logmel"`` directly).
    """
    if preset.startswith(PRESET_PREFIX):
        preset = preset[len(PRESET_PREFIX) :]
    if preset in SIGNAL_PRESETS:
        raise BackboneError(
            f"preset {preset!r} has no weights to save (a fixed log-mel transform); use "
            f"source '{PRESET_PREFIX}{preset}' directly"
        )
    if preset not in PRESETS:
        raise BackboneError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, config = _build_preset(preset, seed)
    with _no_progress_bars():
        model.save_pretrained(folder)
    arch = PRESETS[preset]["model_type"]
    _audio_extractor(arch, config).save_pretrained(folder)
    return folder


def load_backbone(spec: BackboneSpec, device: str = "auto") -> Backbone:
    """Load a frozen backbone; never downloads.

    ``device``: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    Raises :class:`BackboneError` naming the params key for an unknown preset, a name not in the
    local Hugging Face cache, a missing folder, an unsupported architecture or a bad layer.
    """
    torch_device = _device(device)
    source = str(spec.source).strip()
    if spec.chunk_seconds <= 0:
        raise BackboneError(
            f"chunk_seconds = {spec.chunk_seconds} must be > 0 (set features.chunk_seconds)"
        )
    if source.startswith(PRESET_PREFIX):
        name = source[len(PRESET_PREFIX) :]
        if name in SIGNAL_PRESETS:
            return LogMelBackbone(spec, torch_device)
        if name not in PRESETS:
            raise BackboneError(
                f"{spec.key('source')} = {source!r}: unknown preset {name!r}. "
                f"Known presets: {_known_presets()}"
            )
        model, config = _build_preset(name, spec.seed)
        arch = config.model_type
        if arch == "whisper":
            model = model.get_encoder()
        elif arch == "clap":
            model, config = model.audio_model, config.audio_config  # the audio tower only
        extractor = _audio_extractor(arch, config) if arch not in CNN_ARCHITECTURES else None
        return Backbone(
            model,
            config,
            spec,
            torch_device,
            normalize=arch in CNN_ARCHITECTURES,
            feature_extractor=extractor,
        )
    return _load_pretrained(source, spec, torch_device)


def _load_pretrained(source: str, spec: BackboneSpec, device: torch.device) -> Backbone:
    from transformers import AutoConfig, AutoModel, ClapAudioModel, ClapModel, WhisperModel

    folder = Path(source).expanduser()
    # Hub names are "name" or "org/name"; anything else that is not a folder is a missing path.
    looks_like_path = (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or (os.sep != "/" and os.sep in source)
    )
    if folder.is_dir():
        location = str(folder)
    elif looks_like_path:
        raise BackboneError(
            f"{spec.key('source')} = {source!r}: folder not found. Point it to a folder written "
            "with save_pretrained (config.json + model.safetensors), a Hugging Face name already "
            f"in the local cache, or a preset ({_known_presets()})."
        )
    else:
        location = source
    _refuse_remote_code(spec, location)
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        if "trust_remote_code" in str(error):
            raise _remote_code_error(spec) from error
        hint = ""
        if source in PRESETS or source in SIGNAL_PRESETS:
            hint = f" Did you mean '{PRESET_PREFIX}{source}'?"
        raise BackboneError(
            f"{spec.key('source')} = {source!r}: not found locally (not a preset, not a folder, "
            "not in the local Hugging Face cache) and the hub is offline here, so nothing is "
            "downloaded.\n  Fix: on a connected machine run\n"
            f'    python -c "from transformers import AutoModel, AutoFeatureExtractor as F; '
            f"AutoModel.from_pretrained('{source}').save_pretrained('models/NAME'); "
            f"F.from_pretrained('{source}').save_pretrained('models/NAME')\"\n"
            f"  (or `huggingface-cli download {source} --local-dir models/NAME`), copy the folder "
            f"here and set {spec.key('source')} to it.{hint} ({type(error).__name__})"
        ) from error
    arch = _arch(config, spec)
    with _no_progress_bars():
        if arch == "whisper":
            model = WhisperModel.from_pretrained(
                location, config=config, local_files_only=True, dtype=torch.float32
            ).get_encoder()  # encoder only; the decoder is dropped with the wrapper
        elif config.model_type == "clap":  # a whole ClapModel (LAION): keep the audio tower
            model = ClapModel.from_pretrained(
                location, config=config, local_files_only=True, dtype=torch.float32
            ).audio_model
            config = config.audio_config
        elif arch == "clap":  # a bare ClapAudioModel folder
            model = ClapAudioModel.from_pretrained(
                location, config=config, local_files_only=True, dtype=torch.float32
            )
        else:
            model = AutoModel.from_pretrained(
                location, config=config, local_files_only=True, dtype=torch.float32
            )
    normalize, extractor = _preprocessing(location, arch, config)
    return Backbone(model, config, spec, device, normalize=normalize, feature_extractor=extractor)


def _remote_code_error(spec: BackboneSpec) -> BackboneError:
    return BackboneError(
        f"{spec.key('source')} = {spec.source!r}: this checkpoint ships its own model code "
        "(config.json has an auto_map, as MERT's does) and loads only with "
        "trust_remote_code=True, which this package never sets (it would run code from the "
        "checkpoint). Choose a backbone that transformers implements (wav2vec2, hubert, wavlm, "
        "data2vec-audio, whisper, wav2vec2-bert, clap) or remove the entry."
    )


def _refuse_remote_code(spec: BackboneSpec, location: str) -> None:
    """A local folder whose config needs custom code is refused before transformers sees it."""
    config = Path(location) / "config.json"
    if config.is_file():
        try:
            needs_code = "auto_map" in json.loads(config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if needs_code:
            raise _remote_code_error(spec)


def _preprocessing(location: str, arch: str, config: Any) -> tuple[bool, Any]:
    """The checkpoint's own preprocessing: ``do_normalize`` (CNN models) or its log-mel extractor
    (Whisper, w2v-BERT's SeamlessM4T, CLAP).

    Falls back to normalising (the wav2vec2/HuBERT/WavLM default) or to an extractor built from the
    config when the checkpoint ships no ``preprocessor_config.json`` (or one of another class).
    """
    from transformers import (
        AutoFeatureExtractor,
        ClapFeatureExtractor,
        SeamlessM4TFeatureExtractor,
        WhisperFeatureExtractor,
    )

    try:
        extractor = AutoFeatureExtractor.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError, KeyError):
        extractor = None
    expected = {
        "whisper": (WhisperFeatureExtractor, _whisper_extractor),
        "wav2vec2-bert": (SeamlessM4TFeatureExtractor, _seamless_extractor),
        "clap": (ClapFeatureExtractor, _clap_extractor),
    }
    if arch in expected:
        kind, build = expected[arch]
        if not isinstance(extractor, kind):
            extractor = build(config)
        return False, extractor
    return bool(getattr(extractor, "do_normalize", True)), None


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _arch(config: Any, spec: BackboneSpec) -> str:
    arch = getattr(config, "model_type", "")
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch not in ARCHITECTURES:
        raise BackboneError(
            f"{spec.key('source')} = {spec.source!r}: model type {arch!r} is not supported; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    return arch


def _check_layer(spec: BackboneSpec, num_layers: int, arch: str = "") -> int | str:
    layer = spec.layer
    if isinstance(layer, str) and layer.strip().lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, str) and layer in ("last", "all"):
        return layer
    if isinstance(layer, int) and not isinstance(layer, bool) and 0 <= layer <= num_layers:
        return layer
    if arch == "clap":
        what = (
            f"{num_layers} Swin blocks in its last stage (the only layers on the final token "
            f"grid), so use an integer 0..{num_layers} (0 = input of the last stage)"
        )
    else:
        what = (
            f"{num_layers} transformer layers, so use an integer 0..{num_layers} "
            "(0 = input of the first layer)"
        )
    raise BackboneError(
        f"{spec.key('layer')} = {spec.layer!r} is out of range: {spec.source} has {what}, "
        "'last' or 'all'"
    )


def _transformer_layers(model: nn.Module, arch: str) -> nn.ModuleList:
    if arch == "whisper":
        return model.layers  # WhisperEncoder
    if arch == "clap":
        return model.audio_encoder.layers[-1].blocks  # ClapAudioModel: the last Swin stage
    return model.encoder.layers


#: Front-end settings that change what a w2v-BERT / CLAP model is fed (part of the fingerprint).
_FRONT_END_KEYS = {
    "wav2vec2-bert": ("sampling_rate", "num_mel_bins", "feature_size", "stride"),
    "clap": (
        "sampling_rate",
        "feature_size",
        "fft_window_size",
        "hop_length",
        "max_length_s",
        "frequency_min",
        "frequency_max",
        "top_db",
        "truncation",
        "padding",
    ),
}


def _check_seamless_extractor(extractor: Any, config: Any, spec: BackboneSpec) -> None:
    """The w2v-BERT front end must be a 16 kHz SeamlessM4T extractor whose stacked rows have the
    width the model's feature projection expects."""
    from transformers import SeamlessM4TFeatureExtractor

    if not isinstance(extractor, SeamlessM4TFeatureExtractor):
        raise BackboneError(
            f"{spec.key('source')} = {spec.source!r}: a w2v-BERT model needs the "
            f"SeamlessM4TFeatureExtractor front end, got {type(extractor).__name__}; put the "
            "checkpoint's preprocessor_config.json next to its weights"
        )
    width = int(extractor.num_mel_bins) * int(extractor.stride)
    if int(extractor.sampling_rate) != SAMPLE_RATE or width != config.feature_projection_input_dim:
        raise BackboneError(
            f"{spec.key('source')} = {spec.source!r}: its preprocessor_config.json "
            f"(sampling_rate {extractor.sampling_rate}, {extractor.num_mel_bins} mel bins x "
            f"stride {extractor.stride}) does not fit the model ({SAMPLE_RATE} Hz, "
            f"feature_projection_input_dim {config.feature_projection_input_dim}); use the "
            "checkpoint's own preprocessor_config.json"
        )


def _clap_geometry(config: Any, extractor: Any, spec: BackboneSpec) -> tuple[int, int, int]:
    """CLAP's final token grid: time steps per window, frequency bands, 16 kHz samples per step.

    The grid follows ClapAudioEncoder: the ``(spec_size * freq_ratio) x num_mel_bins`` mel image is
    folded into ``freq_ratio`` time segments, patched by ``patch_stride`` and halved by each patch
    merging (``len(depths) - 1``)."""
    from transformers import ClapFeatureExtractor

    key = spec.key("source")
    if not isinstance(extractor, ClapFeatureExtractor):
        raise BackboneError(
            f"{key} = {spec.source!r}: a CLAP model needs the ClapFeatureExtractor front end, got "
            f"{type(extractor).__name__}; put the checkpoint's preprocessor_config.json next to "
            "its weights"
        )
    stride = config.patch_stride
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    spec_size, mels, merges = (
        int(config.spec_size),
        int(config.num_mel_bins),
        len(config.depths) - 1,
    )
    ratio = spec_size // mels if mels else 0
    side = spec_size // stride[0] // 2**merges  # final grid rows (= columns: a square image)
    bands = side // ratio if ratio else 0
    steps = ratio * (spec_size // stride[1] // 2**merges)
    window = float(extractor.max_length_s) * SAMPLE_RATE
    mel_frames = int(extractor.nb_max_samples) // int(extractor.hop_length) + 1
    problems = []
    if int(extractor.feature_size) != mels:
        problems.append(f"the extractor gives {extractor.feature_size} mel bins, the model {mels}")
    if ratio < 1 or spec_size % mels or bands < 1 or side % ratio:
        problems.append(
            f"spec_size {spec_size} / num_mel_bins {mels} / patch_stride {list(stride)} / "
            f"{merges + 1} stages give no whole token grid"
        )
    elif mel_frames > spec_size * ratio:
        problems.append(
            f"a {extractor.max_length_s} s window has {mel_frames} mel frames, more than the "
            f"{spec_size * ratio} the model takes"
        )
    elif window % steps:
        problems.append(
            f"its {extractor.max_length_s} s window does not split into {steps} time steps of "
            "whole 16 kHz samples"
        )
    if problems:
        raise BackboneError(
            f"{key} = {spec.source!r}: unsupported CLAP configuration: {'; '.join(problems)}. "
            "Use a LAION CLAP checkpoint with its own preprocessor_config.json (or the "
            "tiny-clap-audio preset)"
        )
    return steps, bands, int(window) // steps
