"""Reasons per listed person from SHAP contributions (log-odds) against the month's eligible
cohort, worded by the catalogue.

The reference. A contribution says how much a feature moves a person's log-odds away from a
reference; a reason is only as meaningful as that reference. Ours is stated and the same for
every reader: **the month's eligible cohort**, the people the list is chosen from
(models/prioritise.py `eligible`). So a reason says why *this* person ranks above the people
who could have been listed and were not, not why they differ from the people visited in the
training months (who were mostly 75+ living alone, so every younger person looked "at risk
for their age").
- Logistic regression: exact linear SHAP against the whole cohort, computed directly:
  φ_j = w_j · (z_j − mean of z_j over the eligible cohort) in the scaled space the model sees;
  the base value is the log-odds at the cohort mean, which for a linear model is the cohort's
  mean log-odds.
- Trees: interventional TreeSHAP with a background of at most `BACKGROUND` eligible people,
  drawn with a fixed seed from the cohort in pid order (deterministic; shap caps an
  interventional background at 100 rows anyway). The base value is the background's mean
  log-odds.
In both cases Σφ + base equals the model's own log-odds (checked for every stored table).

A feature and its `_imp` flag are one fact for a reader ("no checkup on record for 2+ years"),
so their contributions are added first. A feature is then a reason only when it genuinely
separates the person from the cohort: its contribution is at least `MIN_REASON` log-odds
(the odds × 1.22 of the reference's) and at least `MIN_SHARE` of the person's risk-raising
total; the largest `TOP` such features are the reasons. Someone whose risk is the sum of many
small differences is told so (`NO_SINGLE_REASON`), not given a weak reason. Exploration picks
were drawn at random, so they carry only 「無作為抽出（探索枠）」 (`EXPLORATION`), never reasons.

Only listed people are explained. Their full contribution vectors, the base value, the model's
own log-odds and the reference are stored in `runs/<month>/explanations.parquet` with the model
version, so anyone can check Σφ + base = log-odds and the auditor's view (`explain_person`)
works from files. Nothing here carries an identifier: pseudonyms, features and contributions only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.catalog import CATALOG, EXPLORATION, MODEL_FEATURES, NO_SINGLE_REASON, describe
from models.candidates import log_odds as model_log_odds
from models.candidates import kind as model_kind
from models.candidates import split_estimator

TOP = 3
SHAP_PREFIX = "shap_"
MIN_REASON = 0.2     # log-odds above the reference: odds × 1.22 (a smaller push is not a reason)
MIN_SHARE = 0.10     # of the person's risk-raising total (one of many small pushes is not a reason)
BACKGROUND = 100     # trees: eligible people in the interventional background
BACKGROUND_SEED = 0
# Whom every contribution is measured against (models/prioritise.py `eligible`).
REFERENCE = ("その月の掲載可能な住民", "the month's eligible cohort")
# How each candidate kind's contributions are computed (the model card and the report say so).
METHODS: dict[str, tuple[str, str]] = {
    "logit": ("厳密な線形SHAP：係数 ×（その人の標準化した値 − 掲載可能な住民全員の平均）",
              "exact linear SHAP: coefficient × (the person's scaled value − its mean over the whole eligible "
              "cohort)"),
    "hgb": (f"介入型TreeSHAP：掲載可能な住民から固定の乱数で選んだ最大{BACKGROUND}人を背景データとする",
            f"interventional TreeSHAP with a background of at most {BACKGROUND} eligible residents drawn with a "
            "fixed seed"),
}


def method_text(kind: str) -> tuple[str, str]:
    """(ja, en): how a model kind's contributions are computed, against which reference."""
    ja, en = METHODS.get(kind, (kind, kind))
    return (f"{ja}。基準は{REFERENCE[0]}、単位は対数オッズ",
            f"{en}; the reference is {REFERENCE[1]}, in log-odds")


def threshold_text() -> tuple[str, str]:
    """(ja, en): when a contribution counts as a reason."""
    return (f"基準より対数オッズを{MIN_REASON}以上（オッズ{np.exp(MIN_REASON):.2f}倍以上）押し上げ、かつその人の押し上げ分の"
            f"合計の{MIN_SHARE:.0%}以上を占める要因だけを、大きい順に最大{TOP}つ理由とします",
            f"a feature is a reason only if it raises the log-odds by at least {MIN_REASON} above the reference "
            f"(odds × {np.exp(MIN_REASON):.2f}) and makes up at least {MIN_SHARE:.0%} of the person's risk-raising "
            f"total; at most {TOP}, largest first")


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


def background(reference: pd.DataFrame) -> pd.DataFrame:
    """Trees' background: at most BACKGROUND rows of the reference, drawn with a fixed seed from
    the cohort in pid order (the same cohort always gives the same rows, in whatever order it comes)."""
    rows = reference.sort_values("pid", kind="stable") if "pid" in reference else reference
    if len(rows) <= BACKGROUND:
        return rows
    return rows.iloc[np.sort(np.random.default_rng(BACKGROUND_SEED).choice(len(rows), BACKGROUND, replace=False))]


def shap_values(model, features: pd.DataFrame, reference: pd.DataFrame) -> tuple[np.ndarray, float, int]:
    """(contributions n×p in log-odds, base value, reference rows used) against the reference
    (the eligible cohort's feature rows), exact for both candidate kinds.

    The reasons explain the pipeline's uncalibrated log-odds (calibration is a monotone map of
    them). See the module docstring for each kind's method.
    """
    if not len(reference):
        raise ValueError("contributions need a reference: the eligible cohort is empty")
    final, X = split_estimator(model, features[MODEL_FEATURES].to_numpy(dtype="float64"))
    if isinstance(final, LogisticRegression):
        # in pid order, as the trees' background is drawn: a float mean depends on the order it
        # sums in, and the same cohort may come in another order (e.g. collected from Spark)
        rows = reference.sort_values("pid", kind="stable") if "pid" in reference else reference
        _, Z = split_estimator(model, rows[MODEL_FEATURES].to_numpy(dtype="float64"))
        mean, weights = Z.mean(axis=0), np.ravel(final.coef_)
        values = (X - mean) * weights
        return values, float(final.intercept_[0] + mean @ weights), len(reference)
    rows = background(reference)
    _, Z = split_estimator(model, rows[MODEL_FEATURES].to_numpy(dtype="float64"))
    explainer = _shap().TreeExplainer(final, data=Z, feature_perturbation="interventional", model_output="raw")
    values = explainer.shap_values(X, check_additivity=True)
    base = float(np.ravel(explainer.expected_value)[0])
    return np.asarray(values, dtype="float64").reshape(len(X), -1), base, len(rows)


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


def reason_indices(contrib: np.ndarray, top: int = TOP) -> list[int]:
    """A person's reasons among their grouped contributions: those that genuinely separate them
    from the reference (at least MIN_REASON and MIN_SHARE of their risk-raising total), largest first."""
    floor = max(MIN_REASON, MIN_SHARE * float(contrib[contrib > 0].sum()))
    return [int(j) for j in np.argsort(-contrib, kind="stable") if contrib[j] >= floor][:top]


def reasons(features: pd.DataFrame, values: np.ndarray, top: int = TOP) -> pd.DataFrame:
    """Reasons per row: feature names, contributions and phrases (ja, en); a row with no
    material contribution says so (NO_SINGLE_REASON) instead."""
    if not len(features):
        return _reason_frame([])
    names, contrib = grouped(values)
    rows = []
    for i in range(len(features)):
        row = features.iloc[i]
        order = reason_indices(contrib[i], top)
        phrases = [describe(names[j], row[names[j]], bool(row.get(f"{names[j]}_imp", 0) >= 0.5)) for j in order]
        rows.append({
            "pid": row["pid"],
            "reason_features": [names[j] for j in order],
            "reason_contributions": [float(contrib[i, j]) for j in order],
            "reasons": "、".join(p[0] for p in phrases) or NO_SINGLE_REASON[0],
            "reasons_en": "; ".join(p[1] for p in phrases) or NO_SINGLE_REASON[1],
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
    base: float             # the base value: the reference's expected log-odds
    log_odds: np.ndarray    # the model's own uncalibrated log-odds per person
    method: str             # the model kind (METHODS)
    reference_people: int   # the eligible cohort's size
    reference_rows: int     # rows of it the contributions were taken against (all, or the trees' background)


def contributions_of(model, chosen: pd.DataFrame, reference: pd.DataFrame) -> Contributions:
    """Contributions of the chosen people's rows against the reference (the eligible cohort's
    feature rows); nobody chosen: an empty table with the base NaN."""
    method = model_kind(model)
    if not len(chosen):   # an empty list (capacity 0): a table with its columns and no rows
        return Contributions(np.zeros((0, len(MODEL_FEATURES))), float("nan"), np.zeros(0), method, len(reference), 0)
    values, base, rows = shap_values(model, chosen, reference)
    odds = model_log_odds(model, chosen[MODEL_FEATURES].to_numpy(dtype="float64"))
    return Contributions(values, base, np.asarray(odds, dtype="float64"), method, len(reference), rows)


def explanation_table(chosen: pd.DataFrame, explained: Contributions, model_version: str) -> pd.DataFrame:
    """pid, model_version, base_value, log_odds (the model's decision function), the reference
    (method, reference_people, reference_rows), shap_<feature> …"""
    table = pd.DataFrame({"pid": chosen["pid"].to_numpy(), "model_version": str(model_version or ""),
                          "base_value": explained.base, "log_odds": explained.log_odds, "method": explained.method,
                          "reference_people": explained.reference_people,
                          "reference_rows": explained.reference_rows})
    for j, name in enumerate(MODEL_FEATURES):
        table[SHAP_PREFIX + name] = explained.values[:, j]
    return table


def reference_text(table: pd.DataFrame) -> tuple[str, str]:
    """(ja, en): what a stored explanation's contributions were taken against."""
    row = table.iloc[0]
    people, rows = int(row["reference_people"]), int(row["reference_rows"])
    sample = ("" if rows == people else f"（うち固定の乱数で選んだ{rows}人を背景データに使用）",
              "" if rows == people else f" (a seeded sample of {rows} of them as background)")
    return f"{REFERENCE[0]}{people:,}人{sample[0]}", f"{REFERENCE[1]}, {people:,} people{sample[1]}"


def contributions(table: pd.DataFrame) -> np.ndarray:
    """n × p contributions of a stored explanation table, in MODEL_FEATURES order."""
    return table[[SHAP_PREFIX + n for n in MODEL_FEATURES]].to_numpy(dtype="float64")


def additivity_error(table: pd.DataFrame) -> float:
    """max |Σφ + base − log-odds| over the table (linear SHAP ~1e-15, interventional TreeSHAP ~1e-8)."""
    if not len(table):
        return 0.0
    return float(np.max(np.abs(contributions(table).sum(axis=1) + table["base_value"] - table["log_odds"])))


def _exploration_marked(listed: pd.DataFrame) -> pd.DataFrame:
    """Exploration picks were drawn at random: they carry EXPLORATION instead of reasons."""
    picked = listed["exploration"].fillna(False).astype(bool).to_numpy()
    out = listed.copy()
    out["reasons"] = np.where(picked, EXPLORATION[0], out["reasons"])
    out["reasons_en"] = np.where(picked, EXPLORATION[1], out["reasons_en"])
    for column in ("reason_features", "reason_contributions"):
        out[column] = [[] if p else v for p, v in zip(picked, out[column])]
    return out


def explained_list(listed: pd.DataFrame, features: pd.DataFrame, reference: pd.DataFrame, trained, key_id: str
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None, float | None]:
    """(the list with its reasons and provenance columns, the explanation table or None for a
    rule's list, the SHAP base value or None). `reference`: the eligible cohort's feature rows,
    which every contribution is taken against. The listed people's contributions are computed
    once, for both their reasons and the stored table."""
    chosen = features.set_index("pid").loc[listed["pid"]].reset_index()
    table, base = None, None
    if trained.mode == "model":
        explained = contributions_of(trained.model, chosen, reference)
        why = reasons(chosen, explained.values)
        base = explained.base if len(chosen) else None
        table = explanation_table(chosen, explained, trained.model_version)
        error = additivity_error(table)
        if error > 1e-6:
            raise AssertionError(f"SHAP additivity broken: max error {error:.2e}")
    else:
        why = rule_reasons(chosen, trained.baseline)
    listed = _exploration_marked(listed.merge(why, on="pid", how="left", validate="one_to_one"))
    listed["source"] = "model" if trained.mode == "model" else f"baseline:{trained.baseline}"
    listed["model_version"] = trained.model_version or ""
    listed["key_id"] = key_id
    return listed, table, base
