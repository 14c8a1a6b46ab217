"""Measures of a month's rankings against a synthetic ward's latent truth (demo and benchmarks).

Pure functions of tables: the feature rows of the month, who may be listed, the district
capacities and `isolated` (a 0/1 Series indexed by pseudonym). Every ranker is cut exactly as
the list is (models/prioritise.make_list, same exclusions, same district capacities), so the
figures compare like with like; the ceiling is a ranking that knows the truth, cut the same way.
Nothing here holds an identifier beyond the pseudonyms it is given: the results are counts.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.groups import age_band
from models.prioritise import make_list

RECALL_ATTRIBUTES = ("sex", "age_band", "district")


def ranked(features: pd.DataFrame, ok: np.ndarray, scores: np.ndarray, caps: dict[str, int],
           in_rule_only: bool = False) -> pd.Series:
    """The pids a score puts on a list of these capacities (no exploration slots). A rule's
    score of 0 means "outside the rule": with `in_rule_only` those people are never listed."""
    scored = features[["pid", "district"]].assign(score=np.asarray(scores, dtype="float64"))[np.asarray(ok, dtype=bool)]
    if in_rule_only:
        scored = scored[scored["score"] > 0]
    return make_list(scored, caps)["pid"].reset_index(drop=True)


def hits(pids: pd.Series, isolated: pd.Series) -> dict:
    """listed, isolated among them, precision = isolated / listed (None for an empty list)."""
    found = isolated.reindex(pd.Index(pids)).fillna(0).to_numpy()
    return {"listed": int(len(found)), "isolated": int(found.sum()),
            "precision": float(found.sum() / len(found)) if len(found) else None}


def truth_scores(features: pd.DataFrame, isolated: pd.Series) -> np.ndarray:
    """A perfect ranking's scores: 1 for the isolated, 0 for the rest (ties broken as any list's)."""
    return isolated.reindex(features["pid"]).fillna(0).to_numpy(dtype="float64")


def ceiling(features: pd.DataFrame, ok: np.ndarray, caps: dict[str, int], isolated: pd.Series) -> dict:
    """The perfect ranking of the truth at these capacities: each district's capacity filled
    with its eligible isolated people first; its precision is Σ_d min(cap_d, isolated_d) / k."""
    return hits(ranked(features, ok, truth_scores(features, isolated), caps), isolated)


def group_recall(features: pd.DataFrame, listed: pd.Series, isolated: pd.Series, min_age: int,
                 bounds: tuple[float, float]) -> list[dict]:
    """Recall of a list per sex, age band and district against the ward's, among the isolated
    people aged `min_age`+ (the cohort the list is chosen from: people excluded or visited lately
    count as missed, as they are). A ratio outside `bounds` is flagged, either way."""
    cohort = features[features["age"] >= min_age]
    truth = isolated.reindex(cohort["pid"]).fillna(0).to_numpy() >= 0.5
    chosen = cohort["pid"].isin(set(listed)).to_numpy()
    whole = float((truth & chosen).sum() / truth.sum()) if truth.sum() else None
    groups = {"sex": cohort["sex"].astype("str").to_numpy(), "age_band": age_band(cohort["age"]).to_numpy(),
              "district": cohort["district"].astype("str").to_numpy()}
    rows = [{"attribute": "ward", "group": "all", "isolated": int(truth.sum()), "found": int((truth & chosen).sum()),
             "recall": whole, "ratio": 1.0 if whole else None, "flag": False}]
    for attribute in RECALL_ATTRIBUTES:
        values = groups[attribute]
        for group in sorted(set(values)):
            inside = truth & (values == group)
            found = int((inside & chosen).sum())
            recall = found / int(inside.sum()) if inside.sum() else None
            ratio = recall / whole if recall is not None and whole else None
            rows.append({"attribute": attribute, "group": str(group), "isolated": int(inside.sum()), "found": found,
                         "recall": recall, "ratio": ratio,
                         "flag": ratio is not None and not bounds[0] <= ratio <= bounds[1]})
    return rows


def band_figures(features: pd.DataFrame, listed: pd.Series, isolated: pd.Series, low: int, high: int) -> dict:
    """Precision and recall of a list among the people aged low–high (e.g. 60–64)."""
    band = features[(features["age"] >= low) & (features["age"] <= high)]
    truth = isolated.reindex(band["pid"]).fillna(0).to_numpy() >= 0.5
    chosen = band["pid"].isin(set(listed)).to_numpy()
    found = int((truth & chosen).sum())
    return {"ages": f"{low}-{high}", "listed": int(chosen.sum()), "isolated_listed": found,
            "isolated": int(truth.sum()), "precision": found / int(chosen.sum()) if chosen.sum() else None,
            "recall": found / int(truth.sum()) if truth.sum() else None}


def spread(values: list[float | None]) -> dict:
    """mean, min, max and sample standard deviation (n − 1) of per-ward values; None values
    (a figure a ward could not compute) are left out and counted."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return {"n": 0, "mean": None, "min": None, "max": None, "sd": None}
    sd = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
    return {"n": len(xs), "mean": float(np.mean(xs)), "min": min(xs), "max": max(xs), "sd": sd}


def lifts(list_precisions: list[float | None], rule_precisions: list[float | None]) -> dict:
    """The list's lift over a rule across wards, both ways: the ratio of the average precisions,
    and the average of each ward's ratio (wards where the rule found nobody are left out of the latter)."""
    pairs = [(a, b) for a, b in zip(list_precisions, rule_precisions) if a is not None and b is not None]
    mean_a = float(np.mean([a for a, _ in pairs])) if pairs else None
    mean_b = float(np.mean([b for _, b in pairs])) if pairs else None
    ratios = [a / b for a, b in pairs if b > 0]
    return {"ratio_of_averages": mean_a / mean_b if mean_b else None,
            "average_of_ratios": spread(ratios)}


PRECISION_RANKERS = ("list", "exploration", "champion", "alone_75", "health_unknown", "points", "ceiling")


def _precision(ward: dict, name: str) -> float | None:
    return (ward.get(name) or {}).get("precision")


def aggregate(wards: list[dict]) -> dict:
    """The set's averages and spreads, each computed from the per-ward figures it summarises:
    precision per ranker, the list's lift over the 75+ living-alone rule (both ways), the
    recall ratio per group (with how many wards flag it), the ablation's effects and the
    min_age 60 variant's figures."""
    out: dict = {"wards": len(wards),
                 "precision": {n: spread([_precision(w, n) for w in wards]) for n in PRECISION_RANKERS},
                 "lift": {n: lifts([_precision(w, n) for w in wards], [_precision(w, "alone_75") for w in wards])
                          for n in ("list", "champion", "ceiling")}}
    groups: dict[tuple[str, str], list[dict]] = {}
    for w in wards:
        for row in w.get("recall", []):
            groups.setdefault((row["attribute"], row["group"]), []).append(row)
    out["recall"] = [{"attribute": a, "group": g, "ratio": spread([r["ratio"] for r in rows]),
                      "recall": spread([r["recall"] for r in rows]), "flagged_wards": sum(r["flag"] for r in rows)}
                     for (a, g), rows in groups.items()]
    variants: dict[str, list[dict]] = {}
    for w in wards:
        for row in w.get("ablation", []):
            variants.setdefault(row["variant"], []).append(row)
    out["ablation"] = [{"variant": v, "wards": len(rows), "precision": spread([r["precision"] for r in rows]),
                        "effect": spread([r["effect"] for r in rows]),
                        "chosen": {c: sum(r["chosen"] == c for r in rows) for c in sorted({r["chosen"] for r in rows} - {None})},
                        "candidates": {c: spread([r["candidates"].get(c, {}).get("precision") for r in rows])
                                       for c in sorted({c for r in rows for c in r["candidates"]})}}
                       for v, rows in variants.items()]
    younger = [w["min_age_60"] for w in wards if w.get("min_age_60")]
    out["min_age_60"] = {"wards": len(younger), "precision": spread([y["precision"] for y in younger]),
                         "band_precision": spread([y["band"]["precision"] for y in younger]),
                         "band_recall": spread([y["band"]["recall"] for y in younger]),
                         "band_listed": spread([y["band"]["listed"] for y in younger])}
    return out
