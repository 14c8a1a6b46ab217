"""The coordinator's pages: the month's list per district, its review before the release,
visitors, visits, a person's previous visits and a print view per district.

Before the coordinator's release the list is pseudonymous (rank, district, reasons, what to
ask) and is reviewed: keep, skip with a reason, or add a person the coordinator knows (by
宛名番号, which is pseudonymised at once with the ward's key and never stored); the submitted
review is what the approvers sign and the release applies (pipelines/review.py). After the
release, the district page joins the released sheet's names and addresses
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
from pipelines.parsing import parse_ids
from pipelines.pseudonymise import load_key, pseudonymise
from pipelines.release import released_sheet
from pipelines.review import reviewed_list, submit_review, submitted_review
from pipelines.web import decisions, visits
from reports.recipients import previous_visits
from pipelines.web.pages import db_session, form_of, render, require
from pipelines.web.security import Login, month_param, pid_param

router = APIRouter(prefix="/coord")
COORDINATOR = require("coordinator")
LIST_COLUMNS = ["pid", "rank", "district", "band", "reasons", "reasons_en", "reason_features", "exploration", "source"]
SHOWN = ["name", "address", "age", "sex"]   # what the district page shows of a released sheet


def _batch_list(request: Request, month: str) -> pd.DataFrame:
    cfg = request.app.state.cfg
    if runs.completed_run(cfg, month_param(month)) is None:
        raise HTTPException(404, f"{month} の実行は完了していません / the {month} run is not complete")
    return read_parquet(runs.list_file(cfg, month), columns=LIST_COLUMNS)


def _listed(request: Request, month: str) -> pd.DataFrame:
    """The month's list as the coordinator works with it: the batch's before the release, the
    released one (the submitted review applied, pipelines/review.py) after it."""
    listed = _batch_list(request, month)
    cfg = request.app.state.cfg
    if released_sheet(cfg, month) is None:
        return listed
    return reviewed_list(listed, submitted_review(cfg, month))[LIST_COLUMNS]


def _not_released(request: Request, month: str) -> None:
    if released_sheet(request.app.state.cfg, month) is not None:
        raise HTTPException(409, "このリストは公開済みです。見直しは公開前にだけできます / "
                                 "this list is released: it can be reviewed only before the release")


def _district_url(month: str, district: str) -> str:
    return f"/coord/months/{month}/districts/{quote(str(district), safe='')}"


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
    cfg = request.app.state.cfg
    listed = _listed(request, month)
    visited = {v.pid for v in visits.month_visits(db, month)}
    decided = decisions.decisions(db, month)
    rows = [{"district": d, "listed": len(g), "visited": int(g["pid"].isin(visited).sum()), "url": quote(str(d), safe=""),
             "skipped": sum(1 for r in decided.values() if r.district == d and r.decision == "skip"),
             "added": sum(1 for r in decided.values() if r.district == d and r.decision == "add")}
            for d, g in listed.groupby("district", sort=True)]
    submitted = submitted_review(cfg, month)
    draft = decisions.review_of(db, month, login.user.name, request.app.state.clock())
    return render(request, "coord_districts.html.j2", login, month=month, districts=rows,
                  released=released_sheet(cfg, month) is not None, submitted=submitted,
                  draft=draft, changed=draft.unsubmitted(submitted))


@router.post("/months/{month}/review")
def submit(request: Request, month: str, form: dict = Depends(form_of), login: Login = Depends(COORDINATOR),
           db: Session = Depends(db_session)) -> Response:
    """Submit the month's review to the approvers: the snapshot they sign (approvals of an
    earlier snapshot become void)."""
    cfg = request.app.state.cfg
    _batch_list(request, month)
    _not_released(request, month)
    review = decisions.review_of(db, month, login.user.name, request.app.state.clock())
    submit_review(cfg, review)
    audit.append(cfg.audit_log, "review_submit", account=login.user.name, month=month, review_sha256=review.digest(),
                 skipped=[p for p, _ in review.skips], added=[p for p, _, _ in review.adds])
    return RedirectResponse(f"/coord/months/{month}", status_code=303)


@router.get("/months/{month}/districts/{district}", response_class=HTMLResponse)
def district_page(request: Request, month: str, district: str, login: Login = Depends(COORDINATOR),
                  db: Session = Depends(db_session)) -> Response:
    return _district_view(request, month, district, login, db)


def _district_rows(request: Request, month: str, district: str, login: Login, db: Session,
                   page: str) -> tuple[list[dict], bool]:
    """The district's people as its pages show them (names only after the release, each such
    view logged with its purpose and legal basis), and whether the list is released."""
    cfg = request.app.state.cfg
    people = _district(_listed(request, month), district)
    release = released_sheet(cfg, month)
    named: dict[int, dict] = {}
    if release is not None:
        info, sheet = release
        mine = sheet[sheet["rank"].astype(int).isin(people["rank"].astype(int))]
        named = {int(r["rank"]): {c: r[c] for c in SHOWN} for r in mine.to_dict("records")}
        audit.append(cfg.audit_log, "web_view", account=login.user.name, role=login.user.role,
                     page=page, month=month, district=district, people=len(named),
                     fields=SHOWN, purposes=info["purposes"], bases=info["bases"])
    entered: dict[str, list] = {}
    for v in visits.month_visits(db, month):
        entered.setdefault(v.pid, []).append(v)
    decided, visitors = decisions.decisions(db, month), decisions.assignments(db, month)
    # 前回訪問 as on the sheets: the last outcome the lake held when the list was made
    last = previous_visits(outcomes_known_at(cfg.lake, month).visits).set_index("pid")["previous_visit"]
    rows = [{**p, "ask": questions(list(p["reason_features"]))[0] if len(p["reason_features"]) else "",
             "person": named.get(int(p["rank"])), "visits": entered.get(p["pid"], []),
             "previous": last.get(p["pid"], ""), "decision": decided.get(p["pid"]),
             "visitor": visitors.get(p["pid"], ""), "order": order}
            for order, p in enumerate(people.to_dict("records"), start=1)]
    return rows, release is not None


def _district_view(request: Request, month: str, district: str, login: Login, db: Session,
                   error: str | None = None) -> Response:
    rows, released = _district_rows(request, month, district, login, db, "coordinator district")
    added = [] if released else [r for r in decisions.decisions(db, month).values()
                                 if r.decision == "add" and r.district == district]
    first, last = visits.visit_window(month, request.app.state.clock().date())
    return render(request, "coord_district.html.j2", login, month=month, district=district, people=rows,
                  released=released, outcomes=visits.OUTCOME_JA, first=first, last=last, added=added,
                  choices=decisions.DECISIONS, error=error, url=quote(district, safe=""))


@router.get("/months/{month}/districts/{district}/print", response_class=HTMLResponse)
def print_view(request: Request, month: str, district: str, login: Login = Depends(COORDINATOR),
               db: Session = Depends(db_session)) -> Response:
    """One district's list for paper: A4 landscape, 10.5 pt, the entry columns left blank."""
    rows, released = _district_rows(request, month, district, login, db, "coordinator district print")
    return render(request, "coord_print.html.j2", login, month=month, district=district, people=rows,
                  released=released, url=quote(district, safe=""))


@router.post("/months/{month}/districts/{district}/decisions")
def record_decision(request: Request, month: str, district: str, form: dict = Depends(form_of),
                    login: Login = Depends(COORDINATOR), db: Session = Depends(db_session)) -> Response:
    """Keep or skip (with a reason) a listed person of the district, before the release."""
    cfg = request.app.state.cfg
    people = _district(_batch_list(request, month), district)
    _not_released(request, month)
    pid = pid_param(form.get("pid", ""))
    if pid not in set(people["pid"]):
        raise HTTPException(404, "この人はこの地区のリストにありません / this person is not on this district's list")
    if form.get("decision") == "add":
        raise HTTPException(400, "リストにある人は追加できません / a listed person cannot be added")
    try:
        row = decisions.decide(db, month, pid, district, form.get("decision", ""), form.get("reason", ""),
                               login.user.name, request.app.state.clock())
    except decisions.DecisionRefused as exc:
        return _district_view(request, month, district, login, db, error=str(exc))
    audit.append(cfg.audit_log, "review_decision", account=login.user.name, month=month, district=district,
                 pid=pid, decision=row.decision)
    return RedirectResponse(_district_url(month, district), status_code=303)


@router.post("/months/{month}/districts/{district}/additions")
def add_person(request: Request, month: str, district: str, form: dict = Depends(form_of),
               login: Login = Depends(COORDINATOR), db: Session = Depends(db_session)) -> Response:
    """Add a person the list missed, by 宛名番号 and with a reason, before the release. The number
    is pseudonymised at once with the ward's key; only the pseudonym is kept and logged."""
    cfg = request.app.state.cfg
    listed = _batch_list(request, month)
    _district(listed, district)
    _not_released(request, month)
    number = parse_ids(pd.Series([form.get("resident_id", "")], dtype="string"))
    if number.isna().iloc[0]:
        return _district_view(request, month, district, login, db,
                              error="宛名番号は数字で入力してください / a 宛名番号 is digits only")
    pid = str(pseudonymise(number.astype(str), load_key(cfg.key_file), "resident").iloc[0])
    table = runs.features_file(cfg, month)
    if not table.exists():   # the batch keeps it; a cleaned work dir needs `mimamori run --month` again
        raise HTTPException(503, f"{month} の特徴量表がありません。`mimamori run --month {month}` を再実行してください / "
                                 f"the {month} feature table is missing: rerun `mimamori run --month {month}`")
    residents = read_parquet(table, columns=["pid", "district"])
    found = residents[residents["pid"] == pid]
    problem = None
    if not len(found):
        problem = (f"その宛名番号の人は {month} の住民記録にいません / nobody with that 宛名番号 is in the "
                   f"{month} residents extract")
    elif str(found["district"].iloc[0]) != district:
        problem = ("その人はこの地区の住民ではありません。住所の地区の画面で追加してください / "
                   "that person does not live in this district: add them on their district's page")
    elif pid in set(listed["pid"]):
        problem = "その人はすでにリストにあります / that person is already on the list"
    if problem is None:
        try:
            decisions.decide(db, month, pid, district, "add", form.get("reason", ""), login.user.name,
                             request.app.state.clock())
        except decisions.DecisionRefused as exc:
            problem = str(exc)
    if problem is not None:
        return _district_view(request, month, district, login, db, error=problem)
    audit.append(cfg.audit_log, "review_decision", account=login.user.name, month=month, district=district,
                 pid=pid, decision="add")
    return RedirectResponse(_district_url(month, district), status_code=303)


@router.post("/months/{month}/districts/{district}/additions/{pid}/withdraw")
def withdraw_addition(request: Request, month: str, district: str, pid: str, form: dict = Depends(form_of),
                      login: Login = Depends(COORDINATOR), db: Session = Depends(db_session)) -> Response:
    cfg = request.app.state.cfg
    _not_released(request, month)
    row = decisions.decisions(db, month).get(pid_param(pid))
    if row is None or row.decision != "add" or row.district != district:
        raise HTTPException(404, "その追加はありません / no such addition")
    db.delete(row)
    db.commit()
    audit.append(cfg.audit_log, "review_decision", account=login.user.name, month=month, district=district,
                 pid=pid, decision="withdraw addition")
    return RedirectResponse(_district_url(month, district), status_code=303)


@router.post("/months/{month}/districts/{district}/visitors")
def assign_visitor(request: Request, month: str, district: str, form: dict = Depends(form_of),
                   login: Login = Depends(COORDINATOR), db: Session = Depends(db_session)) -> Response:
    """Assign (or clear) the visitor of a person of the district, before or after the release."""
    people = _district(_listed(request, month), district)
    pid = pid_param(form.get("pid", ""))
    if pid not in set(people["pid"]):
        raise HTTPException(404, "この人はこの地区のリストにありません / this person is not on this district's list")
    try:
        decisions.assign(db, month, pid, form.get("visitor", ""), login.user.name, request.app.state.clock())
    except decisions.DecisionRefused as exc:
        return _district_view(request, month, district, login, db, error=str(exc))
    return RedirectResponse(_district_url(month, district), status_code=303)


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
    return RedirectResponse(_district_url(month, district), status_code=303)


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
