"""The auditor's pages: pseudonymous only, never a name, an address or a 宛名番号.

Every month's report and the card of every model version (the HTML files the batch wrote,
served as they are), the month's pseudonymous list, the per-person explanation by pid
(pipelines/explain.py `person_of`, the same view as `mimamori explain`), and the audit log
with its verification status (pipelines/audit.py).
"""
from __future__ import annotations

import base64
import json
import threading

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from pipelines import audit
from pipelines.catalog import runs, validation
from pipelines.explain import person_of
from pipelines.locks import LockHeld, work_lock
from pipelines.web.pages import render, require
from pipelines.web.security import Login, month_param, pid_param, version_param
from contract.storage import read_parquet

router = APIRouter(prefix="/audit")
AUDITOR = require("auditor")
REPORT_FILES = ("index.html", "model_card.html")   # what a month's report/ folder may serve
_WORK = threading.Lock()   # zone locks are re-entrant per process, so threads need their own
# audit-log fields shown in their own columns; the rest of an entry is shown as its JSON
_LOG_COLUMNS = ("seq", "time", "event", "user", "month")


def _completed(request: Request, month: str) -> dict:
    manifest = runs.completed_run(request.app.state.cfg, month_param(month))
    if manifest is None:
        raise HTTPException(404, f"{month} の実行は完了していません / the {month} run is not complete")
    return manifest


@router.get("", response_class=HTMLResponse)
def months(request: Request, login: Login = Depends(AUDITOR)) -> Response:
    cfg = request.app.state.cfg
    rows = []
    for month in reversed(runs.months_run(cfg)):
        manifest = runs.completed_run(cfg, month)
        stages = (manifest or {}).get("stages", {})
        rows.append({"month": month, "done": manifest is not None,
                     "listed": stages.get("prioritise", {}).get("listed"),
                     "mode": stages.get("train", {}).get("mode"),
                     "version": stages.get("train", {}).get("model_version")})
    return render(request, "audit_months.html.j2", login, months=rows, versions=runs.card_versions(cfg))


@router.get("/months/{month}/report/{name}")
def report_file(request: Request, month: str, name: str, login: Login = Depends(AUDITOR)) -> Response:
    _completed(request, month)
    if name not in REPORT_FILES:
        raise HTTPException(404, "そのファイルはありません / no such file")
    path = runs.report_dir(request.app.state.cfg, month) / name
    if not path.is_file():
        raise HTTPException(404, "この月にはモデルカードがありません（ルールで作られたリスト） / "
                                 "no model card for this month (a rule made the list)")
    return FileResponse(path, media_type="text/html; charset=utf-8")


def _docs_page(request: Request, month: str, page: str) -> Response:
    """A page of the month's offline Data Docs (reports/data_docs.py: pseudonymous aggregates),
    if it is one the batch wrote; the report's own link to them resolves here."""
    _completed(request, month)
    folder = validation.docs_dir(request.app.state.cfg.work, month)
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*.html")} if folder.is_dir() else set()
    if page not in written:
        raise HTTPException(404, "そのページはありません / no such page")
    return FileResponse(folder / page, media_type="text/html; charset=utf-8")


# at the work dir's own layout under /audit/ (runs/<month>/data_docs/), where the report's relative link lands
@router.get("/runs/{month}/data_docs/index.html")
def data_docs_index(request: Request, month: str, login: Login = Depends(AUDITOR)) -> Response:
    return _docs_page(request, month, "index.html")


@router.get("/runs/{month}/data_docs/validations/{suite}")
def data_docs_suite(request: Request, month: str, suite: str, login: Login = Depends(AUDITOR)) -> Response:
    return _docs_page(request, month, f"validations/{suite}")


@router.get("/cards/{version}")
def card(request: Request, version: str, login: Login = Depends(AUDITOR)) -> Response:
    cfg = request.app.state.cfg
    if version_param(version) not in runs.card_versions(cfg):
        raise HTTPException(404, f"v{version} のモデルカードはありません / no model card for version {version}")
    return FileResponse(runs.card_paths(cfg, version)[1], media_type="text/html; charset=utf-8")


@router.get("/months/{month}/list", response_class=HTMLResponse)
def month_list(request: Request, month: str, login: Login = Depends(AUDITOR)) -> Response:
    _completed(request, month)
    listed = read_parquet(runs.list_file(request.app.state.cfg, month),
                          columns=["pid", "rank", "district", "reasons", "reasons_en", "exploration", "source"])
    return render(request, "audit_list.html.j2", login, month=month, people=listed.to_dict("records"))


@router.get("/months/{month}/explain/{pid}", response_class=HTMLResponse)
def explain(request: Request, month: str, pid: str, login: Login = Depends(AUDITOR)) -> Response:
    cfg = request.app.state.cfg
    _completed(request, month)
    pid = pid_param(pid)
    listed = read_parquet(runs.list_file(cfg, month), columns=["pid"])
    if pid not in set(listed["pid"]):
        raise HTTPException(404, f"この仮名 ID は {month} のリストにありません / the pseudonym is not on the {month} list")
    try:
        # the features may be rebuilt into the work dir's cache: not while a batch writes there
        with _WORK, work_lock(cfg):
            view = person_of(cfg, month, pid)
    except LockHeld:
        raise HTTPException(503, "バッチの実行中です。終わってから開き直してください / "
                                 "a batch is running: open this page again when it has finished") from None
    chart = base64.b64encode(view.waterfall).decode() if view.waterfall is not None else None
    return render(request, "audit_explain.html.j2", login, month=month, pid=pid, text=view.text, chart=chart)


@router.get("/log", response_class=HTMLResponse)
def audit_log(request: Request, login: Login = Depends(AUDITOR)) -> Response:
    cfg = request.app.state.cfg
    problems = audit.verify(cfg.audit_log, audit.release_seals(cfg.releases_dir))
    try:
        logged = audit.entries(cfg.audit_log)
    except ValueError:   # a line that is not JSON: verify names it; the entries cannot be listed
        logged = []
    entries = []
    for entry in reversed(logged):
        rest = {k: v for k, v in entry.items() if k not in (*_LOG_COLUMNS, "mac", "prev")}
        entries.append({**{k: entry.get(k, "") for k in _LOG_COLUMNS},
                        "details": json.dumps(rest, ensure_ascii=False, sort_keys=True)})
    return render(request, "audit_log.html.j2", login, problems=problems, entries=entries,
                  exists=cfg.audit_log.exists())
