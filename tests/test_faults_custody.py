"""Faults of custody, keys, approvals and the audit log (issue 12, items 6–8), on one small ward.

The ward (1,500 residents × 2 months) is run once per module with the CLI's umask; every
scenario works on its own copy of the three zones, so one scenario's damage never leaks into
the next. Each asserts what a custodian would see: a named refusal, or outputs unchanged.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines import audit, lake
from pipelines.cli import main
from pipelines.config import Config, load_config
from pipelines.ingest import Delivery, ingest_month, keep_replaced_record
from pipelines.monthly import run_months
from pipelines.pseudonymise import KeyProblem, create_key, key_id, load_key
from pipelines.release import ReleaseRefused, approve, release
from pipelines.storage import read_json, write_json
from pipelines.synth import generate_ward

MONTH, EARLIER = "2026-10", "2026-09"
BASIS = "個人情報保護法第69条第2項第2号"


@dataclass
class Zones:
    root: Path
    cfg: Config

    def cli(self, *args: str) -> int:
        return main(["--inbox", str(self.cfg.inbox), "--work", str(self.cfg.work),
                     "--custody", str(self.cfg.custody), *args])


def _config(root: Path) -> Config:
    return load_config(None, root / "inbox", root / "work", root / "custody", environ={})


@pytest.fixture(autouse=True)
def _umask():
    """main() sets the CLI's umask for its process; give the test process its own back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("custody_ward")
    old = os.umask(0o077)     # as the CLI runs it
    try:
        cfg = _config(root)
        create_key(cfg.key_file)
        audit.create_secret(cfg.audit_log)
        generate_ward(cfg.inbox, residents=1500, months=2, end_month=MONTH, seed=9)
        run_months(cfg, [MONTH])
    finally:
        os.umask(old)
    return root


@pytest.fixture()
def zones(base, tmp_path) -> Zones:
    root = tmp_path / "ward"
    shutil.copytree(base, root, symlinks=True)
    return Zones(root, _config(root))


def _approve_twice(z: Zones, first: str = "承認者A", second: str = "承認者B") -> None:
    approve(z.cfg, MONTH, first, BASIS, "見守り訪問")
    approve(z.cfg, MONTH, second, BASIS, "見守り訪問")


def _swap_two_rows(path: Path) -> None:
    """A corrected delivery whose rows are the same people in another order: new bytes, valid rows."""
    lines = path.read_bytes().split(b"\n")
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"\n".join(lines))


def _names(path: Path) -> set[str]:
    return set(pd.read_csv(path, dtype=str, encoding="utf-8")["name"].dropna())


def _modes(folder: Path) -> dict[Path, int]:
    out = {}
    for dirpath, _, files in os.walk(folder):
        for p in [Path(dirpath), *(Path(dirpath) / f for f in files)]:
            out[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


# --- custody is custody ----------------------------------------------------------------------

def test_custody_files_are_0600_and_folders_0700_even_under_an_open_umask(zones):
    os.umask(0o022)          # a library caller with the usual umask: the writers still make it private
    shutil.rmtree(zones.cfg.approvals_dir, ignore_errors=True)
    _approve_twice(zones)
    release(zones.cfg, MONTH, "minsei")
    modes = _modes(zones.cfg.custody)
    assert zones.cfg.approvals_dir / f"{MONTH}.jsonl" in modes
    assert zones.cfg.releases_dir / MONTH / "outreach_minsei.xlsx" in modes
    for path in (zones.cfg.approvals_dir, zones.cfg.releases_dir, zones.cfg.releases_dir / MONTH,
                 zones.cfg.key_file.parent):
        assert modes[path] == 0o700, path
    for path in (zones.cfg.approvals_dir / f"{MONTH}.jsonl", zones.cfg.audit_log, zones.cfg.audit_anchor,
                 zones.cfg.audit_key_file, zones.cfg.key_file,
                 *(zones.cfg.releases_dir / MONTH).iterdir()):
        assert modes[path] == 0o600, path


def test_the_cli_creates_everything_in_custody_private(tmp_path, capsys):
    z = Zones(tmp_path, _config(tmp_path))
    assert z.cli("keygen") == 0
    capsys.readouterr()
    assert {mode for path, mode in _modes(z.cfg.custody).items() if path.is_dir()} == {0o700}
    assert {mode for path, mode in _modes(z.cfg.custody).items() if path.is_file()} == {0o600}
    assert stat.S_IMODE(os.stat(z.cfg.audit_key_file).st_mode) == 0o600


@pytest.mark.parametrize("loose", ["custody", "approvals", "key_file"])
def test_custody_readable_by_others_is_refused_with_what_to_do(zones, capsys, loose):
    _approve_twice(zones)
    target = {"custody": zones.cfg.custody, "approvals": zones.cfg.approvals_dir / f"{MONTH}.jsonl",
              "key_file": zones.cfg.key_file}[loose]
    os.chmod(target, 0o755 if target.is_dir() else 0o644)
    assert zones.cli("release", "--month", MONTH) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chmod" in err and str(target) in err
    assert not (zones.cfg.releases_dir / MONTH).exists()


def test_a_key_file_readable_by_others_is_refused_by_the_library_too(zones):
    os.chmod(zones.cfg.key_file, 0o644)
    with pytest.raises(KeyProblem, match="chmod 600"):
        load_key(zones.cfg.key_file)


# --- approvals --------------------------------------------------------------------------------

def test_one_person_written_two_ways_is_one_approver(zones):
    approve(zones.cfg, MONTH, "alice", BASIS, "見守り訪問")
    approve(zones.cfg, MONTH, " ALICE ", BASIS, "見守り訪問")
    approve(zones.cfg, MONTH, "ａｌｉｃｅ", BASIS, "見守り訪問")      # full-width: NFKC makes it alice
    with pytest.raises(ReleaseRefused, match=r"it has 1 \(alice\)"):
        release(zones.cfg, MONTH)
    approve(zones.cfg, MONTH, "Bob  Tanaka", BASIS, "見守り訪問")
    info = release(zones.cfg, MONTH)
    assert info["approvers"] == ["Bob Tanaka", "alice"]


def test_an_approval_written_into_the_file_by_hand_does_not_count(zones):
    approve(zones.cfg, MONTH, "承認者A", BASIS, "見守り訪問")
    target = zones.cfg.approvals_dir / f"{MONTH}.jsonl"
    forged = json.loads(target.read_text(encoding="utf-8").splitlines()[0]) | {"approver": "誰か", "approver_id": "誰か"}
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(forged, ensure_ascii=False) + "\n")
    with pytest.raises(ReleaseRefused, match="誰か's approval .* is void: the audit log does not hold it"):
        release(zones.cfg, MONTH)


def test_a_damaged_audit_log_stops_a_release_before_any_sheet_is_written(zones):
    _approve_twice(zones)
    lines = _lines(zones.cfg)
    _write(zones.cfg, [lines[1], lines[0], *lines[2:]])
    with pytest.raises(ReleaseRefused, match="audit log fails verification"):
        release(zones.cfg, MONTH)
    assert not (zones.cfg.releases_dir / MONTH).exists()


@pytest.mark.parametrize("damage", ["failed", "no report"])
def test_approve_refuses_a_month_whose_run_did_not_complete(zones, damage):
    manifest_path = zones.cfg.runs / MONTH / "manifest.json"
    if damage == "failed":
        manifest = read_json(manifest_path)
        manifest["status"] = "failed"
        write_json(manifest, manifest_path)
    else:
        (zones.cfg.runs / MONTH / "report" / "index.html").unlink()
    with pytest.raises(ReleaseRefused, match="did not complete"):
        approve(zones.cfg, MONTH, "承認者A", BASIS, "見守り訪問")
    assert not (zones.cfg.approvals_dir / f"{MONTH}.jsonl").exists()


def test_an_approval_records_the_list_the_lake_and_the_key(zones):
    entry = approve(zones.cfg, MONTH, " 承認者　A ", BASIS, "見守り訪問")
    manifest = read_json(zones.cfg.runs / MONTH / "manifest.json")
    assert entry["approver"] == "承認者 A" and entry["approver_id"] == "承認者 a"
    assert entry["lake_fingerprint"] == manifest["lake_fingerprint"]
    assert entry["key_id"] == key_id(load_key(zones.cfg.key_file)) == manifest["key_id"]
    assert set(entry["lake_months"]) == {EARLIER, MONTH}
    logged = audit.entries(zones.cfg.audit_log)[-1]
    assert logged["event"] == "approve" and logged["lake_fingerprint"] == entry["lake_fingerprint"]


def test_a_swapped_residents_extract_is_never_released(zones):
    _approve_twice(zones)
    extract = zones.cfg.inbox / MONTH / "residents.csv"
    names = _names(extract)
    _swap_two_rows(extract)
    with pytest.raises(ReleaseRefused, match="is not the one the 2026-10 list was made from") as refused:
        release(zones.cfg, MONTH)
    assert not any(name in str(refused.value) for name in names)      # names never in a message
    assert not (zones.cfg.releases_dir / MONTH).exists()


def test_a_corrected_earlier_month_voids_the_approval_and_keeps_the_replaced_record(zones):
    _approve_twice(zones)
    old_record = lake.delivery_record(zones.cfg.lake, EARLIER)
    _swap_two_rows(zones.cfg.inbox / EARLIER / "residents.csv")
    ingest_month(zones.cfg, EARLIER, load_key(zones.cfg.key_file), build_docs=False)
    with pytest.raises(ReleaseRefused, match=f"void: .*delivery {EARLIER} corrected"):
        release(zones.cfg, MONTH)
    # the replaced delivery record is kept, and the audit log says what replaced what
    kept = read_json(zones.cfg.lake / "_deliveries" / "_replaced" / f"{EARLIER}.1.json")
    new_record = lake.delivery_record(zones.cfg.lake, EARLIER)
    assert kept["sources"]["residents"]["sha256"] == old_record["sources"]["residents"]["sha256"]
    assert kept["replaced_by"]["residents"] == new_record["sources"]["residents"]["sha256"]
    event = [e for e in audit.entries(zones.cfg.audit_log) if e["event"] == "redelivery"][-1]
    assert event["month"] == EARLIER
    assert event["old"]["residents"] != event["new"]["residents"] == new_record["sources"]["residents"]["sha256"]
    assert event["old"]["welfare_contacts"] == event["new"]["welfare_contacts"]
    # approving the stale list is refused too: the run must be redone first
    with pytest.raises(ReleaseRefused, match="has changed since its run"):
        approve(zones.cfg, MONTH, "承認者C", BASIS, "見守り訪問")
    assert audit.verify(zones.cfg.audit_log) == []


def test_reingesting_the_same_bytes_is_not_a_redelivery(zones):
    """A rerun or `rekey` re-ingests the same files: nothing is replaced, so nothing is kept."""
    record = lake.delivery_record(zones.cfg.lake, EARLIER)
    same = Delivery(EARLIER, {}, {}, record | {"key_id": "another-key"})
    assert keep_replaced_record(zones.cfg, same) is None
    assert not (zones.cfg.lake / "_deliveries" / "_replaced").exists()
    changed = Delivery(EARLIER, {}, {}, record | {"sources": {**record["sources"], "residents": {"sha256": "0" * 64}}})
    kept = keep_replaced_record(zones.cfg, changed)
    assert kept["path"] == f"_deliveries/_replaced/{EARLIER}.1.json"
    assert keep_replaced_record(zones.cfg, changed)["path"] == f"_deliveries/_replaced/{EARLIER}.2.json"


# --- the key ---------------------------------------------------------------------------------

def _pids(cfg: Config) -> set[str]:
    return set(lake.read_snapshot(cfg.lake, "residents", MONTH)["pid"])


def test_another_key_is_refused_and_the_lake_keeps_its_pseudonyms(zones, capsys):
    before, records = _pids(zones.cfg), lake.delivery_record(zones.cfg.lake, MONTH)
    _approve_twice(zones)
    zones.cfg.key_file.unlink()
    create_key(zones.cfg.key_file)                       # someone "restored" the wrong key
    assert zones.cli("run", "--month", MONTH) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the key the lake was made with" in err
    assert "restore the right key" in err and "mimamori rekey" in err
    assert _pids(zones.cfg) == before and lake.delivery_record(zones.cfg.lake, MONTH) == records
    with pytest.raises(KeyProblem, match="not the key the lake"):
        ingest_month(zones.cfg, EARLIER, load_key(zones.cfg.key_file), force=True, build_docs=False)
    with pytest.raises(ReleaseRefused, match="another key"):
        release(zones.cfg, MONTH)
    assert _pids(zones.cfg) == before


def test_a_missing_key_over_an_existing_lake_says_restore_and_keygen_refuses(zones, capsys):
    zones.cfg.key_file.unlink()
    assert zones.cli("run", "--month", MONTH) == 2
    assert "restore its key from the custody backup" in capsys.readouterr().err
    assert zones.cli("keygen") == 2
    err = capsys.readouterr().err
    assert "already holds pseudonyms" in err and not zones.cfg.key_file.exists()


def test_an_interrupted_rekey_is_named_and_not_finished_by_a_run(zones, capsys):
    pending = zones.cfg.key_file.with_name("hmac.key.pending")
    create_key(pending)
    record_path = lake.record_file(zones.cfg.lake, EARLIER)
    record = read_json(record_path) | {"key_id": key_id(load_key(pending))}   # re-ingested under the new key
    write_json(record, record_path)
    assert zones.cli("run", "--month", MONTH) == 2
    assert "`mimamori rekey` was interrupted" in capsys.readouterr().err
    assert read_json(record_path)["key_id"] == key_id(load_key(pending))


def test_a_world_readable_key_is_refused_before_anything_runs(zones, capsys):
    os.chmod(zones.cfg.key_file, 0o644)
    manifest = (zones.cfg.runs / MONTH / "manifest.json").read_bytes()
    assert zones.cli("run", "--month", MONTH) == 2
    assert "chmod" in capsys.readouterr().err
    assert (zones.cfg.runs / MONTH / "manifest.json").read_bytes() == manifest


# --- the audit log ---------------------------------------------------------------------------

def _lines(cfg: Config) -> list[bytes]:
    return cfg.audit_log.read_bytes().splitlines()


def _write(cfg: Config, lines: list[bytes]) -> None:
    cfg.audit_log.write_bytes(b"".join(line + b"\n" for line in lines))


def _forged(cfg: Config, previous: bytes, seq: int) -> bytes:
    """A line chained the way a forger without the audit key would: SHA-256 links, a made-up MAC."""
    import hashlib

    entry = json.loads(previous) | {"event": "approve", "approver": "forger", "seq": seq,
                                    "prev": hashlib.sha256(previous).hexdigest()}
    entry["mac"] = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
    return json.dumps(entry, ensure_ascii=False, sort_keys=True).encode()


@pytest.mark.parametrize("damage", ["truncate last", "truncate two", "reorder", "insert forged", "append forged",
                                    "edit", "empty", "delete"])
def test_audit_verify_detects_every_shortening_and_forgery(zones, capsys, damage):
    _approve_twice(zones)
    cfg, lines = zones.cfg, _lines(zones.cfg)
    assert len(lines) >= 4 and zones.cli("audit", "verify") == 0
    capsys.readouterr()
    if damage == "truncate last":
        _write(cfg, lines[:-1])
    elif damage == "truncate two":
        _write(cfg, lines[:-2])
    elif damage == "reorder":
        _write(cfg, [lines[0], lines[2], lines[1], *lines[3:]])
    elif damage == "insert forged":
        _write(cfg, [*lines[:2], _forged(cfg, lines[1], 3), *lines[2:]])
    elif damage == "append forged":
        _write(cfg, [*lines, _forged(cfg, lines[-1], len(lines) + 1)])
    elif damage == "edit":
        entry = json.loads(lines[1]) | {"month": "2026-08"}
        _write(cfg, [lines[0], json.dumps(entry, ensure_ascii=False, sort_keys=True).encode(), *lines[2:]])
    elif damage == "empty":
        cfg.audit_log.write_bytes(b"")
    else:
        cfg.audit_log.unlink()
    assert zones.cli("audit", "verify") == 1
    assert "FAILED" in capsys.readouterr().out
    if damage.startswith(("truncate", "empty", "delete", "insert", "append")):
        # nothing more is logged past a shortened or extended log: the next approval stops, named
        with pytest.raises(KeyProblem, match="does not match its anchor"):
            approve(cfg, MONTH, "承認者C", BASIS, "見守り訪問")
        assert len(read_approvals(cfg)) == 2


def read_approvals(cfg: Config) -> list[str]:
    return (cfg.approvals_dir / f"{MONTH}.jsonl").read_text(encoding="utf-8").splitlines()


def test_a_release_record_seals_the_log_against_rollback_with_an_old_anchor(zones, capsys):
    cfg = zones.cfg
    old_lines, old_anchor = _lines(cfg), cfg.audit_anchor.read_bytes()
    _approve_twice(zones)
    info = release(cfg, MONTH)
    assert info["audit_head"]["entries"] == len(old_lines) + 2
    assert read_json(cfg.releases_dir / MONTH / "release.json")["audit_head"] == info["audit_head"]
    # roll the log and its anchor back to before the approvals: consistent with each other...
    _write(cfg, old_lines)
    cfg.audit_anchor.write_bytes(old_anchor)
    assert audit.verify(cfg.audit_log) == []
    # ...but not with the release record
    assert zones.cli("audit", "verify") == 1
    assert "release.json sealed the log" in capsys.readouterr().out


def _appender(log: str, n: int, name: str) -> None:
    for i in range(n):
        audit.append(Path(log), "ingest", month="2026-10", worker=name, i=i)


def test_two_processes_appending_at_once_keep_one_chain(tmp_path):
    log = tmp_path / "custody" / "audit.jsonl"
    audit.append(log, "keygen")
    workers = [multiprocessing.get_context("fork").Process(target=_appender, args=(str(log), 15, w))
               for w in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert len(audit.entries(log)) == 31 and audit.verify(log) == []
    assert [e["seq"] for e in audit.entries(log)] == list(range(1, 32))


def test_a_log_written_before_the_chain_was_keyed_is_kept_and_sealed(tmp_path):
    import hashlib

    log = tmp_path / "custody" / "audit.jsonl"
    log.parent.mkdir()
    previous, lines = "0" * 64, []
    for i in range(3):                       # the former format: SHA-256 links, no MAC, no anchor
        line = json.dumps({"event": "ingest", "i": i, "prev": previous}, sort_keys=True).encode()
        lines.append(line)
        previous = hashlib.sha256(line).hexdigest()
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    assert audit.verify(log) == []
    audit.append(log, "approve", month=MONTH)           # creates the audit key and the anchor
    assert audit.verify(log) == [] and audit.anchor_path(log).exists()
    old = log.read_bytes().splitlines()
    edited = json.dumps({"event": "ingest", "i": 7, "prev": "0" * 64}, sort_keys=True).encode()
    log.write_bytes(b"".join(line + b"\n" for line in [edited, *old[1:]]))
    assert audit.verify(log)
    log.write_bytes(b"".join(line + b"\n" for line in old[:-1]))
    assert audit.verify(log)                  # cutting the keyed tail off is caught by the anchor


def test_a_lost_audit_key_stops_logging_rather_than_starting_a_new_chain(zones):
    zones.cfg.audit_key_file.unlink()
    with pytest.raises(KeyProblem, match="audit key .* is missing"):
        approve(zones.cfg, MONTH, "承認者A", BASIS, "見守り訪問")
    assert not zones.cfg.audit_key_file.exists() and not (zones.cfg.approvals_dir / f"{MONTH}.jsonl").exists()
    assert any("audit key" in p for p in audit.verify(zones.cfg.audit_log))
