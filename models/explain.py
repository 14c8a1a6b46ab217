"""Reasons per listed person from exact TreeSHAP contributions (log-odds), worded by the catalogue.

A feature and its `_imp` flag are one fact for a reader ("no checkup on record for 2+ years"),
so their contributions are added before the top three risk-raising reasons are chosen.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import CATALOG, MODEL_FEATURES, describe

TOP = 3


def shap_values(model, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """(contributions n×p in log-odds, base value); exact: no background data."""
    import shap

    explainer = shap.TreeExplainer(model)
    X = features[MODEL_FEATURES].to_numpy(dtype="float64")
    values = explainer.shap_values(X, check_additivity=True)
    base = float(np.ravel(explainer.expected_value)[0])
    return np.asarray(values, dtype="float64"), base


def grouped(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Add each `_imp` flag's contribution to its feature's."""
    names = list(CATALOG)
    index = {name: i for i, name in enumerate(MODEL_FEATURES)}
    out = np.column_stack([values[:, index[n]] + (values[:, index[f"{n}_imp"]] if f"{n}_imp" in index else 0.0)
                           for n in names])
    return names, out


def reasons(features: pd.DataFrame, values: np.ndarray, top: int = TOP) -> pd.DataFrame:
    """Top risk-raising reasons per row: feature names, contributions and phrases (ja, en)."""
    names, contrib = grouped(values)
    rows = []
    for i in range(len(features)):
        row = features.iloc[i]
        order = [j for j in np.argsort(-contrib[i], kind="stable") if contrib[i, j] > 0][:top]
        phrases = [describe(names[j], row[names[j]], bool(row.get(f"{names[j]}_imp", 0) >= 0.5)) for j in order]
        rows.append({
            "pid": row["pid"],
            "reason_features": [names[j] for j in order],
            "reason_contributions": [float(contrib[i, j]) for j in order],
            "reasons": "、".join(p[0] for p in phrases),
            "reasons_en": "; ".join(p[1] for p in phrases),
        })
    return pd.DataFrame(rows)


def rule_reasons(features: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Reasons for a list made by a rule: the rule's own criteria, with the person's values."""
    rows = []
    for _, row in features.iterrows():
        if baseline == "alone_75":
            ja = [describe("age", row["age"])[0], describe("living_alone", row["living_alone"])[0]]
            en = [describe("age", row["age"])[1], describe("living_alone", row["living_alone"])[1]]
            names = ["age", "living_alone"]
        else:
            parts = [describe("months_since_checkup", row["months_since_checkup"], row["months_since_checkup_imp"] >= .5),
                     describe("care_level", row["care_level"]), describe("age", row["age"])]
            ja, en = [p[0] for p in parts], [p[1] for p in parts]
            names = ["months_since_checkup", "care_level", "age"]
        rows.append({"pid": row["pid"], "reason_features": names, "reason_contributions": [],
                     "reasons": "、".join(ja), "reasons_en": "; ".join(en)})
    return pd.DataFrame(rows)
