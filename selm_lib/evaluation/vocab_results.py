"""The open-vocabulary scores as ``eval_vocab`` writes them (``reports/metrics/vocab.json``), in
the shapes the OOD report shows (no model code, so the report does not depend on decoding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run dvc repro eval_vocab")
    return json.loads(path.read_text())


def variant_table(vocab: dict[str, Any], metric: str = "accuracy") -> pd.DataFrame:
    """(label set) x (variant) cells ``value [low, high]`` and, for every variant but the
    reference, the paired difference to it with its interval and verdict."""
    rows = []
    for name, entry in vocab["label_sets"].items():
        for variant, r in entry["variants"].items():
            low, high = r["ci95"][metric]
            row = {
                "label set": name,
                "variant": variant,
                "verbalisation": f"{r['template']} / {r['words']} / {r['combine']}",
                metric: f"{r[metric]:.3f} [{low:.3f}, {high:.3f}]",
                "n": r["n"],
            }
            pair = r.get("paired_vs_reference")
            if pair is None:
                row["vs reference"] = "(reference)"
            else:
                d, (lo, hi) = pair["accuracy"]["difference"], pair["accuracy"]["ci95"]
                row["vs reference"] = f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] {pair['verdict']}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["label set", "variant"])


def unseen_sentences(vocab: dict[str, Any]) -> list[str]:
    """One sentence per label set with classes no training answer names: their recall under
    each variant."""
    lines = []
    for name, entry in vocab["label_sets"].items():
        if not entry["unseen"]:
            continue
        recalls = "; ".join(
            f"{variant}: " + ", ".join(f"{c} {v:.3f}" for c, v in r["recall_unseen"].items())
            for variant, r in entry["variants"].items()
        )
        lines.append(
            f"**{name}** has class(es) {', '.join(entry['unseen'])} that SELM was never trained "
            f"to answer; recall of them by variant: {recalls}."
        )
    return lines


def agreement_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """(corpus, method) rows of ``ood.json``'s ``agreement``: items scored against the
    annotators' votes, Jensen-Shannon divergence of the predicted class distribution from the
    human one (methods with class scores only), soft accuracy and the human ceiling."""
    rows = [
        {
            "corpus": corpus,
            "method": method,
            "scored": r["scored"],
            "without votes": r["excluded_no_votes"],
            "JSD": r["jsd"],
            "soft accuracy": r["soft_accuracy"],
            "human ceiling": r["human_ceiling"],
        }
        for corpus, methods in metrics.get("agreement", {}).items()
        for method, r in methods.items()
    ]
    return pd.DataFrame(rows).set_index(["corpus", "method"]) if rows else pd.DataFrame()
