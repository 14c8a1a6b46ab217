"""The features' datasets: their inputs loaded from the lake, and the feature tables cached per
as-of month, trusted only while the lake they came from is unchanged.

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
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.partitions import PidRange
from contract.messages import NOT_PARQUET, damaged
from contract.storage import DataDamaged, file_sha256, read_json, write_json, write_parquet
from features.build import CERTIFICATION_COLUMNS, EVENT_INPUTS, RESIDENT_COLUMNS, feature_table, window_start
from pipelines.catalog import lake

# Peak working memory of the features stage per resident of the snapshot: +1,422 MB for 1,000,287
# residents with 24 months of history in one partition (docs/benchmarks.md). It grows with the
# ward; the only windows that grow with the history ("months since" a checkup or a contact)
# read a few per cent of a month's rows per month.
WORKING_BYTES_PER_RESIDENT = 1500

FEATURE_CODE_VERSION = "4"  # bump when features/build.py changes, so cached tables are rebuilt


def lake_fingerprint(lake_dir: Path, as_of_month: str) -> str:
    """Hash of the delivery records a month's features can see (deliveries up to the month)."""
    digest = hashlib.sha256(FEATURE_CODE_VERSION.encode())
    for month in lake.ingested_months(lake_dir):
        if month <= as_of_month:
            record = lake.delivery_record(lake_dir, month)
            digest.update(json.dumps({"m": month, "s": {k: v["sha256"] for k, v in record["sources"].items()},
                                      "k": record["key_id"]}, sort_keys=True).encode())
    return digest.hexdigest()


def range_count(lake_dir: Path, as_of_month: str, memory_mb: float | None) -> int:
    """How many pid ranges of people keep the features stage's working memory under
    `memory_mb` (None: one), from the month's residents and the measured bytes per resident."""
    snapshot = lake.source_file(lake_dir, "residents", as_of_month)
    if memory_mb is None or not lake.check_file(lake_dir, snapshot, as_of_month):
        return 1
    residents = pq.ParquetFile(snapshot).metadata.num_rows
    return max(1, math.ceil(residents * WORKING_BYTES_PER_RESIDENT / (memory_mb * 2**20)))


def _after(column: str, start: pd.Timestamp) -> Callable[[pa.Table], pa.Array]:
    """Rows whose `column` lies after `start` (null dates fail, as NaT comparisons do in pandas).

    A column of another type than a timestamp keeps every row: the filter only saves work, the
    feature functions apply their windows again.
    """
    def mask(table: pa.Table) -> pa.Array:
        values = table[column]
        if not pa.types.is_timestamp(values.type) or values.type.tz is not None:
            return pa.array(np.ones(table.num_rows, dtype=bool))
        bound = pa.scalar(start.to_datetime64(), pa.timestamp("us")).cast(values.type)
        return pc.fill_null(pc.greater(values, bound), False)
    return mask


def _billing_window(first: str, last: str) -> Callable[[pa.Table], pa.Array]:
    """Rows billed in [first, last] ("YYYY-MM" strings compare like the months they name)."""
    def mask(table: pa.Table) -> pa.Array:
        values = table["billing_month"]
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            return pa.array(np.ones(table.num_rows, dtype=bool))
        return pc.fill_null(pc.and_(pc.greater_equal(values, first), pc.less_equal(values, last)), False)
    return mask


def _both(first: Callable[[pa.Table], pa.Array], second: Callable[[pa.Table], pa.Array] | None
          ) -> Callable[[pa.Table], pa.Array]:
    return first if second is None else (lambda table: pc.and_(first(table), second(table)))


def _window(window: str | None, columns: list[str], as_of_month: str) -> Callable[[pa.Table], pa.Array] | None:
    if window is None:
        return None
    start = window_start(window, as_of_month)
    return _billing_window(start, as_of_month) if window == "billing_12m" else _after(columns[1], start)


def feature_inputs(lake_dir: Path, as_of_month: str, people: PidRange = PidRange()) -> dict[str, pd.DataFrame | None]:
    """The tables the features stage reads for one pid range: the as-of snapshots, and the
    events of every delivery up to the as-of month with only their columns, only rows inside
    their window and only rows of the range's people (NHI bills: of their households).

    Each window is on the event's own date, and the range on the pid or hid; both are part
    of the source's key, so every row a feature function would keep after the newest-delivery-
    wins rule is still read and the features are the same as on the whole history of the
    whole ward (see lake.read_events).
    """
    residents = people.rows_of(lake.read_snapshot(lake_dir, "residents", as_of_month, columns=RESIDENT_COLUMNS))
    if residents is None:
        raise FileNotFoundError(f"the lake has no residents snapshot for {as_of_month}")

    def in_range(key: str) -> Callable[[pa.Table], pa.Array] | None:
        if people.count == 1:
            return None
        if key == "hid":   # the range's households (only needed when there is more than one range)
            households = pa.array(pd.Series(residents["hid"].unique(), dtype="str").array)
            return lambda table: pc.fill_null(pc.is_in(table["hid"], value_set=households), False)
        return lambda table: people.mask(table["pid"])

    tables: dict[str, pd.DataFrame | None] = {"residents": residents}
    for name, (columns, window) in EVENT_INPUTS.items():
        ours, where = in_range(columns[0]), _window(window, columns, as_of_month)
        where = ours if where is None else where if ours is None else _both(ours, where)
        tables[name] = lake.read_events(lake_dir, name, as_of_month, columns, where)
    tables["care_certifications"] = people.rows_of(
        lake.read_snapshot(lake_dir, "care_certifications", as_of_month, columns=CERTIFICATION_COLUMNS))
    return tables


def history_months(lake_dir: Path, as_of_month: str) -> int:
    """Months the lake covers up to the as-of month: what "months since" takes when nothing is on record."""
    first_month = min(lake.ingested_months(lake_dir))
    return (pd.Period(as_of_month, "M") - pd.Period(first_month, "M")).n + 1


def features_from_lake(lake_dir: Path, as_of_month: str, people: PidRange = PidRange()) -> pd.DataFrame:
    """The features stage on one pid range, its inputs loaded from the lake (nothing cached)."""
    return feature_table(feature_inputs(lake_dir, as_of_month, people), as_of_month,
                         history_months(lake_dir, as_of_month))


def _rows_of(table: pa.Table, pids: pd.Series | None) -> pd.DataFrame:
    if pids is not None:   # in Arrow: converting a million pids to pandas costs more than the rest
        wanted = pa.array(pd.Series(pids, dtype="str").array)
        table = table.filter(pc.fill_null(pc.is_in(table["pid"], value_set=wanted), False))
    return table.to_pandas()


def _cached_table(table: Path, meta: Path, sidecar: dict) -> pa.Table | None:
    """The cached table its sidecar vouches for (None: none cached); DataDamaged if it changed."""
    repair = (f"{table.parent} の {table.name} と {meta.name} を削除して再実行してください（レイクから作り直されます）",
              f"delete {table.name} and {meta.name} in {table.parent} and rerun (they are rebuilt from the lake)")
    kind = ("特徴量テーブル", "feature table")
    if not table.exists():   # a cache cleared by hand: rebuilt
        return None
    if "sha256" in sidecar and file_sha256(table) != sidecar["sha256"]:
        raise DataDamaged(damaged(table, kind, (f"付随ファイル {meta} と一致しません（途中で切れているか書き換えられています）",
                                                f"does not match its sidecar {meta} (truncated or altered)"), repair))
    try:
        return pq.read_table(table)
    except pa.ArrowInvalid as exc:   # a sidecar from before fingerprints: caught only here
        raise DataDamaged(damaged(table, kind, NOT_PARQUET, repair)) from exc


# How an engine computes a month's whole feature table from the lake in at least `count` pid
# ranges: (lake dir, as-of month, count) -> (the table in pid order, the ranges it used).
Partitions = Callable[[Path, str, int], tuple[pd.DataFrame, int]]


def local_partitions(lake_dir: Path, as_of_month: str, count: int) -> tuple[pd.DataFrame, int]:
    """The local engine: the features stage on ranges 0 … count-1 in turn, concatenated (the
    ranges are contiguous in pid order, so the result is in pid order)."""
    parts = [features_from_lake(lake_dir, as_of_month, PidRange(i, count)) for i in range(count)]
    return (pd.concat(parts, ignore_index=True) if count > 1 else parts[0]), count


def month_features(work: Path, as_of_month: str, memory_mb: float | None = None,
                   pids: pd.Series | None = None, partitions: Partitions = local_partitions) -> pd.DataFrame:
    """The month's feature table (only the rows of `pids`, if given, in table order): cached
    while the lake it came from is unchanged, otherwise computed by the features stage range by
    range (see `range_count`; `partitions` runs them: in this process, or on Spark) and saved;
    the table is the same for any count."""
    lake_dir = work / "lake"
    table = work / "features" / f"{as_of_month}.parquet"
    meta = work / "features" / f"{as_of_month}.json"
    fingerprint = lake_fingerprint(lake_dir, as_of_month)
    if meta.exists() and (sidecar := read_json(meta)).get("lake") == fingerprint:
        cached = _cached_table(table, meta, sidecar)
        if cached is not None:
            return _rows_of(cached, pids)
    frame, count = partitions(lake_dir, as_of_month, range_count(lake_dir, as_of_month, memory_mb))
    meta.unlink(missing_ok=True)   # no sidecar names a table in flux
    digest = write_parquet(frame, table)
    write_json({"lake": fingerprint, "rows": len(frame), "partitions": count, "sha256": digest}, meta)
    return frame if pids is None else frame[frame["pid"].isin(pids)].reset_index(drop=True)
