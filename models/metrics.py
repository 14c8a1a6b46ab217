"""Metrics at visiting capacity k, with their denominators (triage's convention).

The list is cut over everyone scored; unlabelled people in the top k are then set aside, so
precision@k = positives / labelled among the top k, and both counts are stored with it. Ties at
the cut are broken by pid, the same deterministic order the lists use.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_k(scores: np.ndarray, pids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, ties broken by pid ascending."""
    order = np.lexsort((pids, -scores))
    return order[:k]


def at_k(scores: np.ndarray, pids: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """labels: 1, 0 or NaN (unlabelled), aligned with scores."""
    chosen = labels[top_k(scores, pids, k)]
    labelled = ~np.isnan(chosen)
    positives = int(np.nansum(chosen))
    n_labelled = int(labelled.sum())
    all_positive = int(np.nansum(labels))
    return {
        "k": int(k),
        "labelled_in_top_k": n_labelled,
        "positives_in_top_k": positives,
        "precision_at_k": positives / n_labelled if n_labelled else None,
        "recall_at_k": positives / all_positive if all_positive else None,
        "positives_total": all_positive,
    }


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
