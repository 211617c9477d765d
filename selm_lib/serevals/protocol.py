"""The SER-Evals protocol for one backbone (the work of the ``serevals_probe`` stage), over the
curated manifests and the shared feature cache.

For every corpus of ``serevals.corpora`` and one backbone, :func:`run_backbone`

1. splits the usable clips into a training and an in-domain test part (``serevals.split``):
   speaker-disjoint by default; ``random`` is the paper's 80/20 over utterances, labelled
   ``speaker_overlapping`` in the scores, predictions, ``serevals.json``, ``matrices.json`` and
   the reports (so is a one-speaker corpus such as Thorsten, which cannot be split by speaker);
   a corpus without speaker ids (the label-folder layouts of BAUM-1 and EEKK) is split at
   random and labelled ``speaker_unknown``; a corpus whose speaker column holds groups that are
   not speakers (MESD: voice groups; RESD: dialogues; the table
   :data:`selm_lib.serevals.results.GROUP_SPEAKERS`) is split by that column and labelled
   ``group_disjoint``;
2. standardises every corpus's frame features with that corpus's own statistics (mean and
   standard deviation per dimension over all its usable clips, one streaming pass with float64
   accumulators; no labels; applied per batch on the device) when
   ``serevals.normalize`` is ``corpus`` (the default; ``none`` is the paper's protocol). A
   frozen encoder's features carry a large corpus/channel offset, which this removes; it is
   transductive for an OOD test corpus (its unlabelled audio statistics are used);
   ``serevals.json`` and ``matrices.json`` name the setting;
3. trains the frame-MLP probe (:func:`selm_lib.serevals.probe.train_probe`) on the training part, on
   ``common.device``, over cached frame features of audio cut to ``serevals.max_seconds`` before
   encoding (one window per clip, as the paper's code does; the store must say so);
4. scores it in-domain (plain argmax over the 8 classes, ``other`` kept: it is a class of that
   corpus) and on every other corpus of its cluster (``serevals.clusters``), whole, under the four
   logit-adjustment variants (:data:`VARIANTS`: none, train_prior, oracle, estimated,
   estimated_map) with ``other`` masked and its items dropped, as in the paper. The EM variants
   are fitted on the scored items only (truth not ``other``); every fit's convergence and
   iteration count is recorded in the meta's ``em`` entries.

Scores follow ``serevals.metric_convention`` (:func:`score`): ``present`` averages over the
classes present in the scored truth (a prediction of another class counts as an error);
``published`` also averages over classes predicted but absent from the truth, as the published
tables do. ``chance_ua`` (1 / classes in the truth) is the unweighted accuracy of any constant or
random guess under ``present``.

``python -m selm_lib.stages.serevals_probe --backbone NAME`` runs one item (a DVC matrix
entry); :mod:`selm_lib.serevals.results` aggregates the items.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from selm_lib.config import distributed as D
from selm_lib.config import resolve_path, section_config
from selm_lib.config.device import resolve_device
from selm_lib.data.corpora.base import usable
from selm_lib.data.splits import check_speaker_disjoint, corpus_seed
from selm_lib.evaluation import metrics as M
from selm_lib.evaluation.calibration import calibration_record
from selm_lib.features.frames import FrameSet
from selm_lib.features.store import FeatureStore, store_folder
from selm_lib.serevals.probe import (
    CLASSES,
    OTHER_INDEX,
    Normalizer,
    ProbeConfig,
    adjusted_logits,
    class_prior,
    predict_logits,
    train_probe,
)
from selm_lib.serevals.results import (
    CONVENTIONS,
    GROUP_DISJOINT,
    GROUP_SPEAKERS,
    METRICS,
    OFFICIAL,
    RESULT_COLUMNS,
    SPEAKER_DISJOINT,
    SPEAKER_OVERLAPPING,
    SPEAKER_UNKNOWN,
    VARIANTS,
    SerevalsError,
    cluster_pairs,
    unavailable_members,
)

# ----------------------------------------------------------------------------- protocol pieces


def in_domain_split(
    rows: pd.DataFrame, corpus: str, mode: str, share: float, seed: int
) -> tuple[np.ndarray, str]:
    """(test mask over ``rows``, split label).

    ``speaker``: whole speakers, in a seeded order, go to the test part until it holds ``share``
    of the *utterances* (at least one speaker, never all): with few speakers of very different
    sizes (MELD's main characters) a share of speakers would make the test share swing with the
    seed. A corpus with one speaker falls back to ``random`` and is labelled speaker-overlapping.
    ``random``: a share of utterances, speakers overlap. ``official``: the corpus's own test
    split (manifest column ``official_split``: MELD, RESD), labelled ``official``; a corpus
    without one is split as ``speaker``. Clips whose speaker is unknown (empty) count as one
    speaker. A corpus of :data:`GROUP_SPEAKERS` (its speaker column is a group, not a speaker)
    split by that column is labelled ``group_disjoint``."""
    if mode not in ("speaker", "random", "official"):
        raise SerevalsError(
            f"params.yaml 'serevals.split' is {mode!r}; use speaker, random or official"
        )
    n = len(rows)
    if n < 2:
        raise SerevalsError(
            f"SER-Evals corpus '{corpus}' has {n} usable clip(s): a probe needs at least two "
            "(one to train on, one to test); remove it from params.yaml 'serevals.corpora'"
        )
    rng = corpus_seed(seed, corpus)
    speakers = sorted(set(rows["speaker"]))
    official = rows["official_split"].astype(str) if "official_split" in rows else None
    if mode == "official" and official is not None and (official != "").all():
        test = official.isin(["test"]).to_numpy()
        if test.all() or not test.any():
            raise SerevalsError(
                f"SER-Evals corpus '{corpus}': its official split has "
                f"{'no' if not test.any() else 'only'} test items; use serevals.split: speaker"
            )
        return test, OFFICIAL
    if mode in ("speaker", "official") and len(speakers) >= 2:
        order = [speakers[i] for i in rng.permutation(len(speakers))]
        sizes = rows["speaker"].value_counts()
        chosen, held = [], 0
        for name in order[:-1]:  # never every speaker
            if chosen and held >= share * n:
                break
            chosen.append(name)
            held += int(sizes[name])
        test = rows["speaker"].isin(chosen).to_numpy()
        table = pd.DataFrame({"speaker": rows["speaker"], "split": np.where(test, "test", "x")})
        check_speaker_disjoint(table, corpus=corpus, column="split")
        return test, GROUP_DISJOINT if corpus in GROUP_SPEAKERS else SPEAKER_DISJOINT
    n_test = min(n - 1, max(1, int(round(share * n))))
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[:n_test]] = True
    return test, SPEAKER_UNKNOWN if speakers == [""] else SPEAKER_OVERLAPPING


def score(
    truth: list[str], predicted: list[str], *, drop_other: bool, convention: str = "present"
) -> dict[str, Any]:
    """Accuracy, unweighted accuracy (macro recall), macro-F1 and weighted F1 (``other`` items
    dropped first when ``drop_other``).

    ``convention`` (``serevals.metric_convention``):

    - ``present``: macro averages over the classes present in ``truth``; a prediction outside
      them counts as an error (a miss of its true class) and as nobody's false positive;
    - ``published``: the published tables' convention (torchmetrics over the 8-class space,
      REFERENCE section 6): macro averages over every class of :data:`CLASSES` that occurs in
      the truth **or** the predictions (``other`` left out when ``drop_other``: it is masked and
      its items dropped). A class predicted but absent from the truth enters the averages with
      F1 0 and recall 0; a class in neither is left out, as torchmetrics gives it zero weight
      (so not all 8: averaging over all 8 would add zeros for classes nobody saw).

    The two agree exactly when every predicted class occurs in the truth. Accuracy and weighted
    F1 are the same under both (an absent class has no support). ``classes`` and ``chance_ua``
    count the classes of the truth; ``classes_averaged`` those the macro averages run over.
    """
    if convention not in CONVENTIONS:
        raise SerevalsError(
            f"params.yaml 'serevals.metric_convention' is {convention!r}; use one of "
            f"{', '.join(CONVENTIONS)}"
        )
    truth_a = np.asarray(truth, dtype=object)
    pred_a = np.asarray(predicted, dtype=object)
    if drop_other:
        keep = truth_a != "other"
        truth_a, pred_a = truth_a[keep], pred_a[keep]
    if len(truth_a) == 0:
        raise SerevalsError("nothing to score: every test item is 'other'")
    classes = [c for c in CLASSES if c in set(truth_a)]
    averaged = classes
    if convention == "published":
        seen = set(truth_a) | set(pred_a)
        averaged = [c for c in CLASSES if c in seen and not (drop_other and c == "other")]
    out = M.summary(list(truth_a), list(pred_a), averaged)
    # metrics.summary averages recall over the classes with support; under ``published`` a class
    # without support but with predictions counts too, with recall 0
    out["unweighted_accuracy"] = out["unweighted_accuracy"] * len(classes) / len(averaged)
    shares = pd.Series(truth_a).value_counts(normalize=True)
    return {
        **{m: round(float(out[m]), 6) for m in METRICS},
        "n": int(out["n"]),
        "classes": len(classes),
        "classes_averaged": len(averaged),
        "chance_ua": round(1.0 / len(classes), 6),
        "majority_accuracy": round(float(shares.max()), 6),
    }


def probe_config(serevals: dict[str, Any], seed: int) -> ProbeConfig:
    """The probe head and its training, from ``serevals.probe``."""
    return section_config(ProbeConfig, serevals["probe"], seed=int(seed))


# ----------------------------------------------------------------------------- data


def corpus_rows(params: dict[str, Any], corpus: str) -> pd.DataFrame:
    """Usable clips of a curated corpus with an 8-class label (``serevals8``), by utterance id."""
    path = resolve_path(params["common"]["output_root"]) / "manifests" / f"{corpus}.csv"
    if not path.is_file():
        raise SerevalsError(
            f"{path} is missing: '{corpus}' (params.yaml 'serevals.corpora') must also be a "
            "'curate.corpora' entry; run dvc repro curate"
        )
    manifest = pd.read_csv(path, keep_default_na=False, dtype={"speaker": str})
    rows = usable(manifest)
    rows = rows[rows["serevals8"].isin(CLASSES)].sort_values("utterance_id")
    if rows.empty:
        raise SerevalsError(
            f"{path}: no usable clip with an 8-class label; check the corpus root "
            f"(params.yaml 'curate.corpora.{corpus}.root') and its quarantine list"
        )
    return rows.reset_index(drop=True)


def load_frames(
    params: dict[str, Any], backbone: str, corpus: str, utterances: list[str]
) -> FrameSet:
    """The cached frames of ``utterances`` (lazy: read a batch at a time). The store must have
    been cut to ``serevals.max_seconds`` before encoding (``features.backbones.<name>.
    max_seconds``); a store cut otherwise is an error that names both keys."""
    spec = params["features"]["backbones"][backbone]
    root = resolve_path(params["common"]["output_root"]) / "features"
    folder = store_folder(root, backbone, spec["layer"], corpus)
    if not (folder / "meta.json").is_file():
        raise SerevalsError(
            f"no cached features for backbone '{backbone}' (params.yaml "
            f"'serevals_sweep.backbones') and corpus '{corpus}' in {folder}: add '{corpus}' to "
            f"'features.backbones.{backbone}.corpora' and run dvc repro features@{backbone}"
        )
    store = FeatureStore.open(folder)
    cut, wanted = store.meta.get("max_seconds"), params["serevals"]["max_seconds"]
    if cut is None or float(cut) != float(wanted):
        raise SerevalsError(
            f"{folder}: the audio was cut to {cut} s before encoding, the protocol wants "
            f"serevals.max_seconds = {wanted} s: set params.yaml 'features.backbones.{backbone}."
            f"max_seconds: {wanted}' and run dvc repro features@{backbone}"
        )
    return FrameSet.of_store(store, utterances)


# ----------------------------------------------------------------------------- one backbone


def _calibration(
    train: str, test: str, kind: str, variant: str, logits: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    return {
        "train": train,
        "test": test,
        "kind": kind,
        "variant": variant,
        **calibration_record(logits, np.asarray(labels, dtype=np.int64)),
    }


def _owners(params: dict[str, Any], corpora: list[str], dist: D.Dist) -> dict[str, int]:
    """Which rank trains each corpus's probe: corpora spread by their usable clip counts
    (:func:`selm_lib.config.distributed.balanced`); every corpus on rank 0 for one process."""
    if not dist.active:
        return {c: 0 for c in corpora}
    sizes = [len(corpus_rows(params, c)) for c in corpora]
    parts = D.balanced(sizes, dist.world)
    return {corpora[i]: rank for rank, part in enumerate(parts) for i in part}


def run_backbone(
    params: dict[str, Any], backbone: str, log: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Probe every corpus with one backbone. Returns (results, predictions, meta).

    results: one row per (train, test, variant) in :data:`RESULT_COLUMNS`; in-domain rows have
    ``kind == "in_domain"`` and ``variant == "none"``. predictions: one row per scored clip.
    """
    serevals, seed = params["serevals"], params["common"]["seed"]
    if backbone not in params["features"]["backbones"]:
        raise SerevalsError(
            f"backbone '{backbone}' is not a params.yaml 'features.backbones' entry; add it there "
            "(source, layer, corpora) or remove it from 'serevals_sweep.backbones'"
        )
    corpora = list(serevals["corpora"])
    config = probe_config(serevals, seed)
    device = resolve_device(params["common"]["device"])
    index = {c: i for i, c in enumerate(CLASSES)}
    data, heads, priors, split_of, seconds = {}, {}, {}, {}, {}
    # (order key, record): keys put every rank's records in the order one process writes them
    results: list[tuple[tuple, dict[str, Any]]] = []
    predictions: list[tuple[tuple, pd.DataFrame]] = []
    skipped: list[tuple[tuple, dict[str, str]]] = []
    em_fits: list[tuple[tuple, dict[str, Any]]] = []
    calibration: list[tuple[tuple, dict[str, Any]]] = []
    convention = serevals["metric_convention"]
    dist = D.context() if D.initialized() else D.Dist()
    owner = _owners(params, corpora, dist)  # corpus -> the rank that trains its probe
    key: tuple = ()

    def add(
        train: str,
        test: str,
        kind: str,
        cluster: str,
        variant: str,
        rows: pd.DataFrame,
        predicted: list[str],
        drop_other: bool,
    ) -> None:
        truth = list(rows["serevals8"])
        results.append(
            (
                key,
                {
                    "backbone": backbone,
                    "train": train,
                    "test": test,
                    "kind": kind,
                    "cluster": cluster,
                    "split": split_of[train],
                    "variant": variant,
                    **score(truth, predicted, drop_other=drop_other, convention=convention),
                },
            )
        )
        predictions.append(
            (
                key,
                pd.DataFrame(
                    {
                        "backbone": backbone,
                        "train": train,
                        "test": test,
                        "variant": variant,
                        "split": split_of[train],
                        "utterance_id": rows["utterance_id"].to_numpy(),
                        "speaker": rows["speaker"].to_numpy(),
                        "truth": truth,
                        "prediction": predicted,
                    }
                ),
            )
        )

    for position, corpus in enumerate(corpora):
        start = time.perf_counter()
        rows = corpus_rows(params, corpus)
        frames = load_frames(params, backbone, corpus, list(rows["utterance_id"]))
        norm = Normalizer.of(frames) if serevals["normalize"] == "corpus" else None
        test, split_of[corpus] = in_domain_split(
            rows, corpus, serevals["split"], serevals["test_share"], seed
        )
        labels = rows["serevals8"].map(index).to_numpy()
        if (labels == OTHER_INDEX).all():
            raise SerevalsError(
                f"SER-Evals corpus '{corpus}': every usable clip is labelled 'other', so a probe "
                "has no emotion to learn; remove it from params.yaml 'serevals.corpora' or check "
                "its label rules in selm_lib/data/tables/label_map.csv"
            )
        train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
        priors[corpus] = class_prior(labels[train_index], len(CLASSES))
        data[corpus] = (rows, frames, norm)
        if owner[corpus] != dist.rank:  # another rank trains this corpus's probe
            continue
        key = (0, position)
        head = train_probe(
            frames.subset(train_index),
            labels[train_index],
            len(CLASSES),
            config,
            device=device,
            normalizer=norm,
        )
        heads[corpus] = head
        logits = predict_logits(head, frames.subset(test_index), normalizer=norm)
        predicted = [CLASSES[i] for i in logits.argmax(axis=1)]
        add(corpus, corpus, "in_domain", "", "none", rows.iloc[test_index], predicted, False)
        calibration.append(
            (key, _calibration(corpus, corpus, "in_domain", "none", logits, labels[test_index]))
        )
        seconds[corpus] = round(time.perf_counter() - start, 2)
        if log:
            log(
                f"{backbone}: {corpus} in-domain {results[-1][1]['macro_f1']:.3f} macro-F1 "
                f"({split_of[corpus]}, {seconds[corpus]:.1f} s)"
            )

    for pair, (cluster, train, test) in enumerate(cluster_pairs(serevals["clusters"], corpora)):
        if owner[train] != dist.rank:  # the rank holding the training corpus's probe scores it
            continue
        rows, frames, norm = data[test]
        truth_index = rows["serevals8"].map(index).to_numpy()
        emotions_trained = np.delete(priors[train], OTHER_INDEX).sum() > 0
        if (truth_index == OTHER_INDEX).all() or not emotions_trained:
            reason = "only 'other' labels on one side (other is dropped in OOD scoring)"
            skipped.append(
                ((1, pair), {"train": train, "test": test, "cluster": cluster, "reason": reason})
            )
            continue
        logits = predict_logits(heads[train], frames, normalizer=norm)
        keep = truth_index != OTHER_INDEX  # other items are dropped from OOD scoring
        for number, variant in enumerate(VARIANTS):
            key = (1, pair, number)
            adjusted, em = adjusted_logits(
                logits,
                priors[train],
                variant,
                test_labels=truth_index,
                other_index=OTHER_INDEX,
                mask_absent=serevals["mask_absent"],
                scored=keep,  # the EM variants are fitted on the scored items only
                strength=serevals["em_prior_strength"],
            )
            chosen = adjusted.argmax(axis=1)
            calibration.append(
                (
                    key,
                    _calibration(train, test, "ood", variant, adjusted[keep], truth_index[keep]),
                )
            )
            if em is not None:
                em_fits.append(
                    (
                        key,
                        {
                            "train": train,
                            "test": test,
                            "variant": variant,
                            **em.record(),
                            "prior": {
                                c: round(float(v), 6)
                                for c, v in zip(CLASSES, em.prior, strict=True)
                            },
                        },
                    )
                )
                if log and not em.converged:
                    log(
                        f"{backbone}: EM ({variant}) for {train} -> {test} did not converge in "
                        f"{em.iterations} iterations"
                    )
            add(
                train,
                test,
                "ood",
                cluster,
                variant,
                rows[keep],
                [CLASSES[i] for i in chosen[keep]],
                True,
            )
    if dist.active:  # every rank's records, in one process's order
        gathered = D.gather_objects((results, predictions, skipped, em_fits, calibration))
        results, predictions, skipped, em_fits, calibration = (
            [item for part in gathered for item in part[i]] for i in range(5)
        )
    results, predictions, skipped, em_fits, calibration = (
        [record for _, record in sorted(items, key=lambda item: item[0])]
        for items in (results, predictions, skipped, em_fits, calibration)
    )
    meta = {
        "backbone": backbone,
        "split": split_of,
        "skipped_pairs": skipped,
        "metric_convention": convention,
        "em_prior_strength": serevals["em_prior_strength"],
        "em": em_fits,  # one entry per (train, test) pair and EM variant: convergence, iterations
        # ECE, NLL, Brier and the reliability table of the probe's softmax per scored cell and
        # variant (in domain: the test part, all 8 classes; OOD: the scored items, other and
        # masked classes at probability 0). No temperature scaling: the protocol has no
        # validation split to fit one on.
        "calibration": calibration,
        "unavailable_cluster_members": unavailable_members(serevals["clusters"], corpora),
    }
    return (
        pd.DataFrame(results, columns=RESULT_COLUMNS),
        pd.concat(predictions, ignore_index=True),
        meta,
    )
