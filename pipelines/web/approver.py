"""The approver's pages: what a release would hand out, to whom and with which fields; the
coordinator's submitted review; the approvals so far; approving with a legal basis; the release
itself; and each release's expiry and purge status.

An approver account is one registered approver identity (pipelines/web/decisions.py
ApproverAccount, set by `mimamori users add --role approver --approver-id`). Approving takes
that identity's private key file, uploaded for this one signature and never stored: the app's
approval is the same signed approval as `mimamori approve` (pipelines/release.py `approve`),
so the two-person rule counts identities, not accounts or typed names. Release and purge run
the library's own steps under the zones' locks, exactly as the CLI does.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from contract.storage import read_json, read_parquet
from pipelines import audit
from pipelines.approvers import ApproverProblem
from pipelines.catalog import runs
from pipelines.locks import LockHeld, custody_lock, work_lock
from pipelines.pseudonymise import load_key
from pipelines.release import (ReleaseRefused, approval_status, approve, distinct_approvers, purge, release,
                               release_record_file)
from pipelines.review import reviewed_list, submitted_review
from pipelines.web import decisions, security
from pipelines.web.pages import CSRF_REFUSED, db_session, render, require
from pipelines.web.security import Login, month_param
from reports.recipients import RECIPIENTS
from reports.sheets import COLUMNS

router = APIRouter(prefix="/approver")
APPROVER = require("approver")
MAX_KEY_BYTES = 4096   # an Ed25519 PEM is ~120 bytes; anything far larger is not a key file
RECIPIENT_JA = {"coordinator": "コーディネーター（区職員）", "nurse": "保健師（区職員）", "minsei": "民生委員"}
_CUSTODY = threading.Lock()   # zone locks are re-entrant per process, so threads need their own
# common legal bases, offered as choices; another may be typed
BASES = ("個人情報保護法第69条第2項第2号（相当の理由のある内部利用）", "社会福祉法第106条の6（支援会議）",
         "個人情報保護法第69条第2項第4号（本人の利益）")


@contextmanager
def _zones(cfg) -> Iterator[None]:
    """The locks `mimamori approve`/`release` hold: no batch rewriting the run, one custody writer."""
    try:
        with _CUSTODY, work_lock(cfg), custody_lock(cfg, wait=True):
            yield
    except LockHeld:
        raise HTTPException(503, "バッチの実行中です。終わってからもう一度操作してください / "
                                 "a batch is running: try again when it has finished") from None


def _completed(request: Request, month: str) -> dict:
    manifest = runs.completed_run(request.app.state.cfg, month_param(month))
    if manifest is None:
        raise HTTPException(404, f"{month} の実行は完了していません / the {month} run is not complete")
    return manifest


def _releases(cfg, month: str) -> list[dict]:
    """Each recipient's release record of the month (never the sheet), with its status."""
    out = []
    for name, recipient in RECIPIENTS.items():
        path = release_record_file(cfg, month, name)
        info = read_json(path) if path.exists() else None
        out.append({"recipient": name, "who": RECIPIENT_JA.get(name, name),
                    "columns": [COLUMNS[c].header for c in recipient.columns], "info": info,
                    "status": ("未公開 / not released" if info is None else
                               f"削除済み {info['purged']} / purged" if info.get("purged") else
                               f"公開中（{info['expires']} まで） / live until {info['expires']}")})
    return out


@router.get("", response_class=HTMLResponse)
def months(request: Request, login: Login = Depends(APPROVER)) -> Response:
    cfg = request.app.state.cfg
    key = load_key(cfg.key_file)
    rows = []
    for month in reversed(runs.months_run(cfg)):
        if runs.completed_run(cfg, month) is None:
            continue
        try:
            valid = approval_status(cfg, month, key)[0]
        except ReleaseRefused:   # a forged approval: the month's page says so
            valid = []
        releases = _releases(cfg, month)
        rows.append({"month": month, "approvers": len(distinct_approvers(valid)),
                     "released": [r["who"] for r in releases if r["info"] and not r["info"].get("purged")]})
    return render(request, "approver_months.html.j2", login, months=rows,
                  needed=cfg.get("release", "approvers_required"))


def _month_view(request: Request, month: str, login: Login, db: Session, error: str | None = None,
                done: str | None = None) -> Response:
    cfg = request.app.state.cfg
    _completed(request, month)
    listed = read_parquet(runs.list_file(cfg, month), columns=["pid", "rank", "district", "source"])
    review = submitted_review(cfg, month)
    reviewed = reviewed_list(listed, review)
    draft = decisions.review_of(db, month, "", request.app.state.clock())
    unsubmitted = draft.unsubmitted(review)
    districts = {d: {"listed": int((listed["district"] == d).sum()), "released": int((reviewed["district"] == d).sum())}
                 for d in sorted(set(listed["district"]) | set(reviewed["district"]))}
    try:
        valid, void = approval_status(cfg, month, load_key(cfg.key_file))
    except ReleaseRefused as refused:
        valid, void, error = [], [], str(refused)
    mine = decisions.approver_of(db, login.user.name)
    return render(request, "approver_month.html.j2", login, month=month, review=review, unsubmitted=unsubmitted,
                  districts=districts, total=len(reviewed), batch_total=len(listed), releases=_releases(cfg, month),
                  approvals=valid, void=void, people=distinct_approvers(valid), mine=mine,
                  mine_approved=any(a["approver_id"] == mine for a in valid), bases=BASES,
                  needed=cfg.get("release", "approvers_required"), error=error, done=done,
                  today=request.app.state.clock().date())


@router.get("/months/{month}", response_class=HTMLResponse)
def month_page(request: Request, month: str, login: Login = Depends(APPROVER),
               db: Session = Depends(db_session)) -> Response:
    return _month_view(request, month, login, db)


async def _form(request: Request, login: Login) -> dict:
    """The posted (multipart) form if it carries the session's CSRF token: text fields as str,
    an uploaded file as its bytes (at most MAX_KEY_BYTES)."""
    form = await request.form()
    if not security.same_token(str(form.get("csrf", "")), login.csrf):
        raise HTTPException(403, CSRF_REFUSED)
    out: dict = {}
    for name, value in form.items():
        if isinstance(value, UploadFile):
            data = await value.read(MAX_KEY_BYTES + 1)
            out[name] = None if len(data) > MAX_KEY_BYTES else data
        else:
            out[name] = str(value)
    return out


@router.post("/months/{month}/approve")
async def approve_month(request: Request, month: str, login: Login = Depends(APPROVER),
                        db: Session = Depends(db_session)) -> Response:
    cfg = request.app.state.cfg
    form = await _form(request, login)
    _completed(request, month)
    ident = decisions.approver_of(db, login.user.name)
    if ident is None:
        raise HTTPException(403, "このアカウントは登録承認者に結び付いていません。保管責任者に `mimamori users add --role approver "
                                 "--approver-id` での登録を依頼してください / this account is not linked to a registered approver: "
                                 "ask the custodian (`mimamori users add --role approver --approver-id`)")
    key = form.get("key_file")
    if not key:
        return _month_view(request, month, login, db, error="承認者の鍵ファイルを選んでください / choose your approver key file")
    basis = (form.get("basis_other") or form.get("basis") or "").strip()
    try:
        with _zones(cfg):
            entry = approve(cfg, month, ident, key, basis, form.get("purpose", ""))
    except (ReleaseRefused, ApproverProblem) as refused:
        return _month_view(request, month, login, db, error=str(refused))
    audit.append(cfg.audit_log, "web_approve", account=login.user.name, month=month, approver_id=ident,
                 signature=entry["signature"])
    return RedirectResponse(f"/approver/months/{month}", status_code=303)


@router.post("/months/{month}/release")
async def release_month(request: Request, month: str, login: Login = Depends(APPROVER),
                        db: Session = Depends(db_session)) -> Response:
    cfg = request.app.state.cfg
    form = await _form(request, login)
    _completed(request, month)
    recipient = form.get("recipient", "")
    if recipient not in RECIPIENTS:
        raise HTTPException(400, "受け取り手を選んでください / choose a recipient")
    try:
        with _zones(cfg):
            info = release(cfg, month, recipient, by=login.user.name)
    except ReleaseRefused as refused:
        return _month_view(request, month, login, db, error=str(refused))
    return _month_view(request, month, login, db, done=f"{RECIPIENT_JA[recipient]} に {info['rows']} 人分を公開しました"
                                                        f"（{info['expires']} まで） / released {info['rows']} rows to the "
                                                        f"{recipient} until {info['expires']}")


@router.post("/purge")
async def purge_expired(request: Request, login: Login = Depends(APPROVER)) -> Response:
    """Delete every released sheet past its expiry (the records stay, marked purged)."""
    cfg = request.app.state.cfg
    await _form(request, login)
    with _CUSTODY, custody_lock(cfg, wait=True):
        gone = purge(cfg, request.app.state.clock().date())
    audit.append(cfg.audit_log, "web_purge", account=login.user.name, purged=len(gone))
    return RedirectResponse("/approver", status_code=303)
