"""The coordinator's pages: the month's list per district, visits and a person's previous visits.

Before the coordinator's release the list is pseudonymous (rank, district, reasons, what to
ask); after it, the district page joins the released sheet's names and addresses
(pipelines/release.py `released_sheet`), and every such view is written to the audit log with
who, what and the release's purpose and legal basis. Visits are entered only for a released
list (nobody can visit a pseudonym) and are exported as the next month's outreach_outcomes
(pipelines/web/visits.py).
"""
from __future__ import annotations

from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from contract.storage import read_parquet
from features.catalog import questions
from pipelines import audit
from pipelines.catalog import runs
from pipelines.catalog.lake import ingested_months, outcomes_known_at
from pipelines.release import released_sheet
from pipelines.web import visits
from pipelines.web.pages import db_session, form_of, render, require
from pipelines.web.security import Login, month_param, pid_param

router = APIRouter(prefix="/coord")
COORDINATOR = require("coordinator")
LIST_COLUMNS = ["pid", "rank", "district", "reasons", "reasons_en", "reason_features", "exploration"]
SHOWN = ["name", "address", "age", "sex"]   # what the district page shows of a released sheet


def _listed(request: Request, month: str) -> pd.DataFrame:
    cfg = request.app.state.cfg
    if runs.completed_run(cfg, month_param(month)) is None:
        raise HTTPException(404, f"{month} の実行は完了していません / the {month} run is not complete")
    return read_parquet(runs.list_file(cfg, month), columns=LIST_COLUMNS)


def _district(listed: pd.DataFrame, district: str) -> pd.DataFrame:
    rows = listed[listed["district"] == district]
    if not len(rows):
        raise HTTPException(404, "この月のリストにその地区はありません / no such district on this month's list")
    return rows.sort_values("rank", kind="stable")


@router.get("", response_class=HTMLResponse)
def months(request: Request, login: Login = Depends(COORDINATOR)) -> Response:
    cfg = request.app.state.cfg
    done = [m for m in reversed(runs.months_run(cfg)) if runs.completed_run(cfg, m) is not None]
    return render(request, "coord_months.html.j2", login,
                  months=[{"month": m, "released": released_sheet(cfg, m) is not None} for m in done])


@router.get("/months/{month}", response_class=HTMLResponse)
def districts(request: Request, month: str, login: Login = Depends(COORDINATOR),
              db: Session = Depends(db_session)) -> Response:
    listed = _listed(request, month)
    visited = {v.pid for v in visits.month_visits(db, month)}
    rows = [{"district": d, "listed": len(g), "visited": int(g["pid"].isin(visited).sum()), "url": quote(str(d), safe="")}
            for d, g in listed.groupby("district", sort=True)]
    return render(request, "coord_districts.html.j2", login, month=month, districts=rows,
                  released=released_sheet(request.app.state.cfg, month) is not None)


@router.get("/months/{month}/districts/{district}", response_class=HTMLResponse)
def district_page(request: Request, month: str, district: str, login: Login = Depends(COORDINATOR),
                  db: Session = Depends(db_session)) -> Response:
    return _district_view(request, month, district, login, db)


def _district_view(request: Request, month: str, district: str, login: Login, db: Session,
                   error: str | None = None) -> Response:
    cfg = request.app.state.cfg
    people = _district(_listed(request, month), district)
    release = released_sheet(cfg, month)
    named: dict[int, dict] = {}
    if release is not None:
        info, sheet = release
        mine = sheet[sheet["rank"].astype(int).isin(people["rank"].astype(int))]
        named = {int(r["rank"]): {c: r[c] for c in SHOWN} for r in mine.to_dict("records")}
        audit.append(cfg.audit_log, "web_view", account=login.user.name, role=login.user.role,
                     page="coordinator district", month=month, district=district, people=len(named),
                     fields=SHOWN, purposes=info["purposes"], bases=info["bases"])
    entered: dict[str, list] = {}
    for v in visits.month_visits(db, month):
        entered.setdefault(v.pid, []).append(v)
    rows = [{**p, "ask": questions(list(p["reason_features"]))[0], "person": named.get(int(p["rank"])),
             "visits": entered.get(p["pid"], [])} for p in people.to_dict("records")]
    first, last = visits.visit_window(month, request.app.state.clock().date())
    return render(request, "coord_district.html.j2", login, month=month, district=district, people=rows,
                  released=release is not None, outcomes=visits.OUTCOME_JA, first=first, last=last,
                  error=error, url=quote(district, safe=""))


@router.post("/months/{month}/districts/{district}/visits")
def record_visit(request: Request, month: str, district: str, form: dict = Depends(form_of),
                 login: Login = Depends(COORDINATOR), db: Session = Depends(db_session)) -> Response:
    cfg, state = request.app.state.cfg, request.app.state
    people = _district(_listed(request, month), district)
    if released_sheet(cfg, month) is None:
        raise HTTPException(409, "このリストはまだ公開されていません。訪問は公開後に記録します / "
                                 "this list is not released yet: visits are recorded after the release")
    pid = pid_param(form.get("pid", ""))
    if pid not in set(people["pid"]):
        raise HTTPException(404, "この人はこの地区のリストにありません / this person is not on this district's list")
    try:
        when, outcome = visits.checked_visit(month, form.get("visit_date", ""), form.get("outcome", ""),
                                             state.clock().date())
    except visits.VisitRefused as exc:
        return _district_view(request, month, district, login, db, error=str(exc))
    visits.save_visit(db, month, pid, district, when, outcome, login.user.name, state.clock())
    visits.export_month(cfg, state.sessions, month, login.user.name)
    return RedirectResponse(f"/coord/months/{month}/districts/{quote(district, safe='')}", status_code=303)


@router.get("/months/{month}/people/{pid}", response_class=HTMLResponse)
def person(request: Request, month: str, pid: str, login: Login = Depends(COORDINATOR),
           db: Session = Depends(db_session)) -> Response:
    cfg = request.app.state.cfg
    listed = _listed(request, month)
    row = listed[listed["pid"] == pid_param(pid)]
    if not len(row):
        raise HTTPException(404, f"この人は {month} のリストにありません / this person is not on the {month} list")
    known = ingested_months(cfg.lake)
    delivered = visits.delivered_visits(outcomes_known_at(cfg.lake, known[-1]).visits, pid) if known else None
    return render(request, "coord_person.html.j2", login, month=month, person=row.iloc[0].to_dict(),
                  entered=visits.person_visits(db, pid), outcomes=visits.OUTCOME_JA,
                  delivered=[] if delivered is None else delivered.to_dict("records"),
                  url=quote(str(row.iloc[0]["district"]), safe=""))
