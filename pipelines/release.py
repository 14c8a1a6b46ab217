"""Release: the only step that turns an approved pseudonymous list back into names and addresses.

It runs in the custody zone: two distinct approvers must have approved this exact list (by its
SHA-256) with a legal basis; pseudonyms are recomputed over the month's identified residents
extract (no mapping table exists anywhere); every approval and release is written to the
hash-chained audit log with counts and digests, never identities.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from pipelines import audit
from pipelines.config import Config
from pipelines.contract import SOURCES
from pipelines.ingest import file_fingerprint
from pipelines.months import age_on, month_end
from pipelines.pseudonymise import key_id, load_key, pseudonymise
from pipelines.reading import delivery_file, read_source
from pipelines.storage import atomic_path, read_json, read_parquet, write_json
from reports.disclosure import age_band
from reports.sheets import RECIPIENTS, write_outreach_xlsx

SEX_JA = {"male": "男", "female": "女", "other": "その他"}
class ReleaseRefused(Exception):
    """The release may not happen; the message says what is missing."""


def list_path(cfg: Config, month: str) -> Path:
    return cfg.runs / month / "list.parquet"


def _approvals_file(cfg: Config, month: str) -> Path:
    return cfg.approvals_dir / f"{month}.jsonl"


def approve(cfg: Config, month: str, approver: str, basis: str, purpose: str) -> dict:
    """Record one approver's approval of this month's list, as it is now."""
    path = list_path(cfg, month)
    if not path.exists():
        raise ReleaseRefused(f"there is no list for {month} to approve: run `mimamori run --month {month}` first")
    if not approver.strip() or not basis.strip():
        raise ReleaseRefused("an approval needs the approver's name and the legal basis")
    entry = {"month": month, "approver": approver.strip(), "basis": basis.strip(), "purpose": purpose.strip(),
             "list_sha256": file_fingerprint(path),
             "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = _approvals_file(cfg, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    audit.append(cfg.audit_log, "approve", month=month, approver=entry["approver"], basis=entry["basis"],
                 purpose=entry["purpose"], list_sha256=entry["list_sha256"])
    return entry


def approvals(cfg: Config, month: str) -> list[dict]:
    """Approvals that apply to the list as it is now (a recomputed list needs new approvals)."""
    target = _approvals_file(cfg, month)
    if not target.exists() or not list_path(cfg, month).exists():
        return []
    digest = file_fingerprint(list_path(cfg, month))
    entries = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [e for e in entries if e["list_sha256"] == digest]


def reidentify(cfg: Config, month: str, listed: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Join the listed pseudonyms to the month's identified residents extract."""
    path = delivery_file(cfg.inbox / month, "residents")
    if path is None:
        raise ReleaseRefused(f"the identified residents extract for {month} is not in the inbox")
    residents = read_source(path, SOURCES["residents"], delivery_month=month).rows
    residents = residents.assign(pid=pseudonymise(residents["resident_id"], key, "resident"))
    residents["age"] = age_on(residents["birth_date"], month_end(month))
    people = residents[["pid", "resident_id", "name", "name_kana", "address", "phone", "age", "sex"]]
    out = listed.merge(people, on="pid", how="left", validate="one_to_one")
    missing = int(out["resident_id"].isna().sum())
    if missing:
        raise ReleaseRefused(f"{missing} listed pseudonym(s) match nobody in the {month} residents extract: "
                             "the list was made under another key or from another delivery; rerun the month")
    out["sex"] = out["sex"].map(SEX_JA)
    out["age_band"] = age_band(out["age"])
    return out


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")


def _suffix(recipient: str) -> str:
    return "" if recipient == "coordinator" else f"_{recipient}"


def release(cfg: Config, month: str, recipient: str = "coordinator") -> dict:
    """Write one recipient's visiting sheets for an approved list into the custody zone."""
    if recipient not in RECIPIENTS:
        raise ReleaseRefused(f"unknown recipient {recipient!r}: choose one of {', '.join(RECIPIENTS)}")
    key = load_key(cfg.key_file)
    valid = approvals(cfg, month)
    people = sorted({a["approver"] for a in valid})
    needed = cfg.get("release", "approvers_required")
    if len(people) < needed:
        raise ReleaseRefused(f"release of {month} needs approvals from {needed} different people for the "
                             f"current list; it has {len(people)}" + (f" ({', '.join(people)})" if people else ""))
    listed = read_parquet(list_path(cfg, month))
    if set(listed["key_id"]) != {key_id(key)}:
        raise ReleaseRefused(f"the {month} list was made under another key; rerun the month under the current key")
    columns = RECIPIENTS[recipient]
    named = reidentify(cfg, month, listed, key).sort_values("rank")
    sheet = named[columns]
    out_dir = cfg.releases_dir / month
    csv_path = out_dir / f"outreach{_suffix(recipient)}.csv"
    xlsx_path = out_dir / f"outreach{_suffix(recipient)}.xlsx"
    _write_csv(sheet, csv_path)
    # the workbook also takes the list's reason features (what to ask) and exploration marks
    write_outreach_xlsx(named, xlsx_path, month, recipient)
    released = datetime.now(timezone.utc)
    expires = (released + timedelta(days=cfg.get("release", "expiry_days"))).date().isoformat()
    info = {"month": month, "recipient": recipient, "rows": len(sheet), "columns": columns, "approvers": people,
            "bases": sorted({a["basis"] for a in valid}), "purposes": sorted({a["purpose"] for a in valid}),
            "list_sha256": valid[0]["list_sha256"], "released": released.isoformat(timespec="seconds"),
            "files": {p.name: file_fingerprint(p) for p in (csv_path, xlsx_path)}, "expires": expires}
    write_json(info, out_dir / f"release{_suffix(recipient)}.json")
    audit.append(cfg.audit_log, "release", **info)
    return info | {"dir": str(out_dir)}


def purge(cfg: Config, today: date | None = None) -> list[dict]:
    """Delete released sheets past their expiry date; keep their release record, marked purged."""
    today = today or datetime.now(timezone.utc).date()
    purged = []
    for record_path in sorted(cfg.releases_dir.glob("*/release*.json")):
        info = read_json(record_path)
        if info.get("purged") or date.fromisoformat(info["expires"]) >= today:
            continue
        for name in info["files"]:
            (record_path.parent / name).unlink(missing_ok=True)
        info["purged"] = today.isoformat()
        write_json(info, record_path)
        audit.append(cfg.audit_log, "purge", month=info["month"], recipient=info["recipient"],
                     files=sorted(info["files"]), expired=info["expires"])
        purged.append(info)
    return purged
