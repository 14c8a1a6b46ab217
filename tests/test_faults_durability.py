"""Faults a batch must survive (issue 12 items 4, 5, 7): kill -9 anywhere, a second batch, damaged
files, a full disk.

Each scenario works on fresh copies of one small ward (1,000 residents × 2 months, one
quarantined row), built once for the module, and runs the real `mimamori` command in a
subprocess where a process must die or be refused. Kills are deterministic: the command is told
to SIGKILL itself at a named checkpoint (pipelines/faults.py: a stage's start, a temporary file
complete but not renamed, a rename made durable), so every run of the suite kills at the same
instants; time-based kills would sample different instants on a loaded machine and could miss
the windows that matter (a lake file renamed before its delivery record, a feature table
before its sidecar).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import lake
from pipelines.config import Config, load_config
from pipelines.ingest import ingest_month
from pipelines.locks import LOCK_NAME, LockHeld, custody_lock, holder, work_lock
from pipelines.monthly import completed_run, inbox_months, run_month, run_months
from pipelines.pseudonymise import create_key, load_key
from pipelines.storage import DataDamaged
from pipelines.synth import generate_ward

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
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mnt)], capture_output=True)
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
