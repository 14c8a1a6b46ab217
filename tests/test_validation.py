"""Validation with Great Expectations: planted faults stop the month, are quarantined, or warn.

A small synthetic ward (1,500 residents, 2026-09 and 2026-10) is generated once; 2026-09 is
ingested so that 2026-10 has a previous delivery and an earlier residents snapshot. Most faults
are planted in the pseudonymised tables of 2026-10 (fast); some go through the files and
`ingest_month`, and the feature suite is run on a real feature table.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expectations.policy import Outcome, ValidationFailed, judge
from expectations.suite_spec import DERIVED, POLICIES, SUITES_DIR, all_suites, render
from pipelines.catalog.features import features_from_lake
from pipelines.catalog import lake, validation
from pipelines.config import load_config
from pipelines.commands import validate_month
from pipelines.ingest import ingest_month, read_delivery
from contract.months import month_end
from pipelines.pseudonymise import create_key, load_key, pseudonym
from synth.ward import generate_ward

MONTH, PREVIOUS = "2026-10", "2026-09"
STRANGER = "f" * 32  # a well-formed pseudonym of nobody in the ward


@dataclasses.dataclass
class Base:
    root: Path
    cfg: object
    key: bytes
    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    root = tmp_path_factory.mktemp("validation")
    cfg = load_config(None, root / "inbox", root / "work", root / "custody", environ={})
    create_key(cfg.key_file)
    generate_ward(cfg.inbox, residents=1500, months=2, end_month=MONTH, seed=5)
    key = load_key(cfg.key_file)
    ingest_month(cfg, PREVIOUS, key)
    delivery = read_delivery(cfg, MONTH, key)
    return Base(root, cfg, key, delivery.tables, delivery.quarantine)


@pytest.fixture()
def fresh(base, tmp_path):
    """A private copy of the ward (inbox, key, lake with 2026-09) for tests that write."""
    shutil.copytree(base.root, tmp_path / "ward")
    root = tmp_path / "ward"
    cfg = load_config(None, root / "inbox", root / "work", root / "custody", environ={})
    return cfg, load_key(cfg.key_file)


def _check(base, tables, cfg=None, quarantine=None):
    return validation.checked_delivery(cfg or base.cfg, MONTH, tables,
                                       base.quarantine if quarantine is None else quarantine, build_docs=False)


def _checks(entries) -> set[str]:
    return {e["check"] for e in entries}


# ----------------------------------------------------------------------------- the suites


def test_suite_files_are_exactly_what_the_spec_writes():
    specs = all_suites()
    assert {p.stem for p in SUITES_DIR.glob("*.json")} == set(specs)
    for name, spec in specs.items():
        assert (SUITES_DIR / f"{name}.json").read_text(encoding="utf-8") == render(spec), \
            f"{name}.json is stale: run python -m pipelines.write_suites"


def test_every_expectation_has_a_policy_plain_words_and_a_unique_check():
    for name, spec in all_suites().items():
        checks = [e["meta"]["check"] for e in spec["expectations"]]
        assert len(checks) == len(set(checks)), name
        for e in spec["expectations"]:
            meta = e["meta"]
            assert meta["policy"] in POLICIES
            assert e["severity"] == ("warning" if meta["policy"] == "warning" else "critical")
            assert meta["description"] and meta["description_ja"]
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", meta["description_ja"]), meta["description_ja"]
        if name in DERIVED:
            column_set = spec["expectations"][0]["kwargs"]["column_set"]
            assert set(DERIVED[name]) <= set(column_set)


def test_the_untouched_delivery_passes_every_expectation(base):
    result = _check(base, base.tables)
    summary = result.summary
    assert summary["critical_failures"] == [] and summary["quarantined"] == [] and summary["warnings"] == []
    assert set(summary["sources"]) == set(base.tables)
    assert summary["first_delivery"] is False
    assert all(result.moved(s).empty for s in base.tables)


def test_the_delivery_check_writes_nothing_and_returns_what_the_catalogue_saves(base, tmp_path):
    from expectations.validate import delivery_check

    cfg = dataclasses.replace(base.cfg, work=tmp_path / "work")
    shutil.copytree(base.cfg.lake, cfg.lake)
    before = sorted(p for p in cfg.work.rglob("*"))
    tables = {"residents": base.tables["residents"], "checkups": base.tables["checkups"]}
    pure = delivery_check(MONTH, tables, base.quarantine, cfg.settings["validation"],
                          validation.earlier_deliveries(cfg.lake, MONTH))
    assert sorted(p for p in cfg.work.rglob("*")) == before
    assert set(pure.results) == set(tables) and pure.summary["first_delivery"] is False
    saved = validation.checked_delivery(cfg, MONTH, tables, base.quarantine, build_docs=False)
    assert saved.summary == pure.summary
    for source, raw in pure.results.items():
        assert json.loads(validation.result_file(cfg.work, MONTH, source).read_text(encoding="utf-8")) == raw


# --------------------------------------------------------------- planted faults, table level

def _age(f):
    f.loc[[3, 50], "age"] = 130
    return [3, 50]


def _household(f):
    f.loc[[10], "household_size"] = 0
    return [10]


def _sex_missing(f):
    f.loc[[5], "sex"] = None
    return [5]


def _sex_unknown(f):
    f.loc[[6, 7], "sex"] = "unknown"
    return [6, 7]


def _pid_twice(f):
    f.loc[9, "pid"] = f.loc[8, "pid"]
    return [8, 9]


def _pickup_result(f):
    f.loc[[0, 1], "result"] = "lost"
    return [0, 1]


def _outcome_missing(f):
    f.loc[[0], "outcome"] = None
    return [0]


def _negative_paid(f):
    f.loc[[4], "amount_paid"] = -1
    return [4]


def _overpaid(f):
    f.loc[[5], "amount_paid"] = f.loc[[5], "amount_due"] * 2 + 1000
    return [5]


def _later_bill(f):
    f.loc[[6], "billing_month"] = "2026-11"
    return [6]


def _late_contact(f):
    f.loc[[2], "contact_date"] = month_end(MONTH) + pd.Timedelta(days=1)
    return [2]


def _stranger(f):
    f.loc[[1], "pid"] = STRANGER
    return [1]


def _stranger_household(f):
    f.loc[[1], "hid"] = STRANGER
    return [1]


def _period_reversed(f):
    f.loc[[0], "valid_to"] = f.loc[[0], "valid_from"] - pd.Timedelta(days=1)
    return [0]


def _exclusion_reason(f):
    f.loc[[0], "reason"] = "unknown"
    return [0]


QUARANTINE = [
    ("residents", _age, {"residents.age.range"}),
    ("residents", _household, {"residents.household_size.range"}),
    ("residents", _sex_missing, {"residents.sex.not_null"}),
    ("residents", _sex_unknown, {"residents.sex.in_set"}),
    ("residents", _pid_twice, {"residents.pid.unique"}),
    ("garbage_pickups", _pickup_result, {"garbage_pickups.result.in_set"}),
    ("outreach_outcomes", _outcome_missing, {"outreach_outcomes.outcome.not_null"}),
    ("care_premiums", _negative_paid, {"care_premiums.amount_paid.not_negative"}),
    ("care_premiums", _overpaid, {"care_premiums.amount_paid.within_due"}),
    ("care_premiums", _later_bill, {"care_premiums.billing_month.not_later"}),
    ("welfare_contacts", _late_contact, {"welfare_contacts.contact_date.not_after_month_end"}),
    ("checkups", _stranger, {"checkups.pid.known"}),
    ("nhi_premiums", _stranger_household, {"nhi_premiums.hid.known"}),
    ("care_certifications", _period_reversed, {"care_certifications.valid_to.not_before_valid_from"}),
    ("exclusions", _exclusion_reason, {"exclusions.reason.in_set"}),
]


@pytest.mark.parametrize("source,plant,expected", QUARANTINE, ids=[f"{s}-{p.__name__[1:]}" for s, p, _ in QUARANTINE])
def test_a_row_fault_quarantines_exactly_the_planted_rows(base, source, plant, expected):
    frame = base.tables[source].copy()
    rows = plant(frame)
    tables = {"residents": base.tables["residents"], source: frame}
    result = _check(base, tables)
    summary = result.summary
    assert summary["critical_failures"] == [] and summary["warnings"] == []
    assert _checks(summary["quarantined"]) == expected
    moved = result.moved(source)
    assert moved["row"].tolist() == sorted(rows)
    assert set("; ".join(moved["expectation"]).split("; ")) == expected
    assert all(r.startswith("validation: ") for r in "; ".join(moved["reason"]).split("; "))
    line = summary["quarantined"][0]
    assert line["unexpected"] == len(rows) and line["rows"] == len(frame) and line["severity"] == "quarantine"
    assert summary["sources"][source]["quarantined_validation"] == len(rows)


def test_a_duplicated_event_quarantines_both_copies(base):
    frame = base.tables["checkups"]
    doubled = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    result = _check(base, {"residents": base.tables["residents"], "checkups": doubled})
    assert _checks(result.summary["quarantined"]) == {"checkups.key.unique"}
    assert result.moved("checkups")["row"].tolist() == [0, len(frame)]


def test_a_bad_billing_month_fails_both_month_checks_on_one_row(base):
    frame = base.tables["care_premiums"].copy()
    frame.loc[7, "billing_month"] = "2026-13"
    result = _check(base, {"residents": base.tables["residents"], "care_premiums": frame})
    moved = result.moved("care_premiums")
    assert moved["row"].tolist() == [7]
    assert set(moved["expectation"].iloc[0].split("; ")) == {"care_premiums.billing_month.month",
                                                             "care_premiums.billing_month.not_later"}


def test_an_open_end_written_as_year_9999_is_a_valid_period(base):
    certs = base.tables["care_certifications"].copy()
    certs.loc[[0], "valid_to"] = pd.Timestamp("9999-12-31")
    result = _check(base, {"residents": base.tables["residents"], "care_certifications": certs})
    assert result.summary["quarantined"] == [] and not result.failed


def test_people_who_left_and_quarantined_residents_are_still_known(base):
    before = set(lake.read_snapshot(base.cfg.lake, "residents", PREVIOUS)["pid"])
    residents = base.tables["residents"]
    left = sorted(before - set(residents["pid"]))
    assert left, "the synthetic ward should lose someone between the months"
    events = base.tables["checkups"].copy()
    events.loc[0, "pid"] = left[0]                       # moved out or died during October
    newcomer = residents["pid"].iloc[-1]
    events.loc[1, "pid"] = newcomer                      # in October's snapshot only ...
    kept = residents.iloc[:-1]                           # ... whose row the contract quarantined
    quarantine = dict(base.quarantine)
    quarantine["residents"] = pd.concat([base.quarantine["residents"],
                                         pd.DataFrame({"pid": [newcomer]}, dtype="str")], ignore_index=True)
    result = _check(base, {"residents": kept, "checkups": events}, quarantine=quarantine)
    assert result.summary["quarantined"] == [] and result.summary["critical_failures"] == []


# ---------------------------------------------------------------------- critical failures

def _raw_id(f):
    f.loc[0, "pid"] = "0010670828"
    return f


def _no_district(f):
    return f.drop(columns=["district"])


def _amount_as_text(f):
    return f.assign(amount_due=f["amount_due"].astype("str"))


def _pid_missing(f):
    f.loc[0, "pid"] = None
    return f


def _residents_lost(f):
    return f.iloc[: int(len(f) * 0.85)].copy()


def _many_negative(f):
    f.loc[f.index[::10], "amount_paid"] = -1
    return f


CRITICAL = [
    ("residents", _raw_id, "residents.pid.pseudonym"),
    ("residents", _no_district, "residents.columns"),
    ("care_premiums", _amount_as_text, "care_premiums.amount_due.type"),
    ("checkups", _pid_missing, "checkups.pid.not_null"),
    ("residents", _residents_lost, "residents.rows.band"),
    ("care_premiums", _many_negative, "care_premiums.quarantine.share"),
]


@pytest.mark.parametrize("source,plant,expected", CRITICAL, ids=[p.__name__[1:] for _, p, _ in CRITICAL])
def test_a_critical_fault_stops_the_month(base, source, plant, expected):
    frame = plant(base.tables[source].copy())
    tables = {"residents": base.tables["residents"], source: frame}
    result = _check(base, tables)
    assert result.failed
    assert expected in _checks(result.summary["critical_failures"])
    assert all(e["severity"] == "critical" for e in result.summary["critical_failures"])


def test_the_quarantine_share_counts_contract_rows_too(base):
    frame = base.tables["care_premiums"].copy()
    limit = base.cfg.get("validation", "quarantine_limit")
    rows = len(frame)
    bad = 6                                              # above quarantine_min_rows
    assert bad / rows < limit                            # validation alone stays below the limit
    frame.loc[frame.index[:bad], "amount_paid"] = -1
    alone = _check(base, {"residents": base.tables["residents"], "care_premiums": frame})
    assert not alone.failed
    contract = dict(base.quarantine)
    contract["care_premiums"] = pd.DataFrame({"pid": [STRANGER] * int(rows * limit)}, dtype="str")
    together = _check(base, {"residents": base.tables["residents"], "care_premiums": frame}, quarantine=contract)
    assert _checks(together.summary["critical_failures"]) == {"care_premiums.quarantine.share"}
    line = together.summary["critical_failures"][0]
    assert line["unexpected"] == bad + int(rows * limit) and line["rows"] == rows + int(rows * limit)


# ---------------------------------------------------------------------------------- warnings

def test_an_event_source_outside_its_row_band_only_warns(base):
    frame = base.tables["care_premiums"].iloc[: len(base.tables["care_premiums"]) // 3]
    result = _check(base, {"residents": base.tables["residents"], "care_premiums": frame})
    assert not result.failed and result.summary["quarantined"] == []
    assert _checks(result.summary["warnings"]) == {"care_premiums.rows.band"}
    assert result.summary["warnings"][0]["observed"] == len(frame)


def test_on_the_first_delivery_unknown_people_are_reported_not_quarantined(base, tmp_path):
    cfg = dataclasses.replace(base.cfg, work=tmp_path / "work")   # an empty lake
    events = base.tables["checkups"].copy()
    events.loc[[1], "pid"] = STRANGER
    result = _check(base, {"residents": base.tables["residents"], "checkups": events}, cfg=cfg)
    assert result.summary["first_delivery"] is True
    assert _checks(result.summary["warnings"]) == {"checkups.pid.known"}
    assert result.summary["quarantined"] == [] and result.moved("checkups").empty


# ------------------------------------------------------------------------ the policy alone

def _o(check, policy, success, unexpected=0, index=None):
    return Outcome(check, "expect_x", "c", check, "検査", policy, success, unexpected, 100,
                   None if index is None else np.asarray(index))


def test_policy_share_limit_and_floor():
    q = _o("t.q", "quarantine", False, 2, [1, 2])
    assert not judge("t", [q], 100, contract_quarantined=0, limit=0.02, min_rows=0).critical  # 2 of 100
    assert judge("t", [q], 100, contract_quarantined=1, limit=0.02, min_rows=0).critical      # 3 of 101
    assert not judge("t", [q], 100, contract_quarantined=1, limit=0.02, min_rows=5).critical  # too few


def test_policy_quarantine_without_row_labels_is_critical_and_rows_are_merged():
    v = judge("t", [_o("t.a", "quarantine", False, 2, None)], 100)
    assert [e["check"] for e in v.critical] == ["t.a"] and v.moved.empty
    v = judge("t", [_o("t.a", "quarantine", False, 2, [5, 1]), _o("t.b", "quarantine", False, 1, [5]),
                    _o("t.w", "warning", False, 1), _o("t.ok", "critical", True)], 100)
    assert v.moved["row"].tolist() == [1, 5]
    assert v.moved["expectation"].tolist() == ["t.a", "t.a; t.b"]
    assert [e["check"] for e in v.warnings] == ["t.w"] and not v.critical


# ------------------------------------------------------------- through the files and ingest


def _lake_state(cfg) -> dict[str, str]:
    return {str(p.relative_to(cfg.work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(cfg.work.rglob("*")) if p.is_file() and "lake" in p.relative_to(cfg.work).parts}


def test_faults_planted_in_the_files_are_quarantined_with_their_expectation(fresh):
    cfg, key = fresh
    path = cfg.inbox / MONTH / "care_premiums.csv"
    bills = pd.read_csv(path, dtype=str, keep_default_na=False)
    bills.loc[3, "amount_paid"] = str(int(bills.loc[3, "amount_due"]) * 3 + 1000)   # validation
    bills.loc[8, "amount_due"] = "-500"                                              # contract
    bills.to_csv(path, index=False)
    path = cfg.inbox / MONTH / "checkups.csv"
    exams = pd.read_csv(path, dtype=str, keep_default_na=False)
    exams.loc[2, "resident_id"] = "999999999"                                        # nobody
    exams.to_csv(path, index=False)

    summary = ingest_month(cfg, MONTH, key)
    assert summary["status"] == "ingested"
    info = summary["sources"]["care_premiums"]
    assert info["rows"] == len(bills) and info["accepted"] == len(bills) - 2 and info["quarantined"] == 2
    assert info["quarantine_reasons"] == {
        "amount_due: negative": 1,
        "validation: amount_paid is at most amount_due times the configured tolerance": 1}
    bad = pd.read_parquet(cfg.work / "quarantine" / MONTH / "care_premiums.parquet")
    assert bad["_line"].tolist() == [3 + 2, 8 + 2]
    assert bad["expectation"].tolist()[0] == "care_premiums.amount_paid.within_due"
    assert pd.isna(bad["expectation"].tolist()[1])
    committed = lake.read_snapshot(cfg.lake, "care_premiums", MONTH)
    assert len(committed) == len(bills) - 2 and not set(committed.columns) & set(DERIVED["care_premiums"])

    stranger = pseudonym(key, "resident", "999999999")
    exams_bad = pd.read_parquet(cfg.work / "quarantine" / MONTH / "checkups.parquet")
    assert exams_bad["pid"].tolist() == [stranger]
    assert exams_bad["expectation"].tolist() == ["checkups.pid.known"]
    assert stranger not in set(lake.read_snapshot(cfg.lake, "checkups", MONTH)["pid"])
    record = lake.delivery_record(cfg.lake, MONTH)
    assert _checks(record["validation"]["quarantined"]) == {"care_premiums.amount_paid.within_due",
                                                            "checkups.pid.known"}
    assert record["validation"]["data_docs"] == f"runs/{MONTH}/data_docs/index.html"
    assert (cfg.work / record["validation"]["data_docs"]).is_file()

    # The Data Docs say how many rows each check quarantined and why, never the values; built
    # before the commit (ingest) they say what a rebuild from the committed record says (run).
    page = cfg.work / "runs" / MONTH / "data_docs" / "validations" / "care_premiums.html"
    before = page.read_text(encoding="utf-8")
    for words in ("amount_due（調定額）が負の値", "amount_due: negative",
                  "validation: amount_paid is at most amount_due times the configured tolerance",
                  'data-check="care_premiums.amount_paid.within_due"'):
        assert words in before, words
    assert str(int(bills.loc[3, "amount_due"]) * 3 + 1000) not in before and "-500" not in before
    summary_rows = re.findall(r"<th>隔離：(?:契約検査（読み込み時）|検証) .*?</th><td class=\"n\">(\d+)</td>", before)
    assert summary_rows == ["1", "1"]
    validation.build_data_docs(cfg.work, MONTH, record)
    assert page.read_text(encoding="utf-8") == before


def test_a_critical_fault_in_the_files_refuses_the_month_and_keeps_the_lake(fresh):
    cfg, key = fresh
    path = cfg.inbox / MONTH / "residents.csv"
    people = pd.read_csv(path, dtype=str, keep_default_na=False)
    people.iloc[: int(len(people) * 0.8)].to_csv(path, index=False)      # a truncated snapshot
    before = _lake_state(cfg)
    with pytest.raises(ValidationFailed) as refused:
        ingest_month(cfg, MONTH, key)
    assert "residents" in str(refused.value) and "previous delivery" in str(refused.value)
    assert "residents.rows.band" in _checks(refused.value.summary["critical_failures"])
    assert _lake_state(cfg) == before and lake.delivery_record(cfg.lake, MONTH) is None
    assert not (cfg.work / "quarantine" / MONTH).exists()
    result = json.loads((cfg.work / "validation" / MONTH / "residents.json").read_text(encoding="utf-8"))
    assert result["success"] is False                                     # auditors see what failed
    assert (cfg.work / "runs" / MONTH / "data_docs" / "index.html").is_file()


def test_validate_month_is_a_dry_run(fresh):
    cfg, key = fresh
    path = cfg.inbox / MONTH / "garbage_pickups.csv"
    pickups = pd.read_csv(path, dtype=str, keep_default_na=False)
    pickups.loc[0, "resident_id"] = "999999999"                          # validation: nobody
    pickups.loc[1, "pickup_date"] = "2026-11-02"                         # contract: after the month
    pickups.to_csv(path, index=False)
    before = _lake_state(cfg)
    summary = validate_month(cfg, MONTH)
    assert summary["critical_failures"] == [] and summary["month"] == MONTH
    assert _checks(summary["quarantined"]) == {"garbage_pickups.pid.known"}
    assert summary["sources"]["garbage_pickups"]["quarantined_contract"] == 1
    assert summary["sources"]["garbage_pickups"]["quarantined_validation"] == 1
    assert _lake_state(cfg) == before and lake.delivery_record(cfg.lake, MONTH) is None
    assert (cfg.work / summary["data_docs"]).is_file()


# ----------------------------------------------------------------- features and Data Docs


def test_the_feature_suite_passes_on_real_features_and_catches_planted_faults(fresh):
    cfg, key = fresh
    ingest_month(cfg, MONTH, key)
    features = features_from_lake(cfg.lake, MONTH)
    summary = validation.checked_features(cfg, MONTH, features)
    assert summary["critical_failures"] == [] and summary["warnings"] == []
    assert summary["sources"]["features"]["expectations"] > 40

    old = features.copy()
    old.loc[[0, 1], "age"] = 130.0
    with pytest.raises(ValidationFailed) as refused:
        validation.checked_features(cfg, MONTH, old)
    assert _checks(refused.value.summary["critical_failures"]) == {"features.age.range"}
    assert refused.value.summary["critical_failures"][0]["unexpected"] == 2
    message = str(refused.value)   # both languages, the rule and what to do; never the value 130
    assert f"{MONTH} の特徴量表" in message and "リストは作っていません" in message and "no list was made" in message
    assert refused.value.summary["critical_failures"][0]["description_ja"] in message and "130" not in message
    assert "Data Docs" in message and "What to do" in message

    short = features.iloc[1:]
    assert "features.rows.residents" in _checks(validation.checked_features(cfg, MONTH, short, raise_on_critical=False)
                                                ["critical_failures"])

    alone = features.assign(living_alone=1.0)
    summary = validation.checked_features(cfg, MONTH, alone)
    assert _checks(summary["warnings"]) == {"features.living_alone.mean"}
    assert summary["warnings"][0]["observed"] == 1.0


def test_data_docs_name_every_suite_hold_no_pseudonym_and_are_reproducible(fresh):
    cfg, key = fresh
    ingest_month(cfg, MONTH, key)
    validation.checked_features(cfg, MONTH, features_from_lake(cfg.lake, MONTH))
    site = cfg.work / "runs" / MONTH / "data_docs"
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in all_suites():
        assert f'data-suite="{name}"' in index, name
    validated = {p.stem for p in (site / "validations").glob("*.html")}
    assert validated == set(lake.delivery_record(cfg.lake, MONTH)["sources"]) | {"features"}
    for name in validated:
        assert f'href="validations/{name}.html"' in index

    pids = set(lake.read_snapshot(cfg.lake, "residents", MONTH)["pid"])
    pids |= set(lake.read_snapshot(cfg.lake, "residents", PREVIOUS)["pid"])
    for path in [*site.rglob("*.html"), *(cfg.work / "validation" / MONTH).glob("*.json")]:
        text = path.read_text(encoding="utf-8")
        assert not pids & set(re.findall(r"[0-9a-f]{32}", text)), path
        assert "unexpected_index_list" not in text and "partial_unexpected_list" not in text

    def fingerprint():
        return {str(p.relative_to(site)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(site.rglob("*")) if p.is_file()}
    first = fingerprint()
    validation.build_data_docs(cfg.work, MONTH, lake.delivery_record(cfg.lake, MONTH))
    assert fingerprint() == first


def test_a_validated_table_is_not_kept_alive_by_gx(ward, tmp_path):
    """GX's execution engine caches the last batch of every asset; in a month-after-month
    backfill that kept a feature table per month in memory. After a validation, no copy of
    the table may survive."""
    import gc

    cfg = dataclasses.replace(ward.cfg, work=tmp_path / "work")
    shutil.copytree(ward.cfg.lake, cfg.lake)
    feats = features_from_lake(ward.cfg.lake, ward.month).assign(_marker=1.0)
    validation.checked_features(cfg, ward.month, feats.drop(columns="_marker"), raise_on_critical=False)
    marked = len(feats)
    del feats
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) == marked
             and "months_since_contact_imp" in o.columns]
    assert alive == []


def test_a_critical_failure_refuses_the_delivery_naming_file_rule_and_remedy_in_both_languages(fresh):
    cfg, key = fresh
    path = cfg.inbox / MONTH / "residents.csv"
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.iloc[: len(rows) // 2].to_csv(path, index=False)          # half the ward vanishes from the extract
    with pytest.raises(ValidationFailed) as refused:
        ingest_month(cfg, MONTH, key)
    message = str(refused.value)
    band = next(e for e in refused.value.summary["critical_failures"] if e["check"] == "residents.rows.band")
    assert f"residents.csv: {band['description_ja']}" in message and band["description"] in message
    assert "受け付けませんでした" in message and "failed critical expectations" in message
    assert "再提供を依頼してください" in message and "ask the department to correct the extract" in message
    assert not any(v in message for v in rows["resident_id"].tolist()[:100] + rows["name"].tolist()[:100])
