"""Release: the only step that turns an approved pseudonymous list back into names and addresses.

It runs in the custody zone: two distinct registered approvers must have signed an approval of
this exact list (by its SHA-256) with a legal basis (pipelines/approvers.py); pseudonyms are
recomputed over the month's identified residents extract (no mapping table exists anywhere);
every approval and release is written to the hash-chained audit log with counts, digests and
the approvers (id, name, role, key fingerprint), never residents' identities.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from pipelines import approvers as registry, audit
from pipelines.catalog import lake
from pipelines.catalog.features import lake_fingerprint
from pipelines.catalog.runs import completed_run, inbox_dir, list_file, read_manifest, report_file
from pipelines.config import Config
from pipelines.custody import private_dir, private_file
from contract.sources import SOURCES
from contract.messages import bilingual, no_run
from contract.months import age_on, check_month, month_end
from pipelines.pseudonymise import key_id, load_key, pseudonymise
from pipelines.reading import delivery_file, read_source
from pipelines.review import release_record, reviewed_list, submitted_review, void_reason as review_void
from contract.storage import DataDamaged, atomic_path, file_sha256, read_json, read_parquet, write_bytes, write_json
from features.groups import SEX_JA_SHORT, age_band
from reports.recipients import RECIPIENTS, previous_visits
from reports.sheets import CSV_FORMS, csv_read_back, outreach_csv, outreach_workbook, workbook_bytes

class ReleaseRefused(Exception):
    """The release may not happen; the message says what is missing."""


def _approvals_file(cfg: Config, month: str) -> Path:
    return cfg.approvals_dir / f"{month}.jsonl"


def _completed_manifest(cfg: Config, month: str) -> dict:
    """The month's run manifest, if its run completed (every stage, the report included) and
    every output it names still has the bytes it had then."""
    manifest = completed_run(cfg, month)
    if manifest is None:
        found = read_manifest(cfg, month)
        report = report_file(cfg, month)
        status = ("no manifest" if found is None else f"status {found.get('status')!r}"
                  if found.get("status") != "done" else "its outputs changed since it finished")
        detail = status + ("" if report.exists() else ", no report")
        raise ReleaseRefused(no_run(month, f"（{detail}）", f" ({detail}); the list can be approved or released "
                                    "only after its run completes"))
    return manifest


def lake_months(cfg: Config, month: str) -> dict[str, str]:
    """A digest per delivery the month's list depends on (every month up to it): its input
    files' SHA-256 and key id, so a voided approval can say which delivery changed."""
    out = {}
    for m in lake.ingested_months(cfg.lake):
        if m <= month:
            record = lake.delivery_record(cfg.lake, m) or {}
            body = {"s": {k: v["sha256"] for k, v in record.get("sources", {}).items()}, "k": record.get("key_id")}
            out[m] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return out


def _current_state(cfg: Config, month: str, key: bytes) -> dict:
    review = submitted_review(cfg, month)
    return {"list_sha256": file_sha256(list_file(cfg, month)), "lake_fingerprint": lake_fingerprint(cfg.lake, month),
            "key_id": key_id(key), "lake_months": lake_months(cfg, month),
            "review_sha256": None if review is None else review.digest()}


def _stale_list(cfg: Config, month: str, manifest: dict, state: dict) -> str | None:
    """Why the month's list no longer matches the lake and key it was made from, if it does not
    (bilingual, with what to do)."""
    todo_ja, todo_en = (f"`mimamori run --month {month}` を再実行し、新しいリストを承認してください",
                        f"rerun `mimamori run --month {month}` and approve the new list")
    if manifest.get("key_id") != state["key_id"] or manifest.get("key_retired"):
        return bilingual(f"{month} のリストは鍵 {manifest.get('key_id')} で作られましたが、現在の鍵は {state['key_id']} です。{todo_ja}",
                         f"the {month} list was made under key id {manifest.get('key_id')}, the current key is "
                         f"{state['key_id']}: {todo_en}")
    if manifest.get("lake_fingerprint") != state["lake_fingerprint"]:
        return bilingual(f"{month} のリストの実行後に、{month} までの提供データが訂正されレイクが変わりました。{todo_ja}",
                         f"the lake under the {month} list has changed since its run (a delivery up to {month} was "
                         f"corrected): {todo_en}")
    return None


def approve(cfg: Config, month: str, approver_id: str, key_file: Path | bytes, basis: str, purpose: str) -> dict:
    """Record one registered approver's signed approval of this month's list, as it is now, with
    the lake and key it depends on and the coordinator's submitted review, if any.
    key_file: the approver's key file, or its PEM bytes (the web app's upload, never stored)."""
    path = list_file(cfg, check_month(month))   # library callers bypass the CLI's parsing
    if not path.exists():
        raise ReleaseRefused(no_run(month, "（承認するリストがない）", " (no list to approve)"))
    if not basis.strip():
        raise ReleaseRefused(bilingual("承認には法的根拠（--basis）が必要です", "an approval needs the legal basis (--basis)"))
    audit.ready(cfg.audit_log)   # who is registered is read from the log: it must be whole first
    approver = registry.active_approver(cfg, approver_id)
    signing_key = (registry.signing_key_of(key_file, approver) if isinstance(key_file, bytes)
                   else registry.load_signing_key(Path(key_file), approver))
    manifest = _completed_manifest(cfg, month)
    key = load_key(cfg.key_file)
    state = _current_state(cfg, month, key)
    stale = _stale_list(cfg, month, manifest, state)
    if stale:
        raise ReleaseRefused(stale)
    if any(a["approver_id"] == approver["id"] for a in approval_status(cfg, month, key)[0]):
        raise ReleaseRefused(bilingual(
            f"承認者 {approver['id']}（{approver['name']}）は {month} の現在のリストを既に承認しています。"
            "同じ人の二度目の承認は数えません。別の登録承認者に承認を依頼してください",
            f"approver {approver['id']} ({approver['name']}) has already approved the current {month} list: "
            "a second approval by the same person does not count; ask another registered approver"))
    statement = {"approver_id": approver["id"], "fingerprint": approver["fingerprint"], "month": month,
                 "list_sha256": state["list_sha256"], "lake_fingerprint": state["lake_fingerprint"],
                 "key_id": state["key_id"], "basis": basis.strip(), "purpose": purpose.strip(),
                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if state["review_sha256"] is not None:
        statement["review_sha256"] = state["review_sha256"]
    entry = registry.signed(statement, signing_key) | {"lake_months": state["lake_months"]}
    # logged first: an approval the log does not hold must not count (a refused append stops here)
    audit.append(cfg.audit_log, "approve", month=month, approver_id=approver["id"], approver=approver["name"],
                 role=approver["role"], fingerprint=approver["fingerprint"], basis=entry["basis"],
                 purpose=entry["purpose"], list_sha256=entry["list_sha256"],
                 lake_fingerprint=entry["lake_fingerprint"], key_id=entry["key_id"], signature=entry["signature"],
                 **({"review_sha256": entry["review_sha256"]} if "review_sha256" in entry else {}))
    target = _approvals_file(cfg, month)
    private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return entry | _who(approver)


def _who(approver: dict) -> dict:
    """How an approval names its approver in results and release records: id, name, role, fingerprint."""
    return {"approver_id": approver["id"], "approver": approver["name"], "role": approver["role"],
            "fingerprint": approver["fingerprint"]}


def _void_reason(approval: dict, state: dict) -> str | None:
    """What changed since this approval was given (None: it still applies)."""
    if approval.get("list_sha256") != state["list_sha256"]:
        return "the list was recomputed"
    if "lake_fingerprint" not in approval or "key_id" not in approval:
        return "it was given before approvals named the lake and key they depend on"
    if approval["key_id"] != state["key_id"]:
        return f"the key changed (key id {approval['key_id']} → {state['key_id']})"
    if approval["lake_fingerprint"] != state["lake_fingerprint"]:
        before, now = approval.get("lake_months", {}), state["lake_months"]
        changed = sorted(m for m in set(before) | set(now) if before.get(m) != now.get(m))
        return ("the lake changed (delivery " + ", ".join(changed) + " corrected or re-ingested)"
                if changed else "the lake changed (its fingerprint differs)")
    return review_void(approval.get("review_sha256"), state["review_sha256"])


def _approval_key(e: dict) -> tuple:
    return (e.get("month"), e.get("approver_id"), e.get("list_sha256"), e.get("lake_fingerprint"), e.get("key_id"),
            e.get("signature"), e.get("review_sha256"))


def _identity_void(approval: dict, people: dict[str, dict]) -> str | None:
    """Why this approval's approver does not count (None: a registered, logged, unrevoked approver)."""
    ident = str(approval.get("approver_id"))
    if "signature" not in approval:
        return "it was given before approvals were signed by registered approvers"
    person = people.get(ident)
    if person is None or person["status"] == "unlogged":
        return f"approver {ident} is not registered (`mimamori approver list`)"
    if person["status"] == "revoked":
        return f"approver {ident} ({person['name']}) has been revoked"
    return None


def _forged(target: Path, number: int, approval: dict) -> ReleaseRefused:
    ident = approval.get("approver_id")
    return ReleaseRefused(bilingual(
        f"承認ファイル {target} の {number} 行目：承認者 {ident} の署名が登録された公開鍵で検証できません"
        "（承認の内容が書き換えられたか、偽造されています）。リリースを止めました。保管区域のバックアップから承認ファイルを戻し、"
        "誰が書き換えたか監査ログで調べてください",
        f"approvals file {target} line {number}: approver {ident}'s signature does not verify against the "
        "registered public key (the approval was edited or forged); release stopped: restore the approvals "
        "file from the custody backup and find out from the audit log who changed it"))


def approval_status(cfg: Config, month: str, key: bytes) -> tuple[list[dict], list[str]]:
    """(approvals that still apply, each with its approver's id, name, role and fingerprint; why each
    other one is void). Raises ReleaseRefused if a signature of a registered approver fails."""
    target = _approvals_file(cfg, month)
    if not target.exists() or not list_file(cfg, month).exists():
        return [], []
    state = _current_state(cfg, month, key)
    people = {p["id"]: p for p in registry.registered(cfg)}
    # An approval counts only if the audit log, whose entries carry MACs, holds it too: a line
    # added to the approvals file by hand is not an approval.
    logged = {_approval_key(e) for e in audit.entries(cfg.audit_log) if e.get("event") == "approve"}
    valid, void = [], []
    lines = target.read_text(encoding="utf-8").splitlines()
    for number, e in ((n, json.loads(line)) for n, line in enumerate(lines, start=1) if line.strip()):
        reason = _identity_void(e, people)
        person = people.get(str(e.get("approver_id")))
        if reason is None and (e.get("fingerprint") != person["fingerprint"]
                               or not registry.signature_holds(e, person["public_key"])):
            raise _forged(target, number, e)
        reason = reason or _void_reason(e, state)
        if reason is None and _approval_key(e) not in logged:
            reason = "the audit log does not hold it"
        if reason is None:
            valid.append(e | _who(person))
        else:
            void.append(f"{e.get('approver_id', e.get('approver'))}'s approval of {e.get('time')} is void: {reason}")
    return valid, void


def approvals(cfg: Config, month: str) -> list[dict]:
    """Approvals that apply to the list, lake and key as they are now."""
    return approval_status(cfg, month, load_key(cfg.key_file))[0]


def distinct_approvers(valid: list[dict]) -> list[dict]:
    """One record (id, name, role, fingerprint) per distinct approver identity, ordered by id."""
    people = {a["approver_id"]: {"id": a["approver_id"], "name": a["approver"], "role": a["role"],
                                 "fingerprint": a["fingerprint"]} for a in valid}
    return [people[i] for i in sorted(people)]


def _check_extract(cfg: Config, month: str, manifest: dict) -> Path:
    """The inbox residents extract, if it is the very one the list was made from."""
    path = delivery_file(inbox_dir(cfg, month), "residents")
    if path is None:
        raise ReleaseRefused(_no_extract(cfg, month))
    recorded = manifest.get("inputs", {}).get("residents")
    actual = file_sha256(path)
    if recorded != actual:
        raise ReleaseRefused(bilingual(
            f"受信箱の住民記録 {path.name}（SHA-256 {actual[:12]}…）は、{month} のリストを作った住民記録"
            f"（SHA-256 {str(recorded)[:12]}…）ではありません。元のファイルを戻すか、`mimamori run --month {month}` を"
            "再実行して新しいリストを承認してください",
            f"the residents extract {path} (SHA-256 {actual[:12]}…) is not the one the {month} list "
            f"was made from (SHA-256 {str(recorded)[:12]}…): restore the original extract, or "
            f"rerun `mimamori run --month {month}` and approve the new list"))
    return path


def _no_extract(cfg: Config, month: str) -> str:
    return bilingual(f"{month} の住民記録（氏名・住所のある提供ファイル）が受信箱 {inbox_dir(cfg, month)} にありません。"
                     "リストを作った住民記録を戻してください",
                     f"the identified residents extract for {month} is not in the inbox {inbox_dir(cfg, month)}: "
                     "restore the extract the list was made from")


def reidentify(cfg: Config, month: str, listed: pd.DataFrame, key: bytes, path: Path | None = None) -> pd.DataFrame:
    """Join the listed pseudonyms to the month's identified residents extract (release checks it first)."""
    path = path or delivery_file(inbox_dir(cfg, month), "residents")
    if path is None:
        raise ReleaseRefused(_no_extract(cfg, month))
    residents = read_source(path, SOURCES["residents"], delivery_month=month).rows
    residents = residents.assign(pid=pseudonymise(residents["resident_id"], key, "resident"))
    residents["age"] = age_on(residents["birth_date"], month_end(month))
    people = residents[["pid", "resident_id", "name", "name_kana", "address", "phone", "age", "sex"]]
    out = listed.merge(people, on="pid", how="left", validate="one_to_one")
    missing = int(out["resident_id"].isna().sum())
    if missing:
        raise ReleaseRefused(bilingual(
            f"リストの {missing} 人の仮名が {month} の住民記録の誰とも一致しません（別の鍵か別の提供データで作られたリスト）。"
            f"`mimamori run --month {month}` を再実行してください",
            f"{missing} listed pseudonym(s) match nobody in the {month} residents extract: "
            "the list was made under another key or from another delivery; rerun the month"))
    out["sex"] = out["sex"].map(SEX_JA_SHORT)
    out["age_band"] = age_band(out["age"])
    return out


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    # UTF-8 with a BOM: Excel reads UTF-8 only when the file says so
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")


def with_previous_visits(cfg: Config, month: str, named: pd.DataFrame) -> pd.DataFrame:
    """The released rows with 前回訪問: each person's last visit outcome the lake held when the
    month's list was made (outcomes known at the month's end)."""
    return named.drop(columns=["previous_visit"], errors="ignore").merge(
        previous_visits(lake.outcomes_known_at(cfg.lake, month).visits), on="pid", how="left", validate="one_to_one")


def _suffix(recipient: str) -> str:
    return "" if recipient == "coordinator" else f"_{recipient}"


def release_record_file(cfg: Config, month: str, recipient: str) -> Path:   # exists once released
    return cfg.releases_dir / check_month(month) / f"release{_suffix(recipient)}.json"


def write_outreach_xlsx(frame: pd.DataFrame, path: Path, month: str, columns: str | list[str] = "coordinator") -> Path:
    """Save one recipient's visiting workbook (reports/sheets.py) at `path`."""
    return write_bytes(workbook_bytes(outreach_workbook(frame, month, columns)), path)


def release(cfg: Config, month: str, recipient: str = "coordinator", csv_form: str | None = None,
            by: str | None = None) -> dict:
    """Write one recipient's visiting sheets for an approved list into the custody zone.
    csv_form: outreach.csv for Excel ("excel") or for another system ("plain"; reports.sheets.outreach_csv);
    default [release] csv_form. by: the web app's account that released it (logged)."""
    if recipient not in RECIPIENTS:
        raise ReleaseRefused(bilingual(f"受け取り手 {recipient!r} は定義されていません。{', '.join(RECIPIENTS)} から選んでください",
                                       f"unknown recipient {recipient!r}: choose one of {', '.join(RECIPIENTS)}"))
    csv_form = csv_form or cfg.get("release", "csv_form")
    if csv_form not in CSV_FORMS:
        raise ReleaseRefused(bilingual(f"CSV の形式 {csv_form!r} はありません。{', '.join(CSV_FORMS)} から選んでください",
                                       f"unknown CSV form {csv_form!r}: choose one of {', '.join(CSV_FORMS)}"))
    key = load_key(cfg.key_file)
    if not list_file(cfg, check_month(month)).exists():   # library callers bypass the CLI's parsing
        raise ReleaseRefused(no_run(month, "（リストがない）", " (no list)"))
    manifest = _completed_manifest(cfg, month)
    listed = read_parquet(list_file(cfg, month))
    if not len(listed):
        caps = manifest.get("stages", {}).get("prioritise", {}).get("capacity", {})
        capacity = sum(caps.values()) if caps else 0
        raise ReleaseRefused(bilingual(
            f"{month} のリストは空です（訪問枠 {capacity}。理由はレポートのリストの節にあります）。リリースする人がいません",
            f"the {month} list is empty (capacity {capacity}; see the report's section on the list for why): "
            "there is nobody to release"))
    if set(listed["key_id"]) != {key_id(key)}:
        raise ReleaseRefused(bilingual(f"{month} のリストは別の鍵で作られました。現在の鍵で `mimamori run --month {month}` を再実行してください",
                                       f"the {month} list was made under another key; rerun the month under the current key"))
    valid, void = approval_status(cfg, month, key)
    people = distinct_approvers(valid)
    needed = cfg.get("release", "approvers_required")
    if len(people) < needed:
        names = ", ".join(f"{p['id']} {p['name']}" for p in people)
        raise ReleaseRefused(bilingual(
            f"{month} のリリースには、現在のリスト・レイク・鍵について {needed} 人の異なる登録承認者の署名付き承認が必要です。"
            f"現在 {len(people)} 人" + (f"（{names}）" if people else "") + (f"、無効な承認 {len(void)} 件" if void else "")
            + "。別の登録承認者が `mimamori approve` で承認してください",
            f"release of {month} needs signed approvals from {needed} different registered approvers for the "
            f"current list, lake and key; it has {len(people)}" + (f" ({names})" if people else "")
            + (f"; {len(void)} void: " + "; ".join(void[:3]) if void else "")
            + "; another registered approver must run `mimamori approve`"))
    stale = _stale_list(cfg, month, manifest, _current_state(cfg, month, key))
    if stale:
        raise ReleaseRefused(stale)
    extract = _check_extract(cfg, month, manifest)
    # no named sheet is written while the log is damaged, or that the log could not record
    problems = audit.verify(cfg.audit_log)
    if problems:
        raise ReleaseRefused(bilingual(
            f"監査ログの検証に失敗しました（問題 {len(problems)} 件）。`mimamori audit verify` で確認し、ログを復元してからリリースしてください",
            f"the audit log fails verification ({problems[0]}; {len(problems)} problem(s)): "
            "run `mimamori audit verify` and restore the log before releasing"))
    audit.ready(cfg.audit_log)
    review = submitted_review(cfg, month)   # the approvals above signed exactly this one
    listed = reviewed_list(listed, review)
    named = with_previous_visits(cfg, month, reidentify(cfg, month, listed, key, extract)).sort_values("rank")
    sheet = outreach_csv(named, recipient, csv_form)
    columns = list(RECIPIENTS[recipient].columns)
    out_dir = private_dir(cfg.releases_dir / month)
    csv_path, xlsx_path = (out_dir / f"outreach{_suffix(recipient)}{ext}" for ext in (".csv", ".xlsx"))
    _write_csv(sheet, csv_path)
    # the workbook also takes the list's reason features (what to ask) and exploration marks
    write_outreach_xlsx(named, xlsx_path, month, recipient)
    released = datetime.now(timezone.utc)
    expires = (released + timedelta(days=cfg.get("release", "expiry_days"))).date().isoformat()
    info = {"month": month, "recipient": recipient, "rows": len(sheet), "columns": columns, "csv_form": csv_form,
            "approvers": people,
            "bases": sorted({a["basis"] for a in valid}), "purposes": sorted({a["purpose"] for a in valid}),
            "list_sha256": valid[0]["list_sha256"], "released": released.isoformat(timespec="seconds"),
            "files": {p.name: file_sha256(private_file(p)) for p in (csv_path, xlsx_path)}, "expires": expires,
            "lake_fingerprint": valid[0]["lake_fingerprint"], "key_id": key_id(key),
            "residents_sha256": manifest["inputs"]["residents"],
            **release_record(review, listed), **({"account": by} if by else {}),
            # the audit log's head as this release saw it: `audit verify` checks the log still holds it
            "audit_head": audit.head(cfg.audit_log)}
    write_json(info, release_record_file(cfg, month, recipient))
    audit.append(cfg.audit_log, "release", **info)
    return info | {"dir": str(out_dir)}


def released_sheet(cfg: Config, month: str, recipient: str = "coordinator") -> tuple[dict, pd.DataFrame] | None:
    """(release record, the released CSV as text columns) of a recipient's live release of the
    month; None when it was never released or has been purged. A CSV that no longer has the
    bytes the record names is refused (DataDamaged), never shown."""
    record_path = release_record_file(cfg, month, recipient)
    if not record_path.exists():
        return None
    info = read_json(record_path)
    name = f"outreach{_suffix(recipient)}.csv"
    path = record_path.parent / name
    if info.get("purged") or not path.exists():
        return None
    if file_sha256(path) != info["files"].get(name):
        raise DataDamaged(bilingual(f"リリース済みのシート {path.name} がリリース記録 {record_path.name} と一致しません"
                                    "（リリース後に書き換えられました）。その月をもう一度リリースしてください",
                                    f"the released sheet {path} does not match its release record {record_path}: "
                                    "it was altered after the release; release the month again"))
    table = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    return info, csv_read_back(table, info.get("csv_form", "plain"))


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
