from __future__ import annotations

from typing import get_args, get_type_hints

import numpy as np
import pandas as pd
import pytest
import torch

from selm_lib.config.sections import Fewshot
from selm_lib.evaluation.fewshot_results import FewshotError
from selm_lib.selm.adapt import (
    TUNABLE,
    _adapt_baseline,
    _adapt_selm,
    speaker_partition,
    support_set,
    tuned_parameters,
)
from tests.test_model import AUDIO_DIM, make_tokenizer, tiny_model


def rows(speakers: int = 6, per_class: int = 4, classes=("angry", "happy", "sad")) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"utterance_id": f"s{s}_{c}_{i}", "speaker": f"s{s}", "eval_class": c}
            for s in range(speakers)
            for c in classes
            for i in range(per_class)
        ]
    )


def test_partition_is_deterministic_and_disjoint():
    table = rows()
    pool = speaker_partition(table, "toy", seed=3, share=0.5)
    assert pool == speaker_partition(table, "toy", seed=3, share=0.5)
    assert len(pool) == 3
    evaluated = set(table["speaker"]) - pool
    assert evaluated and not (pool & evaluated)


def test_partition_needs_two_speakers():
    with pytest.raises(FewshotError, match="at least one for adaptation and one for evaluation"):
        speaker_partition(rows(speakers=1), "toy", seed=0, share=0.5)


def test_support_sets_are_nested_and_balanced():
    pool = rows(speakers=2)
    classes = ["angry", "happy", "sad"]
    small, _ = support_set(pool, "toy", classes, k=2, seed=1, cap=False)
    large, _ = support_set(pool, "toy", classes, k=5, seed=1, cap=False)
    assert small["eval_class"].value_counts().to_dict() == {c: 2 for c in classes}
    assert set(small["utterance_id"]) <= set(large["utterance_id"])
    other, _ = support_set(pool, "toy", classes, k=2, seed=2, cap=False)
    assert set(other["utterance_id"]) != set(small["utterance_id"])
    empty, _ = support_set(pool, "toy", classes, k=0, seed=1, cap=False)
    assert empty.empty


def test_k_above_smallest_class_is_an_error_or_capped():
    pool = pd.concat(
        [
            rows(speakers=1, per_class=4),
            rows(speakers=1, per_class=2, classes=("sad",)).assign(
                speaker="s9", utterance_id=lambda t: "x" + t["utterance_id"]
            ),
        ]
    )
    pool = pool[~((pool["eval_class"] == "sad") & (pool["speaker"] == "s0"))]
    with pytest.raises(FewshotError, match=r"'toy': k=3 but class 'sad' has only 2.*fewshot.cap_k"):
        support_set(pool, "toy", ["angry", "happy", "sad"], k=3, seed=0, cap=False)
    capped_rows, capped = support_set(pool, "toy", ["angry", "happy", "sad"], k=3, seed=0, cap=True)
    assert capped == {"sad": 2}
    assert capped_rows["eval_class"].value_counts().to_dict() == {"angry": 3, "happy": 3, "sad": 2}


SELM_PARAMS = {"views": {"categorical": {"prompt": "emotion:", "answer": "{emotion}"}}}


def fewshot_params(**overrides) -> dict:
    values = {
        "tune": "input_layer",
        "steps": 3,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "lm_learning_rate": 1e-3,
    }
    return values | overrides


def support_frames(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.normal(size=(int(rng.integers(4, 9)), AUDIO_DIM)).astype(np.float32) for _ in range(n)
    ]


def adapted_and_changed(full: bool, **overrides) -> tuple[torch.nn.Module, set[str]]:
    model = tiny_model().eval()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    adapted = _adapt_selm(
        model,
        make_tokenizer(),
        support_frames(),
        ["angry", "happy", "sad"] * 2,
        SELM_PARAMS,
        fewshot_params(**overrides),
        full=full,
        seed=0,
        device=torch.device("cpu"),
    )
    for name, p in model.named_parameters():  # the unadapted model is never touched
        assert torch.equal(p, before[name]), name
    changed = {name for name, p in adapted.named_parameters() if not torch.equal(p, before[name])}
    return adapted, changed


def test_tune_choices_match_the_schema():
    assert get_args(get_type_hints(Fewshot)["tune"]) == TUNABLE
    with pytest.raises(FewshotError, match="fewshot.tune"):
        tuned_parameters(tiny_model(), "everything")


def test_input_layer_adaptation_tunes_only_the_first_projection_layer():
    adapted, changed = adapted_and_changed(full=False)
    assert changed == {"audio_projection.linear1.weight", "audio_projection.linear1.bias"}
    assert not adapted.training  # scored in eval mode


def test_full_adaptation_also_tunes_the_lm():
    _, changed = adapted_and_changed(full=True)
    assert {"audio_projection.linear1.weight", "audio_projection.linear1.bias"} <= changed
    assert any(name.startswith("lm.") for name in changed)
    assert not any(name.startswith(("audio_mapper.", "text_mapper.")) for name in changed)


def test_mappers_adaptation_tunes_projection_and_mappers():
    _, changed = adapted_and_changed(full=False, tune="mappers")
    assert any(name.startswith("audio_mapper.") for name in changed)
    assert any(name.startswith("audio_projection.linear2") for name in changed)
    assert not any(name.startswith("lm.") for name in changed)


def test_baseline_cannot_learn_a_class_it_has_no_output_for():
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(FewshotError, match=r"calm.*'curate.ravdess_calm'"):
        _adapt_baseline(
            torch.nn.Linear(4, 2),
            ["angry", "neutral"],
            x,
            ["calm", "angry"],
            {"angry": "angry", "neutral": "neutral"},
            {"baseline_learning_rate": 1e-3, "baseline_steps": 1, "batch_size": 2},
            seed=0,
        )


def test_iemocap_is_partitioned_by_session_and_seeds_draw_their_own_partition():
    """The two speakers of an IEMOCAP session share its dialogues: they always land on the same
    side. With a draw (the item seed) the partition changes between seeds, so the interval over
    seeds covers it; without one every seed gets the same partition."""
    table = rows(speakers=10)
    table["session"] = [f"Session{int(s[1:]) // 2 + 1}" for s in table["speaker"]]
    pools = set()
    for draw in range(6):
        pool = speaker_partition(table, "iemocap", seed=34, share=0.5, draw=draw)
        for session, group in table.groupby("session"):
            inside = set(group["speaker"]) & pool
            assert inside in (set(), set(group["speaker"])), session  # whole sessions only
        assert len(pool) in (4, 6)  # 2 or 3 of the 5 sessions (rounded share)
        pools.add(frozenset(pool))
    assert len(pools) > 1
    fixed = {frozenset(speaker_partition(table, "iemocap", 34, 0.5)) for _ in range(3)}
    assert len(fixed) == 1
    # a corpus without a session column is split by speaker, as before
    assert speaker_partition(rows(), "toy", seed=3, share=0.5) == speaker_partition(
        rows(), "toy", seed=3, share=0.5
    )
