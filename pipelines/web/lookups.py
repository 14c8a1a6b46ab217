"""The 宛名番号 look-up: an auditor asks, a custodian decides, only then the auditor learns the pid.

An auditor who has a resident's 宛名番号 (a complaint, a question from the ward office) may ask
why that person is, or is not, on a month's list. The request names the month and a reason. The
宛名番号 is pseudonymised at once in the custody zone with the batch's own key and function
(pipelines/pseudonymise.py, as release.reidentify does), and only the pid is kept: the number
itself is never stored, logged, echoed on a page or put in a URL (the form is POSTed).

Who sees what, and when:
  * the requesting auditor sees the request's status; after a custodian approves it, the pid and
    a link to /audit/months/{month}/explain/{pid} (or "not on that month's list"), once;
  * a custodian (role "custodian", pipelines/web/custodian.py) sees the pending requests with the
    pid, requester, reason and time, and approves or refuses with a note. A custodian cannot
    decide their own request (the same account, or an account of the same name), nor can an
    auditor decide any;
  * the audit log, which every auditor can read (/audit/log), holds who asked, why, who decided
    and the note, but not the pid: it would hand the answer to the requester before approval and
    to every other auditor after. It holds a commitment instead, SHA-256(salt ‖ pid) with a random
    salt kept in this table (custody zone), so the log and the table can be checked against each
    other without the log revealing whom a request was about.

Lifetime (decided for issue 16): a request is single-use and short-lived. A pending request
expires `REQUEST_HOURS` (24 h) after it was made and can then no longer be approved; an approved
result can be opened `REQUEST_HOURS` after the approval, and only once (opening it is a POST that
marks it used, so a second tab or a replay gets nothing). A new question needs a new request and
a new decision. A request whose key has been rotated (`mimamori rekey`) since is void: its pid no
longer names anyone.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import unicodedata

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import DateTime, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from contract.storage import read_parquet
from pipelines import audit
from pipelines.catalog import runs
from pipelines.leakscan import inbox_identifiers, scan_texts
from pipelines.parsing import parse_ids
from pipelines.pseudonymise import KeyProblem, key_id, load_key, pseudonymise
from pipelines.web.db import Base, User
from pipelines.web.pages import db_session, form_of, render, require
from pipelines.web.security import Login, month_param

REQUEST_HOURS = 24
MIN_REASON, MAX_REASON, MAX_NOTE = 8, 500, 500
STATUS_JA = {"pending": ("承認待ち", "pending"), "approved": ("承認済み", "approved"), "refused": ("却下", "refused"),
             "expired": ("期限切れ", "expired"), "used": ("表示済み", "opened"), "void": ("無効（鍵の交換後）", "void: key rotated")}

router = APIRouter(prefix="/audit/lookups")
AUDITOR = require("auditor")
_KEY = threading.Lock()   # pseudonymise's per-process cache is not thread-safe


class Lookup(Base):
    """One look-up request. `pid` is the keyed pseudonym; the 宛名番号 is never stored."""
    __tablename__ = "lookups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    pid: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(12))
    salt: Mapped[str] = mapped_column(String(32))        # of the commitment written to the audit log
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    requester: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(MAX_REASON))
    asked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), default="pending")   # pending, approved, refused
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(String(MAX_NOTE), nullable=True)
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LookupRefused(ValueError):
    """A request or decision that may not be made (the message says why, never the 宛名番号)."""


def aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands timezone-aware values back naive; they were stored in UTC
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def commitment(salt: str, pid: str) -> str:
    """What the audit log holds instead of the pid: SHA-256(salt ‖ pid)."""
    return hashlib.sha256(f"{salt}:{pid}".encode()).hexdigest()


def status_of(row: Lookup, now: dt.datetime, current_key: str | None = None) -> str:
    """pending, approved, refused, expired, used or void, as of `now`."""
    if row.status == "refused":
        return "refused"
    if row.opened_at is not None:
        return "used"
    if current_key is not None and row.key_id != current_key:
        return "void"
    window = dt.timedelta(hours=REQUEST_HOURS)
    started = aware(row.asked_at if row.status == "pending" else row.decided_at)
    return "expired" if now - started > window else row.status


def expires_at(row: Lookup) -> dt.datetime:
    return aware(row.asked_at if row.status == "pending" else row.decided_at) + dt.timedelta(hours=REQUEST_HOURS)


def _text(value: str, least: int, most: int, what_ja: str, what_en: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if len(text) < least:
        raise LookupRefused(f"{what_ja}を {least} 文字以上で書いてください / write the {what_en} in at least {least} characters")
    if len(text) > most:
        raise LookupRefused(f"{what_ja}は {most} 文字までです / the {what_en} is at most {most} characters")
    return text


def resident_pid(cfg, resident_id: str) -> tuple[str, str]:
    """(pid, key id) of a typed 宛名番号, normalised as ingest normalises it (full-width digits,
    spaces), pseudonymised as release.reidentify does."""
    parsed = parse_ids(pd.Series([resident_id], dtype="str")).iloc[0]
    if pd.isna(parsed):
        raise LookupRefused("宛名番号は数字だけで入力してください / a 宛名番号 (resident number) is digits only")
    try:
        key = load_key(cfg.key_file)
    except KeyProblem:
        raise LookupRefused("仮名化の鍵を読めません。管理者に連絡してください / the pseudonymisation key cannot be read: "
                            "tell the custodian") from None
    with _KEY:
        pid = pseudonymise(pd.Series([parsed], dtype="str"), key, "resident").iloc[0]
    return str(pid), key_id(key)


def _checked_reason(cfg, reason: str, resident_id: str) -> str:
    """The reason, refused when it holds a resident's identifier: every auditor reads it in the log."""
    text = _text(reason, MIN_REASON, MAX_REASON, "理由", "reason")
    typed = parse_ids(pd.Series([resident_id], dtype="str")).iloc[0]
    squashed = "".join(text.split())
    # the typed number itself (with or without its leading zeros), and any resident's identifier
    typed_forms = set() if pd.isna(typed) else {str(typed), str(typed).lstrip("0")}
    found = any(len(t) >= 4 and t in squashed for t in typed_forms)
    found = found or bool(scan_texts([text], inbox_identifiers(cfg.inbox, cfg.leakscan_cache)))
    if found:
        raise LookupRefused("理由に住民を特定できる情報（宛名番号・氏名・住所・電話など）を書かないでください。理由は監査ログに"
                            "残り、監査担当の全員が読みます / the reason must not hold a resident's identifier (resident number, "
                            "name, address, phone): it is kept in the audit log, which every auditor reads")
    return text


def _log(cfg, event: str, **details) -> None:
    try:
        audit.append(cfg.audit_log, event, **details)
    except audit.AuditProblem:
        raise LookupRefused("監査ログに書き込めないため、受け付けられません。管理者に連絡してください / "
                            "the audit log cannot be written, so nothing was done: tell the custodian") from None


def ask(cfg, db: Session, login: Login, month: str, resident_id: str, reason: str, now: dt.datetime) -> Lookup:
    """Store a request (the pid only) and log it with who and why; LookupRefused when it may not be made."""
    if runs.completed_run(cfg, month) is None:
        raise LookupRefused(f"{month} の実行は完了していません / the {month} run is not complete")
    reason = _checked_reason(cfg, reason, resident_id)
    pid, key = resident_pid(cfg, resident_id)
    row = Lookup(month=month, pid=pid, key_id=key, salt=secrets.token_hex(16), requested_by=login.user.id,
                 requester=login.user.name, reason=reason, asked_at=now, status="pending")
    db.add(row)
    db.flush()
    # logged before the commit: a request the log could not record is not made
    _log(cfg, "lookup_request", account=login.user.name, role=login.user.role, month=month,
                 request=row.id, reason=reason, pid_commitment=commitment(row.salt, pid),
                 expires=expires_at(row).isoformat(timespec="seconds"))
    db.commit()
    return row


def same_person(db: Session, row: Lookup, login: Login) -> bool:
    requester = db.get(User, row.requested_by)
    names = {unicodedata.normalize("NFKC", n).casefold().replace(" ", "")
             for n in (row.requester, requester.name if requester else row.requester)}
    me = unicodedata.normalize("NFKC", login.user.name).casefold().replace(" ", "")
    return row.requested_by == login.user.id or me in names


def decide(cfg, db: Session, login: Login, request: int, approve: bool, note: str, now: dt.datetime) -> Lookup:
    """A custodian's approval or refusal of a pending request, with a note, logged."""
    if login.user.role != "custodian":
        raise LookupRefused("承認・却下は管理者だけができます / only a custodian decides a request")
    row = db.get(Lookup, request)
    if row is None:
        raise LookupRefused("その照会はありません / no such request")
    if same_person(db, row, login):
        raise LookupRefused("自分の照会は承認も却下もできません。別の管理者に依頼してください / "
                            "you cannot decide your own request: another custodian must")
    state = status_of(row, now, _current_key(cfg))
    if state != "pending":
        raise LookupRefused(f"この照会は{STATUS_JA[state][0]}です。決定できるのは承認待ちの照会だけです / "
                            f"this request is {STATUS_JA[state][1]}: only a pending request can be decided")
    note = _text(note, 1, MAX_NOTE, "メモ", "note")
    decision = "approved" if approve else "refused"
    # only one decision wins, however many custodians press at once
    done = db.execute(update(Lookup).where(Lookup.id == row.id, Lookup.status == "pending")
                      .values(status=decision, decided_by=login.user.name, decided_at=now, note=note))
    if done.rowcount != 1:
        db.rollback()
        raise LookupRefused("この照会は別の管理者がすでに決定しました / another custodian has already decided this request")
    _log(cfg, "lookup_decision", account=login.user.name, role=login.user.role, request=row.id,
                 month=row.month, decision=decision, note=note, requester=row.requester)
    db.commit()
    db.refresh(row)
    return row


def _current_key(cfg) -> str | None:
    try:
        return key_id(load_key(cfg.key_file))
    except KeyProblem:
        return None


def open_result(cfg, db: Session, login: Login, request: int, now: dt.datetime) -> tuple[Lookup, bool]:
    """(the request, whether its pid is on its month's list): the approved result, once, for its requester."""
    row = db.get(Lookup, request)
    if row is None or row.requested_by != login.user.id:   # someone else's request is nobody's business
        raise LookupRefused("その照会はありません / no such request of yours")
    state = status_of(row, now, _current_key(cfg))
    if state != "approved":
        raise LookupRefused(f"この照会は{STATUS_JA[state][0]}です。結果を開けるのは承認済みで未表示の照会だけです / "
                            f"this request is {STATUS_JA[state][1]}: only an approved, unopened result can be opened")
    if runs.completed_run(cfg, row.month) is None:
        raise LookupRefused(f"{row.month} の実行は完了していません / the {row.month} run is not complete")
    listed = row.pid in set(read_parquet(runs.list_file(cfg, row.month), columns=["pid"])["pid"])
    done = db.execute(update(Lookup).where(Lookup.id == row.id, Lookup.opened_at.is_(None)).values(opened_at=now))
    if done.rowcount != 1:
        db.rollback()
        raise LookupRefused("この結果はすでに表示されました / this result has already been opened")
    _log(cfg, "lookup_result", account=login.user.name, role=login.user.role, request=row.id,
                 month=row.month, listed=listed)
    db.commit()
    db.refresh(row)
    return row, listed


def pending(cfg, db: Session, now: dt.datetime) -> list[Lookup]:
    current = _current_key(cfg)
    rows = db.scalars(select(Lookup).where(Lookup.status == "pending").order_by(Lookup.asked_at)).all()
    return [r for r in rows if status_of(r, now, current) == "pending"]


def recent(db: Session, limit: int = 50) -> list[Lookup]:
    return list(db.scalars(select(Lookup).where(Lookup.status != "pending").order_by(Lookup.decided_at.desc())
                           .limit(limit)).all())


# --- the auditor's pages -----------------------------------------------------------------------

def _months(cfg) -> list[str]:
    return [m for m in reversed(runs.months_run(cfg)) if runs.completed_run(cfg, m) is not None]


def _page(request: Request, login: Login, db: Session, status: int = 200, error: str | None = None,
          month: str | None = None) -> Response:
    cfg, now = request.app.state.cfg, request.app.state.clock()
    current = _current_key(cfg)
    mine = db.scalars(select(Lookup).where(Lookup.requested_by == login.user.id).order_by(Lookup.asked_at.desc())).all()
    rows = [{"id": r.id, "month": r.month, "asked": aware(r.asked_at), "reason": r.reason,
             "state": status_of(r, now, current), "expires": expires_at(r), "note": r.note,
             "decided_by": r.decided_by} for r in mine]
    months = _months(cfg)
    # neither the 宛名番号 nor the reason (which may have been refused for holding an identifier)
    # is put back into the form: a refused request is typed again
    return render(request, "lookups.html.j2", login, status=status, error=error, requests=rows, months=months,
                  month=month or (months[0] if months else ""), states=STATUS_JA, hours=REQUEST_HOURS,
                  least=MIN_REASON)


@router.get("", response_class=HTMLResponse)
def lookups_page(request: Request, login: Login = Depends(AUDITOR), db: Session = Depends(db_session)) -> Response:
    return _page(request, login, db)


@router.post("")
def ask_page(request: Request, form: dict = Depends(form_of), login: Login = Depends(AUDITOR),
             db: Session = Depends(db_session)) -> Response:
    month = month_param(form.get("month", ""))
    try:
        ask(request.app.state.cfg, db, login, month, form.get("resident_id", ""), form.get("reason", ""),
            request.app.state.clock())
    except LookupRefused as refused:
        db.rollback()
        return _page(request, login, db, status=422, error=str(refused), month=month)
    return RedirectResponse("/audit/lookups", status_code=303)


@router.post("/open", response_class=HTMLResponse)
def open_page(request: Request, form: dict = Depends(form_of), login: Login = Depends(AUDITOR),
              db: Session = Depends(db_session)) -> Response:
    try:
        row, listed = open_result(request.app.state.cfg, db, login, request_id(form), request.app.state.clock())
    except LookupRefused as refused:
        db.rollback()
        return _page(request, login, db, status=409, error=str(refused))
    return render(request, "lookup_result.html.j2", login, row=row, listed=listed)


def request_id(form: dict) -> int:
    text = form.get("request", "")
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise HTTPException(404, "照会番号は正の整数です / a request number is a positive whole number")
    return int(text)
