"""The deliveries as the catalogue commits them: a month's lake files, its work-zone quarantine,
the identified quarantined rows in custody, and the delivery record, written last.

A delivery counts as ingested only when its record exists (pipelines/catalog/lake.py), so a
crash midway leaves a month that is re-ingested whole; a corrected re-delivery keeps the
record it replaces under lake/_deliveries/_replaced/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contract.sources import SOURCES
from contract.storage import write_json, write_parquet
from pipelines import audit
from pipelines.catalog import lake
from pipelines.config import Config
from pipelines.reading import record_texts



@dataclass
class Delivery:
    month: str
    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    summary: dict
    # File line of each table row (tables' rows are in file order), for validation quarantine.
    lines: dict[str, np.ndarray] = field(default_factory=dict)
    # Physical lines each table row spans, so that rows moved to quarantine move their lines.
    spans: dict[str, np.ndarray] = field(default_factory=dict)
    # Quarantined rows as delivered, for <custody>/quarantine (identified: never in the work zone).
    custody: dict[str, pd.DataFrame] = field(default_factory=dict)


def work_quarantine_file(cfg: Config, month: str, source: str) -> Path:
    """<work>/quarantine/<month>/<source>.parquet: line numbers, reasons and pseudonyms only."""
    return cfg.work / "quarantine" / month / f"{source}.parquet"


def _custody_dir(cfg: Config, month: str) -> Path:
    """<custody>/quarantine/<month>, each level created 0700 (mkdir(parents=True) ignores mode)."""
    folder = cfg.custody
    for part in (cfg.custody_quarantine.name, month):
        folder = folder / part
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    return folder


def commit_custody_quarantine(cfg: Config, delivery: Delivery) -> None:
    """The quarantined rows as delivered (every column, plus the record's text) into custody."""
    month = delivery.month
    for name in SOURCES:
        target = cfg.custody_quarantine / month / f"{name}.parquet"
        held = delivery.custody.get(name)
        if held is None or not len(held):
            if target.exists():
                target.unlink()
            continue
        info = delivery.summary["sources"][name]
        texts = record_texts(cfg.inbox / month / info["file"], held["_line"].tolist(), held["_span"].tolist())
        out = held.drop(columns=["_span"]).assign(text=pd.Series(texts, dtype="str"))
        _custody_dir(cfg, month)
        write_parquet(out, target)  # a mkstemp file: 0600 from creation
        os.chmod(target, 0o600)


def commit_delivery(cfg: Config, delivery: Delivery) -> None:
    """Write the month's lake files, replacing that month only; the record goes last."""
    month = delivery.month
    record = lake.record_file(cfg.lake, month)
    replaced = keep_replaced_record(cfg, delivery)
    if record.exists():
        record.unlink()  # the month is in flux until the new record lands
    commit_custody_quarantine(cfg, delivery)
    files: dict[str, str] = {}   # what the record vouches for: work-relative path -> SHA-256
    for name in SOURCES:
        target = lake.source_file(cfg.lake, name, month)
        if name in delivery.tables:
            files[lake.recorded_name(cfg.lake, target)] = write_parquet(delivery.tables[name], target)
        elif target.exists():
            target.unlink()  # a corrected delivery without this source replaces it with nothing
        q_target = work_quarantine_file(cfg, month, name)
        if len(delivery.quarantine.get(name, ())):
            files[lake.recorded_name(cfg.lake, q_target)] = write_parquet(delivery.quarantine[name], q_target)
        elif q_target.exists():
            q_target.unlink()
    delivery.summary["files"] = dict(sorted(files.items()))
    write_json(delivery.summary, record)
    if replaced is not None:
        audit.append(cfg.audit_log, "redelivery", month=month, replaced_record=replaced["path"],
                     old=replaced["old"], new=replaced["new"])


def keep_replaced_record(cfg: Config, delivery: Delivery) -> dict | None:
    """Before a corrected re-delivery replaces a month, keep the replaced delivery record.

    The old record (with its input files' SHA-256) goes to lake/_deliveries/_replaced/<month>.<n>.json
    (n = 1, 2, … in order of replacement), so what was replaced stays provable. Re-ingesting the
    same bytes (a rerun, or `rekey`) replaces nothing and keeps nothing.
    """
    old = lake.delivery_record(cfg.lake, delivery.month)
    if old is None:
        return None
    before = {n: s["sha256"] for n, s in old.get("sources", {}).items()}
    after = {n: s["sha256"] for n, s in delivery.summary["sources"].items()}
    if before == after:
        return None
    folder = lake.record_file(cfg.lake, delivery.month).parent / "_replaced"
    n = 1 + sum(1 for _ in folder.glob(f"{delivery.month}.*.json")) if folder.is_dir() else 1
    target = folder / f"{delivery.month}.{n}.json"
    write_json(old | {"replaced_by": after}, target)
    return {"path": str(target.relative_to(cfg.lake)), "old": before, "new": after}
