"""Faults a trustworthy batch must survive (issue 12, items 4-8), in one file.

Part 1 - kill -9 anywhere, a second batch, damaged files, a full disk (items 4, 5, 7). Each
scenario works on fresh copies of one small ward (1,000 residents x 2 months, one quarantined
row), built once for the module, and runs the real `mimamori` command in a subprocess where a
process must die or be refused. Kills are deterministic: the command is told to SIGKILL itself
at a named checkpoint (pipelines/faults.py: a stage's start, a temporary file complete but not
renamed, a rename made durable), so every run of the suite kills at the same instants;
time-based kills would sample different instants on a loaded machine and could miss the windows
that matter (a lake file renamed before its delivery record, a feature table before its sidecar).

Part 2 - custody, keys, approvals and the audit log (items 6-8), on a second small ward (1,500
residents x 2 months) run once with the CLI's umask; every scenario works on its own copy of the
three zones. Each asserts what a custodian would see: a named refusal, or outputs unchanged.

Bad command-line arguments (item 9) are in tests/test_cli.py, a shifted residents row kept out of
the analyst zone's quarantine in tests/test_reading_lines.py, and the unterminated quote in
tests/test_reading_lines.py.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipelines import audit
from pipelines.catalog import lake
from pipelines.cli import main
from pipelines.config import Config, load_config
from pipelines.catalog.deliveries import Delivery, keep_replaced_record
from pipelines.ingest import ingest_month
from pipelines.locks import LOCK_NAME, LockHeld, custody_lock, holder, work_lock
from pipelines.catalog.runs import completed_run, inbox_months
from pipelines.monthly import run_month, run_months
from pipelines.pseudonymise import KeyProblem, create_key, key_id, load_key
from pipelines.approvers import (ApproverProblem, add_approver, fingerprint, registry_file, revoke_approver,
                                 signed)
from pipelines.release import ReleaseRefused, approve, release
from tests.approving import approve_as, approver_key, key_file, registered_approver
from contract.storage import DataDamaged, file_sha256, read_json, write_json
from synth.ward import generate_ward

ROOT = Path(__file__).resolve().parents[1]
MONTH, FIRST = "2026-02", "2026-01"
SETTINGS = "[training]\nmin_labelled = 60\nmin_positive = 8\nmax_iter = 40\n"


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults-seed")
    create_key(root / "custody" / "key" / "hmac.key")
    generate_ward(root / "inbox", residents=1000, months=2, end_month=MONTH, seed=5)
    # one row the contract quarantines (31 February), so a quarantine file is committed too
    checkups = root / "inbox" / MONTH / "checkups.csv"
    first_id = checkups.read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    with checkups.open("a", encoding="utf-8") as handle:
        handle.write(f"{first_id},2026-02-31,特定健診\n")
    return root


def zones(seed: Path, root: Path, ahead: bool = False, work: Path | None = None) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mimamori.toml").write_text(SETTINGS + f"[scale]\ningest_ahead = {str(ahead).lower()}\n", encoding="utf-8")
    shutil.copytree(seed / "inbox", root / "inbox")
    shutil.copytree(seed / "custody", root / "custody")
    return load_config(root / "mimamori.toml", root / "inbox", work or root / "work", root / "custody", environ={})


def outputs(cfg: Config) -> dict[str, str]:
    """SHA-256 of every data output: lake, delivery records, quarantine, features, the run's tables."""
    files = [*cfg.lake.rglob("*.parquet"), *cfg.lake.glob("_deliveries/*.json"),
             *(cfg.work / "quarantine").rglob("*.parquet"), *cfg.features_dir.glob("*"),
             *[cfg.runs / MONTH / n for n in ("scores.parquet", "list.parquet", "explanations.parquet")]]
    return {str(p.relative_to(cfg.work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(files) if p.is_file() and not p.name.endswith(".tmp")}


def command(cfg: Config, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "--config", str(cfg.inbox.parent / "mimamori.toml"),
            "--inbox", str(cfg.inbox), "--work", str(cfg.work), "--custody", str(cfg.custody), *args]


def environment(**faults: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMAMORI_")}
    return env | {"PYTHONPATH": str(ROOT)} | faults


def cli(cfg: Config, *args: str, **faults: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(cfg, *args), env=environment(**faults), capture_output=True, text=True,
                          timeout=600, cwd=cfg.inbox.parent)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mimamori: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def reference(seed, tmp_path_factory) -> tuple[Config, dict[str, str]]:
    """An uninterrupted run of the month (in this process)."""
    cfg = zones(seed, tmp_path_factory.mktemp("faults-reference"))
    run_months(cfg, [MONTH])
    result = outputs(cfg)
    assert any(name.startswith("quarantine/") for name in result)
    return cfg, result


# Kill points in the order a run reaches them; each kill leaves the state the next run starts
# from (the counts are those of that next run: a month already ingested writes nothing).
SOURCES_DELIVERED = 10   # the synthetic ward delivers every source each month (checked below)
CHAIN = [
    "written:2026-02.parquet#4",    # ingest: 4 of the month's 10 lake files renamed, no delivery record yet
    f"written:2026-02.parquet#{SOURCES_DELIVERED + 1}",   # the month re-ingested (10 lake files); its
                                    # feature table renamed, its sidecar not yet written
    "ENOSPC:writing:scores.parquet#1",  # the disk fills up while the scores are written
    "writing:index.html#1",         # the report complete in its temporary file, not renamed; list already replaced
]


def test_kill_9_at_any_point_of_run_then_a_rerun_gives_byte_identical_outputs(seed, reference, tmp_path):
    cfg = zones(seed, tmp_path / "w")
    assert len(list((cfg.inbox / MONTH).iterdir())) == SOURCES_DELIVERED
    for point in CHAIN:
        if point.startswith("ENOSPC:"):
            line = one_line_error(cli(cfg, "run", "--month", MONTH, MIMAMORI_ENOSPC_AT=point[len("ENOSPC:"):]))
            assert "no space left to write" in line and str(cfg.runs / MONTH / "scores.parquet") in line
            assert "rerun" in line
        else:
            result = cli(cfg, "run", "--month", MONTH, MIMAMORI_KILL_AT=point)
            assert result.returncode == -signal.SIGKILL, (point, result.stderr[-3000:])
        # nothing half-done is trusted: the month's run never reads as complete, and a
        # delivery without its record is not ingested
        assert completed_run(cfg, MONTH) is None, point
        if point == CHAIN[0]:
            assert MONTH not in lake.ingested_months(cfg.lake)
        if point == CHAIN[1]:   # a table without its sidecar: never reused
            assert (cfg.features_dir / f"{MONTH}.parquet").exists() and not (cfg.features_dir / f"{MONTH}.json").exists()
    assert list((cfg.runs / MONTH / "report").glob(".*.tmp"))   # the last kill left a temporary file
    # the dead process's lock file is still there, naming it; it is not a held lock
    assert holder(cfg.work / LOCK_NAME)["pid"] not in (os.getpid(), None)
    run_months(cfg, [MONTH])   # the rerun (in this process: the same code, without a second start-up)
    assert outputs(cfg) == reference[1]
    assert not list(cfg.work.rglob(".*.tmp")), "stray temporary files were not swept"
    done = completed_run(cfg, MONTH)
    assert done is not None and set(done["outputs"]) >= {"scores.parquet", "list.parquet", "report/index.html"}


def _helper_of(pid: int) -> int | None:
    """The ingest-ahead helper among `pid`'s children (a multiprocessing spawn, not its resource tracker)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                line = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in line and b"resource_tracker" not in line:
                return int(child)
    return None


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")   # dead; only its exit status waits for a reaper


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_run_all_takes_the_ingest_ahead_helper_with_it(seed, reference, tmp_path):
    cfg = zones(seed, tmp_path / "w", ahead=True)
    parent = subprocess.Popen(command(cfg, "run", "--all"), env=environment(), cwd=cfg.inbox.parent,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, helper = time.monotonic() + 180, None
        while helper is None and time.monotonic() < deadline and parent.poll() is None:
            helper = _helper_of(parent.pid)
            time.sleep(0.05)
        assert helper is not None, "the ingest-ahead helper never started"
        time.sleep(1.0)   # let it get to work
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
    deadline = time.monotonic() + 5
    while not _gone(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(helper), "the ingest-ahead helper outlived its killed parent"
    run_months(cfg, inbox_months(cfg))   # the rerun, with its own helper
    assert outputs(cfg) == reference[1]


def test_a_second_run_on_the_same_work_dir_refuses_naming_the_first(seed, tmp_path):
    cfg = zones(seed, tmp_path / "w")
    first = subprocess.Popen(command(cfg, "run", "--month", MONTH), env=environment(), cwd=cfg.inbox.parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while holder(cfg.work / LOCK_NAME).get("pid") != first.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder(cfg.work / LOCK_NAME).get("pid") == first.pid
        second = cli(cfg, "run", "--month", MONTH)
        assert first.poll() is None, "the first run ended before the second one asked"
    finally:
        first.kill()
        first.wait()
    line = one_line_error(second)
    assert f"pid {first.pid} on host {socket.gethostname()}" in line
    assert f"(`mimamori --config " in line and f" run --month {MONTH}`" in line
    assert "since 20" in line and str(cfg.work) in line
    # its process is dead: the lock it left is stale and is taken at once
    with work_lock(cfg):
        assert holder(cfg.work / LOCK_NAME)["pid"] == os.getpid()


def test_with_wait_a_batch_queues_behind_the_holder_instead_of_refusing(seed, tmp_path):
    cfg = zones(seed, tmp_path / "w")
    script = ("import time\nfrom pathlib import Path\nfrom pipelines.locks import zone_lock\n"
              f"with zone_lock(Path({str(cfg.work)!r}), 'work dir'):\n"
              "    print('held', flush=True)\n    time.sleep(3)\n")
    other = subprocess.Popen([sys.executable, "-c", script], env=environment(), stdout=subprocess.PIPE)
    try:
        assert other.stdout.readline().strip() == b"held"
        with pytest.raises(LockHeld, match=f"pid {other.pid} "):
            with work_lock(cfg):
                pass
        started = time.monotonic()
        with work_lock(cfg, wait=True):          # what `mimamori run --wait` does
            waited = time.monotonic() - started
            assert other.poll() is not None or holder(cfg.work / LOCK_NAME)["pid"] == os.getpid()
    finally:
        other.kill()
        other.wait()
    assert waited > 0.5


def test_custody_commands_refuse_while_another_holds_the_custody_zone(seed, tmp_path):
    cfg = zones(seed, tmp_path / "w")
    with custody_lock(cfg):
        line = one_line_error(cli(cfg, "purge"))
    assert f"custody zone {cfg.custody} is in use by pid {os.getpid()}" in line
    assert cli(cfg, "purge").returncode == 0     # released with the block


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF          # same size, one byte changed
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated lake file": (f"lake/residents/{MONTH}.parquet", _truncate, "does not match its delivery record"),
    "altered residents snapshot": (f"lake/residents/{FIRST}.parquet", _alter, "does not match its delivery record"),
    "deleted lake file": (f"lake/checkups/{FIRST}.parquet", Path.unlink, "named by its delivery record is missing"),
    "truncated quarantine file": (f"quarantine/{MONTH}/checkups.parquet", _truncate, "does not match its delivery record"),
    "altered feature table": (f"features/{MONTH}.parquet", _alter, "does not match its sidecar"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_is_named_and_stops_the_batch(reference, tmp_path, case):
    ref, _ = reference
    shutil.copytree(ref.inbox.parent, tmp_path / "w", ignore=shutil.ignore_patterns(LOCK_NAME))
    cfg = load_config(tmp_path / "w" / "mimamori.toml", tmp_path / "w" / "inbox", tmp_path / "w" / "work",
                      tmp_path / "w" / "custody", environ={})
    name, damage, says = DAMAGE[case]
    damage(cfg.work / name)
    with pytest.raises(DataDamaged) as caught:
        run_month(cfg, MONTH)
    message = str(caught.value)
    assert str(cfg.work / name) in message and says in message
    month = Path(name).stem if name.startswith("lake/") else MONTH
    repair = f"`mimamori ingest --month {month} --force`" if not name.startswith("features/") else "rerun"
    assert repair in message
    assert completed_run(cfg, MONTH) is None


def test_the_named_repair_works_and_the_cli_says_it_in_one_line(reference, tmp_path):
    ref, expected = reference
    shutil.copytree(ref.inbox.parent, tmp_path / "w", ignore=shutil.ignore_patterns(LOCK_NAME))
    cfg = load_config(tmp_path / "w" / "mimamori.toml", tmp_path / "w" / "inbox", tmp_path / "w" / "work",
                      tmp_path / "w" / "custody", environ={})
    _alter(lake.source_file(cfg.lake, "residents", FIRST))
    line = one_line_error(cli(cfg, "run", "--month", MONTH))
    assert f"lake file {lake.source_file(cfg.lake, 'residents', FIRST)} does not match its delivery record" in line
    assert f"re-ingest with `mimamori ingest --month {FIRST} --force`" in line
    ingest_month(cfg, FIRST, load_key(cfg.key_file), force=True)     # what the message says to do
    run_months(cfg, [MONTH])
    record = f"lake/_deliveries/{FIRST}.json"
    got = outputs(cfg)
    assert {k: v for k, v in got.items() if k != record} == {k: v for k, v in expected.items() if k != record}
    # `ingest` alone also builds the month's Data Docs and records where (run builds them later)
    repaired, original = lake.delivery_record(cfg.lake, FIRST), lake.delivery_record(ref.lake, FIRST)
    repaired["validation"].pop("data_docs"), original["validation"].pop("data_docs")
    assert repaired == original


def test_a_full_disk_is_one_line_and_the_rerun_after_freeing_space_completes(seed, reference, tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    # about half of what the month's run writes (~1 MB since the Data Docs carry no GX assets): it fills up mid-run
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        cfg = zones(seed, tmp_path / "w", work=mnt / "work")
        line = one_line_error(cli(cfg, "run", "--month", MONTH))
        assert "no space left" in line or "disk is full" in line
        assert "free space" in line and "rerun" in line
        subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)   # space freed
        run_months(cfg, [MONTH])
        assert outputs(cfg) == reference[1]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_an_ingest_killed_between_its_commit_and_its_audit_entry_is_logged_by_the_rerun(seed, tmp_path, monkeypatch):
    """The delivery record lands before the audit entry; a process dying between the two must not
    leave a month in the lake that the audit log never mentions."""
    from pipelines import audit

    cfg = zones(seed, tmp_path)
    key = load_key(cfg.key_file)
    real_append = audit.append

    def killed(path, event, **details):
        if event == "ingest":
            raise KeyboardInterrupt   # stands in for SIGKILL: nothing after this line runs
        return real_append(path, event, **details)

    monkeypatch.setattr(audit, "append", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_month(cfg, FIRST, key, build_docs=False)
    monkeypatch.setattr(audit, "append", real_append)
    assert not [e for e in audit.entries(cfg.audit_log) if e["event"] == "ingest"]
    assert ingest_month(cfg, FIRST, key, build_docs=False)["status"] == "unchanged"
    logged = [e for e in audit.entries(cfg.audit_log) if e["event"] == "ingest"]
    assert [(e["month"], e.get("recovered")) for e in logged] == [(FIRST, True)]
    assert logged[0]["files"] == {n: s["sha256"] for n, s in lake.delivery_record(cfg.lake, FIRST)["sources"].items()}
    ingest_month(cfg, FIRST, key, build_docs=False)   # logged once, not on every later run
    assert len([e for e in audit.entries(cfg.audit_log) if e["event"] == "ingest"]) == 1
    assert audit.verify(cfg.audit_log) == []


# --- Part 2: custody, keys, approvals, audit log ---------------------------------------

C_MONTH, C_EARLIER = "2026-10", "2026-09"
BASIS = "個人情報保護法第69条第2項第2号"


@dataclass
class CustodyZones:
    root: Path
    cfg: Config

    def cli(self, *args: str) -> int:
        return main(["--inbox", str(self.cfg.inbox), "--work", str(self.cfg.work),
                     "--custody", str(self.cfg.custody), *args])


def _custody_config(root: Path) -> Config:
    return load_config(None, root / "inbox", root / "work", root / "custody", environ={})


@pytest.fixture(scope="module")
def custody_ward(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("custody_ward")
    old = os.umask(0o077)     # as the CLI runs it
    try:
        cfg = _custody_config(root)
        create_key(cfg.key_file)
        audit.create_secret(cfg.audit_log)
        generate_ward(cfg.inbox, residents=1500, months=2, end_month=C_MONTH, seed=9)
        run_months(cfg, [C_MONTH])
        for ident in ("A", "B", "C"):     # registered by the custodian before anyone approves
            registered_approver(cfg, ident)
    finally:
        os.umask(old)
    return root


@pytest.fixture()
def custody_zones(custody_ward, tmp_path) -> CustodyZones:
    root = tmp_path / "ward"
    shutil.copytree(custody_ward, root, symlinks=True)
    return CustodyZones(root, _custody_config(root))


def _approve_twice(z: CustodyZones, first: str = "A", second: str = "B") -> None:
    approve_as(z.cfg, C_MONTH, first, BASIS, "見守り訪問")
    approve_as(z.cfg, C_MONTH, second, BASIS, "見守り訪問")


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

def test_custody_files_are_0600_and_folders_0700_even_under_an_open_umask(custody_zones):
    os.umask(0o022)          # a library caller with the usual umask: the writers still make it private
    shutil.rmtree(custody_zones.cfg.approvals_dir, ignore_errors=True)
    _approve_twice(custody_zones)
    release(custody_zones.cfg, C_MONTH, "minsei")
    modes = _modes(custody_zones.cfg.custody)
    assert custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl" in modes
    assert custody_zones.cfg.releases_dir / C_MONTH / "outreach_minsei.xlsx" in modes
    for path in (custody_zones.cfg.approvals_dir, custody_zones.cfg.releases_dir, custody_zones.cfg.releases_dir / C_MONTH,
                 custody_zones.cfg.key_file.parent):
        assert modes[path] == 0o700, path
    for path in (custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl", custody_zones.cfg.audit_log, custody_zones.cfg.audit_anchor,
                 custody_zones.cfg.audit_key_file, custody_zones.cfg.key_file,
                 *(custody_zones.cfg.releases_dir / C_MONTH).iterdir()):
        assert modes[path] == 0o600, path


def test_the_cli_creates_everything_in_custody_private(tmp_path, capsys):
    z = CustodyZones(tmp_path, _custody_config(tmp_path))
    assert z.cli("keygen") == 0
    capsys.readouterr()
    assert {mode for path, mode in _modes(z.cfg.custody).items() if path.is_dir()} == {0o700}
    assert {mode for path, mode in _modes(z.cfg.custody).items() if path.is_file()} == {0o600}
    assert stat.S_IMODE(os.stat(z.cfg.audit_key_file).st_mode) == 0o600


@pytest.mark.parametrize("loose", ["custody", "approvals", "key_file"])
def test_custody_readable_by_others_is_refused_with_what_to_do(custody_zones, capsys, loose):
    _approve_twice(custody_zones)
    target = {"custody": custody_zones.cfg.custody, "approvals": custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl",
              "key_file": custody_zones.cfg.key_file}[loose]
    os.chmod(target, 0o755 if target.is_dir() else 0o644)
    assert custody_zones.cli("release", "--month", C_MONTH) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chmod" in err and str(target) in err
    assert not (custody_zones.cfg.releases_dir / C_MONTH).exists()


def test_a_key_file_readable_by_others_is_refused_by_the_library_too(custody_zones):
    os.chmod(custody_zones.cfg.key_file, 0o644)
    with pytest.raises(KeyProblem, match="chmod 600"):
        load_key(custody_zones.cfg.key_file)


# --- approvals --------------------------------------------------------------------------------

def test_two_approvals_from_one_identity_are_refused_and_count_once(custody_zones):
    cfg = custody_zones.cfg
    approve_as(cfg, C_MONTH, "A", BASIS)
    with pytest.raises(ReleaseRefused, match="既に承認しています.*already approved the current 2026-10 list"):
        approve(cfg, C_MONTH, "a", key_file(cfg, "A"), "社会福祉法第106条の6", "見守り訪問")   # another basis, same person
    target = cfg.approvals_dir / f"{C_MONTH}.jsonl"
    with target.open("a", encoding="utf-8") as handle:          # A's genuine line copied: still one person
        handle.write(target.read_text(encoding="utf-8"))
    with pytest.raises(ReleaseRefused, match=r"2 人の異なる登録承認者.* it has 1 \(A 承認者A\)"):
        release(cfg, C_MONTH)
    approve_as(cfg, C_MONTH, "B", BASIS)
    info = release(cfg, C_MONTH)
    people = json.loads(registry_file(cfg).read_text(encoding="utf-8"))["approvers"]
    assert info["approvers"] == [{"id": i, "name": people[i]["name"], "role": people[i]["role"],
                                  "fingerprint": people[i]["fingerprint"]} for i in ("A", "B")]


@pytest.mark.parametrize("forgery", ["edited basis", "edited list digest", "another key", "another identity"])
def test_a_forged_or_edited_approval_stops_the_release(custody_zones, capsys, forgery):
    cfg = custody_zones.cfg
    _approve_twice(custody_zones)
    target = cfg.approvals_dir / f"{C_MONTH}.jsonl"
    lines = target.read_text(encoding="utf-8").splitlines()
    second = json.loads(lines[1])
    if forgery == "edited basis":
        second["basis"] = "本人の同意"
    elif forgery == "edited list digest":
        second["list_sha256"] = "0" * 64
    elif forgery == "another key":               # signed by someone who is not B, claiming to be B
        stranger = Ed25519PrivateKey.generate()
        second = signed({k: v for k, v in second.items() if k not in ("signature", "statement", "lake_months")},
                        stranger) | {"lake_months": second["lake_months"]}
    else:                                        # B's approval relabelled as C's
        second["approver_id"] = "C"
    target.write_text("\n".join([lines[0], json.dumps(second, ensure_ascii=False)]) + "\n", encoding="utf-8")
    assert custody_zones.cli("release", "--month", C_MONTH) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "2 行目" in err and "line 2" in err
    assert "署名が登録された公開鍵で検証できません" in err and "signature does not verify" in err
    assert "バックアップ" in err and "restore the approvals file" in err
    assert not (cfg.releases_dir / C_MONTH).exists()


def test_an_unknown_approver_id_is_refused(custody_zones, capsys):
    cfg = custody_zones.cfg
    assert custody_zones.cli("approve", "--month", C_MONTH, "--approver-id", "Z9", "--key-file",
                             str(key_file(cfg, "A")), "--basis", BASIS) == 2
    err = capsys.readouterr().err
    assert "承認者ID Z9 は登録されていません" in err and "approver id Z9 is not registered" in err
    assert "mimamori approver add --id Z9" in err
    assert not (cfg.approvals_dir / f"{C_MONTH}.jsonl").exists()
    # a registry entry written by hand (no registration in the audit log) is not an approver either
    registry = json.loads(registry_file(cfg).read_text(encoding="utf-8"))
    stranger = Ed25519PrivateKey.generate()
    forged = registry["approvers"]["A"] | {"name": "誰か", "fingerprint": fingerprint(stranger.public_key())}
    write_json({"approvers": registry["approvers"] | {"Z9": forged}}, registry_file(cfg))
    with pytest.raises(ApproverProblem, match="登録が監査ログにありません.*not in the audit log"):
        approve(cfg, C_MONTH, "Z9", key_file(cfg, "A"), BASIS, "見守り訪問")
    # an approver struck from the registry after approving no longer counts
    _approve_twice(custody_zones)
    write_json({"approvers": {k: v for k, v in registry["approvers"].items() if k != "B"}}, registry_file(cfg))
    with pytest.raises(ReleaseRefused, match="B's approval .* is void: approver B is not registered"):
        release(cfg, C_MONTH)


def test_a_revoked_approver_cannot_approve_and_their_approvals_stop_counting(custody_zones, capsys):
    cfg = custody_zones.cfg
    _approve_twice(custody_zones)
    assert custody_zones.cli("approver", "revoke", "--id", "B", "--reason", "異動") == 0
    assert "revoked approver B" in capsys.readouterr().out
    with pytest.raises(ReleaseRefused, match=r"it has 1 \(A 承認者A\); 1 void: B's approval .* has been revoked"):
        release(cfg, C_MONTH)
    with pytest.raises(ApproverProblem, match="失効しています.*has been revoked"):
        approve_as(cfg, C_MONTH, "B", BASIS)
    with pytest.raises(ApproverProblem, match="already registered"):     # a revoked id is never reused
        add_approver(cfg, "B", "承認者B", "保健予防課長", custody_zones.root / "keys" / "B2.key")
    assert custody_zones.cli("approver", "list") == 0
    listing = capsys.readouterr().out
    assert re.search(r"^A\s+active", listing, re.M) and re.search(r"^B\s+revoked", listing, re.M)
    approve_as(cfg, C_MONTH, "C", BASIS)
    assert [p["id"] for p in release(cfg, C_MONTH)["approvers"]] == ["A", "C"]


def test_the_audit_log_names_who_registered_approved_and_released(custody_zones):
    cfg = custody_zones.cfg
    _approve_twice(custody_zones)
    info = release(cfg, C_MONTH)
    people = json.loads(registry_file(cfg).read_text(encoding="utf-8"))["approvers"]
    log = audit.entries(cfg.audit_log)
    added = {e["approver_id"]: e for e in log if e["event"] == "approver_add"}
    assert {i: (e["approver"], e["role"], e["fingerprint"]) for i, e in added.items()} == \
        {i: (p["name"], p["role"], p["fingerprint"]) for i, p in people.items()}
    approvals = [e for e in log if e["event"] == "approve"]
    assert [(e["approver_id"], e["approver"], e["role"], e["fingerprint"]) for e in approvals] == \
        [(i, people[i]["name"], people[i]["role"], people[i]["fingerprint"]) for i in ("A", "B")]
    assert [e for e in log if e["event"] == "release"][-1]["approvers"] == info["approvers"]
    assert audit.verify(cfg.audit_log) == []


def test_an_approver_key_must_be_theirs_and_private(custody_zones):
    cfg = custody_zones.cfg
    with pytest.raises(ApproverProblem, match="承認者 A の鍵ではありません.*is not approver A's key"):
        approve(cfg, C_MONTH, "A", key_file(cfg, "B"), BASIS, "見守り訪問")
    os.chmod(key_file(cfg, "A"), 0o644)
    with pytest.raises(ApproverProblem, match="chmod 600"):
        approve_as(cfg, C_MONTH, "A", BASIS)
    assert not (cfg.approvals_dir / f"{C_MONTH}.jsonl").exists()


def test_approver_add_keeps_the_private_key_out_of_every_zone(custody_zones, capsys):
    cfg, keys = custody_zones.cfg, custody_zones.root / "keys"
    for inside in (cfg.work / "D01.key", cfg.work / "lake" / "D01.key", cfg.custody / "D01.key", cfg.inbox / "D01.key"):
        assert custody_zones.cli("approver", "add", "--id", "D01", "--name", "田中 花子", "--role", "福祉部長",
                                 "--key-out", str(inside)) == 2
        err = capsys.readouterr().err
        assert "の中に置くことはできません" in err and "may not be inside" in err and not inside.exists()
    assert custody_zones.cli("approver", "add", "--id", "d01", "--name", "田中 花子", "--role", "福祉部長",
                             "--key-out", str(keys / "D01.key")) == 0
    out = capsys.readouterr().out
    assert "registered approver D01" in out and stat.S_IMODE(os.stat(keys / "D01.key").st_mode) == 0o600
    assert (keys / "D01.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in registry_file(cfg).read_bytes()
    assert stat.S_IMODE(os.stat(registry_file(cfg)).st_mode) == 0o600
    # one person, one identity: the same name (written another way) under a second id is refused
    with pytest.raises(ApproverProblem, match="one person holds one identity"):
        add_approver(cfg, "D02", " 田中　花子 ", "福祉部長", keys / "D02.key")
    assert not (keys / "D02.key").exists()
    assert custody_zones.cli("approve", "--month", C_MONTH, "--approver-id", "D01", "--key-file",
                             str(keys / "D01.key"), "--basis", BASIS) == 0
    assert "signed approval recorded for 2026-10 by D01 (田中 花子, 福祉部長)" in capsys.readouterr().out


def test_an_approval_written_into_the_file_by_hand_does_not_count(custody_zones):
    approve_as(custody_zones.cfg, C_MONTH, "A", BASIS, "見守り訪問")
    target = custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl"
    # B's own signature over a statement B never gave to the audit log (B's key, used off the books)
    statement = {k: v for k, v in json.loads(target.read_text(encoding="utf-8").splitlines()[0]).items()
                 if k not in ("signature", "statement", "lake_months")}
    copied = signed(statement | {"approver_id": "B", "fingerprint": fingerprint(approver_key("B").public_key())},
                    approver_key("B"))
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(copied, ensure_ascii=False) + "\n")
    with pytest.raises(ReleaseRefused, match="B's approval .* is void: the audit log does not hold it"):
        release(custody_zones.cfg, C_MONTH)


def test_a_damaged_audit_log_stops_a_release_before_any_sheet_is_written(custody_zones):
    _approve_twice(custody_zones)
    lines = _lines(custody_zones.cfg)
    _write(custody_zones.cfg, [lines[1], lines[0], *lines[2:]])
    with pytest.raises(ReleaseRefused, match="audit log fails verification"):
        release(custody_zones.cfg, C_MONTH)
    assert not (custody_zones.cfg.releases_dir / C_MONTH).exists()


@pytest.mark.parametrize("damage", ["failed", "no report"])
def test_approve_refuses_a_month_whose_run_did_not_complete(custody_zones, damage):
    manifest_path = custody_zones.cfg.runs / C_MONTH / "manifest.json"
    if damage == "failed":
        manifest = read_json(manifest_path)
        manifest["status"] = "failed"
        write_json(manifest, manifest_path)
    else:
        (custody_zones.cfg.runs / C_MONTH / "report" / "index.html").unlink()
    with pytest.raises(ReleaseRefused, match="no completed run"):
        approve_as(custody_zones.cfg, C_MONTH, "A", BASIS, "見守り訪問")
    assert not (custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl").exists()


def test_an_approval_records_the_list_the_lake_and_the_key(custody_zones):
    entry = approve(custody_zones.cfg, C_MONTH, " a ", key_file(custody_zones.cfg, "A"), BASIS, "見守り訪問")
    manifest = read_json(custody_zones.cfg.runs / C_MONTH / "manifest.json")
    assert entry["approver"] == "承認者A" and entry["approver_id"] == "A" and entry["role"] == "高齢福祉課長"
    assert entry["list_sha256"] == file_sha256(custody_zones.cfg.runs / C_MONTH / "list.parquet")
    assert entry["lake_fingerprint"] == manifest["lake_fingerprint"]
    assert entry["key_id"] == key_id(load_key(custody_zones.cfg.key_file)) == manifest["key_id"]
    assert set(entry["lake_months"]) == {C_EARLIER, C_MONTH}
    logged = audit.entries(custody_zones.cfg.audit_log)[-1]
    assert logged["event"] == "approve" and logged["lake_fingerprint"] == entry["lake_fingerprint"]


def test_a_swapped_residents_extract_is_never_released(custody_zones):
    _approve_twice(custody_zones)
    extract = custody_zones.cfg.inbox / C_MONTH / "residents.csv"
    names = _names(extract)
    _swap_two_rows(extract)
    with pytest.raises(ReleaseRefused, match="is not the one the 2026-10 list was made from") as refused:
        release(custody_zones.cfg, C_MONTH)
    assert not any(name in str(refused.value) for name in names)      # names never in a message
    assert not (custody_zones.cfg.releases_dir / C_MONTH).exists()


def test_a_corrected_earlier_month_voids_the_approval_and_keeps_the_replaced_record(custody_zones):
    _approve_twice(custody_zones)
    old_record = lake.delivery_record(custody_zones.cfg.lake, C_EARLIER)
    _swap_two_rows(custody_zones.cfg.inbox / C_EARLIER / "residents.csv")
    ingest_month(custody_zones.cfg, C_EARLIER, load_key(custody_zones.cfg.key_file), build_docs=False)
    with pytest.raises(ReleaseRefused, match=f"void: .*delivery {C_EARLIER} corrected"):
        release(custody_zones.cfg, C_MONTH)
    # the replaced delivery record is kept, and the audit log says what replaced what
    kept = read_json(custody_zones.cfg.lake / "_deliveries" / "_replaced" / f"{C_EARLIER}.1.json")
    new_record = lake.delivery_record(custody_zones.cfg.lake, C_EARLIER)
    assert kept["sources"]["residents"]["sha256"] == old_record["sources"]["residents"]["sha256"]
    assert kept["replaced_by"]["residents"] == new_record["sources"]["residents"]["sha256"]
    event = [e for e in audit.entries(custody_zones.cfg.audit_log) if e["event"] == "redelivery"][-1]
    assert event["month"] == C_EARLIER
    assert event["old"]["residents"] != event["new"]["residents"] == new_record["sources"]["residents"]["sha256"]
    assert event["old"]["welfare_contacts"] == event["new"]["welfare_contacts"]
    # approving the stale list is refused too: the run must be redone first
    with pytest.raises(ReleaseRefused, match="has changed since its run"):
        approve_as(custody_zones.cfg, C_MONTH, "C", BASIS, "見守り訪問")
    assert audit.verify(custody_zones.cfg.audit_log) == []


def test_reingesting_the_same_bytes_is_not_a_redelivery(custody_zones):
    """A rerun or `rekey` re-ingests the same files: nothing is replaced, so nothing is kept."""
    record = lake.delivery_record(custody_zones.cfg.lake, C_EARLIER)
    same = Delivery(C_EARLIER, {}, {}, record | {"key_id": "another-key"})
    assert keep_replaced_record(custody_zones.cfg, same) is None
    assert not (custody_zones.cfg.lake / "_deliveries" / "_replaced").exists()
    changed = Delivery(C_EARLIER, {}, {}, record | {"sources": {**record["sources"], "residents": {"sha256": "0" * 64}}})
    kept = keep_replaced_record(custody_zones.cfg, changed)
    assert kept["path"] == f"_deliveries/_replaced/{C_EARLIER}.1.json"
    assert keep_replaced_record(custody_zones.cfg, changed)["path"] == f"_deliveries/_replaced/{C_EARLIER}.2.json"


# --- the key ---------------------------------------------------------------------------------

def _pids(cfg: Config) -> set[str]:
    return set(lake.read_snapshot(cfg.lake, "residents", C_MONTH)["pid"])


def test_another_key_is_refused_and_the_lake_keeps_its_pseudonyms(custody_zones, capsys):
    before, records = _pids(custody_zones.cfg), lake.delivery_record(custody_zones.cfg.lake, C_MONTH)
    _approve_twice(custody_zones)
    custody_zones.cfg.key_file.unlink()
    create_key(custody_zones.cfg.key_file)                       # someone "restored" the wrong key
    assert custody_zones.cli("run", "--month", C_MONTH) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the key the lake was made with" in err
    assert "restore the right key" in err and "mimamori rekey" in err
    assert _pids(custody_zones.cfg) == before and lake.delivery_record(custody_zones.cfg.lake, C_MONTH) == records
    with pytest.raises(KeyProblem, match="not the key the lake"):
        ingest_month(custody_zones.cfg, C_EARLIER, load_key(custody_zones.cfg.key_file), force=True, build_docs=False)
    with pytest.raises(ReleaseRefused, match="another key"):
        release(custody_zones.cfg, C_MONTH)
    assert _pids(custody_zones.cfg) == before


def test_a_missing_key_over_an_existing_lake_says_restore_and_keygen_refuses(custody_zones, capsys):
    custody_zones.cfg.key_file.unlink()
    assert custody_zones.cli("run", "--month", C_MONTH) == 2
    assert "restore its key from the custody backup" in capsys.readouterr().err
    assert custody_zones.cli("keygen") == 2
    err = capsys.readouterr().err
    assert "already holds pseudonyms" in err and not custody_zones.cfg.key_file.exists()


def test_an_interrupted_rekey_is_named_and_not_finished_by_a_run(custody_zones, capsys):
    pending = custody_zones.cfg.key_file.with_name("hmac.key.pending")
    create_key(pending)
    record_path = lake.record_file(custody_zones.cfg.lake, C_EARLIER)
    record = read_json(record_path) | {"key_id": key_id(load_key(pending))}   # re-ingested under the new key
    write_json(record, record_path)
    assert custody_zones.cli("run", "--month", C_MONTH) == 2
    assert "`mimamori rekey` was interrupted" in capsys.readouterr().err
    assert read_json(record_path)["key_id"] == key_id(load_key(pending))


def test_a_world_readable_key_is_refused_before_anything_runs(custody_zones, capsys):
    os.chmod(custody_zones.cfg.key_file, 0o644)
    manifest = (custody_zones.cfg.runs / C_MONTH / "manifest.json").read_bytes()
    assert custody_zones.cli("run", "--month", C_MONTH) == 2
    assert "chmod" in capsys.readouterr().err
    assert (custody_zones.cfg.runs / C_MONTH / "manifest.json").read_bytes() == manifest


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
def test_audit_verify_detects_every_shortening_and_forgery(custody_zones, capsys, damage):
    _approve_twice(custody_zones)
    cfg, lines = custody_zones.cfg, _lines(custody_zones.cfg)
    assert len(lines) >= 4 and custody_zones.cli("audit", "verify") == 0
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
    assert custody_zones.cli("audit", "verify") == 1
    assert "FAILED" in capsys.readouterr().out
    if damage.startswith(("truncate", "empty", "delete", "insert", "append")):
        # nothing more is logged past a shortened or extended log: the next approval stops, named
        with pytest.raises(KeyProblem, match="does not match its anchor"):
            approve_as(cfg, C_MONTH, "C", BASIS, "見守り訪問")
        assert len(read_approvals(cfg)) == 2


def read_approvals(cfg: Config) -> list[str]:
    return (cfg.approvals_dir / f"{C_MONTH}.jsonl").read_text(encoding="utf-8").splitlines()


def test_a_release_record_seals_the_log_against_rollback_with_an_old_anchor(custody_zones, capsys):
    cfg = custody_zones.cfg
    old_lines, old_anchor = _lines(cfg), cfg.audit_anchor.read_bytes()
    _approve_twice(custody_zones)
    info = release(cfg, C_MONTH)
    assert info["audit_head"]["entries"] == len(old_lines) + 2
    assert read_json(cfg.releases_dir / C_MONTH / "release.json")["audit_head"] == info["audit_head"]
    # roll the log and its anchor back to before the approvals: consistent with each other...
    _write(cfg, old_lines)
    cfg.audit_anchor.write_bytes(old_anchor)
    assert audit.verify(cfg.audit_log) == []
    # ...but not with the release record
    assert custody_zones.cli("audit", "verify") == 1
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
    audit.append(log, "approve", month=C_MONTH)           # creates the audit key and the anchor
    assert audit.verify(log) == [] and audit.anchor_path(log).exists()
    old = log.read_bytes().splitlines()
    edited = json.dumps({"event": "ingest", "i": 7, "prev": "0" * 64}, sort_keys=True).encode()
    log.write_bytes(b"".join(line + b"\n" for line in [edited, *old[1:]]))
    assert audit.verify(log)
    log.write_bytes(b"".join(line + b"\n" for line in old[:-1]))
    assert audit.verify(log)                  # cutting the keyed tail off is caught by the anchor


def test_a_lost_audit_key_stops_logging_rather_than_starting_a_new_chain(custody_zones):
    custody_zones.cfg.audit_key_file.unlink()
    with pytest.raises(KeyProblem, match="audit key .* is missing"):
        approve_as(custody_zones.cfg, C_MONTH, "A", BASIS, "見守り訪問")
    assert not custody_zones.cfg.audit_key_file.exists() and not (custody_zones.cfg.approvals_dir / f"{C_MONTH}.jsonl").exists()
    assert any("audit key" in p for p in audit.verify(custody_zones.cfg.audit_log))


@pytest.mark.parametrize("kill_at", ["written:outreach.csv", "written:outreach.xlsx", "written:release.json"])
def test_a_release_killed_midway_is_completed_by_the_rerun_with_the_same_sheet(custody_zones, tmp_path, kill_at):
    """kill -9 during `release` (after the CSV, after the workbook, after the record but before the
    audit entry): the rerun writes the same sheet as an uninterrupted release and logs it once."""
    _approve_twice(custody_zones)
    twin = tmp_path / "twin"
    shutil.copytree(custody_zones.root, twin, symlinks=True)
    uninterrupted = _custody_config(twin)
    release(uninterrupted, C_MONTH)

    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMAMORI_")}
    args = [sys.executable, "-m", "pipelines.cli", "--inbox", str(custody_zones.cfg.inbox), "--work",
            str(custody_zones.cfg.work), "--custody", str(custody_zones.cfg.custody), "release", "--month", C_MONTH]
    killed = subprocess.run(args, env=env | {"PYTHONPATH": str(ROOT), "MIMAMORI_KILL_AT": kill_at},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not [e for e in audit.entries(custody_zones.cfg.audit_log) if e["event"] == "release"]
    rerun = subprocess.run(args, env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    sheets = custody_zones.cfg.releases_dir / C_MONTH
    assert (sheets / "outreach.csv").read_bytes() == (uninterrupted.releases_dir / C_MONTH / "outreach.csv").read_bytes()
    assert not list(sheets.glob(".*.tmp"))
    assert [e["event"] for e in audit.entries(custody_zones.cfg.audit_log)].count("release") == 1
    assert audit.verify(custody_zones.cfg.audit_log) == []
