"""Frozen speech encoders behind one interface: SELM, the baselines, few-shot and SER-Evals probes.

A :class:`BackboneSpec` names the encoder (a tiny random preset, a Hugging Face name found in the
local cache, or a local folder written with ``save_pretrained``) and the hidden state to keep.
:func:`load_backbone` turns it into a :class:`Backbone` whose :meth:`Backbone.encode` maps a batch
of mono 16 kHz clips to per-clip frame features. No call ever reaches the network.

Which hidden state ``layer`` selects (all five architectures):

* ``0``: the input of the first transformer layer (CNN features after the feature projection and
  the convolutional position embedding; Whisper: conv stem + sinusoidal positions).
* ``i`` (1..num_layers): the output of transformer layer ``i``, before any final encoder LayerNorm.
* ``"last"``: the model's ``last_hidden_state``. For post-LN encoders (wav2vec2-base, HuBERT-base,
  data2vec-audio) it equals ``num_layers``; for pre-LN encoders (``do_stable_layer_norm`` large
  models, Whisper) it carries the encoder's final LayerNorm, as SER-Evals uses it.
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

Long clips are encoded in chunks so that memory does not grow with clip length. Chunks are cut on
the frame grid with a context margin (1 s each side, fewer for tiny chunks) that is encoded but
dropped, and each chunk's sample range is chosen so its CNN yields exactly the frames it owns; the
concatenation has exactly :meth:`Backbone.num_frames` frames. Values differ from a whole-clip pass
only through the limited attention context (and, for GroupNorm CNNs, the per-chunk normalisation
statistics): see ``tests/test_backbones.py`` for the measured tolerance.

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
ARCHITECTURES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
CHUNK_CONTEXT_SECONDS = 1.0  # context encoded (and dropped) on each side of a chunk
WHISPER_SAMPLES_PER_FRAME = 320  # 10 ms mel hop x conv stride 2

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
        self.feature_extractor = feature_extractor  # Whisper log-mel extractor (None otherwise)
        if self.arch == "whisper":
            self.hidden_size = int(config.d_model)
            self.num_layers = int(config.encoder_layers)
            self._stride, self._receptive = WHISPER_SAMPLES_PER_FRAME, WHISPER_SAMPLES_PER_FRAME
            self._conv: list[tuple[int, int]] = []
            window_frames = int(config.max_source_positions)
        else:
            if getattr(config, "add_adapter", False):
                raise BackboneError(
                    f"{spec.key('source')} = {spec.source!r}: configs with add_adapter=True "
                    "change the frame rate and are not supported; use the encoder without adapter"
                )
            self.hidden_size = int(config.hidden_size)
            self.num_layers = int(config.num_hidden_layers)
            self._conv = list(zip(config.conv_kernel, config.conv_stride, strict=True))
            self._stride = math.prod(s for _, s in self._conv)
            self._receptive = 1 + sum(
                (k - 1) * math.prod(s for _, s in self._conv[:i])
                for i, (k, _) in enumerate(self._conv)
            )
            window_frames = 0
        self.frame_rate = SAMPLE_RATE / self._stride
        self.layer = _check_layer(spec, self.num_layers)

        # Chunk plan in frames: K kept frames per chunk plus C context frames on each side.
        if self.arch == "whisper":
            chunk_frames = window_frames  # the fixed 30 s window bounds memory whatever the clip
        else:
            chunk_frames = int(spec.chunk_seconds * self.frame_rate)
        if chunk_frames < 4:
            raise BackboneError(
                f"chunk_seconds = {spec.chunk_seconds} is too small (at least "
                f"{4 / self.frame_rate:g} s); set features.chunk_seconds to a larger value"
            )
        self._context = min(round(CHUNK_CONTEXT_SECONDS * self.frame_rate), chunk_frames // 4)
        self._chunk_keep = chunk_frames - 2 * self._context
        self._max_samples = (
            window_frames * WHISPER_SAMPLES_PER_FRAME
            if self.arch == "whisper"
            else int(round(spec.chunk_seconds * SAMPLE_RATE))
        )

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
        for kernel, stride in self._conv:
            if n < kernel:
                return 0
            n = (n - kernel) // stride + 1
        return n

    def cost_samples(self, num_samples: int) -> int:
        """Samples the encoder actually processes for a clip (Whisper pads to 30 s windows)."""
        if self.arch == "whisper":
            return max(1, math.ceil(num_samples / self._max_samples)) * self._max_samples
        return int(num_samples)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encode one batch of mono 16 kHz clips of any lengths.

        Returns per clip a float32 array ``(frames, hidden)`` (int or ``"last"`` layer) or
        ``(num_layers + 1, frames, hidden)`` (``"all"``), with ``frames == num_frames(len(clip))``.
        Clips up to ``chunk_seconds`` (Whisper: 30 s) go through one padded forward pass; longer
        clips are encoded chunk by chunk.
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
            for name, tensor in sorted(self.model.state_dict().items()):
                array = tensor.detach().to("cpu").contiguous()
                digest.update(f"{name}:{array.dtype}:{tuple(array.shape)}".encode())
                digest.update(array.view(torch.uint8).numpy().tobytes())
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
        """Chunks on the frame grid: chunk frames [lo, hi) need samples [lo*S, (hi-1)*S + R)."""
        total = self.num_frames(len(clip))
        pieces = []
        for start in range(0, total, self._chunk_keep):
            stop = min(total, start + self._chunk_keep)
            lo, hi = max(0, start - self._context), min(total, stop + self._context)
            end = len(clip) if hi == total else (hi - 1) * self._stride + self._receptive
            (array,) = self._forward([clip[lo * self._stride : end]])
            pieces.append(array[..., start - lo : stop - lo, :])  # drop the context frames
        return np.concatenate(pieces, axis=-2)

    def _forward(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """One padded forward pass; every output cut to its clip's own frame count."""
        frames = [self.num_frames(len(c)) for c in clips]
        if self.arch == "whisper":
            features = self.feature_extractor(
                clips, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding="max_length"
            ).input_features  # (B, mels, 3000): each clip padded to the window on its own
            inputs = {"input_features": features.to(self.device)}
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
                    last = output.last_hidden_state
                except _StopForward:
                    last = None
            if self.layer == "all":
                hidden = torch.stack(self._captured, dim=1)  # (B, L+1, T, D)
            elif self.layer == "last":
                hidden = last  # (B, T, D)
            else:
                hidden = self._captured[0]  # (B, T, D)
            hidden = hidden.float().cpu().numpy()
        finally:
            self._captured, self._stop_at, self._lengths = None, None, None
        return [np.ascontiguousarray(hidden[row, ..., :n, :]) for row, n in enumerate(frames)]

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

        if self.arch == "whisper":
            return
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
    """The transformers config of a preset (``tiny-wav2vec2`` ... ``tiny-whisper``)."""
    from transformers import AutoConfig

    if name not in PRESETS:
        raise KeyError(name)
    kwargs = dict(PRESETS[name])
    return AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)


def _build_preset(name: str, seed: int) -> tuple[nn.Module, Any]:
    """Seeded random model from a preset config: the full model (Whisper: encoder + decoder)."""
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
        if config.model_type == "whisper":
            model = model.get_encoder()
        whisper = config.model_type == "whisper"
        extractor = _whisper_extractor(config) if whisper else None
        return Backbone(
            model, config, spec, torch_device, normalize=not whisper, feature_extractor=extractor
        )
    return _load_pretrained(source, spec, torch_device)


def _load_pretrained(source: str, spec: BackboneSpec, device: torch.device) -> Backbone:
    from transformers import AutoConfig, AutoModel, WhisperModel

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
        "data2vec-audio, whisper) or remove the entry."
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
    """The checkpoint's own preprocessing: ``do_normalize`` (CNN models) or the Whisper extractor.

    Falls back to normalising (the wav2vec2/HuBERT/WavLM default) or to an extractor built from the
    config when the checkpoint ships no ``preprocessor_config.json``.
    """
    from transformers import AutoFeatureExtractor, WhisperFeatureExtractor

    try:
        extractor = AutoFeatureExtractor.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError, KeyError):
        extractor = None
    if arch == "whisper":
        if not isinstance(extractor, WhisperFeatureExtractor):
            extractor = _whisper_extractor(config)
        return False, extractor
    return bool(getattr(extractor, "do_normalize", True)), None


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _arch(config: Any, spec: BackboneSpec) -> str:
    arch = getattr(config, "model_type", "")
    if arch not in ARCHITECTURES:
        raise BackboneError(
            f"{spec.key('source')} = {spec.source!r}: model type {arch!r} is not supported; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    return arch


def _check_layer(spec: BackboneSpec, num_layers: int) -> int | str:
    layer = spec.layer
    if isinstance(layer, str) and layer.strip().lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, str) and layer in ("last", "all"):
        return layer
    if isinstance(layer, int) and not isinstance(layer, bool) and 0 <= layer <= num_layers:
        return layer
    raise BackboneError(
        f"{spec.key('layer')} = {spec.layer!r} is out of range: {spec.source} has {num_layers} "
        f"transformer layers, so use an integer 0..{num_layers} (0 = input of the first layer), "
        "'last' or 'all'"
    )


def _transformer_layers(model: nn.Module, arch: str) -> nn.ModuleList:
    if arch == "whisper":
        return model.layers  # WhisperEncoder
    return model.encoder.layers
