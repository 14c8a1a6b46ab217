"""The auditor's view of one listed person: every contribution with the feature's value and the
catalogue's phrase, the sum check, and a waterfall chart.

A pure function of the month's list, the person's feature row and stored explanation; the
command (pipelines/cli.py `explain`) loads them and saves the chart. No identifier is shown:
the pseudonym, the district and features (age top-coded at 90).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import AGE_TOP, CATALOG, EXPLORATION, MODEL_FEATURES, describe, label
from models.explain import contributions, grouped, method_text, reference_text, threshold_text
from reports import plots


@dataclass(frozen=True)
class PersonView:
    text: str                  # the view, ready to print
    waterfall: bytes | None    # PNG of the contributions (None for a rule's list)


def _value_text(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if name == "age" and value >= AGE_TOP:
        return f"{AGE_TOP}+"
    return f"{value:g}"


def person_view(month: str, listed: pd.DataFrame, pid: str, values: pd.Series,
                explanation: pd.DataFrame | None) -> PersonView:
    """`listed`: the month's whole list; `values`: the person's feature row (indexed by feature);
    `explanation`: the person's row of the stored explanations (None for a rule's list)."""
    person = listed[listed["pid"] == pid].iloc[0]
    by_model = str(person["source"]).startswith("model")
    explored = bool(person.get("exploration", False))
    # the rank band, never the score: a rule's score encodes the exact age (age/120), and an
    # uncalibrated model's score looks like a probability and is not one
    head = [f"mimamori explain {month}  pseudonym {pid}",
            f"順位 rank {int(person['rank'])} / {len(listed)}   地区 district {person['district']}   "
            f"掲載可能な住民の{person['band']} / {person['band_en']} of the eligible cohort   "
            f"made by {person['source']}   model version {person['model_version'] or '—'}"]
    if explored:
        head += [f"理由 reasons: {EXPLORATION[0]} / {EXPLORATION[1]}",
                 "この人は地区の掲載可能な住民から無作為に選ばれました（探索枠）。掲載の理由はありません。",
                 "Drawn at random from the district's eligible residents (exploration): there is no reason for listing."]
    else:
        head += [f"理由 reasons: {person['reasons']}",
                 f"        {person['reasons_en']}"]
    if not by_model:
        head.append("このリストは比較基準のルールで作られたため、SHAP 寄与はありません。理由はルールの条件です。")
        head.append("The list was made by a rule baseline: there are no SHAP contributions; "
                    "the reasons are the rule's criteria with the person's values.")
        for name in person["reason_features"]:
            ja, en = describe(name, values[name], bool(values.get(f"{name}_imp", 0) >= .5))
            head.append(f"  {CATALOG[name].label_en:38s} {_value_text(name, values[name]):>8s}  {ja} / {en}")
        return PersonView("\n".join(head) + "\n", None)
    mine = explanation
    phi = contributions(mine)[0]
    base, log_odds = float(mine["base_value"].iloc[0]), float(mine["log_odds"].iloc[0])
    names, group_phi = grouped(phi[None, :])
    stated = [] if explored else list(person["reason_features"])
    method = method_text(str(mine["method"].iloc[0]))
    reference = reference_text(mine)
    rule = threshold_text()
    lines = head + [
        f"model version of the explanation: {mine['model_version'].iloc[0]}",
        f"基準 reference: {reference[0]} / {reference[1]}",
        f"計算方法 method: {method[0]} / {method[1]}",
        f"理由の条件 rule: {rule[0]} / {rule[1]}",
        f"base value = the reference's expected log-odds = {base:+.6f}",
    ] + (["下の寄与はスコアの内訳で、掲載の理由ではありません。 / The contributions below break down the score; "
          "they are not reasons for listing."] if explored else [""]) + [
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
              f"★ = stated reason on the visiting sheet; * = no record (imputed value, flagged); ages {AGE_TOP}+ top-coded."]
    png = plots.waterfall(base, [(f"{CATALOG[n].label_en} = {_value_text(n, values[n])}", float(group_phi[0, j]))
                                 for j, n in enumerate(names)], log_odds,
                          f"{month}  {pid[:12]}…  rank {int(person['rank'])}  (model v{mine['model_version'].iloc[0]})")
    return PersonView("\n".join(lines) + "\n", png)
