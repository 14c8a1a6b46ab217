"""Ingest: idempotent, month-replacing, and refusing a broken delivery without touching the lake."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pipelines import lake
from pipelines.config import load_config
from pipelines.ingest import ingest_month
from pipelines.pseudonymise import create_key, load_key
from pipelines.reading import ContractError
from pipelines.synth import generate_ward

MY_NUMBER = "123456789018"   # 12 digits with a valid check digit (番号法 test value)


@pytest.fixture()
def small(tmp_path):
    cfg = load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})
    create_key(cfg.key_file)
    generate_ward(cfg.inbox, residents=1500, months=2, end_month="2026-10", seed=5)
    return cfg, load_key(cfg.key_file)


def _lake_state(cfg) -> dict[str, str]:
    return {str(p.relative_to(cfg.work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(cfg.work.rglob("*")) if p.is_file() and "validation" not in p.parts}


def test_ingesting_the_same_month_twice_changes_no_byte(small):
    cfg, key = small
    assert ingest_month(cfg, "2026-09", key)["status"] == "ingested"
    before = _lake_state(cfg)
    assert ingest_month(cfg, "2026-09", key)["status"] == "unchanged"
    assert ingest_month(cfg, "2026-09", key, force=True)["status"] == "ingested"
    assert _lake_state(cfg) == before


def test_a_corrected_redelivery_replaces_that_month_only(small):
    cfg, key = small
    ingest_month(cfg, "2026-09", key)
    ingest_month(cfg, "2026-10", key)
    september = lake.source_file(cfg.lake, "checkups", "2026-09").read_bytes()
    path = cfg.inbox / "2026-10" / "checkups.csv"
    rows = pd.read_csv(path, dtype=str)
    rows.iloc[:-1].to_csv(path, index=False)              # the vendor drops one row and re-sends
    assert ingest_month(cfg, "2026-10", key)["status"] == "ingested"
    assert len(lake.read_snapshot(cfg.lake, "checkups", "2026-10")) == len(rows) - 1
    assert lake.source_file(cfg.lake, "checkups", "2026-09").read_bytes() == september


def test_a_file_carrying_a_my_number_is_refused_and_nothing_is_stored(small):
    cfg, key = small
    ingest_month(cfg, "2026-09", key)
    before = _lake_state(cfg)
    path = cfg.inbox / "2026-10" / "welfare_contacts.csv"
    rows = pd.read_csv(path, dtype=str)
    rows["memo"] = ""
    rows.loc[rows.index[0], "memo"] = MY_NUMBER
    rows.to_csv(path, index=False)
    with pytest.raises(ContractError) as refused:
        ingest_month(cfg, "2026-10", key)
    assert "welfare_contacts.csv" in str(refused.value) and "memo" in str(refused.value)
    assert MY_NUMBER not in str(refused.value)
    assert _lake_state(cfg) == before
    assert lake.delivery_record(cfg.lake, "2026-10") is None
    for p in cfg.work.rglob("*"):
        assert not p.is_file() or MY_NUMBER.encode() not in p.read_bytes()


def test_a_missing_required_file_is_named(small):
    cfg, key = small
    (cfg.inbox / "2026-10" / "checkups.csv").unlink()
    with pytest.raises(ContractError, match="checkups.csv"):
        ingest_month(cfg, "2026-10", key)


def test_bad_rows_are_quarantined_with_reasons_and_pseudonymised(small):
    cfg, key = small
    path = cfg.inbox / "2026-10" / "care_premiums.csv"
    rows = pd.read_csv(path, dtype=str)
    rows.loc[rows.index[0], "amount_due"] = "-500"
    rows.loc[rows.index[1], "billing_month"] = "2026-13"
    rows.to_csv(path, index=False)
    summary = ingest_month(cfg, "2026-10", key)
    info = summary["sources"]["care_premiums"]
    assert info["quarantined"] == 2
    assert info["quarantine_reasons"] == {"amount_due: negative": 1, "billing_month: not a month": 1}
    bad = pd.read_parquet(cfg.work / "quarantine" / "2026-10" / "care_premiums.parquet")
    assert "resident_id" not in bad.columns and bad["pid"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert set(rows.loc[rows.index[:2], "resident_id"]).isdisjoint(set(bad.astype(str).to_numpy().ravel()))


def test_a_24_month_messy_inbox_gives_the_same_lake_tables_as_its_clean_twin(tmp_path):
    """Every file of two years of vendor-style extracts (CP932/BOM, Japanese headers, 和暦,
    full-width digits) pseudonymises to exactly the rows of its canonical twin. (GX is left
    out here to keep the test fast; tests/test_end_to_end.py compares the committed lakes.)"""
    from pipelines.contract import SOURCES
    from pipelines.ingest import pseudonymise_rows
    from pipelines.reading import delivery_file, read_source

    key = b"k" * 32
    for name, messy in (("clean", False), ("messy", True)):
        generate_ward(tmp_path / name, residents=400, months=24, end_month="2026-10", seed=13, messy=messy)
    months = sorted(p.name for p in (tmp_path / "clean").iterdir())
    assert len(months) == 24
    encodings = set()
    for month in months:
        for source, spec in SOURCES.items():
            clean = read_source(delivery_file(tmp_path / "clean" / month, source), spec, month)
            messy = read_source(delivery_file(tmp_path / "messy" / month, source), spec, month)
            encodings.add(messy.encoding)
            assert len(messy.quarantine) == len(clean.quarantine) == 0, (month, source)
            pd.testing.assert_frame_equal(pseudonymise_rows(messy.rows, spec, key, month),
                                          pseudonymise_rows(clean.rows, spec, key, month))
    assert {"cp932", "utf-8-sig"} <= encodings
