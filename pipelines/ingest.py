"""Ingest one delivery month: read every source, pseudonymise, validate, then commit to the lake.

Identified values exist only in memory here; the lake, the quarantine and the delivery record
hold pseudonyms and derived fields only. A refused file (ContractError) or a failing critical
expectation stops the month before anything is written, so the lake keeps its previous state.
Rows failing a `quarantine` expectation (expectations/policy.py) join the contract's quarantined
rows, named with the checks they failed. A quarantined row may hold anything anywhere (a shifted
row moves a name into any column), so its values stay in custody:

    <custody>/quarantine/<month>/<source>.parquet   the rows as delivered (folders 0700, files 0600)
    <work>/quarantine/<month>/<source>.parquet      pseudonyms (where the ID parsed), line, reason,
                                                    expectation and the columns at fault only
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# ValidationFailed lives with the policy (features raise it too) and is re-exported here.
from expectations.policy import ValidationFailed, failure_message  # noqa: F401  (no GX import)
from pipelines import audit
from pipelines.catalog import lake, validation
from pipelines.catalog.deliveries import Delivery, commit_delivery
from pipelines.config import Config
from pipelines.leakscan import Groups, needles_to_keep, needles_wanted, put_needles
from contract.messages import bilingual, reason_ja
from contract.sources import SOURCES, Source
from contract.months import age_on, check_month, month_end
from pipelines.pseudonymise import check_lake_key, key_id, pseudonymise
from pipelines.parsing import parse_ids
from pipelines.reading import ContractError, LineAccountingError, check_lines, delivery_file, read_source
from contract.storage import file_sha256

ID_KINDS = {"resident_id": ("pid", "resident"), "household_id": ("hid", "household")}


def delivery_inputs(month_dir: Path) -> dict[str, Path]:
    return {name: path for name in SOURCES if (path := delivery_file(month_dir, name)) is not None}


def _normalised_ids(values: pd.Series) -> pd.Series:
    """NFKC and stripped, as the IDs are pseudonymised.

    Contract rows hold digit-only IDs (pipelines/parsing.parse_ids), which NFKC and strip leave
    as they are; checking that in Arrow skips pandas' per-value Python normalisation, which cost
    more than the hashing. Anything else (quarantined raw cells) takes the general path.
    """
    text = values.astype("str")
    array = pa.array(text.array, type=pa.large_string())
    if pc.all(pc.match_substring_regex(array, "^[0-9]+$")).as_py() is not False:  # nulls stay NA
        return text
    return text.str.normalize("NFKC").str.strip()


def _replace_ids(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    out = frame.copy()
    for column, (pseudo, kind) in ID_KINDS.items():
        if column in out.columns:
            raw = _normalised_ids(out[column])
            out.insert(out.columns.get_loc(column), pseudo,
                       pseudonymise(raw, key, kind))
            out = out.drop(columns=column)
    return out


def _residents_derived(rows: pd.DataFrame, month: str) -> pd.DataFrame:
    """Replace birth and move-in dates by whole years of age and months at the address."""
    end = month_end(month)
    moved = rows["moved_in_date"]
    months_here = (end.year - moved.dt.year) * 12 + (end.month - moved.dt.month)
    out = rows.assign(
        age=age_on(rows["birth_date"], end),
        household_size=rows.groupby("hid")["pid"].transform("size").astype("Int64"),
        months_at_address=months_here.astype("Int64"),
    )
    return out.drop(columns=["birth_date", "moved_in_date"])


def pseudonymise_rows(rows: pd.DataFrame, source: Source, key: bytes, month: str) -> pd.DataFrame:
    """Typed contract rows -> lake rows: keyed pseudonyms, no direct identifier, knowledge date."""
    out = _replace_ids(rows.drop(columns=["_line"], errors="ignore"), key)
    if source.name == "residents":
        out = _residents_derived(out, month)
    identifiers = [c.name for c in source.columns if c.identifier and c.name in out.columns]
    out = out.drop(columns=identifiers)
    out["known_on"] = month_end(month)
    return out.reset_index(drop=True)


def _fault_columns(reasons: pd.Series) -> pd.Series:
    """The contract columns a row's reasons name ("amount_due: negative; duplicate key (a, b)" ->
    "amount_due, a, b"); "*" for a malformed row, whose fields map to no column."""
    def columns(text: str) -> str:
        names: list[str] = []
        for reason in str(text).split("; "):
            if reason.startswith("malformed row"):
                names.append("*")
            elif reason.startswith("duplicate key ("):
                names.extend(reason[len("duplicate key ("):].rstrip(")").split(", "))
            else:
                names.append(reason.split(": ", 1)[0])
        return ", ".join(dict.fromkeys(names))
    return pd.Series([columns(r) for r in reasons], index=reasons.index, dtype="str")


def pseudonymise_quarantine(bad: pd.DataFrame, source: Source, key: bytes) -> pd.DataFrame:
    """The analyst zone's view of quarantined contract rows: no delivered value at all.

    A quarantined row failed the contract, so nothing proves its values are what their column
    says (a shifted row puts a name into `district` or a birth date into `sex`). What is kept is
    safe whatever landed where: the keyed pseudonym of an ID that parsed as an ID (a name in the
    ID column does not parse, and is not even hashed), the line, the reason and the columns at
    fault. The row as delivered goes to custody (custody_quarantine).
    """
    out = pd.DataFrame(index=bad.index)
    for column, (pseudo, kind) in ID_KINDS.items():
        if column in [c.name for c in source.columns]:
            ids = parse_ids(bad[column]) if column in bad.columns else pd.Series(pd.NA, index=bad.index, dtype="str")
            out[pseudo] = pseudonymise(ids.astype("str"), key, kind)
    out["_line"] = bad["_line"].to_numpy(dtype=np.int64) if len(bad) else np.zeros(0, dtype=np.int64)
    out["reason"] = bad["reason"].astype("str") if "reason" in bad.columns else pd.Series(dtype="str")
    out["expectation"] = pd.Series(pd.NA, index=bad.index, dtype="str")
    out["columns"] = _fault_columns(out["reason"])
    return out.reset_index(drop=True)


def _custody_rows(bad: pd.DataFrame) -> pd.DataFrame:
    """Contract-quarantined rows as delivered, for the custodian (text is added at commit)."""
    out = bad.astype({c: "str" for c in bad.columns if c != "_line"}).reset_index(drop=True)
    out["expectation"] = pd.Series(pd.NA, index=out.index, dtype="str")
    out["_span"] = np.ones(len(out), dtype=np.int64)
    return out


@dataclass(frozen=True)
class FileRead:
    """One delivered file read and pseudonymised: what read_delivery keeps of it. `custody`
    (the quarantined rows as delivered) and `needles` (the leak guard's identifiers of a
    residents extract, when asked for) are identified: they go to the custody zone only."""

    table: pd.DataFrame
    lines: np.ndarray
    spans: np.ndarray
    quarantine: pd.DataFrame
    custody: pd.DataFrame
    info: dict
    needles: Groups | None = None


def read_file(path: Path, spec: Source, key: bytes, month: str, needles: bool = False) -> FileRead:
    """Read one delivered file against the contract and pseudonymise it (the stage an engine
    runs per file). `needles`: also give the leak guard's needles of this residents extract."""
    read = read_source(path, spec, delivery_month=month)
    reasons = (read.quarantine["reason"].str.split("; ").explode().value_counts().sort_index()
               if len(read.quarantine) else pd.Series(dtype=int))
    info = {
        "file": path.name,
        "sha256": file_sha256(path),
        "encoding": read.encoding,
        "rows": int(len(read.rows) + len(read.quarantine)),
        "accepted": int(len(read.rows)),
        "quarantined": int(len(read.quarantine)),
        "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        "unknown_columns": list(read.unknown_columns),
        # Every physical line (Parquet: row) of the file, counted once; see reading.check_lines.
        "lines": dict(read.lines),
    }
    return FileRead(pseudonymise_rows(read.rows, spec, key, month), read.rows["_line"].to_numpy(dtype=np.int64),
                    read.spans, pseudonymise_quarantine(read.quarantine, spec, key), _custody_rows(read.quarantine),
                    info, needles_to_keep(read, month) if needles else None)


# How an engine reads a month's files: ({source: path}, key, month, sources whose needles are
# wanted) -> {source: FileRead} in the same order; the first refused file's ContractError raised.
FileReader = Callable[[dict[str, Path], bytes, str, frozenset[str]], dict[str, FileRead]]


def read_files_here(files: dict[str, Path], key: bytes, month: str, needles: frozenset[str]) -> dict[str, FileRead]:
    """The local engine's reader: the files one after another in this process."""
    return {name: read_file(path, SOURCES[name], key, month, name in needles) for name, path in files.items()}


def read_delivery(cfg: Config, month: str, key: bytes, reader: FileReader = read_files_here) -> Delivery:
    """Read and pseudonymise every file of a month in memory; refuse the month on a contract breach."""
    month_dir = cfg.inbox / check_month(month)
    if not month_dir.is_dir():
        raise ContractError(bilingual(
            f"{month} の提供が受信フォルダにありません（{month_dir} がない）。月を確かめるか、抽出を {month_dir} に置いてください",
            f"no delivery for {month}: the folder {month_dir} does not exist; check the month, or put the "
            f"extracts into {month_dir}"))
    inputs = delivery_inputs(month_dir)
    missing = [s.name for s in SOURCES.values() if s.required and s.name not in inputs]
    if missing:
        files = ", ".join(f"{name}.csv" for name in missing)
        raise ContractError(bilingual(f"{month} の提供に必須のファイルがありません：{files}。提供元に依頼してください",
                                      f"delivery {month} lacks required file(s): {files}; ask the department for them"))
    known = {p.name for p in inputs.values()}
    stray = sorted(p.name for p in month_dir.iterdir() if p.is_file() and p.name not in known)
    # the run's leak guard needs the residents extract's identifiers, unless its cache has them
    needles = frozenset(n for n in ("residents",) if n in inputs and needles_wanted(cfg.leakscan_cache, inputs[n]))
    read = reader(inputs, key, month, needles)
    for name in needles:
        if read[name].needles is not None:
            put_needles(cfg.leakscan_cache, read[name].info["sha256"], read[name].needles)
    summary = {
        "month": month,
        "key_id": key_id(key),
        "sources": {name: r.info for name, r in read.items()},
        "absent_optional": sorted(s.name for s in SOURCES.values() if not s.required and s.name not in inputs),
        "stray_files": stray,
    }
    return Delivery(month, {n: r.table for n, r in read.items()}, {n: r.quarantine for n, r in read.items()},
                    summary, {n: r.lines for n, r in read.items()}, {n: r.spans for n, r in read.items()},
                    {n: r.custody for n, r in read.items()})


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Lake rows as the strings a quarantine file holds (dates as YYYY-MM-DD)."""
    out = {}
    for column, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            out[column] = values.dt.strftime("%Y-%m-%d")
        else:
            out[column] = values.astype("str")
    return pd.DataFrame(out, index=frame.index)


def quarantine_failed_rows(delivery: Delivery, moved: dict[str, pd.DataFrame]) -> None:
    """Move rows that failed quarantine expectations from the tables to the quarantine.

    `moved[source]` has the rows' positions in the table (`row`), the checks they failed
    (`expectation`) and the plain reason. Counts and reasons in the summary follow.
    """
    for name, bad in moved.items():
        if not len(bad):
            continue
        table, rows = delivery.tables[name], bad["row"].to_numpy(dtype=np.int64)
        keep = np.ones(len(table), dtype=bool)
        keep[rows] = False
        # Pseudonyms only, as for contract rows: a row that passed the contract but fails a check
        # (a name in `district`, say) is just as suspect.
        ids = [c for c in ("pid", "hid") if c in table.columns]
        failed = _as_text(table.iloc[rows][ids]).reset_index(drop=True)
        failed["_line"] = delivery.lines[name][rows]
        failed["reason"] = pd.Series(bad["reason"].to_numpy(), dtype="str")
        failed["expectation"] = pd.Series(bad["expectation"].to_numpy(), dtype="str")
        failed["columns"] = pd.Series([", ".join(dict.fromkeys(e.split(".", 2)[1] if e.count(".") >= 2 else e
                                                                for e in str(x).split("; ")))
                                       for x in failed["expectation"]], dtype="str")
        contract = delivery.quarantine[name]
        if len(contract):
            failed = pd.concat([contract, failed], ignore_index=True)
        delivery.quarantine[name] = failed.sort_values("_line", kind="stable", ignore_index=True)
        spans = delivery.spans[name][rows] if name in delivery.spans else np.ones(len(rows), dtype=np.int64)
        held = pd.DataFrame({"_line": delivery.lines[name][rows],
                             "reason": pd.Series(bad["reason"].to_numpy(), dtype="str"),
                             "expectation": pd.Series(bad["expectation"].to_numpy(), dtype="str"),
                             "_span": spans.astype(np.int64)})
        earlier = delivery.custody.get(name)
        held = pd.concat([earlier, held], ignore_index=True) if earlier is not None and len(earlier) else held
        delivery.custody[name] = held.sort_values("_line", kind="stable", ignore_index=True)
        delivery.tables[name] = table[keep].reset_index(drop=True)
        delivery.lines[name] = delivery.lines[name][keep]
        info = delivery.summary["sources"][name]
        info["accepted"] -= len(rows)
        info["quarantined"] += len(rows)
        if name in delivery.spans and "lines" in info:
            moved_lines = int(delivery.spans[name][rows].sum())
            delivery.spans[name] = delivery.spans[name][keep]
            info["lines"] = info["lines"] | {"accepted": info["lines"]["accepted"] - moved_lines,
                                             "quarantined": info["lines"]["quarantined"] + moved_lines}
        reasons = dict(info["quarantine_reasons"])
        for reason, n in bad["reason"].str.split("; ").explode().value_counts().items():
            reasons[str(reason)] = reasons.get(str(reason), 0) + int(n)
        info["quarantine_reasons"] = dict(sorted(reasons.items()))


def check_accounting(delivery: Delivery) -> None:
    """Every physical line of every file is header, blank, accepted or quarantined, and the row
    counts agree with the tables and quarantine about to be committed (LineAccountingError if not)."""
    for name, info in delivery.summary["sources"].items():
        lines = check_lines(info["file"], info["lines"])
        rows, bad = len(delivery.tables[name]), len(delivery.quarantine.get(name, ()))
        if (info["accepted"], info["quarantined"]) != (rows, bad) or (
                name in delivery.spans and int(delivery.spans[name].sum()) != lines["accepted"]):
            raise LineAccountingError(
                f"{info['file']}: the record counts {info['accepted']} accepted and {info['quarantined']} "
                f"quarantined rows but {rows} and {bad} are about to be committed; this is a bug in mimamori, "
                "the month is not ingested")


def refusal_evidence(delivery: Delivery, check, sources: Iterable[str] | None = None) -> dict[str, dict]:
    """Per source (default: each with a critical failure): the delivered file and why its rows were
    quarantined (reason, the reason in Japanese, rows, first line), most rows first; lines and
    rules, no value."""
    out = {}
    wanted = {f["source"] for f in check.summary["critical_failures"]} if sources is None else set(sources)
    for name in sorted(wanted):
        if name not in delivery.summary["sources"]:
            continue
        contract = delivery.quarantine.get(name, pd.DataFrame({"_line": [], "reason": []}))
        moved = check.moved(name) if name in delivery.tables else pd.DataFrame({"row": [], "reason": []})
        rows = pd.DataFrame({
            "line": np.concatenate([contract["_line"].to_numpy(dtype=np.int64),
                                    delivery.lines[name][moved["row"].to_numpy(dtype=np.int64)]]),
            "reason": np.concatenate([contract["reason"].astype("str").to_numpy(dtype=object),
                                      moved["reason"].astype("str").to_numpy(dtype=object)])})
        rows = rows.assign(reason=rows["reason"].str.split("; ")).explode("reason")
        grouped = rows.groupby("reason")["line"].agg(["size", "min"]).sort_values(
            ["size", "min"], ascending=[False, True])
        ja = {e["description"]: e["description_ja"] for e in check.summary["quarantined"] if e["source"] == name}
        out[name] = {"file": delivery.summary["sources"][name]["file"],
                     "reasons": [(str(r), reason_ja(name, str(r), ja), int(n), int(line))
                                 for r, (n, line) in grouped.iterrows()]}
    return out


def is_ingested(cfg: Config, month: str, key: bytes) -> bool:
    """True if the lake holds exactly this delivery, under this key."""
    record = lake.delivery_record(cfg.lake, month)
    month_dir = cfg.inbox / month
    if record is not None and record.get("key_id") != key_id(key):
        # never "not ingested, so re-ingest under this key": that is a second population of pids
        check_lake_key(cfg.lake, key, cfg.key_file)
    if record is None or record.get("key_id") != key_id(key) or not month_dir.is_dir():
        return False
    inputs = delivery_inputs(month_dir)
    recorded = {name: info["sha256"] for name, info in record["sources"].items()}
    return recorded == {name: file_sha256(path) for name, path in inputs.items()}


def _log_ingest(cfg: Config, record: dict, recovered: bool = False) -> None:
    extra = {"recovered": True} if recovered else {}
    audit.append(cfg.audit_log, "ingest", month=record["month"], key_id=record["key_id"],
                 files={n: s["sha256"] for n, s in record["sources"].items()},
                 rows={n: s["accepted"] for n, s in record["sources"].items()},
                 quarantined={n: s["quarantined"] for n, s in record["sources"].items()}, **extra)


def _logged(cfg: Config, record: dict) -> bool:
    """Whether the audit log holds the ingest of exactly this delivery under this key."""
    files = {n: s["sha256"] for n, s in record["sources"].items()}
    return any(e.get("event") == "ingest" and e.get("month") == record["month"] and e.get("files") == files
               and e.get("key_id") == record["key_id"] for e in audit.entries(cfg.audit_log))


def ingest_month(cfg: Config, month: str, key: bytes, force: bool = False, build_docs: bool = True,
                 new_key: bool = False, reader: FileReader = read_files_here) -> dict:
    """Ingest, pseudonymise and validate one delivery; a no-op if the lake already holds it.

    The key must be the one the lake was made with; only `rekey` passes `new_key=True`.
    `reader`: where the files are read (an engine's `read_files`; the same bytes on every engine).
    """
    check_month(month)   # a library caller bypasses the CLI's parsing: 2026-13 is no folder to look for
    if not force and is_ingested(cfg, month, key):
        lake.verify_month(cfg.lake, month)   # DataDamaged if a committed file changed since
        record = lake.delivery_record(cfg.lake, month)
        if not _logged(cfg, record):   # committed by a process killed before it could log it
            _log_ingest(cfg, record, recovered=True)
        return record | {"status": "unchanged"}
    if not new_key:
        check_lake_key(cfg.lake, key, cfg.key_file)
    started = time.perf_counter()
    delivery = read_delivery(cfg, month, key, reader)
    # `run` builds the month's Data Docs once, after the feature checks; `ingest` alone builds them here.
    check = validation.checked_delivery(cfg, delivery.month, delivery.tables, delivery.quarantine,
                                        build_docs=build_docs, sources=delivery.summary["sources"])
    delivery.summary["validation"] = check.summary
    if check.failed:  # before anything is committed: the lake keeps its previous state
        raise ValidationFailed(failure_message(f"delivery {month}", check.summary, what_ja=f"{month} の提供",
                                               evidence=refusal_evidence(delivery, check)), check.summary)
    quarantine_failed_rows(delivery, {name: check.moved(name) for name in delivery.tables})
    check_accounting(delivery)  # a line not accounted for is a bug: stop before anything is committed
    commit_delivery(cfg, delivery)  # the record holds no timings: same delivery, same bytes
    _log_ingest(cfg, delivery.summary)
    return delivery.summary | {"status": "ingested", "seconds": round(time.perf_counter() - started, 2)}


