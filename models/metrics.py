"""Metrics at visiting capacity k, with their denominators (triage's convention).

The list is cut over everyone scored; unlabelled people in the top k are then set aside, so
precision@k = positives / labelled among the top k, and both counts are stored with it. Ties at
the cut are broken by pid, the same deterministic order the lists use; because that order is
arbitrary with respect to the label, every figure at k is also given with ties ordered worst
(negatives, then unlabelled, then positives first among equal scores) and best (the reverse),
as triage does. Rules tie a lot (everyone of the same age); a model rarely. People a rule scores 0
(outside it) are not a tie block: they fill any capacity the rule leaves in pid order.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_k(scores: np.ndarray, pids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, ties broken by pid ascending."""
    order = np.lexsort((pids, -scores))
    return order[:k]


def top_k_tied(scores: np.ndarray, pids: np.ndarray, labels: np.ndarray, k: int, ties: str) -> np.ndarray:
    """Indices of the k highest scores with ties ordered `worst` or `best` for the label."""
    # rank of a label among equal scores: worst puts negatives first, best positives first
    worst = np.where(np.isnan(labels), 1, np.where(labels == 1, 2, 0))
    tie_rank = worst if ties == "worst" else 2 - worst
    # A score of 0 is a rule's "outside the rule", not a tie to resolve: when a rule holds fewer
    # people than k, the rest of the top k is filled in pid order under every tie policy (the
    # best order would otherwise pick positives from the whole unranked remainder).
    tie_rank = np.where(scores > 0, tie_rank, 1)
    return np.lexsort((pids, tie_rank, -scores))[:k]


def _cut(chosen: np.ndarray, all_positive: int) -> tuple[int, int, float | None, float | None]:
    labelled = int((~np.isnan(chosen)).sum())
    positives = int(np.nansum(chosen))
    return (labelled, positives, positives / labelled if labelled else None,
            positives / all_positive if all_positive else None)


def at_k(scores: np.ndarray, pids: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """labels: 1, 0 or NaN (unlabelled), aligned with scores."""
    all_positive = int(np.nansum(labels))
    n_labelled, positives, precision, recall = _cut(labels[top_k(scores, pids, k)], all_positive)
    out = {
        "k": int(k),
        "labelled_in_top_k": n_labelled,
        "positives_in_top_k": positives,
        "precision_at_k": precision,
        "recall_at_k": recall,
        "positives_total": all_positive,
    }
    for ties in ("worst", "best"):
        n, p, precision, recall = _cut(labels[top_k_tied(scores, pids, labels, k, ties)], all_positive)
        out |= {f"labelled_in_top_k_{ties}": n, f"positives_in_top_k_{ties}": p,
                f"precision_at_k_{ties}": precision, f"recall_at_k_{ties}": recall}
    return out


def by_district(scores: np.ndarray, frame: pd.DataFrame, capacities: dict[str, int]) -> dict[str, dict]:
    """Metrics at each district's own capacity, among that district's people."""
    labels = frame["label"].to_numpy(dtype="float64")
    pids = frame["pid"].to_numpy()
    district = frame["district"].astype("str").to_numpy()
    out = {}
    for name, k in sorted(capacities.items()):
        mask = district == str(name)
        out[str(name)] = at_k(scores[mask], pids[mask], labels[mask], int(k))
    return out


def ranking(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Threshold-free metrics on the labelled rows."""
    mask = ~np.isnan(labels)
    y, s = labels[mask].astype(int), scores[mask]
    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "average_precision": None, "brier": None, "labelled": int(mask.sum())}
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "brier": float(brier_score_loss(y, np.clip(s, 0, 1))),
        "labelled": int(mask.sum()),
    }


def evaluate(scores: np.ndarray, frame: pd.DataFrame, k: int) -> dict:
    labels = frame["label"].to_numpy(dtype="float64")
    return at_k(scores, frame["pid"].to_numpy(), labels, k) | ranking(scores, labels)


def calibration_table(scores: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-count bins of the labelled rows by predicted probability: mean prediction, observed
    positive rate and the count behind each (reports suppress bins too small to show)."""
    mask = ~np.isnan(labels)
    s, y = scores[mask], labels[mask]
    if not len(s):
        return []
    order = np.argsort(s, kind="stable")
    return [{"predicted": float(s[part].mean()), "observed": float(y[part].mean()), "n": int(len(part)),
             "positives": int(y[part].sum())}
            for part in np.array_split(order, min(n_bins, len(s))) if len(part)]


Z95 = 1.959963984540054     # the standard normal's 97.5th percentile: a two-sided 95% interval


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for successes/n (Wilson 1927; Newcombe 1998, method 3).

    Unlike the Wald interval it stays inside [0, 1] and is not empty at 0/n or n/n, which is
    what small holdout counts at capacity give."""
    if n <= 0:
        raise ValueError("a rate over nobody has no interval")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
