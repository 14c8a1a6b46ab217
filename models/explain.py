"""Reasons per listed person from exact TreeSHAP contributions (log-odds), worded by the catalogue.

A feature and its `_imp` flag are one fact for a reader ("no checkup on record for 2+ years"),
so their contributions are added before the top three risk-raising reasons are chosen.

Only listed people are explained. Their full contribution vectors, the base value and the
model's own log-odds are stored in `runs/<month>/explanations.parquet` with the model version,
so anyone can check Σφ + base = log-odds and the auditor's view (`explain_person`) works from
files. Nothing here carries an identifier: pseudonyms, features and contributions only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.catalog import CATALOG, EXPLORATION, MODEL_FEATURES, describe
from models.candidates import log_odds as model_log_odds
from models.candidates import split_estimator

TOP = 3
SHAP_PREFIX = "shap_"


def _shap():
    """shap, imported on first use (its import is slow).

    On import shap records the optional packages it could not load (cv2, pyspark, its CUDA
    extension) with their exceptions. Their tracebacks reach back through the frames that
    imported shap, so a month's `run_month` frame, and with it the month's feature table,
    stayed alive for the life of a `run --all` process. The messages stay; the tracebacks go.
    """
    import shap
    from shap.utils import _general

    for _, error in _general.import_errors.values():
        while error is not None:
            error.__traceback__ = None
            error = error.__context__ or error.__cause__
    return shap


def shap_values(model, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """(contributions n×p in log-odds, base value), exact for both candidate kinds.

    The reasons explain the pipeline's uncalibrated log-odds (calibration is a monotone map of
    them). Trees: TreeSHAP with no background data. Logistic regression: linear SHAP with the
    training split's mean as background, which is 0 in the scaled space the model sees, so
    φ_j = w_j · z_j and the base value is the intercept.
    """
    shap = _shap()
    final, X = split_estimator(model, features[MODEL_FEATURES].to_numpy(dtype="float64"))
    if isinstance(final, LogisticRegression):
        explainer = shap.LinearExplainer(final, np.zeros((1, X.shape[1])))
        values = explainer.shap_values(X)
    else:
        explainer = shap.TreeExplainer(final)
        values = explainer.shap_values(X, check_additivity=True)
    base = float(np.ravel(explainer.expected_value)[0])
    return np.asarray(values, dtype="float64").reshape(len(X), -1), base


def grouped(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Add each `_imp` flag's contribution to its feature's."""
    names = list(CATALOG)
    index = {name: i for i, name in enumerate(MODEL_FEATURES)}
    out = np.column_stack([values[:, index[n]] + (values[:, index[f"{n}_imp"]] if f"{n}_imp" in index else 0.0)
                           for n in names])
    return names, out


REASON_COLUMNS = ["pid", "reason_features", "reason_contributions", "reasons", "reasons_en"]


def _reason_frame(rows: list[dict]) -> pd.DataFrame:
    # an empty list (capacity 0, nobody eligible) still has the columns the list is merged on
    return pd.DataFrame(rows, columns=REASON_COLUMNS) if rows else pd.DataFrame(
        {c: pd.Series(dtype="str" if c in ("pid", "reasons", "reasons_en") else "object") for c in REASON_COLUMNS})


def reasons(features: pd.DataFrame, values: np.ndarray, top: int = TOP) -> pd.DataFrame:
    """Top risk-raising reasons per row: feature names, contributions and phrases (ja, en)."""
    if not len(features):
        return _reason_frame([])
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
    return _reason_frame(rows)


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
    return _reason_frame(rows)


# ------------------------------------------------------------------- stored explanations

@dataclass(frozen=True)
class Contributions:
    """The SHAP contributions of some people, computed once for their reasons and their stored table."""
    values: np.ndarray      # n × p, log-odds, MODEL_FEATURES order
    base: float             # the base value E[f(x)]
    log_odds: np.ndarray    # the model's own uncalibrated log-odds per person


def contributions_of(model, chosen: pd.DataFrame) -> Contributions:
    """Contributions of the chosen people's rows (none: an empty table with the base NaN)."""
    if not len(chosen):   # an empty list (capacity 0): a table with its columns and no rows
        return Contributions(np.zeros((0, len(MODEL_FEATURES))), float("nan"), np.zeros(0))
    values, base = shap_values(model, chosen)
    odds = model_log_odds(model, chosen[MODEL_FEATURES].to_numpy(dtype="float64"))
    return Contributions(values, base, np.asarray(odds, dtype="float64"))


def explanation_table(chosen: pd.DataFrame, explained: Contributions, model_version: str) -> pd.DataFrame:
    """pid, model_version, base_value, log_odds (the model's decision function), shap_<feature> …"""
    table = pd.DataFrame({"pid": chosen["pid"].to_numpy(), "model_version": str(model_version or ""),
                          "base_value": explained.base, "log_odds": explained.log_odds})
    for j, name in enumerate(MODEL_FEATURES):
        table[SHAP_PREFIX + name] = explained.values[:, j]
    return table


def contributions(table: pd.DataFrame) -> np.ndarray:
    """n × p contributions of a stored explanation table, in MODEL_FEATURES order."""
    return table[[SHAP_PREFIX + n for n in MODEL_FEATURES]].to_numpy(dtype="float64")


def additivity_error(table: pd.DataFrame) -> float:
    """max |Σφ + base − log-odds| over the table (exact TreeSHAP: ~1e-14)."""
    if not len(table):
        return 0.0
    return float(np.max(np.abs(contributions(table).sum(axis=1) + table["base_value"] - table["log_odds"])))


def explained_list(listed: pd.DataFrame, features: pd.DataFrame, trained, key_id: str
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None, float | None]:
    """(the list with its reasons and provenance columns, the explanation table or None for a
    rule's list, the SHAP base value or None). The listed people's contributions are computed
    once, for both their reasons and the stored table."""
    chosen = features.set_index("pid").loc[listed["pid"]].reset_index()
    table, base = None, None
    if trained.mode == "model":
        explained = contributions_of(trained.model, chosen)
        why = reasons(chosen, explained.values)
        base = explained.base if len(chosen) else None
        table = explanation_table(chosen, explained, trained.model_version)
        error = additivity_error(table)
        if error > 1e-6:
            raise AssertionError(f"SHAP additivity broken: max error {error:.2e}")
    else:
        why = rule_reasons(chosen, trained.baseline)
    listed = listed.merge(why, on="pid", how="left", validate="one_to_one")
    picked = listed["exploration"]
    listed.loc[picked, "reasons"] = EXPLORATION[0] + "、" + listed.loc[picked, "reasons"]
    listed.loc[picked, "reasons_en"] = EXPLORATION[1] + "; " + listed.loc[picked, "reasons_en"]
    listed["source"] = "model" if trained.mode == "model" else f"baseline:{trained.baseline}"
    listed["model_version"] = trained.model_version or ""
    listed["key_id"] = key_id
    return listed, table, base
