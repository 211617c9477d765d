"""The schema of ``params.yaml``: one dataclass per section (nested dataclasses for nested
mappings). The field types are the whole contract: :func:`selm_lib.config.validate` checks a
loaded file against them, and no field has a default, so every value lives in ``params.yaml``
only (``| None`` marks a key that may be left out). ``dict[str, X]`` is a mapping whose keys the
user chooses (corpus or backbone names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Number = int | float  # a YAML integer or float (not a boolean)
PROFILES = ("default", "smoke")
Role = Literal["train", "test", "none"]


@dataclass(frozen=True)
class Common:
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    nproc: int
    profile: Literal["default", "smoke", "paper"]
    data_root: str
    output_root: str


@dataclass(frozen=True)
class PerProfile:
    default: dict[str, int]
    smoke: dict[str, int]
    paper: dict[str, int]


@dataclass(frozen=True)
class Synth:
    out_dir: str
    corpora: list[str]
    speakers: PerProfile
    utterances_per_speaker: PerProfile
    duration_s: list[Number]
    label_noise: dict[str, Number]
    bad_files: bool


@dataclass(frozen=True)
class CorpusEntry:
    root: str
    role: Role


@dataclass(frozen=True)
class Split:
    strategy: Literal["speaker", "official"]
    validation: Number
    test: Number
    folds: int


@dataclass(frozen=True)
class Curate:
    corpora: dict[str, CorpusEntry]
    ravdess_include_song: bool
    ravdess_calm: Literal["own_class", "neutral", "drop"]
    expresso_dialogues: Literal["split", "mix"]
    class_sets: dict[str, str]
    min_duration_s: Number
    silence_dbfs: Number
    split: Split


@dataclass(frozen=True)
class BackboneEntry:
    source: str
    layer: int | str
    corpora: list[str] | None = None  # left out: every curated corpus
    max_seconds: Number | None = None  # audio cut to this length before encoding (None: whole)


@dataclass(frozen=True)
class Features:
    backbones: dict[str, BackboneEntry]
    batch_seconds: Number
    chunk_seconds: Number
    max_padding: Number
    shard_frames: int
    dtype: Literal["float16", "float32"]


@dataclass(frozen=True)
class TinyLM:
    n_embd: int
    n_layer: int
    n_head: int
    n_positions: int


@dataclass(frozen=True)
class View:
    prompt: str
    answer: str
    weight: Number


@dataclass(frozen=True)
class Selm:
    backbone: str
    lm: str
    tokenizer: str
    tokenizer_vocab_size: int
    tiny_lm: TinyLM
    lm_trainable: bool
    audio_prefix_len: int
    text_prefix_len: int
    projection_dim: int
    mapper_layers: int
    mapper_heads: int
    mapper_mlp_ratio: Number
    dropout: Number
    pooling: Literal["adaptive_avg", "linear_interp"]
    train_corpora: list[str]
    allow_ood_training: bool
    views: dict[str, View]
    balance_answers: bool
    dimensional_bins: list[Number]
    dimensional_words: list[str]


@dataclass(frozen=True)
class TrainSelm:
    epochs: int
    batch_size: int
    eval_batch_size: int
    score_chunk: int
    learning_rate: Number
    lm_learning_rate: Number
    weight_decay: Number
    warmup_ratio: Number
    grad_clip: Number
    patience: int
    samples_per_view: int


@dataclass(frozen=True)
class Baseline:
    hidden: int
    dropout: Number
    epochs: int
    learning_rate: Number
    batch_size: int
    weight_decay: Number
    patience: int
    class_weights: Literal["same_as_selm", "balanced", "natural"]


@dataclass(frozen=True)
class EvalOod:
    test_corpora: list[str]
    num_beams: int
    max_new_tokens: int
    batch_size: int
    score_chunk: int
    headline: Literal[
        "validation",
        "selm_score",
        "selm_generate",
        "selm_score_uniform",
        "selm_score_em",
        "selm_score_content_free",
    ]
    bootstrap: int
    baseline: Baseline
    em_prior_strength: Number
    content_free: Literal["mean_frame", "zeros"]
    temperature_scaling: bool
    calibration_bins: int


@dataclass(frozen=True)
class VocabVariant:
    template: str
    words: Literal["names", "synonyms"]
    combine: Literal["mean", "max"]
    normalize: Literal["sum", "mean"]


@dataclass(frozen=True)
class LabelSet:
    corpus: str
    class_set: str
    calm: Literal["own_class", "neutral", "drop"]
    truth: Literal["emotion", "perceived"]


@dataclass(frozen=True)
class EvalVocab:
    reference: str
    variants: dict[str, VocabVariant]
    synonyms: dict[str, list[str]]
    label_sets: dict[str, LabelSet]


@dataclass(frozen=True)
class FewshotSweep:
    k: list[int]
    seeds: list[int]


@dataclass(frozen=True)
class FewshotSelect:
    tune: list[Literal["input_layer", "projection", "mappers"]] | None
    steps: list[int] | None
    learning_rate: list[Number] | None
    lm_learning_rate: list[Number] | None
    baseline_steps: list[int] | None
    baseline_learning_rate: list[Number] | None


@dataclass(frozen=True)
class Fewshot:
    corpora: list[str]
    methods: list[Literal["selm_mappers", "selm_full", "classifier_baseline"]]
    support_share: Number
    partition_per_seed: bool
    cap_k: bool
    tune: Literal["input_layer", "projection", "mappers"]
    steps: int
    batch_size: int
    learning_rate: Number
    lm_learning_rate: Number
    baseline_steps: int
    baseline_learning_rate: Number
    select: FewshotSelect
    inner_share: Number


@dataclass(frozen=True)
class LayerSweep:
    backbone: str
    layers: list[int]


@dataclass(frozen=True)
class Probe:
    epochs: int
    batch_size: int
    learning_rate: Number
    weight_decay: Number
    label_smoothing: Number
    grad_clip: Number
    warmup: Number
    hidden: int
    dropout: Number


@dataclass(frozen=True)
class SerevalsPaired:
    reference: str  # "best" or a serevals_sweep.backbones entry (checked by the serevals stage)
    variant: Literal["none", "train_prior", "oracle", "estimated", "estimated_map"]
    metrics: list[Literal["macro_f1", "unweighted_accuracy", "accuracy", "weighted_f1"]]
    bootstrap: int


@dataclass(frozen=True)
class Serevals:
    corpora: list[str]
    clusters: dict[str, list[str]]
    split: Literal["speaker", "random", "official"]
    test_share: Number
    max_seconds: Number
    normalize: Literal["corpus", "none"]
    mask_absent: bool
    metric_convention: Literal["present", "published"]
    em_prior_strength: Number
    exclude_contaminated: bool
    paired: SerevalsPaired
    probe: Probe


@dataclass(frozen=True)
class SerevalsSweep:
    backbones: list[str]


@dataclass(frozen=True)
class SerevalsFigures:
    metric: Literal["macro_f1", "unweighted_accuracy", "accuracy", "weighted_f1"]
    variant: Literal["none", "train_prior", "oracle", "estimated", "estimated_map"]
    published_dir: str
    published_metric: str
    exclude_contaminated: bool


@dataclass(frozen=True)
class Index:
    title: str


@dataclass(frozen=True)
class Params:
    """The whole file: one field per section."""

    common: Common
    synth: Synth
    curate: Curate
    features: Features
    selm: Selm
    train_selm: TrainSelm
    eval_ood: EvalOod
    eval_vocab: EvalVocab
    fewshot_sweep: FewshotSweep
    fewshot: Fewshot
    layer_sweep: LayerSweep
    serevals_sweep: SerevalsSweep
    serevals: Serevals
    serevals_figures: SerevalsFigures
    index: Index
