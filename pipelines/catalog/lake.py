"""The pseudonymous lake: one Parquet file per source per delivery month.

    <work>/lake/<source>/<YYYY-MM>.parquet     typed rows, pseudonyms only, `known_on` column
    <work>/lake/_deliveries/<YYYY-MM>.json     the delivery record, written last

A delivery counts as ingested only when its record exists and names the same input
fingerprints and key; anything else is re-ingested whole, so a crash midway is never trusted.

The record's `files` maps each lake and quarantine file the commit wrote (path relative to the
work dir, e.g. "lake/residents/2026-04.parquet") to the SHA-256 of its bytes. Every read checks
the file against it (hashed once per process, contract/storage.file_sha256), so a truncated,
altered, deleted or unrecorded file stops the batch with `DataDamaged` naming the file and the
re-ingest that repairs it, instead of a raw Parquet error or, worse, a list from altered rows.
Records written before fingerprints were recorded have no `files` and are read unchecked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.months import month_end
from contract.sources import SOURCES
from contract.messages import NOT_PARQUET, damaged, reingest
from contract.storage import DataDamaged, file_sha256, read_json, read_parquet
from models.labels import Outcomes


def source_file(lake: Path, source: str, month: str) -> Path:
    return lake / source / f"{month}.parquet"


def record_file(lake: Path, month: str) -> Path:
    return lake / "_deliveries" / f"{month}.json"


def delivery_record(lake: Path, month: str) -> dict | None:
    path = record_file(lake, month)
    return read_json(path) if path.exists() else None


def ingested_months(lake: Path) -> list[str]:
    folder = lake / "_deliveries"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []


# What each kind of lake file is called in the messages: (Japanese, English).
_KINDS = {"lake file": ("レイクのファイル", "lake file"), "quarantine file": ("隔離行のファイル", "quarantine file")}


def recorded_name(lake: Path, path: Path) -> str:
    """How a delivery record names a file of the work dir (relative to it, '/'-separated)."""
    return path.relative_to(lake.parent).as_posix()


# (record path, inode, size, mtime_ns, ctime_ns) -> {"files": ...} of that record: features read
# every month's record once per source and partition; this process parses each version once.
_RECORDS: dict[tuple, dict] = {}


def _record_for_checks(lake: Path, month: str) -> dict | None:
    path = record_file(lake, month)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if stamp not in _RECORDS:
        record = read_json(path)
        _RECORDS[stamp] = {"files": record["files"]} if "files" in record else {}
    return _RECORDS[stamp]


def check_file(lake: Path, path: Path, month: str, record: dict | None = None, what: str = "lake file") -> bool:
    """Whether the delivery record of `month` names `path`; raise DataDamaged if the file does
    not match what the record says was committed (truncated, altered, deleted or unrecorded)."""
    record = _record_for_checks(lake, month) if record is None else record
    exists = path.exists()
    kind = _KINDS[what]
    if record is None:
        if exists:
            raise DataDamaged(damaged(path, kind, (f"{month} の提供記録にありません（取り込みが中断されたか、手で置かれたファイル）",
                                                   f"has no delivery record for {month} (an interrupted ingest or a "
                                                   "file put there by hand)"), reingest(month)))
        return False
    files = record.get("files")
    if files is None:   # a lake committed before fingerprints were recorded: nothing to check against
        return exists
    expected = files.get(recorded_name(lake, path))
    if expected is None:
        if exists:
            raise DataDamaged(damaged(path, kind, (f"提供記録 {record_file(lake, month)} に載っていません（手で置かれたか、以前の提供の残り）",
                                                   f"is not named by the delivery record {record_file(lake, month)} "
                                                   "(put there by hand or left by an older delivery)"), reingest(month)))
        return False
    if not exists:
        raise DataDamaged(damaged(path, kind, ("提供記録に載っているのにありません", "named by its delivery record is missing"),
                                  reingest(month)))
    if file_sha256(path) != expected:
        raise DataDamaged(damaged(path, kind, ("提供記録と一致しません（途中で切れているか書き換えられています）",
                                               "does not match its delivery record (truncated or altered)"), reingest(month)))
    return True


def verify_month(lake: Path, month: str) -> None:
    """Check every lake and quarantine file the month's record names (DataDamaged if any differs)."""
    record = delivery_record(lake, month)
    for name in (record or {}).get("files", {}):
        check_file(lake, lake.parent / name, month, record,
                   "quarantine file" if name.startswith("quarantine/") else "lake file")


def read_snapshot(lake: Path, source: str, month: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A snapshot source as delivered in `month` (None if that month did not deliver it)."""
    path = source_file(lake, source, month)
    return read_parquet(path, columns=columns) if check_file(lake, path, month) else None


def event_key(source: str) -> list[str]:
    """The lake columns that identify an event of `source` (its contract key, pseudonymised)."""
    return [("pid" if c == "resident_id" else "hid" if c == "household_id" else c) for c in SOURCES[source].key]


def read_events(lake: Path, source: str, as_of_month: str, columns: list[str] | None = None,
                where: Callable[[pa.Table], pa.Array] | None = None) -> pd.DataFrame | None:
    """Every event of `source` known by the end of `as_of_month`, newest delivery winning per key.

    Only deliveries up to the as-of month are opened, so nothing known later can leak in.
    `columns` reads only those columns (plus the key and `known_on`, which the newest-wins rule
    needs), so a feature over two columns does not decode every column of every delivery.
    `where(table)` -> boolean mask keeps only matching rows of each delivery before the
    deliveries are combined; it must depend on key columns only (e.g. the event's date, which
    is part of every event key), so that all rows sharing a key are kept or dropped together
    and the newest-wins rule picks the same row as without the filter.
    """
    folder = lake / source
    # Every month on disk or on record up to the as-of month: a file without a record, or a
    # recorded file that is missing, is damage, never a month that simply had no events.
    months = {p.stem for p in folder.glob("*.parquet")} if folder.exists() else set()
    months |= set(ingested_months(lake))
    paths = [source_file(lake, source, m) for m in sorted(months) if m <= as_of_month]
    paths = [p for p in paths if check_file(lake, p, p.stem)]
    if not paths:
        return None
    key = event_key(source)
    wanted = None if columns is None else list(dict.fromkeys([*columns, *key, "known_on"]))
    tables = []
    for path in paths:
        # ParquetFile.read: same table as pq.read_table, without its per-call dataset set-up
        # (which cost more than reading a small delivery's columns).
        try:
            table = pq.ParquetFile(path).read(columns=wanted) if wanted is not None else pq.read_table(path)
        except pa.ArrowInvalid as exc:   # a record without fingerprints cannot catch this earlier
            raise DataDamaged(damaged(path, _KINDS["lake file"], NOT_PARQUET, reingest(path.stem))) from exc
        tables.append(table.filter(where(table)) if where is not None else table)
    # Newest delivery per key in pandas: Arrow's multi-column group_by on string keys measured
    # several times slower than drop_duplicates here.
    frames = [t.to_pandas() for t in tables if t.num_rows]
    if not frames:
        return tables[-1].to_pandas()
    events = pd.concat(frames, ignore_index=True)
    events = events.sort_values("known_on", kind="stable").drop_duplicates(key, keep="last")
    return events.reset_index(drop=True)


def outcomes_known_at(lake: Path, current_month: str) -> Outcomes:
    """Visit outcomes and adverse events as known at the end of `current_month` (labels' input)."""
    known = month_end(current_month)

    def read(name: str, columns: list[str]) -> pd.DataFrame:
        events = read_events(lake, name, current_month)
        if events is None:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
        return events.loc[events["known_on"] <= known, columns]

    return Outcomes(read("outreach_outcomes", ["pid", "visit_date", "outcome"]),
                    read("adverse_events", ["pid", "event_date", "event_type"]))
