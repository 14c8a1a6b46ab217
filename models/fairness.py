"""The fairness audit at capacity k (the arithmetic of Aequitas, written for our case): one
computation for the holdout at training and for this month's list in the report.

Outreach is assistive and capacity-limited, so what matters is whether each group's people in
need are found at the same rate (recall/TPR parity) and whether visits are wasted at the same
rate (FDR parity). Every group's rates are divided by the whole cohort's: a reference group could
itself be too small to judge (and then every ratio was blank and nothing could ever be flagged),
the whole cohort never is while anyone is audited. A group is flagged when its people in need are
found less often (TPR ratio below `low`) or its visits are wasted more often (FDR ratio above
`high`), and the group's rate lies beyond its 95% Wilson interval from the whole cohort's (so
chance in a few dozen labels does not flag); being served better than the whole is not a harm to that group.

The selection rate (selected / people in the group) is reported beside them, with its ratio to the
whole, but is not itself a flag: need differs by age and living situation, so a good list selects
groups unequally. Label-based figures of a group with fewer than `min_labelled` labelled people
are withheld, for privacy and because they are noise; a ratio is judged only when the group's
denominator (positives for TPR, labelled people selected for FDR) holds `min_labelled` people.
Without a `label` column (this month's list) only the selection figures are computed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.groups import age_band
from models.metrics import wilson
from models.prioritise import NO_REMEDY, Remedy, ranked_slots

WHOLE = ("cohort", "all")   # the (attribute, group) of the reference row: everyone audited


def audit_groups(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The attributes the audit groups by, from a features frame."""
    return {
        "sex": frame["sex"].astype("str"),
        "age_band": age_band(frame["age"]),
        "district": frame["district"].astype("str"),
        "living_alone": pd.Series(np.where(frame["living_alone"] >= 0.5, "alone", "with_others"), index=frame.index),
    }


def _rates(selected: np.ndarray, labels: np.ndarray | None) -> dict:
    people, chosen = int(len(selected)), int(selected.sum())
    out = {"people": people, "selected": chosen, "selection_rate": chosen / people if people else None}
    if labels is None:
        return out | {k: None for k in ("labelled", "positives", "selected_labelled", "true_positives", "tpr", "fdr")}
    labelled = ~np.isnan(labels)
    positive = labelled & (labels == 1)
    chosen_labelled = selected & labelled
    tp = int((selected & positive).sum())
    fp = int((chosen_labelled & (labels == 0)).sum())
    return out | {"labelled": int(labelled.sum()), "positives": int(positive.sum()),
                  "selected_labelled": int(chosen_labelled.sum()), "true_positives": tp,
                  "tpr": tp / positive.sum() if positive.sum() else None, "fdr": fp / (tp + fp) if tp + fp else None}


def _ratio(value: float | None, whole: float | None) -> float | None:
    return value / whole if value is not None and whole else None


def audit(frame: pd.DataFrame, selected: np.ndarray, low: float = 0.8, high: float = 1.25,
          min_labelled: int = 10) -> list[dict]:
    """frame: features, with a `label` column (1/0/NaN) when outcomes are known; selected: boolean
    top-k mask. The first row is the whole cohort (the reference), then one row per group."""
    labels = frame["label"].to_numpy(dtype="float64") if "label" in frame else None
    selected = np.asarray(selected, dtype=bool)
    if not len(frame):   # nobody in the cohort (e.g. min_age above everyone): no groups to compare
        return []
    whole = _rates(selected, labels)
    rows: list[dict] = [{"attribute": WHOLE[0], "group": WHOLE[1], "reference": "all", **whole,
                         "selection_ratio": 1.0, "tpr_ratio": None, "fdr_ratio": None, "flag": False,
                         "flagged": [], "suppressed": False}]
    for attribute, groups in audit_groups(frame).items():
        groups = groups.to_numpy()
        for group in sorted(set(groups)):
            inside = groups == group
            s = _rates(selected[inside], None if labels is None else labels[inside])
            row = {"attribute": attribute, "group": group, "reference": "all", **s,
                   "selection_ratio": _ratio(s["selection_rate"], whole["selection_rate"]),
                   "tpr_ratio": None, "fdr_ratio": None, "flag": False, "flagged": [],
                   "suppressed": labels is not None and s["labelled"] < min_labelled}
            if row["suppressed"]:
                row.update({k: None for k in ("labelled", "positives", "selected_labelled", "true_positives",
                                              "tpr", "fdr")})
            elif labels is not None:
                for metric, denominator in (("tpr", "positives"), ("fdr", "selected_labelled")):
                    # A ratio is judged only when the group's rate rests on enough people: TPR on 2
                    # positives is 0, 0.5 or 1 by chance, and flagging it would block any model
                    # that finds somebody while one that finds nobody has no ratios to flag.
                    if s[denominator] >= min_labelled:
                        row[f"{metric}_ratio"] = _ratio(s[metric], whole[metric])
                # A flag is a finding, not chance: the ratio is out of bounds AND the group's rate
                # differs from the whole cohort's beyond its 95% Wilson interval. With labels for the
                # whole cohort (adverse events) a group's recall rests on a few dozen events, and a
                # ratio of 0.7 from 5 of 24 against 15 of 60 is what chance alone gives.
                if (row["tpr_ratio"] is not None and row["tpr_ratio"] < low
                        and wilson(s["true_positives"], s["positives"])[1] < whole["tpr"]):
                    row["flagged"].append("tpr")
                if (row["fdr_ratio"] is not None and row["fdr_ratio"] > high
                        and wilson(s["selected_labelled"] - s["true_positives"], s["selected_labelled"])[0] > whole["fdr"]):
                    row["flagged"].append("fdr")
                row["flag"] = bool(row["flagged"])
            rows.append(row)
    return rows


def remedy_comparison(frame: pd.DataFrame, scores: np.ndarray, caps: dict[str, int], remedy: Remedy,
                      low: float = 0.8, high: float = 1.25, min_labelled: int = 10) -> dict[str, list[dict]]:
    """The holdout cut at each district's capacity the way the list cuts it (`ranked_slots`),
    without ("none") and with ("remedy") the remedy, and the audit of each: what the remedy
    does to recall per group and to precision, before a ward switches it on. frame: the holdout
    people (pid, age, sex, district, living_alone, label); scores aligned with it."""
    order = np.lexsort((frame["pid"].to_numpy(), -np.asarray(scores, dtype="float64")))
    districts = frame["district"].astype("str").to_numpy()[order]
    bands = age_band(frame["age"]).to_numpy()[order]
    out = {}
    for name, used in (("none", NO_REMEDY), ("remedy", remedy)):
        selected = np.zeros(len(frame), dtype=bool)
        selected[order[ranked_slots(districts, bands, caps, used)]] = True
        out[name] = audit(frame, selected, low, high, min_labelled)
    return out
