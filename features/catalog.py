"""The feature catalogue: every feature's source, window, imputation and wording.

Reports, reasons and sheets take their phrases from here, so nothing is typed twice. A phrase
is written for the value the person actually has, in natural Japanese with English alongside
for auditors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

Phrase = Callable[[float, bool], tuple[str, str]]   # (value, imputed) -> (ja, en)


@dataclass(frozen=True)
class Feature:
    name: str
    source: str
    window: str
    imputation: str
    label_ja: str
    label_en: str
    phrase: Phrase


def _n(value: float) -> int:
    return int(round(value))


def _age(v: float, imp: bool) -> tuple[str, str]:
    return f"{_n(v)}歳", f"aged {_n(v)}"


def _alone(v: float, imp: bool) -> tuple[str, str]:
    return ("ひとり暮らし", "lives alone") if v >= 0.5 else ("同居者あり", "lives with others")


def _months_here(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "転入時期の記録なし", "no move-in date on record"
    if v < 12:
        return f"転入して{_n(v)}か月", f"moved in {_n(v)} months ago"
    return f"同じ住所に{_n(v) // 12}年", f"{_n(v) // 12} years at the same address"


def _since_checkup(v: float, imp: bool) -> tuple[str, str]:
    years = _n(v) // 12
    if imp and years >= 2:
        return f"{years}年以上 健診の受診記録なし", f"no health checkup on record for {years}+ years"
    if imp:
        return f"{_n(v)}か月以上 健診の受診記録なし", f"no health checkup on record for {_n(v)}+ months"
    if v >= 24:
        return f"最後の健診から{years}年以上", f"last health checkup {years}+ years ago"
    return f"最後の健診から{_n(v)}か月", f"last health checkup {_n(v)} months ago"


def _care_arrears(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "介護保険料の賦課なし", "no long-term-care premium billed"
    if v < 0.5:
        return "介護保険料の滞納なし", "no care-premium arrears"
    return f"介護保険料を{_n(v)}か月分滞納", f"{_n(v)} months of care-premium arrears"


def _nhi_arrears(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "国民健康保険料の賦課なし", "no national-health-insurance premium billed"
    if v < 0.5:
        return "世帯の国保料の滞納なし", "no household NHI arrears"
    return f"世帯の国保料を{_n(v)}か月分滞納", f"{_n(v)} months of household NHI arrears"


CARE_LEVELS = ["なし", "要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5"]


def _care_level(v: float, imp: bool) -> tuple[str, str]:
    level = _n(v)
    if level == 0:
        return "要介護認定なし", "no long-term-care certification"
    return f"要介護認定あり（{CARE_LEVELS[level]}）", f"long-term-care certified ({CARE_LEVELS[level]})"


def _garbage(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "訪問収集の利用なし", "not enrolled in door-to-door garbage pickup"
    if v < 0.5:
        return "訪問収集で毎回応答あり", "answered at every garbage pickup"
    return f"訪問収集で応答なし（90日で{_n(v)}回）", f"no answer at garbage pickup {_n(v)} times in 90 days"


def _since_contact(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return f"{_n(v)}か月以上 相談・見守りの記録なし", f"no welfare contact on record for {_n(v)}+ months"
    if v < 1:
        return "今月 相談・見守りの記録あり", "welfare contact this month"
    return f"最後の相談・見守りから{_n(v)}か月", f"last welfare contact {_n(v)} months ago"


def _missed_visits(v: float, imp: bool) -> tuple[str, str]:
    if v < 0.5:
        return "過去1年の訪問で不在・拒否なし", "no unanswered or declined visit in a year"
    return f"過去1年の訪問で不在・拒否{_n(v)}回", f"{_n(v)} unanswered or declined visits in a year"


def _emergencies(v: float, imp: bool) -> tuple[str, str]:
    if v < 0.5:
        return "過去1年に緊急対応なし", "no emergency response in a year"
    return f"過去1年に緊急対応{_n(v)}回", f"{_n(v)} emergency responses in a year"


CATALOG: dict[str, Feature] = {f.name: f for f in [
    Feature("age", "residents", "snapshot at as-of", "none (required)", "年齢", "age", _age),
    Feature("living_alone", "residents", "snapshot at as-of", "none (required)",
            "ひとり暮らし", "living alone", _alone),
    Feature("months_at_address", "residents", "snapshot at as-of", "left missing (the model routes it), flagged",
            "現住所での居住期間", "months at address", _months_here),
    Feature("months_since_checkup", "checkups", "all history known at as-of",
            "months of history when none on record, flagged", "健診からの経過月数",
            "months since last health checkup", _since_checkup),
    Feature("care_arrears_months", "care_premiums", "12 billing months to as-of",
            "0 when not billed, flagged", "介護保険料の滞納月数", "months of care-premium arrears", _care_arrears),
    Feature("nhi_arrears_months", "nhi_premiums", "12 billing months to as-of",
            "0 when not billed, flagged", "国保料の滞納月数（世帯）", "months of household NHI arrears", _nhi_arrears),
    Feature("care_level", "care_certifications", "valid at as-of", "0 = not certified",
            "要介護度", "long-term-care level", _care_level),
    Feature("garbage_no_response_90d", "garbage_pickups", "90 days to as-of",
            "0 when not enrolled, flagged", "訪問収集の応答なし回数", "unanswered garbage pickups", _garbage),
    Feature("months_since_contact", "welfare_contacts", "all history known at as-of",
            "months of history when none on record, flagged", "相談・見守りからの経過月数",
            "months since last welfare contact", _since_contact),
    Feature("missed_visits_12m", "outreach_outcomes", "12 months to as-of", "0 when none",
            "訪問時の不在・拒否回数", "unanswered or declined visits", _missed_visits),
    Feature("emergencies_12m", "adverse_events", "12 months to as-of", "0 when none",
            "緊急対応の回数", "emergency responses", _emergencies),
]}

# Features whose imputation is flagged carry a companion `<name>_imp` column (1 = imputed).
FLAGGED = ["months_at_address", "months_since_checkup", "care_arrears_months", "nhi_arrears_months",
           "garbage_no_response_90d", "months_since_contact"]
MODEL_FEATURES: list[str] = list(CATALOG) + [f"{name}_imp" for name in FLAGGED]


def describe(name: str, value: float, imputed: bool = False) -> tuple[str, str]:
    """The (Japanese, English) phrase for a feature at a person's value."""
    if name.endswith("_imp"):
        base = CATALOG[name[:-4]]
        return (f"{base.label_ja}の記録なし", f"no record of {base.label_en}") if value >= 0.5 else \
               (f"{base.label_ja}の記録あり", f"{base.label_en} on record")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value, imputed = 0.0, True
    return CATALOG[name].phrase(float(value), bool(imputed))
