"""Ingest ahead: a second process ingesting the coming months changes nothing but the time."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from pipelines import audit
from pipelines.catalog import lake
from pipelines.config import load_config
from pipelines.catalog.runs import inbox_months
from pipelines.monthly import run_months
from pipelines.pseudonymise import create_key
from pipelines.reading import ContractError
from synth.ward import generate_ward

SETTINGS = "[training]\nmin_labelled = 60\nmin_positive = 8\nmax_iter = 40\n"


def _ward(root: Path, inbox: Path, key: Path, ahead: bool):
    root.mkdir(parents=True)
    (root / "mimamori.toml").write_text(SETTINGS + f"[scale]\ningest_ahead = {str(ahead).lower()}\n", encoding="utf-8")
    shutil.copytree(inbox, root / "inbox")
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    cfg.key_file.parent.mkdir(parents=True)
    shutil.copy(key, cfg.key_file)
    return cfg


def _bytes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inbox_and_key(tmp_path_factory):
    root = tmp_path_factory.mktemp("ahead")
    create_key(root / "key" / "hmac.key")
    generate_ward(root / "inbox", residents=1000, months=4, end_month="2026-10", seed=3)
    return root / "inbox", root / "key" / "hmac.key"


def test_a_backfill_ingested_ahead_gives_the_same_lake_and_lists_as_one_process(tmp_path, inbox_and_key):
    inbox, key = inbox_and_key
    one = _ward(tmp_path / "one", inbox, key, ahead=False)
    two = _ward(tmp_path / "two", inbox, key, ahead=True)
    months = inbox_months(one)
    sequential = run_months(one, months)
    overlapped = run_months(two, months)
    assert not any("ahead" in m["stages"]["ingest"] for m in sequential)
    helped = {m for manifest in overlapped for m in manifest["stages"]["ingest"].get("ahead", {})}
    assert helped == set(months)            # the helper ingested every month
    assert _bytes(one.lake) == _bytes(two.lake)
    for month in months:
        assert (one.runs / month / "list.parquet").read_bytes() == (two.runs / month / "list.parquet").read_bytes()
    assert audit.verify(two.audit_log) == []
    assert [e["month"] for e in audit.entries(two.audit_log) if e["event"] == "ingest"] == months


def test_a_month_the_helper_cannot_ingest_stops_the_run_with_the_same_error(tmp_path, inbox_and_key):
    inbox, key = inbox_and_key
    cfg = _ward(tmp_path / "bad", inbox, key, ahead=True)
    months = inbox_months(cfg)
    (cfg.inbox / months[2] / "checkups.csv").unlink()     # a required file is missing
    with pytest.raises(ContractError, match="checkups.csv"):
        run_months(cfg, months)
    assert lake.ingested_months(cfg.lake) == months[:2]   # nothing of the bad month or later
    assert (cfg.runs / months[1] / "list.parquet").exists()
    assert audit.verify(cfg.audit_log) == []
