"""Feature tables cached per as-of month, trusted only while the lake they came from is unchanged."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from features.build import build_features
from pipelines import lake
from pipelines.storage import read_json, read_parquet, write_json, write_parquet

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


def features_for(work: Path, as_of_month: str) -> pd.DataFrame:
    lake_dir = work / "lake"
    table = work / "features" / f"{as_of_month}.parquet"
    meta = work / "features" / f"{as_of_month}.json"
    fingerprint = lake_fingerprint(lake_dir, as_of_month)
    if table.exists() and meta.exists() and read_json(meta).get("lake") == fingerprint:
        return read_parquet(table)
    frame = build_features(lake_dir, as_of_month)
    write_parquet(frame, table)
    write_json({"lake": fingerprint, "rows": len(frame)}, meta)
    return frame
