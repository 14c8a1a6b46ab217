"""The feature catalogue: every feature's source, window, imputation and wording.

Reports, reasons, visiting sheets and model cards take their phrases from here, so nothing is
typed twice. A phrase is written for the value the person actually has, in natural Japanese
with English alongside for auditors (「介護保険料を4か月分滞納」, "4 months of care-premium
arrears"). `ask_ja` is what a visitor might gently ask about when the feature is one of a
person's reasons; `imputed_ja`/`imputed_en` say what the `_imp` flag means. Ages in phrases are
top-coded at 90 (「90歳以上」), as in every report.
"""
from __future__ import annotations

import math
import re
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
    ask_ja: str = ""          # what a visitor might ask about (visiting sheets)
    ask_en: str = ""
    imputed_ja: str = ""      # meaning of the `_imp` flag, for model cards and auditors
    imputed_en: str = ""
    # What the model's imputer puts in a value still missing after the feature's own
    # definition: "median" of the training split (fitted and frozen with the model,
    # models/candidates.py) or "zero". The `_imp` flag keeps the fact that it was missing.
    fill: str = "zero"
    # The feature's group, for ablations (pipelines/truthcheck.py) and the model card: "snapshot"
    # for how a person lives now, otherwise the kind of change it measures (features/change.py).
    group: str = "snapshot"


def _n(value: float) -> int:
    return int(round(value))


def _en(n: int, noun: str, plural: str | None = None) -> str:
    """'1 month', '4 months' (English phrases read naturally with the value filled in)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


AGE_TOP = 90  # ages at or above are written "90歳以上" (top-coding, privacy-notes §2.2)


def _age(v: float, imp: bool) -> tuple[str, str]:
    if _n(v) >= AGE_TOP:
        return f"{AGE_TOP}歳以上", f"aged {AGE_TOP} or over"
    return f"{_n(v)}歳", f"aged {_n(v)}"


def _alone(v: float, imp: bool) -> tuple[str, str]:
    return ("ひとり暮らし", "lives alone") if v >= 0.5 else ("同居者あり", "lives with others")


def _months_here(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "転入時期の記録なし", "no move-in date on record"
    if v < 12:
        return f"転入して{_n(v)}か月", f"moved in {_en(_n(v), 'month')} ago"
    return f"同じ住所に{_n(v) // 12}年", f"{_en(_n(v) // 12, 'year')} at the same address"


def _since_checkup(v: float, imp: bool) -> tuple[str, str]:
    years = _n(v) // 12
    if imp and years >= 2:
        return f"健診の受診記録が{years}年以上なし", f"no health checkup on record for {years}+ years"
    if imp:
        return f"健診の受診記録が{_n(v)}か月以上なし", f"no health checkup on record for {_n(v)}+ months"
    if v < 1:
        return "今月に健診の受診記録あり", "health checkup this month"
    if v >= 24:
        return f"最後の健診から{years}年以上", f"last health checkup {years}+ years ago"
    return f"最後の健診から{_n(v)}か月", f"last health checkup {_en(_n(v), 'month')} ago"


def _care_arrears(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "介護保険料の賦課なし", "no long-term-care premium billed"
    if v < 0.5:
        return "介護保険料の滞納なし", "no care-premium arrears"
    return f"介護保険料を{_n(v)}か月分滞納", f"{_en(_n(v), 'month')} of care-premium arrears"


def _nhi_arrears(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "国民健康保険料の賦課なし", "no national-health-insurance premium billed"
    if v < 0.5:
        return "世帯の国保料の滞納なし", "no household NHI arrears"
    return f"世帯の国保料を{_n(v)}か月分滞納", f"{_en(_n(v), 'month')} of household NHI arrears"


# Phrases above that state a figure a volunteer (民生委員) does not need, and what such a
# recipient reads instead (reports/recipients.py): the months of arrears become 「滞納あり」;
# an age becomes its band (None here: the band is features.groups.age_band of the stated age).
FIGURE_PHRASES: dict[str, tuple[re.Pattern, str | None]] = {
    "age": (re.compile(r"^(\d+)歳(?:以上)?$"), None),
    "care_arrears_months": (re.compile(r"^介護保険料を\d+か月分滞納$"), "介護保険料の滞納あり"),
    "nhi_arrears_months": (re.compile(r"^世帯の国保料を\d+か月分滞納$"), "世帯の国保料の滞納あり"),
}


CARE_LEVELS = ["なし", "要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5"]
CARE_LEVELS_EN = ["none", "support level 1", "support level 2", "care level 1", "care level 2", "care level 3",
                  "care level 4", "care level 5"]


def _care_level(v: float, imp: bool) -> tuple[str, str]:
    level = min(max(_n(v), 0), len(CARE_LEVELS) - 1)
    if level == 0:
        return "要介護認定なし", "no long-term-care certification"
    return f"要介護認定あり（{CARE_LEVELS[level]}）", f"long-term-care certified ({CARE_LEVELS_EN[level]})"


def _garbage(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return "訪問収集の利用なし", "not enrolled in door-to-door garbage pickup"
    if v < 0.5:
        return "訪問収集で毎回応答あり", "answered at every garbage pickup"
    return f"訪問収集で応答なしが90日間に{_n(v)}回", f"no answer at door-to-door garbage pickup {_en(_n(v), 'time')} in 90 days"


def _since_contact(v: float, imp: bool) -> tuple[str, str]:
    if imp:
        return f"相談・見守りの記録が{_n(v)}か月以上なし", f"no welfare contact on record for {_n(v)}+ months"
    if v < 1:
        return "今月に相談・見守りの記録あり", "welfare contact this month"
    return f"最後の相談・見守りから{_n(v)}か月", f"last welfare contact {_en(_n(v), 'month')} ago"


def _missed_visits(v: float, imp: bool) -> tuple[str, str]:
    if v < 0.5:
        return "過去1年の訪問で不在・拒否なし", "no unanswered or declined visit in a year"
    return f"過去1年の訪問で不在・拒否{_n(v)}回", f"{_en(_n(v), 'unanswered or declined visit')} in a year"


def _emergencies(v: float, imp: bool) -> tuple[str, str]:
    if v < 0.5:
        return "過去1年に緊急対応なし", "no emergency response in a year"
    return f"過去1年に緊急対応{_n(v)}回", f"{_en(_n(v), 'emergency response')} in a year"


def _flag(yes: tuple[str, str], no: tuple[str, str]) -> Phrase:
    """The phrase of a 0/1 change feature: `yes` when it happened, `no` when it did not."""
    return lambda v, imp: yes if v >= 0.5 else no


# Features of change (features/change.py): (name, source, window, ja label, en label, phrase, group, ask).
# Kept is what the five-ward ablation found earning its place (docs/model-quality.md); a household
# that shrank, a recent move, arrears that began, contact that stopped, a return home from hospital
# and more unanswered pickups were built, measured and dropped (removing each kept or raised the
# list's precision on the latent truth).
CHANGE_FEATURES = [
    ("checkup_lapsed", "checkups", "13–36 months and 12 months before as-of", "健診の習慣の途切れ",
     "checkup habit broken",
     _flag(("以前は受けていた健診をこの1年は受診なし", "used to attend health checkups, none in the last year"),
           ("健診の習慣の途切れなし", "checkup habit unbroken")),
     "checkup_habit", "体調・通院の様子（健診の案内も）", "health and doctor visits (mention the free checkup)"),
]


CATALOG: dict[str, Feature] = {f.name: f for f in [
    Feature("age", "residents", "snapshot at as-of", "none (required)", "年齢", "age", _age,
            ask_ja="日々の体調や困りごと", ask_en="day-to-day health and worries"),
    Feature("living_alone", "residents", "snapshot at as-of", "none (required)",
            "ひとり暮らし", "living alone", _alone,
            ask_ja="困ったときに頼れる人・連絡先がいるか", ask_en="whom they could call on in trouble"),
    Feature("months_at_address", "residents", "snapshot at as-of", "left missing in the table; the model fills the training split's median, flagged",
            "現住所での居住期間", "months at address", _months_here,
            ask_ja="近所に知り合いや相談できる人がいるか", ask_en="whether they know anyone nearby to talk to",
            imputed_ja="転入日の記録なし", imputed_en="no move-in date on record", fill="median"),
    Feature("months_since_checkup", "checkups", "all history known at as-of",
            "months of history when none on record, flagged", "健診からの経過月数",
            "months since last health checkup", _since_checkup,
            ask_ja="体調・通院の様子（健診の案内も）", ask_en="health and doctor visits (mention the free checkup)",
            imputed_ja="健診の受診記録なし", imputed_en="no health checkup on record"),
    Feature("care_arrears_months", "care_premiums", "12 billing months to as-of",
            "0 when not billed, flagged", "介護保険料の滞納月数", "months of care-premium arrears", _care_arrears,
            ask_ja="暮らし向き・支払いで困っていないか", ask_en="whether money or bills are a worry",
            imputed_ja="介護保険料の賦課なし", imputed_en="no care premium billed"),
    Feature("nhi_arrears_months", "nhi_premiums", "12 billing months to as-of",
            "0 when not billed, flagged", "国保料の滞納月数（世帯）", "months of household NHI arrears", _nhi_arrears,
            ask_ja="暮らし向き・支払いで困っていないか", ask_en="whether money or bills are a worry",
            imputed_ja="世帯に国保料の賦課なし", imputed_en="no NHI premium billed to the household"),
    Feature("care_level", "care_certifications", "valid at as-of", "0 = not certified",
            "要介護度", "long-term-care level", _care_level,
            ask_ja="介護サービスの利用状況と困りごと", ask_en="care services in use and any difficulty"),
    Feature("garbage_no_response_90d", "garbage_pickups", "90 days to as-of",
            "0 when not enrolled, flagged", "訪問収集の応答なし回数", "unanswered garbage pickups", _garbage,
            ask_ja="ごみ出しや家事で困っていないか", ask_en="trouble with rubbish or housework",
            imputed_ja="訪問収集の利用なし", imputed_en="not enrolled in door-to-door garbage pickup"),
    Feature("months_since_contact", "welfare_contacts", "all history known at as-of",
            "months of history when none on record, flagged", "相談・見守りからの経過月数",
            "months since last welfare contact", _since_contact,
            ask_ja="最近、誰かと話したり出かけたりしているか", ask_en="whether they talk to or go out with anyone lately",
            imputed_ja="相談・見守りの記録なし", imputed_en="no welfare contact on record"),
    Feature("missed_visits_12m", "outreach_outcomes", "12 months to as-of", "0 when none",
            "訪問時の不在・拒否回数", "unanswered or declined visits", _missed_visits,
            ask_ja="訪問の都合のよい時間帯（無理のない範囲で）", ask_en="a convenient time for visits, without pressing"),
    Feature("emergencies_12m", "adverse_events", "12 months to as-of", "0 when none",
            "緊急対応の回数", "emergency responses", _emergencies,
            ask_ja="その後の体調と、緊急時の連絡先", ask_en="health since, and an emergency contact"),
] + [Feature(name, source, window, "0 when nothing to compare with", ja, en, phrase, ask_ja=ask_ja, ask_en=ask_en,
             group=group) for name, source, window, ja, en, phrase, group, ask_ja, ask_en in CHANGE_FEATURES]}
GROUPS: dict[str, list[str]] = {}
for _feature in CATALOG.values():
    GROUPS.setdefault(_feature.group, []).append(_feature.name)

# What an exploration pick (drawn at random from the eligible rest, not ranked) carries instead
# of reasons, on the list, the sheets, the auditor's view and the report: it has none.
EXPLORATION = ("無作為抽出（探索枠）", "Random pick (exploration)")
# What a listed person carries when no single feature genuinely separates them from the eligible
# cohort (models/explain.py MIN_REASON, MIN_SHARE): their rank is the sum of several small ones.
NO_SINGLE_REASON = ("目立つ単独の要因なし（小さな要因の積み重ね）", "no single strong factor (several small ones add up)")

# Features whose imputation is flagged carry a companion `<name>_imp` column (1 = imputed).
FLAGGED = ["months_at_address", "months_since_checkup", "care_arrears_months", "nhi_arrears_months",
           "garbage_no_response_90d", "months_since_contact"]
MODEL_FEATURES: list[str] = list(CATALOG) + [f"{name}_imp" for name in FLAGGED]


def group_of(name: str) -> str:
    """The group of a model feature (an `_imp` flag belongs to its feature's group)."""
    return CATALOG[name[:-4] if name.endswith("_imp") else name].group


def describe(name: str, value: float, imputed: bool = False) -> tuple[str, str]:
    """The (Japanese, English) phrase for a feature at a person's value."""
    if name.endswith("_imp"):
        base = CATALOG[name[:-4]]
        if value is not None and value >= 0.5:
            return base.imputed_ja, base.imputed_en
        return f"{base.label_ja}：記録あり", f"{base.label_en}: on record"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value, imputed = 0.0, True
    return CATALOG[name].phrase(float(value), bool(imputed))


def label(name: str) -> tuple[str, str]:
    """(Japanese, English) label of a model feature, `_imp` flags included."""
    if name.endswith("_imp"):
        base = CATALOG[name[:-4]]
        return f"{base.label_ja}（記録なしの印）", f"{base.label_en}: no-record flag"
    return CATALOG[name].label_ja, CATALOG[name].label_en


def questions(names: list[str]) -> tuple[str, str]:
    """What a visitor might ask about, for a person's reason features (duplicates dropped)."""
    ja, en = [], []
    for name in names:
        feature = CATALOG.get(name[:-4] if name.endswith("_imp") else name)
        if feature is not None and feature.ask_ja and feature.ask_ja not in ja:
            ja.append(feature.ask_ja)
            en.append(feature.ask_en)
    return "、".join(ja), "; ".join(en)
