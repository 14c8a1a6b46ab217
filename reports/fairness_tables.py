"""The report's fairness section: one computation (models/fairness.py `audit`), shown twice.

This month's list is audited by the report (selection per group among eligible people: the list
has no outcomes yet); the holdout audit of every ranker was computed at training and is read back
from training.json. Both are rendered as the same bilingual table: group, people and selected,
selection rate, recall and false-discovery rate (each a rate with its counts and 95% Wilson
interval, and its ratio to the whole cohort), and the flag in words. Every count and rate is as
the report's one disclosure pass shows it (reports/disclosure.py; the cells in reports/cells.py).
What a reader must not miss is also said in sentences: a flagged group, and a group with eligible
people of whom nobody is listed.
"""
from __future__ import annotations

import json

import pandas as pd

from features.groups import AGE_BANDS, SEX_JA
from models.fairness import WHOLE, audit
from reports.cells import AuditKeys, holdout_audit_keys, month_audit_keys
from reports.context import Fairness, Notice, RemedyView
from reports.disclosure import Disclosed
from reports.rankers import RANKER_TITLES

ATTRIBUTES = {"cohort": ("全体", "whole cohort"), "sex": ("性別", "sex"), "age_band": ("年齢区分", "age band"),
              "district": ("地区", "district"), "living_alone": ("世帯", "household")}
AGE_EN = {label: (f"aged {low}+" if high >= 200 else f"under {high + 1}" if low == 0 else f"aged {low}–{high}")
          for low, high, label in AGE_BANDS}
HOUSEHOLD = {"alone": ("独居", "living alone"), "with_others": ("同居あり", "living with others")}


def group_words(attribute: str, group: str) -> tuple[str, str]:
    """A group's name in Japanese and English."""
    if (attribute, group) == WHOLE:
        return "全体", "whole cohort"
    if attribute == "sex":
        return SEX_JA.get(group, "その他・不明"), group
    if attribute == "age_band":
        return group, AGE_EN.get(group, "age unknown")
    if attribute == "living_alone":
        return HOUSEHOLD.get(group, (group, group))
    return group, group          # district names are proper nouns: the same in both languages


def _ratio(value: float | None, shown: str) -> str:
    # a ratio times the whole's rate is the group's rate: hidden whenever the rate is
    return f"×{value:.2f}" if value is not None and shown[:1].isdigit() else "—"


def _row(r: dict, shown: Disclosed, keys: AuditKeys, low: float, high: float, min_labelled: int,
         labelled: bool) -> dict:
    ja, en = group_words(r["attribute"], r["group"])
    k = {c: keys.key(c, r) for c in ("people", "selected", "positive", "true_positive", "selected_labelled",
                                      "false_positive")}
    selection = shown.rate_text(k["selected"], k["people"])
    words: list[tuple[str, str]] = []
    if "tpr" in r.get("flagged", []):
        words.append((f"要支援者の発見率（再現率）が全体の{low:g}倍未満", f"recall below {low:g}× the whole cohort's"))
    if "fdr" in r.get("flagged", []):
        words.append((f"誤検出率が全体の{high:g}倍超", f"false-discovery rate above {high:g}× the whole cohort's"))
    if r["people"] and not r["selected"]:
        words.append(("掲載0人", "nobody selected"))
    if labelled and r.get("suppressed"):
        words.append((f"結果の分かる人が{min_labelled}人未満：判定せず", f"under {min_labelled} with a known outcome: not judged"))
    recall = fdr = "—"
    if labelled and not r.get("suppressed"):
        recall = shown.rate_text(k["true_positive"], k["positive"])
        fdr = shown.rate_text(k["false_positive"], k["selected_labelled"])
    return {"group": ja, "group_en": en, "people": shown.text(k["people"]), "selected": shown.text(k["selected"]),
            "selection_rate": selection, "selection_ratio": _ratio(r.get("selection_ratio"), selection),
            "recall": recall, "recall_ratio": _ratio(r.get("tpr_ratio"), recall), "fdr": fdr,
            "fdr_ratio": _ratio(r.get("fdr_ratio"), fdr), "flag": bool(r.get("flag")),
            "words_ja": "、".join(w[0] for w in words) or "—", "words_en": "; ".join(w[1] for w in words)}


def audit_table(title: str, rows: list[dict], shown: Disclosed, keys: AuditKeys, bounds: tuple[float, float],
                min_labelled: int, labelled: bool) -> dict:
    """One ranker's (or this month's list's) audit rows as a bilingual table, a section per attribute;
    every count and rate as the report's one disclosure pass shows it (reports/cells.py registers them)."""
    low, high = bounds
    sections = []
    for attribute, (ja, en) in ATTRIBUTES.items():
        mine = [r for r in rows if r["attribute"] == attribute]
        if mine:
            sections.append({"attribute": f"{ja} / {en}",
                             "rows": [_row(r, shown, keys, low, high, min_labelled, labelled) for r in mine]})
    return {"title": title, "labelled": labelled, "sections": sections}


def findings(who_ja: str, who_en: str, rows: list[dict], shown: Disclosed, keys: AuditKeys, bounds: tuple[float, float],
             eligible_words: tuple[str, str] = ("対象者", "people"), unselected: bool = True,
             recall: bool = True) -> list[dict]:
    """Sentences for the flagged groups and (when `unselected`) the groups with people of whom
    nobody is selected; `recall=False` leaves the low-recall flag to `recall_findings`."""
    low, high = bounds
    out = []
    for r in rows:
        if r["attribute"] == WHOLE[0]:
            continue
        ja, en = group_words(r["attribute"], r["group"])
        if recall and "tpr" in r.get("flagged", []):
            out.append({"ja": f"{who_ja}：{ja}は、要支援者の発見率（再現率）が全体の{low:g}倍未満です。",
                        "en": f"{who_en}: {en} — people in need are found less often (recall below {low:g}× the whole cohort's)."})
        if "fdr" in r.get("flagged", []):
            out.append({"ja": f"{who_ja}：{ja}は、誤検出率が全体の{high:g}倍を超えています。",
                        "en": f"{who_en}: {en} — visits are wasted more often (false-discovery rate above {high:g}× the whole cohort's)."})
        if unselected and r["people"] and not r["selected"]:
            n = shown.text(keys.key("people", r))
            out.append({"ja": f"{who_ja}：{ja}の{eligible_words[0]}{n}人のうち掲載0人です。",
                        "en": f"{who_en}: {en} — none of the {n} {eligible_words[1]} is selected."})
    return out


def outside(rows: list[dict], bounds: tuple[float, float]) -> list[dict]:
    """The groups whose recall ratio to the whole cohort lies outside the bounds, either way."""
    low, high = bounds
    return [r for r in rows if r["attribute"] != WHOLE[0] and r.get("tpr_ratio") is not None
            and not low <= r["tpr_ratio"] <= high]


def recall_findings(who_ja: str, who_en: str, rows: list[dict], shown: Disclosed, keys: AuditKeys,
                    bounds: tuple[float, float], min_labelled: int) -> list[dict]:
    """A sentence for every group whose recall ratio lies outside the bounds, below (its people in
    need are found less often) or above (more often), with the ratio and the rates it rests on;
    or one sentence saying no judged group is outside. A ratio whose rate the disclosure pass
    hides is named by its side of the bounds only: the ratio times the whole's rate is the
    group's rate, which with its denominator would give the hidden count back."""
    low, high = bounds
    whole = next((r for r in rows if r["attribute"] == WHOLE[0]), None)
    if whole is None:
        return []
    whole_rate = shown.rate_text(keys.key("true_positive", whole), keys.key("positive", whole))
    band_ja, band_en = f"{low:g}〜{high:g}倍", f"{low:g}–{high:g}×"
    out = []
    for r in outside(rows, bounds):
        ja, en = group_words(r["attribute"], r["group"])
        rate = shown.rate_text(keys.key("true_positive", r), keys.key("positive", r))
        below = r["tpr_ratio"] < low
        side_ja, side_en = ("下回って", "below") if below else ("上回って", "above")
        found_ja, found_en = ("見つかりにくく", "less often") if below else ("見つかりやすく", "more often")
        if rate[:1].isdigit():
            ratio_ja, ratio_en = f"全体の{r['tpr_ratio']:.2f}倍", f"{r['tpr_ratio']:.2f}× the whole cohort's"
            basis_ja, basis_en = f"（{ja} {rate}、全体 {whole_rate}）", f" ({en} {rate}; whole cohort {whole_rate})"
        else:
            bound = low if below else high
            ratio_ja = f"全体の{bound:g}倍{'未満' if below else '超'}"
            ratio_en = f"{'below' if below else 'above'} {bound:g}× the whole cohort's"
            basis_ja, basis_en = "（人数は開示制御のため示しません）", " (its counts are withheld by disclosure control)"
        out.append({"ja": f"{who_ja}：{ja}の要支援者の発見率（再現率）は{ratio_ja}で、基準（{band_ja}）を{side_ja}います。"
                          f"この区分の要支援者は、全体より{found_ja}なっています{basis_ja}。",
                    "en": f"{who_en}: {en} — recall is {ratio_en}, {side_en} the {band_en} band: people in need "
                          f"in this group are found {found_en}{basis_en}."})
    if not out:
        judged = sum(1 for r in rows if r["attribute"] != WHOLE[0] and r.get("tpr_ratio") is not None)
        unjudged = sum(1 for r in rows if r["attribute"] != WHOLE[0]) - judged
        rest_ja = f"要支援者が{min_labelled}人未満などで判定できない{unjudged}グループを除く" if unjudged else "すべて"
        rest_en = (f"; {unjudged} groups with fewer than {min_labelled} people in need (or too few labelled) "
                   "are not judged" if unjudged else "")
        out.append({"ja": f"{who_ja}：要支援者の発見率（再現率）が全体の{band_ja}の範囲を外れるグループはありません"
                          f"（判定した{judged}グループ、{rest_ja}）。",
                    "en": f"{who_en}: no group's recall lies outside {band_en} the whole cohort's ({judged} groups "
                          f"judged{rest_en})."})
    return out


def month_audit(listed: pd.DataFrame, eligible: pd.DataFrame, bounds: tuple[float, float],
                min_labelled: int) -> list[dict]:
    """This month's list audited among eligible people (selection only: no outcomes yet)."""
    if not len(eligible):
        return []
    return audit(eligible.drop(columns="label", errors="ignore"),
                 eligible["pid"].isin(set(listed["pid"])).to_numpy(dtype=bool), float(bounds[0]), float(bounds[1]),
                 min_labelled=min_labelled)


def fairness_section(stored: dict | None, serving: str | None, month_rows: list[dict], shown: Disclosed,
                     bounds: tuple[float, float], min_labelled: int, remedy: RemedyView | None = None) -> Fairness:
    """This month's list audited among eligible people (`month_audit`), and the holdout audits
    stored at training; counts and rates as the report's disclosure pass shows them."""
    bounds = (float(bounds[0]), float(bounds[1]))
    month = audit_table("今月のリスト / this month's list", month_rows, shown, month_audit_keys(), bounds,
                        min_labelled, False)
    said = findings("今月のリスト", "This month's list", month_rows, shown, month_audit_keys(), bounds,
                    ("掲載可能者", "eligible people"))
    stored = stored or {}
    order = sorted(stored, key=lambda who: (who != serving, who != "model", who != "champion", who))
    tables = []
    for who in order:
        title = RANKER_TITLES.get(who, who) + (" — 今月のリストを作った方法 / made this month's list" if who == serving else "")
        tables.append(audit_table(title, stored[who], shown, holdout_audit_keys(who), bounds, min_labelled, True))
        if who in (serving, "model"):
            ja, en = RANKER_TITLES.get(who, who).split(" / ", 1)
            # on the holdout only flags are sentences: with a small k many groups have nobody in
            # the top k, and the table shows that; this month's list is where it must be said.
            # For the ranker that made the list every recall outside the bounds is said, either way.
            said += findings(f"検証月の{ja}", f"Holdout, {en}", stored[who], shown, holdout_audit_keys(who), bounds,
                             unselected=False, recall=who != serving)
            if who == serving:
                said += recall_findings(f"検証月の{ja}", f"Holdout, {en}", stored[who], shown,
                                        holdout_audit_keys(who), bounds, min_labelled)
    why = None if stored else Notice(
        "fairness", "検証結果がないため、グループ別の検証月の再現率・誤検出率は示せません（今月の掲載率のみ示します）。",
        "No holdout evaluation, so per-group holdout recall and false-discovery rates cannot be shown "
        "(only this month's selection rates).")
    return Fairness(computed=(month,), stored=tuple(tables), ratio=bounds[0], holdout_why_not=why,
                    findings=tuple(said), high=bounds[1], remedy=remedy)


def flat_rows(table: dict) -> tuple[list[str], list[list[str]]]:
    """A rendered audit table as one header and rows (the model card's tables)."""
    header = ["attribute", "group", "people", "selected", "selection rate", "× whole", "recall", "× whole",
              "FDR", "× whole", "flag"]
    rows = [[s["attribute"], f"{r['group']} / {r['group_en']}", r["people"], r["selected"], r["selection_rate"],
             r["selection_ratio"], r["recall"], r["recall_ratio"], r["fdr"], r["fdr_ratio"],
             r["words_en"] or "—"] for s in table["sections"] for r in s["rows"]]
    return header, rows


def as_stored(value):
    """A value as training.json stores it (keys sorted, plain JSON types), so the stored fairness
    tables read the same whether rendered now or rebuilt from the file."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
