"""Feature tables cached per as-of month, trusted only while the lake they came from is unchanged.

    <work>/features/<month>.parquet   the table
    <work>/features/<month>.json      its sidecar: {"lake": fingerprint of the deliveries it saw,
                                      "rows", "partitions", "sha256": SHA-256 of the table's bytes}

The sidecar is removed before a table is rebuilt and written after it, so a sidecar on disk
always describes a complete table; a table whose bytes differ from its sidecar's `sha256` was
damaged afterwards and stops the batch (DataDamaged) rather than being scored.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.build import People, build_features
from pipelines import lake
from pipelines.storage import DataDamaged, file_sha256, read_json, write_json, write_parquet

# Peak working memory of build_features per resident of the snapshot: +1,422 MB for 1,000,287
# residents with 24 months of history in one partition (docs/benchmarks.md). It grows with the
# ward; the only windows that grow with the history ("months since" a checkup or a contact)
# read a few per cent of a month's rows per month.
WORKING_BYTES_PER_RESIDENT = 1500

FEATURE_CODE_VERSION = "1"  # bump when build_features changes, so cached tables are rebuilt


def lake_fingerprint(lake_dir: Path, as_of_month: str) -> str:
    """Hash of the delivery records a month's features can see (deliveries up to the month)."""
    digest = hashlib.sha256(FEATURE_CODE_VERSION.encode())
    for month in lake.ingested_months(lake_dir):
        if month <= as_of_month:
            record = lake.delivery_record(lake_dir, month)
            digest.update(json.dumps({"m": month, "s": {k: v["sha256"] for k, v in record["sources"].items()},
                                      "k": record["key_id"]}, sort_keys=True).encode())
    return digest.hexdigest()


def partitions(lake_dir: Path, as_of_month: str, memory_mb: float | None) -> int:
    """How many partitions of people keep the features stage's working memory under
    `memory_mb` (None: one), from the month's residents and the measured bytes per resident."""
    snapshot = lake.source_file(lake_dir, "residents", as_of_month)
    if memory_mb is None or not lake.check_file(lake_dir, snapshot, as_of_month):
        return 1
    residents = pq.ParquetFile(snapshot).metadata.num_rows
    return max(1, math.ceil(residents * WORKING_BYTES_PER_RESIDENT / (memory_mb * 2**20)))


def _rows_of(table: pa.Table, pids: pd.Series | None) -> pd.DataFrame:
    if pids is not None:   # in Arrow: converting a million pids to pandas costs more than the rest
        wanted = pa.array(pd.Series(pids, dtype="str").array)
        table = table.filter(pc.fill_null(pc.is_in(table["pid"], value_set=wanted), False))
    return table.to_pandas()


def _cached_table(table: Path, meta: Path, sidecar: dict) -> pa.Table | None:
    """The cached table its sidecar vouches for (None: none cached); DataDamaged if it changed."""
    repair = f"delete {table.name} and {meta.name} in {table.parent} and rerun (they are rebuilt from the lake)"
    if not table.exists():   # a cache cleared by hand: rebuilt
        return None
    if "sha256" in sidecar and file_sha256(table) != sidecar["sha256"]:
        raise DataDamaged(f"feature table {table} does not match its sidecar {meta} (truncated or altered): {repair}")
    try:
        return pq.read_table(table)
    except pa.ArrowInvalid as exc:   # a sidecar from before fingerprints: caught only here
        raise DataDamaged(f"feature table {table} is not a readable Parquet file: {repair}") from exc


def features_for(work: Path, as_of_month: str, memory_mb: float | None = None,
                 pids: pd.Series | None = None) -> pd.DataFrame:
    """The month's feature table (only the rows of `pids`, if given, in table order): cached
    while the lake it came from is unchanged, otherwise built partition by partition (see
    `partitions`); the table is the same for any count."""
    lake_dir = work / "lake"
    table = work / "features" / f"{as_of_month}.parquet"
    meta = work / "features" / f"{as_of_month}.json"
    fingerprint = lake_fingerprint(lake_dir, as_of_month)
    if meta.exists() and (sidecar := read_json(meta)).get("lake") == fingerprint:
        cached = _cached_table(table, meta, sidecar)
        if cached is not None:
            return _rows_of(cached, pids)
    count = partitions(lake_dir, as_of_month, memory_mb)
    parts = [build_features(lake_dir, as_of_month, People(i, count)) for i in range(count)]
    frame = pd.concat(parts, ignore_index=True) if count > 1 else parts[0]
    meta.unlink(missing_ok=True)   # no sidecar names a table in flux
    digest = write_parquet(frame, table)
    write_json({"lake": fingerprint, "rows": len(frame), "partitions": count, "sha256": digest}, meta)
    return frame if pids is None else frame[frame["pid"].isin(pids)].reset_index(drop=True)
