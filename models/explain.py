"""Reasons per listed person from exact TreeSHAP contributions (log-odds), worded by the catalogue.

A feature and its `_imp` flag are one fact for a reader ("no checkup on record for 2+ years"),
so their contributions are added before the top three risk-raising reasons are chosen.

Only listed people are explained. Their full contribution vectors, the base value and the
model's own log-odds are stored in `runs/<month>/explanations.parquet` with the model version,
so anyone can check Σφ + base = log-odds and the auditor's view (`explain_person`) works from
files. Nothing here carries an identifier: pseudonyms, features and contributions only.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import CATALOG, MODEL_FEATURES, describe, label

TOP = 3
EXPLANATIONS = "explanations.parquet"
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
    from sklearn.linear_model import LogisticRegression

    shap = _shap()

    from models.candidates import split_estimator

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

def explanation_table(chosen: pd.DataFrame, model, model_version: str) -> pd.DataFrame:
    """pid, model_version, base_value, log_odds (the model's decision function), shap_<feature> …"""
    from models.candidates import log_odds as model_log_odds

    if not len(chosen):   # an empty list (capacity 0): a table with its columns and no rows
        values, base = np.zeros((0, len(MODEL_FEATURES))), float("nan")
        log_odds = np.zeros(0)
    else:
        values, base = shap_values(model, chosen)
        log_odds = model_log_odds(model, chosen[MODEL_FEATURES].to_numpy(dtype="float64"))
    table = pd.DataFrame({"pid": chosen["pid"].to_numpy(), "model_version": str(model_version or ""),
                          "base_value": base, "log_odds": np.asarray(log_odds, dtype="float64")})
    for j, name in enumerate(MODEL_FEATURES):
        table[SHAP_PREFIX + name] = values[:, j]
    return table


def contributions(table: pd.DataFrame) -> np.ndarray:
    """n × p contributions of a stored explanation table, in MODEL_FEATURES order."""
    return table[[SHAP_PREFIX + n for n in MODEL_FEATURES]].to_numpy(dtype="float64")


def additivity_error(table: pd.DataFrame) -> float:
    """max |Σφ + base − log-odds| over the table (exact TreeSHAP: ~1e-14)."""
    if not len(table):
        return 0.0
    return float(np.max(np.abs(contributions(table).sum(axis=1) + table["base_value"] - table["log_odds"])))


def write_explanations(cfg, month: str, features: pd.DataFrame, listed: pd.DataFrame, trained) -> Path | None:
    """Store the listed people's contributions; None (and no stale file) when a rule made the list."""
    from contract.storage import write_parquet

    path = cfg.runs / month / EXPLANATIONS
    if trained.mode != "model" or trained.model is None:
        path.unlink(missing_ok=True)
        return None
    chosen = features.set_index("pid").loc[listed["pid"]].reset_index()
    table = explanation_table(chosen, trained.model, trained.model_version)
    error = additivity_error(table)
    if error > 1e-6:
        raise AssertionError(f"SHAP additivity broken for {month}: max error {error:.2e}")
    write_parquet(table, path)
    return path


# -------------------------------------------------------------------- the auditor's view

def _value_text(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if name == "age" and value >= 90:
        return "90+"
    return f"{value:g}"


def _rows_of(path: Path, pid: str, missing: str, absent: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(whole table, the person's rows) of a run file, with a clear error when either is missing."""
    from contract.storage import read_parquet

    if not path.exists():
        raise FileNotFoundError(missing)
    table = read_parquet(path)
    rows = table[table["pid"] == pid]
    if not len(rows):
        raise ValueError(absent)
    return table, rows


def explain_person(cfg, month: str, pid: str) -> tuple[str, Path | None]:
    """An auditor's view of one listed person: every contribution with the feature's value and
    the catalogue's phrase, the sum check, and a waterfall PNG (runs/<month>/explain/<pid>.png).
    No identifier is shown: the pseudonym, the district and features (age top-coded at 90)."""
    from reports import plots

    run_dir = cfg.runs / month
    listed, row = _rows_of(run_dir / "list.parquet", pid,
                           f"no list for {month}: run `mimamori run --month {month}` first",
                           f"{pid} is not on the {month} list (only listed people are explained)")
    person = row.iloc[0]
    from pipelines.catalog.features import month_features

    # the store reuses the cached table only while the lake it came from is unchanged
    feats = month_features(cfg.work, month)
    values = feats.set_index("pid").loc[pid]
    by_model = str(person["source"]).startswith("model")
    # a rule's score encodes the exact age (age/120), so it is shown only for the model's lists
    score = f"score {float(person['score']):.4f}   " if by_model else ""
    explored = "   無作為抽出（探索枠）/ exploration pick" if bool(person.get("exploration", False)) else ""
    head = [f"mimamori explain {month}  pseudonym {pid}",
            f"順位 rank {int(person['rank'])} / {len(listed)}   地区 district {person['district']}   "
            f"{score}made by {person['source']}   model version {person['model_version'] or '—'}{explored}",
            f"理由 reasons: {person['reasons']}",
            f"        {person['reasons_en']}"]
    if not by_model:
        head.append("このリストは比較基準のルールで作られたため、SHAP 寄与はありません。理由はルールの条件です。")
        head.append("The list was made by a rule baseline: there are no SHAP contributions; "
                    "the reasons are the rule's criteria with the person's values.")
        for name in person["reason_features"]:
            ja, en = describe(name, values[name], bool(values.get(f"{name}_imp", 0) >= .5))
            head.append(f"  {CATALOG[name].label_en:38s} {_value_text(name, values[name]):>8s}  {ja} / {en}")
        return "\n".join(head) + "\n", None
    path = run_dir / EXPLANATIONS
    _, mine = _rows_of(path, pid, f"{path} is missing: rerun the month to store the explanations",
                       f"{pid} has no stored explanation in {path}")
    phi = contributions(mine)[0]
    base, log_odds = float(mine["base_value"].iloc[0]), float(mine["log_odds"].iloc[0])
    names, group_phi = grouped(phi[None, :])
    stated = list(person["reason_features"])
    lines = head + [
        f"model version of the explanation: {mine['model_version'].iloc[0]}",
        f"base value E[f(x)] = {base:+.6f} log-odds",
        "",
        f"  {'SHAP':>10s} {'value':>7s}  feature (catalogue) — phrase at the person's value",
    ]
    index = {n: i for i, n in enumerate(MODEL_FEATURES)}
    for j in np.argsort(-np.abs(group_phi[0]), kind="stable"):
        name = names[j]
        imputed = bool(values.get(f"{name}_imp", 0) >= .5)
        ja, en = describe(name, values[name], imputed)
        mark = "★" if name in stated else " "
        value = _value_text(name, values[name]) + ("*" if imputed else "")
        lines.append(f"{mark} {group_phi[0, j]:+10.6f} {value:>7s}  {CATALOG[name].label_ja} / {CATALOG[name].label_en}"
                     f" — {ja} / {en}")
        if f"{name}_imp" in index:
            own, flag = phi[index[name]], phi[index[name + '_imp']]
            lines.append(f"  {'':10s} {'':7s}    = {own:+.6f} (value) {flag:+.6f} ({label(name + '_imp')[1]})")
    total = base + phi.sum()
    lines += ["",
              f"base + Σ SHAP = {total:+.6f}   model log-odds = {log_odds:+.6f}   |difference| = {abs(total - log_odds):.1e}",
              f"probability = 1/(1+exp(-log-odds)) = {1 / (1 + math.exp(-log_odds)):.6f} (list score {float(person['score']):.6f})",
              "★ = stated reason on the visiting sheet; * = no record (imputed value, flagged); ages 90+ top-coded."]
    png = plots.waterfall(base, [(f"{CATALOG[n].label_en} = {_value_text(n, values[n])}", float(group_phi[0, j]))
                                 for j, n in enumerate(names)], log_odds,
                          f"{month}  {pid[:12]}…  rank {int(person['rank'])}  (model v{mine['model_version'].iloc[0]})")
    out = plots.save(png, run_dir / "explain" / f"{pid}.png")
    lines.append(f"waterfall: {out}")
    return "\n".join(lines) + "\n", out
