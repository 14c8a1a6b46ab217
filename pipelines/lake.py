"""The pseudonymous lake: one Parquet file per source per delivery month.

    <work>/lake/<source>/<YYYY-MM>.parquet     typed rows, pseudonyms only, `known_on` column
    <work>/lake/_deliveries/<YYYY-MM>.json     the delivery record, written last

A delivery counts as ingested only when its record exists and names the same input
fingerprints and key; anything else is re-ingested whole, so a crash midway is never trusted.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

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


def read_snapshot(lake: Path, source: str, month: str) -> pd.DataFrame | None:
    """A snapshot source as delivered in `month` (None if that month did not deliver it)."""
    path = source_file(lake, source, month)
    return read_parquet(path) if path.exists() else None


def read_events(lake: Path, source: str, as_of_month: str) -> pd.DataFrame | None:
    """Every event of `source` known by the end of `as_of_month`, newest delivery winning per key.

    Only deliveries up to the as-of month are opened, so nothing known later can leak in.
    """
    folder = lake / source
    if not folder.exists():
        return None
    paths = sorted(p for p in folder.glob("*.parquet") if p.stem <= as_of_month)
    if not paths:
        return None
    frames = [read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return read_parquet(paths[-1])
    events = pd.concat(frames, ignore_index=True)
    spec = SOURCES[source]
    key = [("pid" if c == "resident_id" else "hid" if c == "household_id" else c) for c in spec.key]
    events = events.sort_values("known_on", kind="stable").drop_duplicates(key, keep="last")
    return events.reset_index(drop=True)
