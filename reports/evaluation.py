"""What the report computes beyond training.json: holdout curves, calibration and drift. (Group
results are the fairness audit of models/fairness.py, shown by reports/fairness_tables.py.)

The holdout scores are those training computed (the model that was compared with the
baselines, fitted on the training months only, and every baseline). Every count shown
goes through disclosure control; curves start where at least `threshold` labelled people are in
the top k, and calibration bins hold at least `threshold` labelled people, so no small cell can
be read off a plot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import metrics
from models.baselines import BASELINES

PSI_FLAG = 0.2


@dataclass
class Holdout:
    month: str
    k: int
    frame: pd.DataFrame                  # pid, age, sex, district, label (1/0/NaN), score columns per ranker
    rankers: list[str]
    serving: str = "model"               # the ranker that made this month's list


def holdout(trained) -> Holdout | None:
    """Holdout scores of the model that was compared (if any) and of every baseline, as training
    computed them (`TrainResult.holdout_frame`)."""
    frame = getattr(trained, "holdout_frame", None)
    if frame is None or not trained.evaluation:
        return None
    rankers = [name for name in ["model", "champion", *BASELINES] if f"score_{name}" in frame.columns]
    serving = serving_ranker(trained)
    return Holdout(trained.holdout_month, trained.holdout_k, frame, rankers,
                   serving if serving in rankers else rankers[0])


def serving_ranker(trained) -> str:
    """The evaluation key of whatever made this month's list."""
    serving = getattr(trained, "serving", None)
    if serving == "challenger" or (serving is None and trained.mode == "model"):
        return "model"
    return serving or trained.baseline


def curves(h: Holdout, threshold: int, k_max: int | None = None) -> dict[str, dict]:
    """Precision and recall at every k up to k_max per ranker; NaN until `threshold` labelled are in the top k."""
    labels = h.frame["label"].to_numpy()
    pids = h.frame["pid"].to_numpy()
    total_pos = np.nansum(labels)
    k_max = min(len(labels), k_max or max(4 * h.k, 40))
    out = {}
    for ranker in h.rankers:
        order = metrics.top_k(h.frame[f"score_{ranker}"].to_numpy(dtype="float64"), pids, k_max)
        chosen = labels[order]
        labelled = np.cumsum(~np.isnan(chosen))
        positives = np.cumsum(np.nan_to_num(chosen))
        shown = labelled >= threshold
        precision = np.where(shown, positives / np.maximum(labelled, 1), np.nan)
        recall = np.where(shown, positives / total_pos if total_pos else np.nan, np.nan)
        out[ranker] = {"k": np.arange(1, k_max + 1), "precision": precision, "recall": recall}
    return out


def calibration_bins(h: Holdout, threshold: int, n_bins: int = 10) -> tuple[list[dict], float | None]:
    """Quantile bins of the model's probability among labelled holdout people, each ≥ threshold people."""
    if "model" not in h.rankers:
        return [], None
    labelled = h.frame[h.frame["label"].notna()]
    if len(labelled) < threshold:
        return [], None
    n_bins = max(1, min(n_bins, len(labelled) // threshold))
    scores = labelled["score_model"].to_numpy()
    y = labelled["label"].to_numpy()
    order = np.argsort(scores, kind="stable")
    bins = []
    for part in np.array_split(order, n_bins):
        bins.append({"predicted": float(scores[part].mean()), "observed": float(y[part].mean()), "n": int(len(part))})
    brier = float(np.mean((scores - y) ** 2))
    return bins, brier


# ----------------------------------------------------------------------------------------- drift

def psi(previous: np.ndarray, current: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of `current` against `previous`.

    Discrete features (≤ 12 distinct values) are compared value by value; continuous ones in
    deciles of the previous month. Missing values form their own bin.
    """
    prev = np.asarray(previous, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    values = np.unique(np.concatenate([prev[~np.isnan(prev)], cur[~np.isnan(cur)]]))
    if len(values) <= 12:
        edges = None
        keys = list(values)
        p = np.array([np.mean(prev == v) for v in keys] + [np.mean(np.isnan(prev))])
        q = np.array([np.mean(cur == v) for v in keys] + [np.mean(np.isnan(cur))])
    else:
        finite = prev[~np.isnan(prev)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        def share(x):
            ok = ~np.isnan(x)
            idx = np.searchsorted(edges, x[ok], side="right")
            counts = np.bincount(idx, minlength=len(edges) + 1) / max(len(x), 1)
            return np.append(counts, np.mean(~ok))
        p, q = share(prev), share(cur)
    keep = (p > 0) | (q > 0)
    p, q = np.clip(p[keep], eps, None), np.clip(q[keep], eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def drift(previous: pd.DataFrame | None, current: pd.DataFrame, columns: list[str]) -> list[dict]:
    """PSI per column of the current month against the previous one, flagged above PSI_FLAG."""
    if previous is None:
        return []
    rows = []
    for column in columns:
        if column not in previous or column not in current:
            continue
        value = psi(previous[column].to_numpy(dtype="float64"), current[column].to_numpy(dtype="float64"))
        rows.append({"column": column, "previous_mean": float(np.nanmean(previous[column].to_numpy(dtype="float64"))),
                     "current_mean": float(np.nanmean(current[column].to_numpy(dtype="float64"))),
                     "psi": value, "flag": value > PSI_FLAG})
    return rows
