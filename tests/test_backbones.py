"""The shared backbone interface: shapes, exact frame counts, padding, layers, chunks, loading.

Tolerances, measured on these tiny random presets:

* batch vs single encode: exact up to float32 rounding (< 1e-4) for every preset, including the
  GroupNorm CNN (tiny-wav2vec2) and data2vec-audio, whose padding leaks in plain transformers
  (shown by ``test_plain_transformers_padding_leaks``) and is corrected by backbones.py's hooks.
* chunked vs whole-clip encode of a 50 s stationary signal (10 s chunks, 1 s context): frame
  count exact; per-frame cosine similarity >= 0.95 everywhere and >= 0.99 on average (attention
  context is cut at chunk edges; GroupNorm statistics are per chunk). w2v-BERT (a 16 s clip in
  4 s chunks of its whole-clip normalised rows): the same bounds.
* w2v-BERT's input rows equal SeamlessM4TFeatureExtractor's exactly (also when computed in
  segments); its hidden states equal plain transformers' to 1e-4 (different padded shapes only
  change float32 rounding). CLAP (one fixed window per clip): batch equals single exactly.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from selm_lib.features.backbones import (
    CNN_ARCHITECTURES,
    PRESETS,
    SAMPLE_RATE,
    Backbone,
    BackboneError,
    BackboneSpec,
    _build_preset,
    _clap_extractor,
    load_backbone,
    save_preset,
)

CNN_PRESETS = [p for p in PRESETS if PRESETS[p]["model_type"] in CNN_ARCHITECTURES]
ODD_LENGTHS = (8_001, 20_011, 32_123, 47_999)
CLAP_STEP = 5_000  # 16 kHz samples per CLAP time step: 10 s window / 32 steps


def expected_frames(arch: str, n: int) -> int:
    """Frame count of an ``n``-sample clip, written out per family (see backbones.py)."""
    if arch == "whisper":
        return n // 320  # 10 ms mel hop x conv stride 2, cut to the clip
    if arch == "wav2vec2-bert":
        kaldi = 0 if n < 400 else 1 + (n - 400) // 160  # 25 ms / 10 ms Kaldi frames
        return kaldi // 2  # stacked in pairs; an odd last frame makes no row
    if arch == "clap":
        return 2 * math.ceil(n / CLAP_STEP)  # every 312.5 ms step overlapping the clip, 2 bands
    return 0 if n < 400 else (n - 400) // 320 + 1  # wav2vec2 CNN


def bursts(seconds: float, seed: int, extra: int = 0) -> np.ndarray:
    """Speech-like test signal: pulse-train bursts of random pitch, pauses, a little noise."""
    rng = np.random.default_rng(seed)
    out = 0.005 * rng.standard_normal(int(seconds * SAMPLE_RATE) + extra)
    position = 0
    while position < len(out):
        length = min(int(rng.uniform(0.15, 0.5) * SAMPLE_RATE), len(out) - position)
        t = np.arange(length) / SAMPLE_RATE
        tone = np.sign(np.sin(2 * np.pi * rng.uniform(100, 300) * t)) * np.hanning(length)
        out[position : position + length] += 0.2 * tone
        position += length + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    return out.astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame cosine similarity of two (frames, hidden) arrays."""
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def record_input_lengths(backbone) -> list[int]:
    """Input length (samples, or mel frames for Whisper) of every forward pass from now on."""
    seen: list[int] = []

    def hook(_module, args, kwargs):
        inputs = args[0] if args else next(iter(kwargs.values()))
        seen.append(inputs.shape[-1])

    backbone.model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [bursts(n / SAMPLE_RATE, seed=i) for i, n in enumerate(ODD_LENGTHS)]


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request) -> str:
    return request.param


def spec(preset: str, layer: int | str = "last", **kwargs) -> BackboneSpec:
    return BackboneSpec(f"preset:{preset}", layer=layer, **kwargs)


def test_encode_shapes_and_exact_frame_counts(preset, clips):
    backbone = load_backbone(spec(preset), device="cpu")
    assert backbone.frame_rate == (6.4 if backbone.arch == "clap" else 50.0)
    outputs = backbone.encode(clips)
    for clip, out in zip(clips, outputs, strict=True):
        n = len(clip)
        expected = expected_frames(backbone.arch, n)
        assert backbone.num_frames(n) == expected
        assert out.shape == (expected, backbone.hidden_size)
        assert out.dtype == np.float32 and np.isfinite(out).all()
    for n in (0, 1, 399, 400, 559, 560, 719, 880, 4_999, 5_001, 160_000):
        assert backbone.num_frames(n) == expected_frames(backbone.arch, n), n


def test_batch_encode_equals_single_encode(preset, clips):
    backbone = load_backbone(spec(preset), device="cpu")
    batched = backbone.encode(clips)
    for clip, out in zip(clips, batched, strict=True):
        (alone,) = backbone.encode([clip])
        np.testing.assert_allclose(out, alone, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["tiny-wav2vec2", "tiny-data2vec-audio"])
def test_plain_transformers_padding_leaks(name, clips):
    """Why backbones.py hooks GroupNorm / data2vec's positional convs: without them a clip's own
    frames change when it is padded, with or without an attention mask."""
    model, _ = _build_preset(name, 0)
    model.eval()
    short, long = clips[1], clips[3]
    normalise = [(c - c.mean()) / np.sqrt(c.var() + 1e-7) for c in (short, long)]
    batch = torch.zeros(2, len(long))
    mask = torch.zeros(2, len(long), dtype=torch.long)
    for row, clip in enumerate(normalise):
        batch[row, : len(clip)] = torch.from_numpy(clip)
        mask[row, : len(clip)] = 1
    with torch.inference_mode():
        alone = model(batch[:1, : len(short)]).last_hidden_state[0]
        masked = model(batch, attention_mask=mask).last_hidden_state[0, : len(alone)]
    assert (masked - alone).abs().max().item() > 1e-2  # plain transformers: padding leaks
    (ours,) = load_backbone(spec(name), device="cpu").encode([short, long])[:1]
    np.testing.assert_allclose(ours, alone.numpy(), atol=1e-4, rtol=0)


def test_layers_all_int_and_last(preset, clips):
    clip = clips[2]
    every = load_backbone(spec(preset, "all"), device="cpu")
    (stack,) = every.encode([clip])
    assert stack.shape == (every.num_layers + 1, every.num_frames(len(clip)), every.hidden_size)
    for layer in (0, 1, every.num_layers):
        (out,) = load_backbone(spec(preset, layer), device="cpu").encode([clip])
        np.testing.assert_array_equal(out, stack[layer])
    (last,) = load_backbone(spec(preset, "last"), device="cpu").encode([clip])
    config = every.config
    final_ln = every.arch in ("whisper", "clap") or getattr(config, "do_stable_layer_norm", False)
    if final_ln:  # last_hidden_state carries the encoder's final LayerNorm
        ln = torch.nn.functional.layer_norm(torch.from_numpy(stack[-1]), (every.hidden_size,))
        assert not np.allclose(last, stack[-1])
        assert np.abs(last - ln.numpy()).max() < 10  # same state up to the affine LN weights
    else:
        np.testing.assert_array_equal(last, stack[-1])


def test_layers_match_transformers_hidden_states(clips):
    clip = clips[2]
    backbone = load_backbone(spec("tiny-hubert", "all"), device="cpu")
    (ours,) = backbone.encode([clip])
    model, _ = _build_preset("tiny-hubert", 0)
    normalised = (clip - clip.mean()) / np.sqrt(clip.var() + 1e-7)
    with torch.inference_mode():
        states = model.eval()(
            torch.from_numpy(normalised.astype(np.float32))[None], output_hidden_states=True
        ).hidden_states
    assert len(states) == backbone.num_layers + 1
    for layer, state in enumerate(states):
        np.testing.assert_allclose(ours[layer], state[0].numpy(), atol=1e-4, rtol=0)


def test_integer_layer_keeps_only_needed_layers():
    backbone = load_backbone(spec("tiny-wav2vec2", 2), device="cpu")
    assert len(backbone.model.encoder.layers) == 2 and backbone.num_layers == 6
    assert len(load_backbone(spec("tiny-wav2vec2", 0), device="cpu").model.encoder.layers) == 1


def test_whisper_frame_cut_and_long_clip_windows():
    backbone = load_backbone(spec("tiny-whisper"), device="cpu")
    seen = record_input_lengths(backbone)
    clip = bursts(31.3, seed=7, extra=77)
    (out,) = backbone.encode([clip])
    assert out.shape == (len(clip) // 320, backbone.hidden_size)
    assert len(seen) == 2 and set(seen) == {3000}  # two fixed 30 s windows, never longer
    short = clip[: 2 * SAMPLE_RATE + 319]
    assert backbone.encode([short])[0].shape[0] == 100


def test_whisper_10s_preset_uses_its_own_window():
    backbone = load_backbone(spec("tiny-whisper-10s"), device="cpu")
    seen = record_input_lengths(backbone)
    clip = bursts(12.5, seed=3, extra=5)
    (out,) = backbone.encode([clip])
    assert out.shape == (len(clip) // 320, backbone.hidden_size)
    assert seen == [1000, 1000]  # two 10 s windows of 1000 mel frames, never 30 s


@pytest.mark.parametrize("name", CNN_PRESETS)
def test_long_clip_chunking(name):
    clip = bursts(50, seed=1, extra=777)
    whole = load_backbone(spec(name, chunk_seconds=60), device="cpu")
    chunked = load_backbone(spec(name, chunk_seconds=10), device="cpu")
    seen = record_input_lengths(chunked)
    (reference,) = whole.encode([clip])
    (out,) = chunked.encode([clip])
    assert out.shape == reference.shape == (chunked.num_frames(len(clip)), chunked.hidden_size)
    # Memory is bounded: no forward pass sees more than one chunk (10 s + CNN receptive field).
    assert len(seen) == 7 and max(seen) <= 10 * SAMPLE_RATE + 400
    similarity = cosine(out, reference)
    assert similarity.min() > 0.95 and similarity.mean() > 0.99


def test_short_chunks_mixed_with_short_clips(clips):
    backbone = load_backbone(spec("tiny-hubert", chunk_seconds=1.0), device="cpu")
    outputs = backbone.encode(clips)  # the 3 s clips are chunked, the 0.5 s one is not
    assert [o.shape[0] for o in outputs] == [backbone.num_frames(len(c)) for c in clips]


def test_from_pretrained_folder_matches_preset(preset, clips, tmp_path):
    folder = save_preset(preset, tmp_path / preset, seed=3)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert (folder / "preprocessor_config.json").is_file()
    from_preset = load_backbone(spec(preset, "all", seed=3), device="cpu")
    from_folder = load_backbone(BackboneSpec(str(folder), layer="all"), device="cpu")
    assert from_folder.arch == from_preset.arch and from_folder.normalize == from_preset.normalize
    for a, b in zip(from_preset.encode(clips[:2]), from_folder.encode(clips[:2]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert from_preset.fingerprint() == from_folder.fingerprint()


def test_hub_name_found_in_local_cache(tmp_path):
    """A Hugging Face name resolves offline when its snapshot is in the local hub cache (what
    `huggingface-cli download` leaves). Run in a subprocess: the cache path is read at import."""
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--selm--tiny-hubert"
    save_preset("tiny-hubert", repo / "snapshots" / commit, seed=5)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    script = (
        "from selm_lib.features.backbones import BackboneSpec, load_backbone\n"
        "import numpy as np\n"
        "clip = np.sin(np.arange(20000) / 9).astype(np.float32)\n"
        "a = load_backbone(BackboneSpec('selm/tiny-hubert', layer=2), device='cpu')\n"
        "b = load_backbone(BackboneSpec('preset:tiny-hubert', layer=2, seed=5), device='cpu')\n"
        "assert np.array_equal(a.encode([clip])[0], b.encode([clip])[0])\n"
        "print('ok', a.arch, a.fingerprint() == b.fingerprint())\n"
    )
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok hubert True")


def test_presets_are_seeded(clips):
    a = load_backbone(spec("tiny-wavlm", seed=1), device="cpu").encode(clips[:1])[0]
    b = load_backbone(spec("tiny-wavlm", seed=1), device="cpu").encode(clips[:1])[0]
    c = load_backbone(spec("tiny-wavlm", seed=2), device="cpu").encode(clips[:1])[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_unknown_name_names_the_key_and_the_fix():
    bad = BackboneSpec("facebook/no-such-model", layer=4, params_key="features.backbones.w2v")
    with pytest.raises(BackboneError) as error:
        load_backbone(bad, device="cpu")
    message = str(error.value)
    assert "features.backbones.w2v.source" in message
    assert "not found locally" in message and "offline" in message
    assert "save_pretrained" in message


def test_bad_sources():
    with pytest.raises(BackboneError, match=r"features\.backbones\.<name>\.source.*unknown preset"):
        load_backbone(BackboneSpec("preset:tiny-nothing", layer=1), device="cpu")
    with pytest.raises(BackboneError, match="folder not found"):
        load_backbone(BackboneSpec("./models/absent", layer=1), device="cpu")
    with pytest.raises(BackboneError, match="Did you mean 'preset:tiny-hubert'"):
        load_backbone(BackboneSpec("tiny-hubert", layer=1), device="cpu")


@pytest.mark.parametrize("layer", [7, -1, "middle", True])
def test_layer_out_of_range(layer):
    bad = BackboneSpec("preset:tiny-wav2vec2", layer=layer, params_key="features.backbones.w2v")
    with pytest.raises(BackboneError) as error:
        load_backbone(bad, device="cpu")
    assert "features.backbones.w2v.layer" in str(error.value)
    assert "0..6" in str(error.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_close_to_cpu(preset, clips):
    cpu = load_backbone(spec(preset, 2), device="cpu").encode(clips)
    gpu_backbone = load_backbone(spec(preset, 2), device="auto")
    assert gpu_backbone.device.type == "cuda"
    gpu = gpu_backbone.encode(clips)
    for a, b in zip(cpu, gpu, strict=True):
        assert a.shape == b.shape and cosine(a, b).min() > 0.98


# ------------------------------------------------------------------------ preset:logmel
LOGMEL_LENGTHS = (0, 1, 199, 319, 320, 399, 400, 641, *ODD_LENGTHS)


def logmel(layer: int | str = "last", **kwargs):
    return load_backbone(BackboneSpec("preset:logmel", layer=layer, **kwargs), device="cpu")


def slaney_hz(mel: np.ndarray) -> np.ndarray:
    """Slaney mel -> Hz (linear below 1 kHz, logarithmic above), written out independently."""
    return np.where(mel >= 15, 1000 * np.exp((mel - 15) * np.log(6.4) / 27), mel * 200 / 3)


def test_logmel_shapes_and_frame_counts():
    backbone = logmel()
    assert backbone.arch == "logmel" and backbone.hidden_size == 80 and backbone.num_layers == 0
    assert backbone.frame_rate == 50.0 and backbone.layer == "last"
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LOGMEL_LENGTHS]
    outputs = backbone.encode(waves)
    for n, out in zip(LOGMEL_LENGTHS, outputs, strict=True):
        assert backbone.num_frames(n) == 1 + n // 320 >= 1  # centred frames, >= 1 frame
        assert out.shape == (1 + n // 320, 80)
        assert out.dtype == np.float32 and np.isfinite(out).all()
    assert outputs[0].min() == pytest.approx(np.log(1e-6))  # an empty clip: silence only
    assert backbone.cost_samples(12_345) == 12_345


def test_logmel_batch_equals_single_exactly_and_deterministic(clips):
    backbone = logmel()
    batched = backbone.encode(clips)
    for clip, out in zip(clips, batched, strict=True):
        np.testing.assert_array_equal(out, backbone.encode([clip])[0])
    np.testing.assert_array_equal(logmel().encode(clips[:1])[0], batched[0])


def test_logmel_chunks_change_nothing():
    clip = bursts(25, seed=3, extra=123)
    (whole,) = logmel(chunk_seconds=60).encode([clip])
    (chunked,) = logmel(chunk_seconds=1).encode([clip])
    assert whole.shape == chunked.shape == (1 + len(clip) // 320, 80)
    np.testing.assert_allclose(chunked, whole, atol=1e-5, rtol=0)


def test_logmel_layers(clips):
    clip = clips[1]
    (last,) = logmel("last").encode([clip])
    (zero,) = logmel(0).encode([clip])
    (zero_text,) = logmel("0").encode([clip])
    every = logmel("all")
    (stack,) = every.encode([clip])
    assert stack.shape == (1, every.num_frames(len(clip)), 80)
    np.testing.assert_array_equal(last, zero)
    np.testing.assert_array_equal(zero_text, zero)
    np.testing.assert_array_equal(stack[0], last)


@pytest.mark.parametrize("layer", [1, -1, 4, "middle", "first", True, None])
def test_logmel_bad_layer(layer):
    bad = BackboneSpec("preset:logmel", layer=layer, params_key="features.backbones.mel")
    with pytest.raises(BackboneError) as error:
        load_backbone(bad, device="cpu")
    message = str(error.value)
    assert "features.backbones.mel.layer" in message
    assert "0" in message and "'last'" in message and "'all'" in message


@pytest.mark.parametrize("frequency", [200.0, 1000.0, 3000.0, 6000.0])
def test_logmel_pure_tone_peaks_in_its_band(frequency):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    (out,) = logmel().encode([(0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)])
    peak = int(np.argmax(out[5:-5].mean(axis=0)))  # away from the zero-padded edges
    # Band centres of 80 Slaney bands over 0-8 kHz (8 kHz = 15 + 27 ln 8 / ln 6.4 mel).
    top = 15 + 27 * np.log(8.0) / np.log(6.4)
    centres = slaney_hz(np.linspace(0, top, 82))[1:-1]
    nearest = int(np.argmin(np.abs(centres - frequency)))
    assert abs(peak - nearest) <= 1, (peak, nearest, centres[peak])


def test_logmel_filterbank_matches_torchaudio():
    torchaudio_functional = pytest.importorskip("torchaudio.functional")
    from selm_lib.features.backbones import mel_filterbank

    expected = torchaudio_functional.melscale_fbanks(
        201, 0.0, 8000.0, 80, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )
    ours = mel_filterbank()
    assert ours.shape == (201, 80) and (ours.sum(0) > 0).all()  # no empty band
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)


def test_logmel_fingerprint_save_preset_and_sources(tmp_path):
    a, b = logmel(), logmel("all", seed=7)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    with pytest.raises(BackboneError, match="no weights"):
        save_preset("logmel", tmp_path / "logmel")
    with pytest.raises(BackboneError, match="no weights"):
        save_preset("preset:logmel", tmp_path / "logmel")
    assert not (tmp_path / "logmel").exists()
    with pytest.raises(BackboneError, match=r"Known presets: .*preset:logmel"):
        load_backbone(BackboneSpec("preset:log-mel", layer=0), device="cpu")
    with pytest.raises(BackboneError, match="Did you mean 'preset:logmel'"):
        load_backbone(BackboneSpec("logmel", layer=0), device="cpu")


def test_logmel_compute_features_round_trip(tmp_path):
    import pandas as pd
    import soundfile as sf

    from selm_lib.data.corpora.base import MANIFEST_COLUMNS
    from selm_lib.features.extract import compute_features
    from selm_lib.features.store import FeatureStore

    rows = []
    for i, n in enumerate((8_001, 16_320, 20_011, 321, 47_999)):
        path = tmp_path / "audio" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, bursts(n / SAMPLE_RATE, seed=10 + i), SAMPLE_RATE, subtype="FLOAT")
        rows.append(
            {
                "path": str(path),
                "corpus": "toy",
                "utterance_id": f"toy_{i}",
                "speaker": "s0",
                "duration_s": n / SAMPLE_RATE,
                "sample_rate": SAMPLE_RATE,
                "channels": 1,
                "quarantine": "",
            }
        )
    manifest = pd.DataFrame(rows)
    for column in MANIFEST_COLUMNS:
        if column not in manifest:
            manifest[column] = ""
    backbone = logmel()
    folder = tmp_path / "store"
    store, stats = compute_features(
        backbone, manifest, folder, backbone_name="mel", dtype="float32", progress=False
    )
    assert not stats["skipped"] and stats["clips"] == 5
    reopened = FeatureStore.open(folder)
    assert reopened.meta["arch"] == "logmel" and reopened.meta["hidden_size"] == 80
    assert reopened.meta["num_layers"] == 0 and reopened.meta["frame_rate"] == 50.0
    assert reopened.meta["weights_sha256"] == backbone.fingerprint()
    from selm_lib.data.audio import load_audio

    audio = [load_audio(p) for p in manifest["path"]]
    direct = backbone.encode(audio)
    cached = reopened.get_many(manifest["utterance_id"])
    for clip, a, b in zip(audio, direct, cached, strict=True):
        assert b.shape == a.shape == (backbone.num_frames(len(clip)), 80)
        np.testing.assert_array_equal(b, a)
    assert reopened.pooled().shape == (5, 80)
    _, again = compute_features(
        logmel(), manifest, folder, backbone_name="mel", dtype="float32", progress=False
    )
    assert again["skipped"]  # constant fingerprint: a reloaded logmel hits the cache


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_logmel_cuda_matches_cpu(clips):
    gpu = load_backbone(BackboneSpec("preset:logmel", layer="last"), device="cuda")
    cpu_out, gpu_out = logmel().encode(clips), gpu.encode(clips)
    for a, b in zip(cpu_out, gpu_out, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=1e-3, rtol=1e-4)
    for clip, out in zip(clips, gpu_out, strict=True):
        np.testing.assert_array_equal(gpu.encode([clip])[0], out)


def test_a_checkpoint_that_needs_remote_code_is_refused_with_the_reason(tmp_path):
    """MERT (a SER-Evals backbone) ships its own model code; the loader never runs it."""
    import json

    from selm_lib.features.backbones import BackboneError, BackboneSpec, load_backbone

    folder = tmp_path / "MERT-v1-330M"
    folder.mkdir()
    config = {"model_type": "mert_model", "auto_map": {"AutoModel": "modeling_MERT.MERTModel"}}
    (folder / "config.json").write_text(json.dumps(config))
    spec = BackboneSpec(str(folder), layer="last", params_key="features.backbones.mert")
    with pytest.raises(BackboneError, match=r"features.backbones.mert.source.*trust_remote_code"):
        load_backbone(spec, device="cpu")


# ------------------------------------------------------------------ w2v-BERT 2.0 and CLAP
def test_w2v_bert_rows_equal_the_seamless_extractor(clips):
    """The input rows are SeamlessM4TFeatureExtractor's, bit for bit, also when the log-mel
    frames are computed in segments (chunk_seconds 0.5 s: 50-frame segments)."""
    from transformers import SeamlessM4TFeatureExtractor

    extractor = SeamlessM4TFeatureExtractor()  # facebook/w2v-bert-2.0's settings, no download
    long = bursts(3.0, seed=11, extra=77)
    for chunk in (20.0, 0.5):
        backbone = load_backbone(spec("tiny-w2v-bert", chunk_seconds=chunk), device="cpu")
        for clip in (*clips, long):
            rows = backbone._bert_rows(clip)
            reference = extractor([clip], sampling_rate=SAMPLE_RATE, return_tensors="np")
            assert rows.shape == (backbone.num_frames(len(clip)), 160)
            assert reference.attention_mask[0].sum() == len(rows)  # the extractor's own count
            np.testing.assert_array_equal(rows, reference.input_features[0, : len(rows)])


def test_w2v_bert_batch_matches_plain_transformers(clips):
    """Our padded batch gives what Wav2Vec2BertModel gives on the extractor's own padded batch
    with its attention mask: every hidden state, every clip, cut to the clip's rows."""
    backbone = load_backbone(spec("tiny-w2v-bert", "all"), device="cpu")
    ours = backbone.encode(clips)
    model, config = _build_preset("tiny-w2v-bert", 0)
    from transformers import SeamlessM4TFeatureExtractor

    inputs = SeamlessM4TFeatureExtractor()(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    with torch.inference_mode():
        states = model.eval()(**inputs, output_hidden_states=True).hidden_states
    assert len(states) == backbone.num_layers + 1 == config.num_hidden_layers + 1
    for row, out in enumerate(ours):
        frames = int(inputs.attention_mask[row].sum())
        assert out.shape[1] == frames
        for layer, state in enumerate(states):
            np.testing.assert_allclose(out[layer], state[row, :frames].numpy(), atol=1e-4, rtol=0)


def test_w2v_bert_long_clip_chunks_rows():
    clip = bursts(16, seed=1, extra=777)
    whole = load_backbone(spec("tiny-w2v-bert", chunk_seconds=20), device="cpu")
    chunked = load_backbone(spec("tiny-w2v-bert", chunk_seconds=4), device="cpu")
    rows_seen: list[int] = []
    chunked.model.register_forward_pre_hook(
        lambda _m, args, kwargs: rows_seen.append(kwargs["input_features"].shape[1]),
        with_kwargs=True,
    )
    (reference,) = whole.encode([clip])
    (out,) = chunked.encode([clip])
    assert out.shape == reference.shape == (chunked.num_frames(len(clip)), chunked.hidden_size)
    # 4 s chunks: 100 kept rows + 2 x 50 context rows, memory bounded whatever the clip length.
    assert len(rows_seen) == math.ceil(len(out) / 100) == 9 and max(rows_seen) == 200
    similarity = cosine(out, reference)
    assert similarity.min() > 0.95 and similarity.mean() > 0.99


def test_clap_matches_plain_transformers_at_48_khz(clips):
    """One clip through our backbone = the 16 kHz clip resampled to 48 kHz, the checkpoint's
    ClapFeatureExtractor, ClapAudioModel's last_hidden_state (hidden, F, T) read time-major and
    cut to the steps that overlap the clip."""
    from scipy.signal import resample_poly

    backbone = load_backbone(spec("tiny-clap-audio"), device="cpu")
    model, config = _build_preset("tiny-clap-audio", 0)
    audio = model.audio_model.eval()
    extractor = _clap_extractor(config.audio_config)
    for clip in clips[:2]:
        (ours,) = backbone.encode([clip])
        wave = resample_poly(clip.astype(np.float64), 3, 1)  # 16 kHz -> 48 kHz
        mel = extractor([wave], sampling_rate=48_000, return_tensors="pt").input_features
        with torch.inference_mode():
            grid = audio(input_features=mel.float()).last_hidden_state[0]  # (hidden, F, T)
        assert grid.shape[1:] == (2, 32)
        tokens = grid.permute(2, 1, 0).reshape(-1, grid.shape[0])  # (T * F, hidden)
        steps = math.ceil(len(clip) / CLAP_STEP)
        np.testing.assert_allclose(ours, tokens[: 2 * steps].numpy(), atol=1e-4, rtol=0)


def test_clap_long_clip_windows_and_cost():
    backbone = load_backbone(spec("tiny-clap-audio"), device="cpu")
    windows: list[tuple[int, ...]] = []
    backbone.model.register_forward_pre_hook(
        lambda _m, args, kwargs: windows.append(tuple(kwargs["input_features"].shape)),
        with_kwargs=True,
    )
    clip = bursts(31.3, seed=7, extra=77)
    steps = math.ceil(len(clip) / CLAP_STEP)  # 101 steps of 312.5 ms
    (out,) = backbone.encode([clip])
    assert out.shape == (2 * steps, backbone.hidden_size) == (backbone.num_frames(len(clip)), 64)
    # 26 kept steps per 10 s window (3 context steps each side): 4 windows of 1001 mel frames.
    assert windows == [(1, 1, 1001, 64)] * 4
    assert backbone.cost_samples(len(clip)) == 4 * 160_000
    assert backbone.cost_samples(8_001) == backbone.cost_samples(160_000) == 160_000
    # The first window holds steps 0..28 (26 kept + 3 context): its kept frames are exact.
    (first,) = backbone.encode([clip[: 29 * CLAP_STEP]])
    np.testing.assert_array_equal(out[: 2 * 26], first[: 2 * 26])


def test_clap_fused_global_branch_and_numpy_random_state(clips):
    """A fused CLAP (enable_fusion, 'fusion' extractor) runs its global branch with is_longer
    False, what it does for any clip that fits the window: the extractor's random is_longer flag
    is discarded, NumPy's global random state is left as it was, and the output equals the fused
    model fed all four extractor channels with is_longer False."""
    from transformers import AutoConfig, ClapAudioModel

    kwargs = {**PRESETS["tiny-clap-audio"]["audio_config"], "enable_fusion": True}
    config = AutoConfig.for_model("clap_audio_model", **kwargs)
    torch.manual_seed(0)
    model = ClapAudioModel(config)
    extractor = _clap_extractor(config)
    assert extractor.truncation == "fusion"
    backbone = Backbone(
        model,
        config,
        spec("tiny-clap-audio"),
        torch.device("cpu"),
        normalize=False,
        feature_extractor=extractor,
    )
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ours = backbone.encode(clips[:2])
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    from scipy.signal import resample_poly

    waves = [resample_poly(c.astype(np.float64), 3, 1) for c in clips[:2]]
    mel = extractor(waves, sampling_rate=48_000, return_tensors="pt").input_features
    assert mel.shape[1] == 4
    with torch.inference_mode():
        grid = model.eval()(
            input_features=mel.float(), is_longer=torch.zeros(2, 1, dtype=torch.bool)
        ).last_hidden_state
    for row, out in enumerate(ours):
        tokens = grid[row].permute(2, 1, 0).reshape(-1, grid.shape[1])
        np.testing.assert_allclose(out, tokens[: len(out)].numpy(), atol=1e-4, rtol=0)


def test_clap_layers_are_last_stage_blocks():
    backbone = load_backbone(spec("tiny-clap-audio", 1), device="cpu")
    assert backbone.num_layers == 2 and len(backbone.model.audio_encoder.layers[-1].blocks) == 1
    every = load_backbone(spec("tiny-clap-audio", "all"), device="cpu")
    clip = bursts(1.2, seed=5)
    (stack,) = every.encode([clip])
    (last,) = load_backbone(spec("tiny-clap-audio"), device="cpu").encode([clip])
    # "last" is the encoder's final LayerNorm of the last block's output, on the same frames.
    norm = every.model.audio_encoder.norm
    with torch.inference_mode():
        normed = norm(torch.from_numpy(stack[-1])).numpy()
    np.testing.assert_allclose(last, normed, atol=1e-5, rtol=0)


def test_bare_clap_audio_folder_loads(tmp_path, clips):
    """A folder holding only a ClapAudioModel (model_type clap_audio_model) loads as CLAP too."""
    model, config = _build_preset("tiny-clap-audio", 4)
    folder = tmp_path / "clap-audio"
    model.audio_model.save_pretrained(folder)
    _clap_extractor(config.audio_config).save_pretrained(folder)
    bare = load_backbone(BackboneSpec(str(folder), layer="last"), device="cpu")
    preset = load_backbone(spec("tiny-clap-audio", seed=4), device="cpu")
    assert bare.arch == "clap" and bare.fingerprint() == preset.fingerprint()
    np.testing.assert_array_equal(bare.encode(clips[:1])[0], preset.encode(clips[:1])[0])


@pytest.mark.parametrize("name", ["tiny-w2v-bert", "tiny-clap-audio"])
def test_new_presets_are_seeded_and_deterministic(name, clips):
    a = load_backbone(spec(name, seed=1), device="cpu").encode(clips[:2])
    b = load_backbone(spec(name, seed=1), device="cpu").encode(clips[:2])
    c = load_backbone(spec(name, seed=2), device="cpu").encode(clips[:1])[0]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c)


@pytest.mark.parametrize(
    ("name", "layer", "limit", "words"),
    [
        ("tiny-w2v-bert", 4, "0..3", "transformer layers"),
        ("tiny-w2v-bert", -1, "0..3", "transformer layers"),
        ("tiny-clap-audio", 3, "0..2", "Swin blocks in its last stage"),
        ("tiny-clap-audio", "middle", "0..2", "Swin blocks in its last stage"),
    ],
)
def test_new_presets_layer_out_of_range(name, layer, limit, words):
    bad = BackboneSpec(f"preset:{name}", layer=layer, params_key="features.backbones.se_new")
    with pytest.raises(BackboneError) as error:
        load_backbone(bad, device="cpu")
    message = str(error.value)
    assert "features.backbones.se_new.layer" in message and limit in message and words in message


def test_unsupported_w2v_bert_and_clap_checkpoints(tmp_path):
    import json

    # w2v-BERT with its adapter (it changes the frame rate).
    folder = save_preset("tiny-w2v-bert", tmp_path / "adapter")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "add_adapter": True}))
    with pytest.raises(BackboneError, match=r"features\.backbones\.<name>\.source.*add_adapter"):
        load_backbone(BackboneSpec(str(folder), layer="last"), device="cpu")
    # w2v-BERT whose extractor does not fit its feature projection (40 mel bins x 2 != 160).
    folder = save_preset("tiny-w2v-bert", tmp_path / "mels")
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    wrong = {**pre, "num_mel_bins": 40, "feature_size": 40}
    (folder / "preprocessor_config.json").write_text(json.dumps(wrong))
    with pytest.raises(BackboneError, match="feature_projection_input_dim 160"):
        load_backbone(BackboneSpec(str(folder), layer="last"), device="cpu")
    # CLAP whose extractor window (20 s: 2001 mel frames) exceeds what the model takes (1024).
    folder = save_preset("tiny-clap-audio", tmp_path / "clap")
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    long_window = {**pre, "max_length_s": 20, "nb_max_samples": 960_000}
    (folder / "preprocessor_config.json").write_text(json.dumps(long_window))
    with pytest.raises(BackboneError, match=r"unsupported CLAP configuration.*2001 mel frames"):
        load_backbone(BackboneSpec(str(folder), layer="last"), device="cpu")
