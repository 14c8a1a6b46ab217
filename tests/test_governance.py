"""Release to each recipient, expiry and purge, and key rotation on a small ward (issue 3)."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

import pandas as pd
import pytest

from pipelines import audit
from pipelines.catalog import lake
from pipelines.config import load_config
from pipelines.monthly import run_month
from pipelines.pseudonymise import create_key, key_id, load_key
from pipelines.rekey import rekey
from pipelines.release import ReleaseRefused, purge, release
from tests.approving import approve_as
from contract.storage import read_json, read_parquet
from synth.ward import generate_ward

MONTH = "2026-10"


@pytest.fixture()
def approved(tmp_path):
    cfg = load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})
    create_key(cfg.key_file)
    generate_ward(cfg.inbox, residents=2500, months=2, end_month=MONTH, seed=9)
    run_month(cfg, MONTH)
    approve_as(cfg, MONTH, "A", "個人情報保護法第69条第2項第2号", "見守り訪問")
    approve_as(cfg, MONTH, "B", "社会福祉法第106条の6 支援会議", "見守り訪問")
    return cfg


def test_each_recipient_gets_only_what_their_role_needs(approved):
    cfg = approved
    release(cfg, MONTH, "minsei")
    release(cfg, MONTH, "nurse")
    out = cfg.releases_dir / MONTH
    minsei = pd.read_csv(out / "outreach_minsei.csv", encoding="utf-8-sig", dtype=str)
    nurse = pd.read_csv(out / "outreach_nurse.csv", encoding="utf-8-sig", dtype=str)
    assert list(minsei.columns) == ["区全体順位", "地区", "氏名", "住所", "年齢区分", "訪問の理由", "確認したいこと",
                                    "前回訪問", "区分"]
    assert not {"スコア", "優先度", "宛名番号", "年齢", "性別"} & set(minsei.columns)
    assert {"宛名番号", "電話番号", "フリガナ", "年齢"} <= set(nurse.columns) and not {"スコア", "優先度"} & set(nurse.columns)
    assert minsei["氏名"].tolist() == nurse["氏名"].tolist()
    assert set(minsei["年齢区分"]) <= {"65〜74歳", "75〜84歳", "85〜89歳", "90歳以上"}
    assert not minsei["訪問の理由"].str.contains(r"\d+か月分|(?<![〜\d])\d+歳(?!以上)").any()   # no exact figures
    records = [e for e in audit.entries(cfg.audit_log) if e["event"] == "release"]
    assert [r["recipient"] for r in records] == ["minsei", "nurse"]
    assert [r["csv_form"] for r in records] == ["excel", "excel"]       # the documented default
    with pytest.raises(ReleaseRefused, match="unknown recipient"):
        release(cfg, MONTH, "press")
    with pytest.raises(ReleaseRefused, match="unknown CSV form"):
        release(cfg, MONTH, "nurse", csv_form="tsv")
    # the plain form, for another system: column keys and the IDs as they are
    info = release(cfg, MONTH, "nurse", csv_form="plain")
    plain = pd.read_csv(out / "outreach_nurse.csv", encoding="utf-8-sig", dtype=str)
    assert info["csv_form"] == "plain" and list(plain.columns[:4]) == ["rank", "district", "resident_id", "name_kana"]
    assert plain["resident_id"].tolist() == nurse["宛名番号"].str[2:-1].tolist()
    assert plain["resident_id"].str.fullmatch(r"\d{10}").all()


def test_expired_sheets_are_purged_and_the_purge_is_logged(approved):
    cfg = approved
    info = release(cfg, MONTH)
    files = [cfg.releases_dir / MONTH / name for name in info["files"]]
    assert purge(cfg, today=date.today()) == []                       # not expired yet
    assert all(p.exists() for p in files)
    later = date.fromisoformat(info["expires"]) + timedelta(days=1)
    purged = purge(cfg, today=later)
    assert len(purged) == 1 and not any(p.exists() for p in files)
    assert read_json(cfg.releases_dir / MONTH / "release.json")["purged"] == later.isoformat()
    assert purge(cfg, today=later) == []                              # once only
    assert audit.entries(cfg.audit_log)[-1]["event"] == "purge"
    assert audit.verify(cfg.audit_log) == []


def test_rekey_repseudonymises_the_lake_destroys_the_old_key_and_marks_old_lists(approved):
    cfg = approved
    old = load_key(cfg.key_file)
    ids = pd.read_csv(cfg.inbox / MONTH / "residents.csv", dtype=str)["resident_id"]
    entry = rekey(cfg)
    new = load_key(cfg.key_file)
    assert new != old and entry["old_key_id"] == key_id(old) and entry["new_key_id"] == key_id(new)
    assert not any(p.read_bytes().strip() == old.hex().encode() for p in cfg.key_file.parent.iterdir())
    pids = set(lake.read_snapshot(cfg.lake, "residents", MONTH)["pid"])
    assert pids == {hmac.new(new, f"resident:{i}".encode(), hashlib.sha256).hexdigest()[:32] for i in ids}
    assert all(lake.delivery_record(cfg.lake, m)["key_id"] == key_id(new) for m in lake.ingested_months(cfg.lake))
    assert read_json(cfg.runs / MONTH / "manifest.json")["key_retired"] is True
    with pytest.raises(ReleaseRefused, match="another key"):
        release(cfg, MONTH)
    assert audit.entries(cfg.audit_log)[-1]["event"] == "rekey"
    # a rerun under the new key makes a list that can be approved and released again
    run_month(cfg, MONTH)
    listed = read_parquet(cfg.runs / MONTH / "list.parquet")
    assert set(listed["key_id"]) == {key_id(new)} and set(listed["pid"]) <= pids
