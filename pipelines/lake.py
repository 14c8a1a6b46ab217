"""The pseudonymous lake: one Parquet file per source per delivery month.

    <work>/lake/<source>/<YYYY-MM>.parquet     typed rows, pseudonyms only, `known_on` column
    <work>/lake/_deliveries/<YYYY-MM>.json     the delivery record, written last

A delivery counts as ingested only when its record exists and names the same input
fingerprints and key; anything else is re-ingested whole, so a crash midway is never trusted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import SOURCES
from pipelines.storage import read_json, read_parquet


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


def read_snapshot(lake: Path, source: str, month: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A snapshot source as delivered in `month` (None if that month did not deliver it)."""
    path = source_file(lake, source, month)
    return read_parquet(path, columns=columns) if path.exists() else None


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
    if not folder.exists():
        return None
    paths = sorted(p for p in folder.glob("*.parquet") if p.stem <= as_of_month)
    if not paths:
        return None
    key = event_key(source)
    wanted = None if columns is None else list(dict.fromkeys([*columns, *key, "known_on"]))
    tables = []
    for path in paths:
        # ParquetFile.read: same table as pq.read_table, without its per-call dataset set-up
        # (which cost more than reading a small delivery's columns).
        table = pq.ParquetFile(path).read(columns=wanted) if wanted is not None else pq.read_table(path)
        tables.append(table.filter(where(table)) if where is not None else table)
    # Newest delivery per key in pandas: Arrow's multi-column group_by on string keys measured
    # several times slower than drop_duplicates here.
    frames = [t.to_pandas() for t in tables if t.num_rows]
    if not frames:
        return tables[-1].to_pandas()
    events = pd.concat(frames, ignore_index=True)
    events = events.sort_values("known_on", kind="stable").drop_duplicates(key, keep="last")
    return events.reset_index(drop=True)
