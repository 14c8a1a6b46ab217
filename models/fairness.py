"""A small fairness audit at capacity k (the arithmetic of Aequitas, written for our case).

Outreach is assistive and capacity-limited, so what matters is whether each group's people in
need are found at the same rate (recall/TPR parity) and whether visits are wasted at the same
rate (FDR parity). For each attribute, every group's TPR and FDR at k are divided by the
reference group's (the largest group); a ratio outside [low, high] is flagged. Groups with
fewer than `min_labelled` labelled people are suppressed, both for privacy and because their
rates are noise; for the same reason a ratio is computed only when each rate's denominator
(positives for TPR, labelled people selected for FDR) holds `min_labelled` people in both groups.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.groups import age_band


def audit_groups(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The attributes the audit groups by, from a features frame."""
    return {
        "sex": frame["sex"].astype("str"),
        "age_band": age_band(frame["age"]),
        "district": frame["district"].astype("str"),
        "living_alone": np.where(frame["living_alone"] >= 0.5, "alone", "with_others"),
    }


def _rates(selected: np.ndarray, labels: np.ndarray) -> dict:
    labelled = ~np.isnan(labels)
    positive = labelled & (labels == 1)
    chosen_labelled = selected & labelled
    tp = int((selected & positive).sum())
    fp = int((chosen_labelled & (labels == 0)).sum())
    return {"labelled": int(labelled.sum()), "positives": int(positive.sum()), "selected_labelled": int(chosen_labelled.sum()),
            "true_positives": tp, "tpr": tp / positive.sum() if positive.sum() else None,
            "fdr": fp / (tp + fp) if tp + fp else None}


def audit(frame: pd.DataFrame, selected: np.ndarray, low: float = 0.8, high: float = 1.25,
          min_labelled: int = 10) -> list[dict]:
    """frame: features with a `label` column (1/0/NaN); selected: boolean top-k mask."""
    labels = frame["label"].to_numpy(dtype="float64")
    rows: list[dict] = []
    if not len(frame):   # nobody in the holdout cohort (e.g. min_age above everyone): no groups to compare
        return rows
    for attribute, groups in audit_groups(frame).items():
        groups = pd.Series(groups, index=frame.index)
        stats = {g: _rates(selected[(groups == g).to_numpy()], labels[(groups == g).to_numpy()])
                 for g in sorted(groups.unique())}
        sizes = groups.value_counts()
        reference = max(stats, key=lambda g: (sizes[g], g))
        ref = stats[reference]
        for group, s in stats.items():
            row = {"attribute": attribute, "group": group, "reference": reference, **s,
                   "tpr_ratio": None, "fdr_ratio": None, "flag": False, "suppressed": s["labelled"] < min_labelled}
            if row["suppressed"]:
                row.update({k: None for k in ("labelled", "positives", "selected_labelled", "true_positives",
                                              "tpr", "fdr")})
            else:
                for metric, denominator in (("tpr", "positives"), ("fdr", "selected_labelled")):
                    # A ratio is judged only when both rates rest on enough people: TPR on 2
                    # positives is 0, 0.5 or 1 by chance, and flagging it would block any model
                    # that finds somebody while one that finds nobody has no ratios to flag.
                    enough = s[denominator] >= min_labelled and ref[denominator] >= min_labelled
                    if enough and s[metric] is not None and ref[metric]:
                        row[f"{metric}_ratio"] = s[metric] / ref[metric]
                row["flag"] = any(r is not None and not (low <= r <= high)
                                  for r in (row["tpr_ratio"], row["fdr_ratio"]))
            rows.append(row)
    return rows
