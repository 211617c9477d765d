"""SER-Evals stages: one probe item per backbone (``serevals_probe``) and the train x test
matrices (``serevals``), over the curated manifests and the shared feature cache.

For every corpus of ``serevals.corpora`` and one backbone, :func:`run_backbone`

1. splits the usable clips into a training and an in-domain test part (``serevals.split``):
   speaker-disjoint by default; ``random`` is the paper's 80/20 over utterances, labelled
   ``speaker_overlapping`` in the scores, predictions, ``serevals.json``, ``matrices.json`` and
   the reports (so is a one-speaker corpus such as Thorsten, which cannot be split by speaker);
2. standardises every corpus's frame features with that corpus's own statistics (mean and
   standard deviation per dimension over all its usable clips; no labels) when
   ``serevals.normalize`` is ``corpus`` (the default; ``none`` is the paper's protocol). A
   frozen encoder's features carry a large corpus/channel offset, which this removes; it is
   transductive for an OOD test corpus (its unlabelled audio statistics are used);
   ``serevals.json`` and ``matrices.json`` name the setting;
3. trains the frame-MLP probe (:func:`selm_lib.serevals.train_probe`) on the training part, on
   cached frame features truncated to ``serevals.max_seconds``;
4. scores it in-domain (plain argmax over the 8 classes, ``other`` kept: it is a class of that
   corpus) and on every other corpus of its cluster (``serevals.clusters``), whole, under the four
   logit-adjustment variants (none, train_prior, oracle, estimated) with ``other`` masked and its
   items dropped, as in the paper.

Scores are over the classes present in the scored truth; a prediction of another class counts as
an error. ``chance_ua`` (1 / classes) is the unweighted accuracy of any constant or random guess.

``python -m selm_lib.serevals_run probe --backbone NAME`` runs one item (a DVC matrix entry).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selm_lib import metrics as M
from selm_lib.corpora.base import usable
from selm_lib.features import FeatureStore, store_folder
from selm_lib.params import ParamsError, load_params, output_dir, resolve_path
from selm_lib.serevals import (
    CLASSES,
    OTHER_INDEX,
    VARIANTS,
    ProbeConfig,
    adjusted_predictions,
    class_prior,
    predict_logits,
    train_probe,
)
from selm_lib.splits import check_speaker_disjoint, corpus_seed

FRAMES_PER_SECOND = 50  # every supported backbone (and the log-mel preset) has 20 ms frames
METRICS = ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1")
SPEAKER_DISJOINT = "speaker_disjoint"
SPEAKER_OVERLAPPING = "speaker_overlapping"
RESULT_COLUMNS = [
    "backbone", "train", "test", "kind", "cluster", "split", "variant", *METRICS, "n",
    "classes", "chance_ua", "majority_accuracy",
]  # fmt: skip


class SerevalsError(ValueError):
    """Bad SER-Evals input; names the corpus and the params.yaml key."""


# ----------------------------------------------------------------------------- protocol pieces


def cluster_pairs(clusters: dict[str, list[str]], corpora: list[str]) -> list[tuple[str, str, str]]:
    """(cluster, train, test) for every ordered pair of distinct corpora of a cluster that are
    both in ``corpora``; ordered as ``corpora``. A pair in two clusters is listed once."""
    position = {c: i for i, c in enumerate(corpora)}
    pairs: dict[tuple[str, str], str] = {}
    for name, members in clusters.items():
        present = sorted({m for m in members if m in position}, key=position.__getitem__)
        for train in present:
            for test in present:
                if train != test:
                    pairs.setdefault((train, test), name)
    ordered = sorted(pairs, key=lambda p: (position[p[0]], position[p[1]]))
    return [(pairs[p], *p) for p in ordered]


def unavailable_members(clusters: dict[str, list[str]], corpora: list[str]) -> dict[str, list[str]]:
    """Cluster members not in ``corpora`` (not curated or not probed), per cluster."""
    out = {name: [m for m in members if m not in corpora] for name, members in clusters.items()}
    return {name: missing for name, missing in out.items() if missing}


def in_domain_split(rows: pd.DataFrame, corpus: str, mode: str, share: float,
                    seed: int) -> tuple[np.ndarray, str]:  # fmt: skip
    """(test mask over ``rows``, split label). ``speaker``: whole speakers go to the test part
    (at least one, never all); a corpus with one speaker falls back to ``random`` and is labelled
    speaker-overlapping. ``random``: a share of utterances, speakers overlap. Clips whose
    speaker is unknown (empty) count as one speaker."""
    if mode not in ("speaker", "random"):
        raise SerevalsError(f"params.yaml 'serevals.split' is {mode!r}; use speaker or random")
    n = len(rows)
    if n < 2:
        raise SerevalsError(
            f"SER-Evals corpus '{corpus}' has {n} usable clip(s): a probe needs at least two "
            "(one to train on, one to test); remove it from params.yaml 'serevals.corpora'"
        )
    rng = corpus_seed(seed, corpus)
    speakers = sorted(set(rows["speaker"]))
    if mode == "speaker" and len(speakers) >= 2:
        order = [speakers[i] for i in rng.permutation(len(speakers))]
        n_test = min(len(speakers) - 1, max(1, int(round(share * len(speakers)))))
        test = rows["speaker"].isin(order[:n_test]).to_numpy()
        table = pd.DataFrame({"speaker": rows["speaker"], "split": np.where(test, "test", "x")})
        check_speaker_disjoint(table, corpus=corpus, column="split")
        return test, SPEAKER_DISJOINT
    n_test = min(n - 1, max(1, int(round(share * n))))
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[:n_test]] = True
    return test, SPEAKER_OVERLAPPING


def score(truth: list[str], predicted: list[str], *, drop_other: bool) -> dict[str, Any]:
    """Metrics over the classes present in ``truth`` (``other`` items dropped first when
    ``drop_other``); predictions outside those classes count as errors."""
    truth_a = np.asarray(truth, dtype=object)
    pred_a = np.asarray(predicted, dtype=object)
    if drop_other:
        keep = truth_a != "other"
        truth_a, pred_a = truth_a[keep], pred_a[keep]
    if len(truth_a) == 0:
        raise SerevalsError("nothing to score: every test item is 'other'")
    classes = [c for c in CLASSES if c in set(truth_a)]
    out = M.summary(list(truth_a), list(pred_a), classes)
    shares = pd.Series(truth_a).value_counts(normalize=True)
    return {
        **{m: round(float(out[m]), 6) for m in METRICS},
        "n": int(out["n"]),
        "classes": len(classes),
        "chance_ua": round(1.0 / len(classes), 6),
        "majority_accuracy": round(float(shares.max()), 6),
    }


def probe_config(serevals: dict[str, Any], seed: int) -> ProbeConfig:
    probe = serevals["probe"]
    return ProbeConfig(
        epochs=int(probe["epochs"]),
        batch_size=int(probe["batch_size"]),
        learning_rate=float(probe["learning_rate"]),
        weight_decay=float(probe["weight_decay"]),
        label_smoothing=float(probe["label_smoothing"]),
        grad_clip=float(probe["grad_clip"]),
        warmup=float(probe["warmup"]),
        seed=int(seed),
        hidden=int(probe["hidden"]),
        dropout=float(probe["dropout"]),
    )


def standardize(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Frames of one corpus z-scored per dimension with the statistics of all its frames."""
    if not frames:
        return frames
    stacked = np.concatenate(frames).astype(np.float64)
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)  # a constant dimension stays constant (zero)
    return [((f - mean) / std).astype(np.float32) for f in frames]


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


def load_frames(params: dict[str, Any], backbone: str, corpus: str,
                utterances: list[str]) -> list[np.ndarray]:  # fmt: skip
    """Cached frames of ``utterances``, truncated to ``serevals.max_seconds``."""
    spec = params["features"]["backbones"][backbone]
    root = resolve_path(params["common"]["output_root"]) / "features"
    folder = store_folder(root, backbone, spec["layer"], corpus)
    if not (folder / "meta.json").is_file():
        raise SerevalsError(
            f"no cached features for backbone '{backbone}' (params.yaml "
            f"'serevals_sweep.backbones') and corpus '{corpus}' in {folder}: add '{corpus}' to "
            f"'features.backbones.{backbone}.corpora' and run dvc repro features"
        )
    max_frames = max(1, int(params["serevals"]["max_seconds"] * FRAMES_PER_SECOND))
    arrays = FeatureStore.open(folder).get_many(utterances)
    return [np.asarray(a[:max_frames], dtype=np.float32) for a in arrays]


# ----------------------------------------------------------------------------- one backbone


def run_backbone(params: dict[str, Any], backbone: str,
                 log: Any = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:  # fmt: skip
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
    index = {c: i for i, c in enumerate(CLASSES)}
    data, heads, priors, split_of, seconds = {}, {}, {}, {}, {}
    results: list[dict[str, Any]] = []
    predictions: list[pd.DataFrame] = []
    skipped: list[dict[str, str]] = []

    def add(train: str, test: str, kind: str, cluster: str, variant: str, rows: pd.DataFrame,
            predicted: list[str], drop_other: bool) -> None:  # fmt: skip
        truth = list(rows["serevals8"])
        results.append({
            "backbone": backbone, "train": train, "test": test, "kind": kind,
            "cluster": cluster, "split": split_of[train], "variant": variant,
            **score(truth, predicted, drop_other=drop_other),
        })  # fmt: skip
        predictions.append(pd.DataFrame({
            "backbone": backbone, "train": train, "test": test, "variant": variant,
            "split": split_of[train], "utterance_id": rows["utterance_id"].to_numpy(),
            "speaker": rows["speaker"].to_numpy(),
            "truth": truth, "prediction": predicted,
        }))  # fmt: skip

    for corpus in corpora:
        start = time.perf_counter()
        rows = corpus_rows(params, corpus)
        frames = load_frames(params, backbone, corpus, list(rows["utterance_id"]))
        if serevals["normalize"] == "corpus":
            frames = standardize(frames)
        test, split_of[corpus] = in_domain_split(
            rows, corpus, serevals["split"], serevals["test_share"], seed
        )
        labels = rows["serevals8"].map(index).to_numpy()
        if (labels == OTHER_INDEX).all():
            raise SerevalsError(
                f"SER-Evals corpus '{corpus}': every usable clip is labelled 'other', so a probe "
                "has no emotion to learn; remove it from params.yaml 'serevals.corpora' or check "
                "its label rules in selm_lib/data/label_map.csv"
            )
        train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
        head = train_probe([frames[i] for i in train_index], labels[train_index], len(CLASSES),
                           config)  # fmt: skip
        heads[corpus] = head
        priors[corpus] = class_prior(labels[train_index], len(CLASSES))
        data[corpus] = (rows, frames)
        logits = predict_logits(head, [frames[i] for i in test_index])
        predicted = [CLASSES[i] for i in logits.argmax(axis=1)]
        add(corpus, corpus, "in_domain", "", "none", rows.iloc[test_index], predicted, False)
        seconds[corpus] = round(time.perf_counter() - start, 2)
        if log:
            log(f"{backbone}: {corpus} in-domain {results[-1]['macro_f1']:.3f} macro-F1 "
                f"({split_of[corpus]}, {seconds[corpus]:.1f} s)")  # fmt: skip

    for cluster, train, test in cluster_pairs(serevals["clusters"], corpora):
        rows, frames = data[test]
        truth_index = rows["serevals8"].map(index).to_numpy()
        emotions_trained = np.delete(priors[train], OTHER_INDEX).sum() > 0
        if (truth_index == OTHER_INDEX).all() or not emotions_trained:
            reason = "only 'other' labels on one side (other is dropped in OOD scoring)"
            skipped.append({"train": train, "test": test, "cluster": cluster, "reason": reason})
            continue
        logits = predict_logits(heads[train], frames)
        for variant in VARIANTS:
            chosen = adjusted_predictions(
                logits, priors[train], variant, test_labels=truth_index,
                other_index=OTHER_INDEX, mask_absent=serevals["mask_absent"],
            )  # fmt: skip
            keep = truth_index != OTHER_INDEX  # other items are dropped from OOD scoring
            add(train, test, "ood", cluster, variant, rows[keep],
                [CLASSES[i] for i in chosen[keep]], True)  # fmt: skip
    meta = {
        "backbone": backbone,
        "split": split_of,
        "skipped_pairs": skipped,
        "unavailable_cluster_members": unavailable_members(serevals["clusters"], corpora),
    }
    return (
        pd.DataFrame(results, columns=RESULT_COLUMNS),
        pd.concat(predictions, ignore_index=True),
        meta,
    )


def probe_folder(params: dict[str, Any], backbone: str) -> Path:
    return resolve_path(params["common"]["output_root"]) / "serevals" / "probes" / backbone


def write_backbone(params: dict[str, Any], backbone: str, results: pd.DataFrame,
                   predictions: pd.DataFrame, meta: dict[str, Any]) -> Path:  # fmt: skip
    folder = probe_folder(params, backbone)
    folder.mkdir(parents=True, exist_ok=True)
    results.to_csv(folder / "results.csv", index=False)
    predictions.to_csv(folder / "predictions.csv", index=False)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


# ----------------------------------------------------------------------------- aggregation


def read_results(params: dict[str, Any]) -> pd.DataFrame:
    """Every backbone item's results.csv, in ``serevals_sweep.backbones`` order."""
    frames = []
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "results.csv"
        if not path.is_file():
            raise SerevalsError(
                f"{path} is missing: backbone '{backbone}' is in params.yaml "
                "'serevals_sweep.backbones' but its probe item has not run; run dvc repro "
                "serevals_probe"
            )
        frames.append(pd.read_csv(path, keep_default_na=False))
    return pd.concat(frames, ignore_index=True)


def single_class_share(params: dict[str, Any]) -> pd.Series:
    """Per variant, the share of OOD (pair, backbone) cells in which one class takes every
    prediction (a collapse), from the items' predictions.csv."""
    frames = []
    for backbone in params["serevals_sweep"]["backbones"]:
        path = probe_folder(params, backbone) / "predictions.csv"
        if not path.is_file():
            raise SerevalsError(f"{path} is missing: run dvc repro serevals_probe")
        table = pd.read_csv(path, keep_default_na=False)
        frames.append(table[table["train"] != table["test"]])
    ood = pd.concat(frames, ignore_index=True)
    if ood.empty:
        return pd.Series(dtype=float, name="single_class_share")
    classes = ood.groupby(["backbone", "train", "test", "variant"])["prediction"].nunique()
    share = (classes == 1).groupby(level="variant").mean()
    share.name = "single_class_share"
    return share.reindex([v for v in VARIANTS if v in share.index])


def matrix(results: pd.DataFrame, backbone: str, metric: str, variant: str,
           corpora: list[str]) -> pd.DataFrame:  # fmt: skip
    """train x test matrix: the diagonal is in-domain, off-diagonal cells the OOD pairs scored
    with ``variant``; pairs not evaluated (other clusters) are NaN."""
    table = pd.DataFrame(np.nan, index=list(corpora), columns=list(corpora), dtype=float)
    table.index.name, table.columns.name = "train", "test"
    rows = results[results["backbone"] == backbone]
    chosen = rows[(rows["kind"] == "in_domain") | (rows["variant"] == variant)]
    for row in chosen.itertuples(index=False):
        if row.train in table.index and row.test in table.columns:
            table.loc[row.train, row.test] = float(getattr(row, metric))
    return table


def matrices(results: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """``{backbone: {variant: {metric: DataFrame}}}`` for every backbone, variant and metric."""
    corpora = list(params["serevals"]["corpora"])
    return {
        backbone: {
            variant: {
                metric: matrix(results, backbone, metric, variant, corpora) for metric in METRICS
            }  # fmt: skip
            for variant in VARIANTS
        }
        for backbone in params["serevals_sweep"]["backbones"]
    }


def write_matrices(all_matrices: dict[str, Any], folder: Path,
                   about: dict[str, Any] | None = None) -> None:  # fmt: skip
    """``<backbone>/<variant>/<metric>.csv`` plus one ``matrices.json`` (NaN as null) whose
    ``about`` entry records the settings (split per corpus, normalisation)."""
    nested: dict[str, Any] = {"about": about or {}}
    for backbone, variants in all_matrices.items():
        for variant, by_metric in variants.items():
            for metric, table in by_metric.items():
                path = folder / backbone / variant / f"{metric}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                table.round(6).to_csv(path)
                nested.setdefault(backbone, {}).setdefault(variant, {})[metric] = {
                    train: {
                        test: (None if np.isnan(v) else round(float(v), 6))
                        for test, v in row.items()
                    }  # fmt: skip
                    for train, row in table.iterrows()
                }
    (folder / "matrices.json").write_text(json.dumps(nested, indent=2, sort_keys=True) + "\n")


def summary(results: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """``serevals.json``: per backbone the in-domain mean (over corpora) and the OOD mean (over
    pairs, per variant) of every metric, the share of OOD pairs whose unweighted accuracy beats
    chance, and the split label; plus the mean over backbones."""

    def means(rows: pd.DataFrame) -> dict[str, float]:
        return {m: round(float(rows[m].mean()), 6) for m in METRICS} if len(rows) else {}

    def block(rows: pd.DataFrame) -> dict[str, Any]:
        in_domain = rows[rows["kind"] == "in_domain"]
        ood = rows[rows["kind"] == "ood"]
        above_in = (in_domain["unweighted_accuracy"] > in_domain["chance_ua"]).mean()
        out: dict[str, Any] = {
            "in_domain": {
                **means(in_domain),
                "corpora": int(in_domain["train"].nunique()),
                "share_above_chance_ua": round(float(above_in), 6) if len(in_domain) else 0.0,
            },
            "ood": {},
        }
        for variant in VARIANTS:
            chosen = ood[ood["variant"] == variant]
            if chosen.empty:
                continue
            above = (chosen["unweighted_accuracy"] > chosen["chance_ua"]).mean()
            out["ood"][variant] = {
                **means(chosen),
                "pairs": int(len(chosen)) // max(1, chosen["backbone"].nunique()),
                "share_above_chance_ua": round(float(above), 6),
            }
        return out

    splits = sorted(set(results["split"]))
    in_domain = results[results["kind"] == "in_domain"].drop_duplicates("train")
    return {
        "split": params["serevals"]["split"],
        "split_labels": splits,
        "split_per_corpus": dict(zip(in_domain["train"], in_domain["split"], strict=True)),
        "classes": list(CLASSES),
        "variants": {
            "none": "raw logits (other and classes absent from training masked)",
            "train_prior": "training prior removed",
            "oracle": "the paper's adjustment with the test prior from the test labels (oracle)",
            "estimated": "test prior estimated by EM from unlabelled test predictions",
        },
        "mask_absent": params["serevals"]["mask_absent"],
        "normalize": params["serevals"]["normalize"],
        "backbones": {
            b: block(results[results["backbone"] == b])
            for b in params["serevals_sweep"]["backbones"]
        },
        "mean_over_backbones": block(results),
    }


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.serevals_run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    probe = commands.add_parser("probe", help="train and score every probe of one backbone")
    probe.add_argument("--backbone", required=True, help="a serevals_sweep.backbones entry")
    probe.add_argument("--params", default=None)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.backbone not in params["serevals_sweep"]["backbones"]:
            raise SerevalsError(
                f"'{args.backbone}' is not listed in params.yaml 'serevals_sweep.backbones' "
                f"({', '.join(params['serevals_sweep']['backbones'])})"
            )
        output_dir(params, "serevals", "probes")
        start = time.perf_counter()
        results, predictions, meta = run_backbone(
            params, args.backbone, log=lambda line: print(line, flush=True)
        )
    except (ParamsError, SerevalsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    folder = write_backbone(params, args.backbone, results, predictions, meta)
    print(f"{args.backbone}: {len(results)} scores in {time.perf_counter() - start:.1f} s -> "
          f"{folder}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
