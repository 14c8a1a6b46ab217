"""Ingest: idempotent, month-replacing, and refusing a broken delivery without touching the lake."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pipelines.catalog import lake
from pipelines.config import load_config
from pipelines.ingest import ValidationFailed, ingest_month
from pipelines.pseudonymise import create_key, load_key
from pipelines.reading import ContractError
from synth.ward import generate_ward

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
    from contract.sources import SOURCES
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


@pytest.mark.parametrize("length", [0, 16, 32, 64, 65, 100])
def test_pseudonyms_equal_the_standard_hmac_for_any_key_length(length):
    import hmac

    from pipelines.pseudonymise import pseudonymise

    key = bytes(range(length))  # HMAC hashes keys longer than the 64-byte block first
    ids = pd.Series(["0012345678", None, "0099999999", "0012345678"], dtype="str")
    first = pseudonymise(ids, key, "resident")
    again = pseudonymise(ids, key, "resident")  # answered from the process's memory of hashed IDs
    expected = [hmac.new(key, f"resident:{v}".encode(), hashlib.sha256).hexdigest()[:32] for v in ("0012345678", "0099999999")]
    for out in (first, again):
        assert out[0] == out[3] == expected[0] and out[2] == expected[1] and pd.isna(out[1])


def test_ids_that_are_not_plain_digits_are_still_normalised_before_hashing():
    from pipelines.ingest import _normalised_ids

    raw = pd.Series(["００１２", " 0012 ", "0012", None], dtype="str")
    assert _normalised_ids(raw).tolist()[:3] == ["0012", "0012", "0012"] and pd.isna(_normalised_ids(raw)[3])
    digits = pd.Series(["0012", None], dtype="str")
    pd.testing.assert_series_equal(_normalised_ids(digits), digits.str.normalize("NFKC").str.strip())


def test_a_rewritten_file_gets_a_new_fingerprint(tmp_path):
    from contract.storage import file_sha256

    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert file_sha256(path) == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    path.write_bytes(b"a,b\n1,3\n")  # same size
    assert file_sha256(path) == hashlib.sha256(b"a,b\n1,3\n").hexdigest()


def test_the_leak_scan_needle_cache_gives_the_needles_of_reading_every_extract(tmp_path):
    """Needles cached in the custodian zone (per extract, and merged per inbox prefix) equal
    those read from the extracts, also after a new month arrives."""
    import os
    import shutil

    from pipelines.leakscan import inbox_identifiers

    full = tmp_path / "inbox"
    generate_ward(full, residents=300, months=3, end_month="2026-10", seed=7, messy=True)
    partial = tmp_path / "partial"
    shutil.copytree(full, partial)
    shutil.rmtree(partial / "2026-10")
    cache = tmp_path / "custody" / "leakscan"
    assert list(inbox_identifiers(partial, cache).items()) == list(inbox_identifiers(partial).items())
    expected = list(inbox_identifiers(full).items())
    assert list(inbox_identifiers(full, cache).items()) == expected   # one new extract read
    assert list(inbox_identifiers(full, cache).items()) == expected   # all from the cache
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in cache.iterdir())
    assert len(list(cache.glob("inbox-*.parquet"))) == 1
    assert len(list(cache.glob("*.parquet"))) == 1 + 3   # merged needles + one file per extract
    inbox_identifiers(partial, cache)   # an inbox without 2026-10: its extract's needles go
    assert len(list(cache.glob("*.parquet"))) == 1 + 2


def test_ingest_keeps_the_needles_the_leak_guard_would_read_from_each_residents_extract(small):
    """The run's leak guard takes the identifiers of each residents extract from the custodian
    zone's cache that ingest fills; they must be exactly what reading the extract gives. An
    extract with a row dated after its delivery month (refused by ingest, accepted by a read
    without a month) is left for the guard to read itself."""
    import csv

    from contract.storage import file_sha256
    from pipelines.leakscan import _extract, _NeedleCache
    from pipelines.reading import delivery_file

    cfg, key = small
    for month in ("2026-09", "2026-10"):
        ingest_month(cfg, month, key, build_docs=False)
    cache = _NeedleCache(cfg.leakscan_cache)
    for month in ("2026-09", "2026-10"):
        path = delivery_file(cfg.inbox / month, "residents")
        assert cache.valid(file_sha256(path))
        assert cache.groups(path) == _extract(path)

    path = delivery_file(cfg.inbox / "2026-10", "residents")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    rows[1][rows[0].index("moved_in_date")] = "2026-11-02"   # after October, before today
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    ingest_month(cfg, "2026-10", key, force=True, build_docs=False)
    assert not cache.valid(file_sha256(path))


def test_a_delivery_refused_for_its_quarantine_share_says_why_where_and_what_to_do(small):
    """Item 7: not just "N of M rows quarantined" but the rule, an example line and the remedy, in
    Japanese with English, and never a cell value."""
    cfg, key = small
    path = cfg.inbox / "2026-10" / "residents.csv"
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = rows.index[1::7]                                   # ~14% of residents: far above the limit
    planted = [f"昭和99年{i % 12 + 1}月{i % 27 + 1}日" for i in range(len(bad))]
    rows.loc[bad, "birth_date"] = planted
    rows.to_csv(path, index=False)
    with pytest.raises(ValidationFailed) as refused:
        ingest_month(cfg, "2026-10", key)
    message = str(refused.value)
    assert "residents.csv" in message
    assert "birth_date（生年月日）が日付として読めない" in message and "birth_date: not a date" in message
    assert f"（例：{bad[0] + 2}行目）" in message and f"(e.g. line {bad[0] + 2})" in message   # header is line 1
    assert "validation.quarantine_limit" in message and "再提供" in message and "deliver it again" in message
    assert "隔離された行が多すぎます" in message and "too many rows quarantined" in message
    for value in planted + rows["resident_id"].tolist()[:50] + rows["name"].tolist()[:50]:
        assert value not in message
    assert lake.delivery_record(cfg.lake, "2026-10") is None


def test_a_month_that_is_not_a_month_is_refused_by_the_library_too(small):
    cfg, key = small
    for month in ("2026-13", "2026-1", "2026-00"):
        with pytest.raises(ValueError, match="年月ではありません.* / not a month"):
            ingest_month(cfg, month, key)


def test_a_month_with_no_delivery_is_refused_in_both_languages(small):
    cfg, key = small
    with pytest.raises(ContractError) as refused:
        ingest_month(cfg, "2030-01", key)
    assert "2030-01 の提供が受信フォルダにありません" in str(refused.value)
    assert "no delivery for 2030-01" in str(refused.value)
