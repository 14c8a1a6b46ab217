"""One whole monthly batch on a synthetic ward, checked the way an analyst and an auditor would."""
from __future__ import annotations

import hashlib
import hmac
import shutil

import pandas as pd
import pytest

from pipelines import audit
from pipelines.catalog import lake
from pipelines.config import load_config
from contract.sources import SOURCES
from pipelines.leakscan import scan
from pipelines.monthly import run_month
from pipelines.pseudonymise import load_key
from pipelines.reading import delivery_file, read_source
from pipelines.release import ReleaseRefused, release
from tests.approving import approve_as
from contract.storage import read_parquet


def _residents(ward, month=None):
    month = month or ward.month
    return read_source(delivery_file(ward.cfg.inbox / month, "residents"), SOURCES["residents"]).rows


def test_the_month_runs_every_stage(ward):
    stages = ward.result["stages"]
    assert ward.result["status"] == "done"
    assert [s for s in stages] == ["ingest", "features", "validate", "train", "score", "prioritise", "explain", "report"]
    assert all(s["status"] == "done" for s in stages.values())
    listed = read_parquet(ward.cfg.runs / ward.month / "list.parquet")
    caps = stages["prioritise"]["capacity"]
    assert len(listed) == sum(caps.values()) == round(0.003 * stages["features"]["rows"])
    assert listed["rank"].tolist() == list(range(1, len(listed) + 1))
    assert listed.groupby("district").size().le(pd.Series(caps)).all()
    assert listed["reasons"].str.len().gt(0).all()
    assert (ward.cfg.runs / ward.month / "report" / "index.html").stat().st_size > 2000


def test_a_model_was_trained_tracked_and_registered(ward):
    train = ward.result["stages"]["train"]
    assert train["model_version"] is not None, train["reason"]
    assert train["run_id"]
    assert ward.cfg.mlflow_db.exists()
    from pipelines.catalog.registry import connect

    client = connect(ward.cfg).MlflowClient()
    run = client.get_run(train["run_id"])
    # provenance an auditor needs to reproduce the run, and the split it was evaluated on
    assert {"config_hash", "code_version", "lake_fingerprint", "key_id", "feature_set"} <= set(run.data.tags)
    assert run.data.params["seed"] == str(ward.cfg.get("training", "seed"))
    artifacts = {a.path for a in client.list_artifacts(train["run_id"])}
    assert {"splits.png", "holdout_evaluation.json"} <= artifacts
    assert "holdout_model_labelled_in_top_k_worst" in run.data.metrics   # denominators are stored


def test_same_inputs_and_seed_give_the_same_champion_metrics_to_the_last_digit(ward, messy_ward):
    from contract.storage import read_json

    first = read_json(ward.cfg.runs / ward.month / "training.json")
    second = read_json(messy_ward.cfg.runs / messy_ward.month / "training.json")
    for key in ("serving", "challenger", "criterion", "evaluation", "candidates", "fairness", "label_counts"):
        assert first[key] == second[key], key
    assert {"alone_75", "health_unknown", "points", "model"} <= set(first["evaluation"])


def test_the_lake_holds_pseudonyms_that_are_hmacs_of_the_ids(ward):
    key = load_key(ward.cfg.key_file)
    ids = _residents(ward)["resident_id"]
    lake_pids = set(lake.read_snapshot(ward.cfg.lake, "residents", ward.month)["pid"])
    expected = {hmac.new(key, f"resident:{i}".encode(), hashlib.sha256).hexdigest()[:32] for i in ids}
    assert lake_pids == expected


def test_no_identifier_from_the_inbox_is_anywhere_in_the_work_dir(ward):
    assert scan(ward.cfg.inbox, [ward.cfg.work]) == []


def test_the_leak_scan_finds_a_planted_name_and_id(ward, tmp_path):
    people = _residents(ward)
    (tmp_path / "notes.txt").write_text(f"see {people['name'].iloc[5]} about it", encoding="utf-8")
    pd.DataFrame({"x": [people["resident_id"].iloc[7]]}).to_parquet(tmp_path / "t.parquet")
    old = people[people["birth_date"] < pd.Timestamp("2000-01-01")]["birth_date"]
    pd.DataFrame({"born": old.iloc[:50].to_numpy()}).to_parquet(tmp_path / "copied_birth_dates.parquet")
    hits = scan(ward.cfg.inbox, [tmp_path])
    assert {(h.path.name, h.kind) for h in hits} == {("notes.txt", "name"), ("t.parquet", "宛名番号"),
                                                     ("copied_birth_dates.parquet", "birth date")}
    assert not any(people["name"].iloc[5] in str(h) for h in hits)


def test_the_run_guard_rescans_only_changed_files_and_keeps_reporting_a_leak(ward, tmp_path):
    people = _residents(ward)
    out, cache = tmp_path / "out", tmp_path / "custody_cache"
    out.mkdir()
    (out / "clean.txt").write_text("nothing here", encoding="utf-8")
    assert scan(ward.cfg.inbox, [out], cache_dir=cache, changed_only=True) == []
    # a clean file that is later rewritten with a name is read again and caught
    (out / "clean.txt").write_text(f"visit {people['name'].iloc[3]} soon", encoding="utf-8")
    (out / "new.txt").write_text(f"call {people['name'].iloc[4]}", encoding="utf-8")
    for _ in range(2):   # a file with a hit is never remembered as clean
        hits = scan(ward.cfg.inbox, [out], cache_dir=cache, changed_only=True)
        assert {(h.path.name, h.kind) for h in hits} == {("clean.txt", "name"), ("new.txt", "name")}
    assert people["name"].iloc[3] not in (cache / "clean_files.json").read_text(encoding="utf-8")


def test_the_messy_inbox_gives_the_same_lake_and_the_same_list(ward, messy_ward):
    for source in SOURCES:
        for path in sorted((ward.cfg.lake / source).glob("*.parquet")):
            twin = messy_ward.cfg.lake / source / path.name
            assert twin.read_bytes() == path.read_bytes(), f"{source}/{path.name} differs"
    clean = read_parquet(ward.cfg.runs / ward.month / "list.parquet")
    messy = read_parquet(messy_ward.cfg.runs / messy_ward.month / "list.parquet")
    pd.testing.assert_frame_equal(clean, messy)
    encodings = {s["encoding"] for m in lake.ingested_months(messy_ward.cfg.lake)
                 for s in lake.delivery_record(messy_ward.cfg.lake, m)["sources"].values()}
    assert "cp932" in encodings


def test_release_needs_two_different_approvers_then_reidentifies_exactly_the_list(ward, tmp_path):
    # on a copy: approving and releasing the worker's session ward in place would leave later
    # tests (which copy it) a ward that is already approved and released
    root = tmp_path / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    cfg, month = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={}), ward.month
    approve_as(cfg, month, "A", "個人情報保護法第69条第2項第2号", "見守り訪問")
    with pytest.raises(ReleaseRefused, match="2 different registered approvers"):
        release(cfg, month)
    with pytest.raises(ReleaseRefused, match="already approved"):     # the same person again
        approve_as(cfg, month, "A", "個人情報保護法第69条第2項第2号", "見守り訪問")
    with pytest.raises(ReleaseRefused):
        release(cfg, month)
    assert not (cfg.releases_dir / month / "outreach.csv").exists()
    approve_as(cfg, month, "B", "社会福祉法第106条の6 支援会議", "見守り訪問")
    info = release(cfg, month)

    # outreach.csv for Excel: Japanese headers, 宛名番号 as ="…" so Excel keeps the zeros
    sheet = pd.read_csv(cfg.releases_dir / month / "outreach.csv", dtype=str, encoding="utf-8-sig")
    assert (cfg.releases_dir / month / "outreach.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(sheet.columns) == ["区全体順位", "地区", "宛名番号", "氏名", "住所", "年齢", "性別", "優先度", "訪問の理由",
                                   "確認したいこと", "前回訪問", "区分"]
    assert sheet["宛名番号"].str.fullmatch(r'="\d+"').all()
    sheet = sheet.rename(columns={"宛名番号": "resident_id", "氏名": "name"})
    sheet["resident_id"] = sheet["resident_id"].str[2:-1]
    key = load_key(cfg.key_file)
    listed = read_parquet(cfg.runs / month / "list.parquet")
    recomputed = [hmac.new(key, f"resident:{i}".encode(), hashlib.sha256).hexdigest()[:32] for i in sheet["resident_id"]]
    assert recomputed == listed["pid"].tolist()
    people = _residents(ward).set_index("resident_id")
    assert sheet["name"].tolist() == people.loc[sheet["resident_id"], "name"].tolist()
    assert info["rows"] == len(listed)

    from openpyxl import load_workbook
    book = load_workbook(cfg.releases_dir / month / "outreach.xlsx")
    assert book.sheetnames[0] == "全体"
    assert set(book.sheetnames[1:]) == set(listed["district"])
    assert [c.value for c in book["全体"][1]][:4] == ["順位", "地区", "宛名番号", "氏名"]
    first = book.sheetnames[1]
    assert [c.value for c in book[first][1]][:3] == ["順位", "区全体順位", "宛名番号"]

    events = [e["event"] for e in audit.entries(cfg.audit_log)]
    assert events.count("approve") == 2 and events[-1] == "release" and "ingest" in events
    assert audit.verify(cfg.audit_log) == []
    # the audit log names no resident
    assert not any(i in cfg.audit_log.read_text(encoding="utf-8") for i in sheet["resident_id"])


def test_a_rerun_gives_the_same_list_and_voids_nothing_silently(ward):
    path = ward.cfg.runs / ward.month / "list.parquet"
    before = path.read_bytes()
    run_month(ward.cfg, ward.month)
    assert path.read_bytes() == before
