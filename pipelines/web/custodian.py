"""The custodian's pages: the 宛名番号 look-ups to decide, the web app's accounts and the releases.

The custodian holds the custody zone (key, released sheets, audit log). Here they decide the
auditors' look-up requests (pipelines/web/lookups.py: pid, requester, reason and time are shown,
never a 宛名番号, which is not kept anywhere), see who has an account (name, role, created; never
a password hash) and every release with its expiry and purge status from the release records
(pipelines/release.py; the records only, never the sheets' contents).
"""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.storage import read_json
from pipelines.web import lookups
from pipelines.web.db import User
from pipelines.web.pages import db_session, form_of, render, require
from pipelines.web.security import Login

router = APIRouter(prefix="/custodian")
CUSTODIAN = require("custodian")
DECISIONS = {"approve": True, "refuse": False}
# what the releases page shows of a release record (pipelines/release.py `release`)
RECORD_FIELDS = ("month", "recipient", "rows", "released", "expires", "purged", "bases", "purposes")


def _page(request: Request, login: Login, db: Session, status: int = 200, error: str | None = None) -> Response:
    cfg, now = request.app.state.cfg, request.app.state.clock()
    waiting = [{"id": r.id, "month": r.month, "pid": r.pid, "requester": r.requester, "reason": r.reason,
                "asked": lookups.aware(r.asked_at), "expires": lookups.expires_at(r),
                "own": lookups.same_person(db, r, login)} for r in lookups.pending(cfg, db, now)]
    done = [{"id": r.id, "month": r.month, "requester": r.requester, "status": lookups.status_of(r, now),
             "decided_by": r.decided_by, "decided": lookups.aware(r.decided_at), "note": r.note}
            for r in lookups.recent(db)]
    return render(request, "custodian.html.j2", login, status=status, error=error, waiting=waiting, done=done,
                  states=lookups.STATUS_JA, hours=lookups.REQUEST_HOURS)


@router.get("", response_class=HTMLResponse)
def home(request: Request, login: Login = Depends(CUSTODIAN), db: Session = Depends(db_session)) -> Response:
    return _page(request, login, db)


@router.post("/lookups/decide")
def decide(request: Request, form: dict = Depends(form_of), login: Login = Depends(CUSTODIAN),
           db: Session = Depends(db_session)) -> Response:
    if form.get("decision") not in DECISIONS:
        raise HTTPException(422, "承認か却下を選んでください / choose approve or refuse")
    try:
        lookups.decide(request.app.state.cfg, db, login, lookups.request_id(form), DECISIONS[form["decision"]],
                       form.get("note", ""), request.app.state.clock())
    except lookups.LookupRefused as refused:
        db.rollback()
        return _page(request, login, db, status=409, error=str(refused))
    return RedirectResponse("/custodian", status_code=303)


@router.get("/accounts", response_class=HTMLResponse)
def accounts(request: Request, login: Login = Depends(CUSTODIAN), db: Session = Depends(db_session)) -> Response:
    rows = [{"name": u.name, "role": u.role, "created": lookups.aware(u.created)}
            for u in db.scalars(select(User).order_by(User.role, User.name)).all()]
    return render(request, "custodian_accounts.html.j2", login, accounts=rows)


def release_records(cfg, today: dt.date) -> list[dict]:
    """Every release record, newest month first, with its status as of `today`: live, past its
    expiry (awaiting `mimamori purge`) or purged."""
    out = []
    for path in sorted(cfg.releases_dir.glob("*/release*.json"), reverse=True):
        info = read_json(path)
        row = {k: info.get(k) for k in RECORD_FIELDS}
        row["approvers"] = [f"{a.get('id', '')} {a.get('name', '')}".strip() for a in info.get("approvers", [])]
        if info.get("purged"):
            row["state"] = ("消去済み", f"purged on {info['purged']}")
        elif info.get("expires") and dt.date.fromisoformat(info["expires"]) < today:
            row["state"] = ("期限切れ（消去待ち）", "expired: run `mimamori purge`")
        else:
            row["state"] = ("有効", "live")
        out.append(row)
    return out


@router.get("/releases", response_class=HTMLResponse)
def releases(request: Request, login: Login = Depends(CUSTODIAN)) -> Response:
    today = request.app.state.clock().date()
    return render(request, "custodian_releases.html.j2", login,
                  releases=release_records(request.app.state.cfg, today), today=today)
