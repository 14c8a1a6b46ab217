"""The auditor's month pages of fairness at capacity and of data quality, as the report shows them.

Nothing is recomputed here. Fairness (report §5: this month's list among eligible people, and the
holdout audit of every ranker at capacity k, recorded at training) and data quality (report §2:
every delivered file, its lines accounted for, quarantine, expectations checked and failed) are
read from the month's published report (pipelines/web/published.py), so every count and rate is
the report's own cell after its disclosure pass, and a suppressed cell stays suppressed. The data
quality page adds each validated table's expectations from the run's stored GX results
(<work>/validation/<month>/<suite>.json), worded by the same function as the Data Docs
(reports/data_docs.py `suite`: counts and aggregates only, never a value).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from contract.storage import read_json
from pipelines.catalog import runs
from pipelines.catalog.validation import results_dir
from pipelines.web.pages import render, require
from pipelines.web.published import Block, report_section
from pipelines.web.security import Login, month_param
from reports.data_docs import POLICIES, suite

router = APIRouter(prefix="/audit/months")
AUDITOR = require("auditor")


def _section(request: Request, month: str, section: str) -> list[Block]:
    cfg = request.app.state.cfg
    if runs.completed_run(cfg, month_param(month)) is None:   # also checks the report's digest
        raise HTTPException(404, f"{month} の実行は完了していません / the {month} run is not complete")
    blocks = report_section(runs.report_file(cfg, month).read_text(encoding="utf-8"), section)
    if blocks is None:
        raise HTTPException(404, f"{month} のレポートにこの節はありません / the {month} report has no such section")
    return blocks


@router.get("/{month}/fairness", response_class=HTMLResponse)
def fairness(request: Request, month: str, login: Login = Depends(AUDITOR)) -> Response:
    return render(request, "audit_fairness.html.j2", login, month=month, blocks=_section(request, month, "fairness"))


@router.get("/{month}/quality", response_class=HTMLResponse)
def quality(request: Request, month: str, login: Login = Depends(AUDITOR)) -> Response:
    blocks = _section(request, month, "quality")
    folder = results_dir(request.app.state.cfg.work, month)
    suites = [suite(path.stem, read_json(path), None) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return render(request, "audit_quality.html.j2", login, month=month, blocks=blocks, suites=suites,
                  policies=POLICIES)
