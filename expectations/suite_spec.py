"""The source of the JSON suites in expectations/suites/: `python -m pipelines.write_suites` rewrites them.

One suite per source checks the pseudonymised lake table of a delivery before it is committed,
and the `features` suite checks a month's feature table. A test keeps the files and this spec
identical.

Every expectation carries in its `meta`:
- `check`: a stable name, unique in its suite (`<source>.<column>.<kind>`), used in results,
  quarantine files and the delivery record;
- `policy`: what mimamori does when it fails (GX stores `severity` but never acts on it):
    critical    the month stops before anything is committed (before features);
    quarantine  the failing rows leave the table for <work>/quarantine/<month>/<source>.parquet,
                named with this check; more than the configured share of a source's rows
                (contract and validation quarantine together) becomes critical;
    warning     reported, nothing else;
- `policy_without_history` (optional): the policy when the lake holds no earlier residents
  snapshot (the first delivery), for checks that need one;
- `description` / `description_ja`: what the check asks, in plain English and Japanese.
GX's own `severity` is derived from the policy: critical and quarantine map to GX `critical`
(rows failing a quarantine check never reach the lake), warning maps to GX `warning`.

Checks GX cannot express on one column are computed into boolean columns whose names start with
an underscore (`expectations/checks.py`) and expected to be True; they exist only while
validating and are never committed. Suite parameters (`{"$PARAMETER": ...}`) carry what depends
on the month or the configuration: the month's end, the row-count band, feature bounds.
"""
from __future__ import annotations

import json
from pathlib import Path

from features.catalog import CATALOG, FLAGGED, MODEL_FEATURES
from contract.sources import SOURCES

SUITES_DIR = Path(__file__).with_name("suites")
PSEUDONYM = r"^[0-9a-f]{32}$"
MONTH = r"^\d{4}-(?:0[1-9]|1[0-2])$"
POLICIES = ("critical", "quarantine", "warning")
GX_SEVERITY = {"critical": "critical", "quarantine": "critical", "warning": "warning"}
FEATURES = "features"

ENUMS = {
    "sex": ["male", "female", "other"],
    "care_level": ["support_1", "support_2", "care_1", "care_2", "care_3", "care_4", "care_5"],
    "collection": ["special", "ordinary"],
    "result": ["collected", "no_garbage", "no_response"],
    "channel": ["visit", "phone", "counter", "other"],
    "staff_type": ["minsei", "houkatsu", "nurse", "other"],
    "outcome": ["needs_support", "no_concern", "not_home", "declined", "hospitalised", "moved", "institution",
                "deceased", "other"],
    "event_type": ["isolated_death", "emergency"],
    "reason": ["objected", "case_open", "institution"],
}

# Plain Japanese names of the lake's columns, for the descriptions.
COLUMN_JA = {
    "pid": "個人の仮名ID", "hid": "世帯の仮名ID", "sex": "性別", "district": "地区", "relationship": "続柄",
    "age": "年齢", "household_size": "世帯人数", "months_at_address": "現住所での居住月数",
    "known_on": "把握日", "exam_date": "受診日", "program": "健診種別", "billing_month": "賦課月",
    "amount_due": "調定額", "amount_paid": "収納額", "paid_date": "収納日", "collection": "徴収方法",
    "care_level": "要介護度", "valid_from": "開始日", "valid_to": "終了日", "pickup_date": "収集日",
    "result": "収集結果", "contact_date": "対応日", "channel": "対応方法", "staff_type": "対応者",
    "visit_date": "訪問日", "outcome": "訪問結果", "event_date": "発生日", "event_type": "事案種別",
    "reason": "理由", "as_of_month": "基準月",
}

# Lake columns per source (after pseudonymisation), which must be present in every row, the
# row's identity (unique within one delivery), observation dates and months, yen amounts.
TABLES: dict[str, dict] = {
    "residents": {"columns": ["pid", "hid", "sex", "district", "relationship", "age", "household_size",
                              "months_at_address", "known_on"],
                  "required": ["pid", "hid", "sex", "district", "age", "household_size"], "unique": ["pid"]},
    "checkups": {"columns": ["pid", "exam_date", "program", "known_on"], "required": ["pid", "exam_date"],
                 "unique": ["pid", "exam_date", "program"], "dates": ["exam_date"]},
    "care_premiums": {"columns": ["pid", "billing_month", "amount_due", "amount_paid", "paid_date", "collection",
                                  "known_on"],
                      "required": ["pid", "billing_month", "amount_due", "amount_paid"],
                      "unique": ["pid", "billing_month"], "dates": ["paid_date"], "months": ["billing_month"],
                      "amounts": ["amount_due", "amount_paid"]},
    "nhi_premiums": {"columns": ["hid", "billing_month", "amount_due", "amount_paid", "known_on"],
                     "required": ["hid", "billing_month", "amount_due", "amount_paid"],
                     "unique": ["hid", "billing_month"], "months": ["billing_month"],
                     "amounts": ["amount_due", "amount_paid"]},
    "care_certifications": {"columns": ["pid", "care_level", "valid_from", "valid_to", "known_on"],
                            "required": ["pid", "care_level", "valid_from"], "unique": ["pid", "valid_from"],
                            "periods": [("valid_from", "valid_to")]},
    "garbage_pickups": {"columns": ["pid", "pickup_date", "result", "known_on"],
                        "required": ["pid", "pickup_date", "result"], "unique": ["pid", "pickup_date"],
                        "dates": ["pickup_date"]},
    "welfare_contacts": {"columns": ["pid", "contact_date", "channel", "staff_type", "known_on"],
                         "required": ["pid", "contact_date"], "unique": ["pid", "contact_date", "channel", "staff_type"],
                         "dates": ["contact_date"]},
    "outreach_outcomes": {"columns": ["pid", "visit_date", "outcome", "known_on"],
                          "required": ["pid", "visit_date", "outcome"], "unique": ["pid", "visit_date"],
                          "dates": ["visit_date"]},
    "adverse_events": {"columns": ["pid", "event_date", "event_type", "known_on"],
                       "required": ["pid", "event_date", "event_type"], "unique": ["pid", "event_date"],
                       "dates": ["event_date"]},
    "exclusions": {"columns": ["pid", "reason", "valid_from", "valid_to", "known_on"],
                   "required": ["pid", "reason"], "unique": ["pid", "reason"],
                   "periods": [("valid_from", "valid_to")]},
}

# Derived boolean check columns per source (computed by expectations/checks.py, never committed).
DERIVED: dict[str, list[str]] = {
    source: (["_pid_known"] if "pid" in spec["columns"] and source != "residents" else [])
    + (["_hid_known"] if "hid" in spec["columns"] and source != "residents" else [])
    + (["_paid_within_tolerance", "_billing_month_not_later"] if "amounts" in spec else [])
    for source, spec in TABLES.items()
}

# Sources whose row count may move by the `residents` band; all others use the `default` band
# and only warn (event counts swing with seasons and small numbers).
ROW_COUNT_CRITICAL = {"residents"}

# Lake types, as GX's expect_column_values_to_be_of_type names them for pandas dtypes.
_GX_TYPE = {"id": "str", "text": "str", "enum": "str", "month": "str", "int": "int64", "date": "datetime64",
            "bool": "bool"}
_DERIVED_TYPES = {"pid": "str", "hid": "str", "age": "int64", "household_size": "int64",
                  "months_at_address": "int64", "known_on": "datetime64"}


def lake_type(source: str, column: str) -> str:
    if column in _DERIVED_TYPES:
        return _DERIVED_TYPES[column]
    return _GX_TYPE[SOURCES[source].column(column).type]


POLICY_WORDS = {"critical": "critical: the month stops", "quarantine": "quarantine: failing rows are set aside",
                "warning": "warning: reported"}


def _e(check: str, kind: str, policy: str, en: str, ja: str, meta: dict | None = None, **kwargs) -> dict:
    """One expectation. `notes` repeat the plain words for Data Docs, which renders notes, not meta."""
    if policy not in POLICIES:
        raise ValueError(f"{check}: unknown policy {policy}")
    meta = {"check": check, "policy": policy, "description": en, "description_ja": ja, **(meta or {})}
    notes = [f"{en} / {ja}", f"mimamori policy: {POLICY_WORDS[policy]}"]
    if "policy_without_history" in meta:
        first = POLICY_WORDS[meta["policy_without_history"]]
        notes.append(f"on the first delivery (no earlier residents snapshot): {first}")
    return {"type": kind, "kwargs": kwargs, "severity": GX_SEVERITY[policy], "meta": meta, "notes": notes}


def _ja(column: str) -> str:
    return COLUMN_JA.get(column, column)


def suite(source: str) -> dict:
    """The suite of one source's lake table."""
    spec = TABLES[source]
    title = SOURCES[source].title_ja
    s = source
    ex = [_e(f"{s}.columns", "expect_table_columns_to_match_set", "critical",
             "the table has exactly the lake's columns (identifiers replaced by pseudonyms) "
             "and the derived check columns",
             f"{title}の列が取り込み後の所定の列（識別子は仮名ID）と一致する",
             column_set=spec["columns"] + DERIVED[source], exact_match=True)]
    band_policy = "critical" if source in ROW_COUNT_CRITICAL else "warning"
    ex.append(_e(f"{s}.rows.band", "expect_table_row_count_to_be_between", band_policy,
                 "the number of rows is within the configured band around the previous delivery's "
                 "(not checked on the first delivery)",
                 "行数が前回の提供時から設定の範囲内で変化している（初回は対象外）",
                 min_value={"$PARAMETER": "rows_min"}, max_value={"$PARAMETER": "rows_max"}))
    if source == "residents":
        ex.append(_e(f"{s}.rows.some", "expect_table_row_count_to_be_between", "critical",
                     "the ward has residents", "住民記録に1人以上の住民がいる", min_value=1))
    for column in spec["columns"]:
        kind = lake_type(source, column)
        ex.append(_e(f"{s}.{column}.type", "expect_column_values_to_be_of_type", "critical",
                     f"{column} has the lake type {kind}", f"{_ja(column)}の型が所定（{kind}）である",
                     column=column, type_=kind))
    for column in spec["required"]:
        policy = "critical" if column in ("pid", "hid") else "quarantine"
        ex.append(_e(f"{s}.{column}.not_null", "expect_column_values_to_not_be_null", policy,
                     f"{column} is present in every row", f"{_ja(column)}がすべての行にある", column=column))
    for column in ("pid", "hid"):
        if column in spec["columns"]:
            ex.append(_e(f"{s}.{column}.pseudonym", "expect_column_values_to_match_regex", "critical",
                         f"{column} is a 128-bit keyed pseudonym (no raw ID reached the lake)",
                         f"{_ja(column)}が鍵付きの仮名（128ビット）で、元の番号が残っていない",
                         column=column, regex=PSEUDONYM))
    for column, values in ENUMS.items():
        if column in spec["columns"]:
            ex.append(_e(f"{s}.{column}.in_set", "expect_column_values_to_be_in_set", "quarantine",
                         f"{column} takes only the contract's values ({', '.join(values)})",
                         f"{_ja(column)}が定められた値のいずれかである", column=column, value_set=values))
    for column in spec.get("amounts", []):
        ex.append(_e(f"{s}.{column}.not_negative", "expect_column_values_to_be_between", "quarantine",
                     f"{column} is not negative", f"{_ja(column)}が負でない", column=column, min_value=0))
    if "amounts" in spec:
        ex.append(_e(f"{s}.amount_paid.within_due", "expect_column_values_to_be_in_set", "quarantine",
                     "amount_paid is at most amount_due times the configured tolerance",
                     "収納額が調定額×許容倍率を超えない", meta={"column": "amount_paid"},
                     column="_paid_within_tolerance", value_set=[True]))
    for column in spec.get("months", []):
        ex.append(_e(f"{s}.{column}.month", "expect_column_values_to_match_regex", "quarantine",
                     f"{column} is a YYYY-MM month", f"{_ja(column)}が年月（YYYY-MM）である",
                     column=column, regex=MONTH))
        ex.append(_e(f"{s}.{column}.not_later", "expect_column_values_to_be_in_set", "quarantine",
                     f"{column} is not after the delivery month", f"{_ja(column)}が提供月より後でない",
                     meta={"column": column}, column="_billing_month_not_later", value_set=[True]))
    for column in spec.get("dates", []):
        ex.append(_e(f"{s}.{column}.not_after_month_end", "expect_column_values_to_be_between", "quarantine",
                     f"{column} is not after the delivery month's end", f"{_ja(column)}が提供月の末日より後でない",
                     column=column, max_value={"$PARAMETER": "month_end"}))
    for start, end in spec.get("periods", []):
        ex.append(_e(f"{s}.{end}.not_before_{start}", "expect_column_pair_values_a_to_be_greater_than_b",
                     "quarantine", f"{end} is not before {start}", f"{_ja(end)}が{_ja(start)}より前でない",
                     column_A=end, column_B=start, or_equal=True, ignore_row_if="either_value_is_missing"))
    if len(spec["unique"]) == 1:
        ex.append(_e(f"{s}.{spec['unique'][0]}.unique", "expect_column_values_to_be_unique", "quarantine",
                     f"{spec['unique'][0]} occurs once in the delivery",
                     f"{_ja(spec['unique'][0])}が提供データ内で重複しない", column=spec["unique"][0]))
    else:
        names = ", ".join(spec["unique"])
        ex.append(_e(f"{s}.key.unique", "expect_compound_columns_to_be_unique", "quarantine",
                     f"({names}) occurs once in the delivery",
                     f"（{'・'.join(_ja(c) for c in spec['unique'])}）の組が提供データ内で重複しない",
                     column_list=spec["unique"]))
    for key, en, ja in (("pid", "the person is a resident", "本人"), ("hid", "the household is", "世帯")):
        if f"_{key}_known" in DERIVED[source]:
            ex.append(_e(f"{s}.{key}.known", "expect_column_values_to_be_in_set", "quarantine",
                         f"{en} in this month's residents snapshot or an earlier one",
                         f"{ja}が今月または以前の住民記録に載っている",
                         meta={"column": key, "policy_without_history": "warning"}, column=f"_{key}_known",
                         value_set=[True]))
    if source == "residents":
        ex.append(_e(f"{s}.age.range", "expect_column_values_to_be_between", "quarantine",
                     "age is between 0 and 120", "年齢が0歳以上120歳以下である",
                     column="age", min_value=0, max_value=120))
        ex.append(_e(f"{s}.household_size.range", "expect_column_values_to_be_between", "quarantine",
                     "household size is at least 1", "世帯人数が1人以上である", column="household_size", min_value=1))
        ex.append(_e(f"{s}.months_at_address.range", "expect_column_values_to_be_between", "quarantine",
                     "months at the address are not negative (no move-in after the month)",
                     "現住所での居住月数が負でない（提供月より後の転入がない）",
                     column="months_at_address", min_value=0))
    return {"name": source, "expectations": ex,
            "meta": {"table": f"lake/{source}", "title_ja": title,
                     "notes": "policy in each expectation's meta: critical | quarantine | warning (mimamori)"}}


# Columns of the feature table (features/build.py) and their checks.
FEATURE_COLUMNS = ["pid", "as_of_month", "district", "sex"] + MODEL_FEATURES
_COUNTS = ["garbage_no_response_90d", "missed_visits_12m", "emergencies_12m"]
_MONTHS = ["months_at_address", "months_since_checkup", "months_since_contact"]
_ARREARS = ["care_arrears_months", "nhi_arrears_months"]
# The features of change, all flags (features/change.py).
CHANGE_FLAGS = [name for name, f in CATALOG.items() if f.group != "snapshot"]
_FEATURE_JA = {"age": "年齢", "living_alone": "ひとり暮らし", "care_level": "要介護度",
               "months_at_address": "現住所での居住月数", "months_since_checkup": "健診からの経過月数",
               "months_since_contact": "相談・見守りからの経過月数", "care_arrears_months": "介護保険料の滞納月数",
               "nhi_arrears_months": "国保料の滞納月数", "garbage_no_response_90d": "訪問収集の応答なし回数",
               "missed_visits_12m": "訪問時の不在・拒否回数", "emergencies_12m": "緊急対応の回数"}
# Distribution bounds: feature -> (parameter stem, English, Japanese); bounds come from the config.
FEATURE_MEANS = {
    "age": ("mean_age", "the mean age of the residents is within the configured bounds",
            "住民の平均年齢が設定の範囲内である"),
    "living_alone": ("share_living_alone", "the share of residents living alone is within the configured bounds",
                     "ひとり暮らしの住民の割合が設定の範囲内である"),
}


def _fja(column: str) -> str:
    if column.endswith("_imp"):
        return f"{_FEATURE_JA.get(column[:-4], column[:-4])}の補完フラグ"
    feature = CATALOG.get(column)
    return _FEATURE_JA.get(column, feature.label_ja if feature is not None else COLUMN_JA.get(column, column))


def feature_suite() -> dict:
    """The suite of a month's feature table: one row per resident of the month's snapshot."""
    s = FEATURES
    ex = [_e(f"{s}.columns", "expect_table_columns_to_match_set", "critical",
             "the feature table has exactly the catalogue's columns", "特徴量表の列が特徴量カタログと一致する",
             column_set=FEATURE_COLUMNS, exact_match=True),
          _e(f"{s}.rows.residents", "expect_table_row_count_to_equal", "critical",
             "there is one row per resident of the month's residents snapshot",
             "今月の住民記録の住民1人につき1行ある", value={"$PARAMETER": "residents"})]
    for column in FEATURE_COLUMNS:
        kind = "str" if column in ("pid", "as_of_month", "district", "sex") else "float64"
        ex.append(_e(f"{s}.{column}.type", "expect_column_values_to_be_of_type", "critical",
                     f"{column} has the type {kind}", f"{_fja(column)}の型が所定（{kind}）である",
                     column=column, type_=kind))
    for column in FEATURE_COLUMNS:
        if column == "months_at_address":
            continue  # missing when no move-in date is on record (flagged by months_at_address_imp)
        ex.append(_e(f"{s}.{column}.not_null", "expect_column_values_to_not_be_null", "critical",
                     f"{column} is present in every row", f"{_fja(column)}がすべての行にある", column=column))
    ex += [
        _e(f"{s}.pid.pseudonym", "expect_column_values_to_match_regex", "critical",
           "pid is a 128-bit keyed pseudonym", "個人の仮名IDが鍵付きの仮名（128ビット）である", column="pid", regex=PSEUDONYM),
        _e(f"{s}.pid.unique", "expect_column_values_to_be_unique", "critical",
           "each resident has one row", "住民1人につき1行である", column="pid"),
        _e(f"{s}.as_of_month.in_set", "expect_column_values_to_be_in_set", "critical",
           "every row is for the month being run", "すべての行が処理中の月のものである",
           column="as_of_month", value_set={"$PARAMETER": "months"}),
        _e(f"{s}.sex.in_set", "expect_column_values_to_be_in_set", "critical",
           f"sex takes only the contract's values ({', '.join(ENUMS['sex'])})", "性別が定められた値のいずれかである",
           column="sex", value_set=ENUMS["sex"]),
        _e(f"{s}.age.range", "expect_column_values_to_be_between", "critical",
           "age is between 0 and 120", "年齢が0歳以上120歳以下である", column="age", min_value=0, max_value=120),
        _e(f"{s}.care_level.range", "expect_column_values_to_be_between", "critical",
           "the care level is between 0 (not certified) and 7 (要介護5)", "要介護度が0（認定なし）から7（要介護5）の間である",
           column="care_level", min_value=0, max_value=7),
    ]
    for column in ["living_alone"] + [f"{name}_imp" for name in FLAGGED] + CHANGE_FLAGS:
        ex.append(_e(f"{s}.{column}.flag", "expect_column_values_to_be_in_set", "critical",
                     f"{column} is a flag (0 or 1)", f"{_fja(column)}が0か1である", column=column, value_set=[0.0, 1.0]))
    for column in _MONTHS:
        ex.append(_e(f"{s}.{column}.range", "expect_column_values_to_be_between", "critical",
                     f"{column} is not negative", f"{_fja(column)}が負でない", column=column, min_value=0))
    for column in _ARREARS:
        ex.append(_e(f"{s}.{column}.range", "expect_column_values_to_be_between", "critical",
                     f"{column} is between 0 and 12 (bills of the last 12 billing months)",
                     f"{_fja(column)}が0から12の間である（直近12か月の賦課分）", column=column, min_value=0, max_value=12))
    for column in _COUNTS:
        ex.append(_e(f"{s}.{column}.range", "expect_column_values_to_be_between", "critical",
                     f"{column} is a count (not negative)", f"{_fja(column)}が負でない", column=column, min_value=0))
    for column, (stem, en, ja) in FEATURE_MEANS.items():
        ex.append(_e(f"{s}.{column}.mean", "expect_column_mean_to_be_between", "warning", en, ja,
                     column=column, min_value={"$PARAMETER": f"{stem}_min"}, max_value={"$PARAMETER": f"{stem}_max"}))
    return {"name": FEATURES, "expectations": ex,
            "meta": {"table": "features/<month>.parquet", "title_ja": "特徴量",
                     "notes": "policy in each expectation's meta: critical | quarantine | warning (mimamori)"}}


def all_suites() -> dict[str, dict]:
    return {**{source: suite(source) for source in TABLES}, FEATURES: feature_suite()}


def suite_of(name: str) -> dict:
    """One suite as its shipped file expectations/suites/<name>.json holds it (a test keeps the
    files and this spec identical), built here so that validating reads no file; a fresh dict."""
    return feature_suite() if name == FEATURES else suite(name)


def suites_by_name() -> dict[str, dict]:
    """Every suite, in the order of their file names (as Data Docs list them); fresh dicts."""
    return dict(sorted(all_suites().items()))


def render(spec: dict) -> str:
    return json.dumps(spec, ensure_ascii=False, indent=2) + "\n"
