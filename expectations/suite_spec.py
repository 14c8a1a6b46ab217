"""The source of the JSON suites in expectations/suites/: `python -m expectations.suite_spec` rewrites them.

Suites check the pseudonymised lake tables of one delivery. Every expectation carries a
`severity` (GX stores it but does not act on it; `validate.py` applies our policy:
critical stops the month, warning is reported) and a plain-language description in meta.
A test keeps the files and this spec identical.
"""
from __future__ import annotations

import json
from pathlib import Path

SUITES_DIR = Path(__file__).with_name("suites")
PSEUDONYM = r"^[0-9a-f]{32}$"
MONTH = r"^\d{4}-(?:0[1-9]|1[0-2])$"

ENUMS = {
    "sex": ["male", "female", "other"],
    "care_level": ["support_1", "support_2", "care_1", "care_2", "care_3", "care_4", "care_5"],
    "collection": ["special", "ordinary"],
    "result": ["collected", "no_garbage", "no_response"],
    "channel": ["visit", "phone", "counter", "other"],
    "staff_type": ["minsei", "houkatsu", "nurse", "other"],
    "outcome": ["needs_support", "no_concern", "not_home", "declined"],
    "event_type": ["isolated_death", "emergency"],
    "reason": ["objected", "case_open", "institution"],
}

# Lake columns per source (after pseudonymisation) and which must be present in every row.
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
                            "required": ["pid", "care_level", "valid_from"], "unique": ["pid", "valid_from"]},
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
                   "required": ["pid", "reason"], "unique": ["pid", "reason"]},
}


def _e(kind: str, severity: str, description: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "severity": severity, "meta": {"description": description}}


def suite(source: str) -> dict:
    spec = TABLES[source]
    ex = [_e("expect_table_columns_to_match_set", "critical",
             "the table has exactly the contract's columns, pseudonymised", column_set=spec["columns"],
             exact_match=True)]
    for column in spec["required"]:
        ex.append(_e("expect_column_values_to_not_be_null", "critical", f"{column} is present in every row",
                     column=column))
    for column in ("pid", "hid"):
        if column in spec["columns"]:
            ex.append(_e("expect_column_values_to_match_regex", "critical",
                         f"{column} is a 128-bit keyed pseudonym (no raw ID reached the lake)",
                         column=column, regex=PSEUDONYM))
    for column, values in ENUMS.items():
        if column in spec["columns"]:
            ex.append(_e("expect_column_values_to_be_in_set", "critical",
                         f"{column} takes only the contract's values", column=column, value_set=values))
    for column in spec.get("amounts", []):
        ex.append(_e("expect_column_values_to_be_between", "critical", f"{column} is not negative",
                     column=column, min_value=0))
    if "amounts" in spec:
        ex.append(_e("expect_column_pair_values_a_to_be_greater_than_b", "warning",
                     "no more is paid than is due", column_A="amount_due", column_B="amount_paid", or_equal=True))
    for column in spec.get("months", []):
        ex.append(_e("expect_column_values_to_match_regex", "critical", f"{column} is a YYYY-MM month",
                     column=column, regex=MONTH))
    for column in spec.get("dates", []):
        ex.append(_e("expect_column_values_to_be_between", "critical",
                     f"{column} is not after the delivery month's end", column=column,
                     max_value={"$PARAMETER": "month_end"}))
    if len(spec["unique"]) == 1:
        ex.append(_e("expect_column_values_to_be_unique", "critical", f"{spec['unique'][0]} is unique",
                     column=spec["unique"][0]))
    else:
        ex.append(_e("expect_compound_columns_to_be_unique", "critical",
                     f"({', '.join(spec['unique'])}) identifies a row", column_list=spec["unique"]))
    if source == "residents":
        ex.append(_e("expect_column_values_to_be_between", "critical", "age is between 0 and 120",
                     column="age", min_value=0, max_value=120))
        ex.append(_e("expect_column_values_to_be_between", "critical", "household size is at least 1",
                     column="household_size", min_value=1))
        ex.append(_e("expect_table_row_count_to_be_between", "critical", "the ward has residents",
                     min_value=1))
    return {"name": source, "expectations": ex, "meta": {"table": f"lake/{source}"}}


def write_all() -> None:
    SUITES_DIR.mkdir(exist_ok=True)
    for source in TABLES:
        path = SUITES_DIR / f"{source}.json"
        path.write_text(json.dumps(suite(source), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_all()
