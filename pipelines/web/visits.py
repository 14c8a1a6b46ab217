"""Visits entered in the app, and their export as the next month's `outreach_outcomes`.

A coordinator records a visit date and outcome per listed person; each save is committed to
the app's database and then the month's visits are merged into
`<inbox>/<month+1>/outreach_outcomes.csv` by pipelines/outcomes.py `merge_outcomes`, the same
writer (and contract) as a returned sheet's import, so the next month's run ingests them as
labels. Exports are serialised (a thread lock in this process, the custody zone's lock across
processes, e.g. against `mimamori outcomes import`), and each export writes every visit of the
month the database holds, so two coordinators saving at once lose nothing.
"""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contract.months import month_end, shift
from contract.sources import OUTCOME
from pipelines.config import Config
from pipelines.locks import custody_lock
from pipelines.outcomes import OutcomeRow, merge_outcomes
from pipelines.web.db import Visit

# contract value -> its Japanese word, in the contract's order (要支援, 問題なし, 不在, 拒否)
OUTCOME_JA: dict[str, str] = {value: word for word, value in OUTCOME.items() if word != value}
_EXPORT = threading.Lock()   # zone locks are re-entrant per process, so threads need their own


class VisitRefused(ValueError):
    """A visit cannot be recorded as entered (the message says why, bilingually)."""


def visit_window(month: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The dates a visit from `month`'s list may have: from the list month's first day until
    today, and no later than the end of the next delivery month (where it is exported)."""
    first = month_end(month).date().replace(day=1)
    return first, min(today, month_end(shift(month, 1)).date())


def checked_visit(month: str, date_text: str, outcome: str, today: dt.date) -> tuple[dt.date, str]:
    """(visit date, outcome) from a form, or VisitRefused."""
    try:
        when = dt.date.fromisoformat(date_text.strip())
    except ValueError:
        raise VisitRefused("訪問日を YYYY-MM-DD で入力してください / enter the visit date as YYYY-MM-DD") from None
    first, last = visit_window(month, today)
    if not first <= when <= last:
        raise VisitRefused(f"訪問日は {first} から {last} までです / the visit date must be from {first} to {last}")
    if outcome not in OUTCOME_JA:
        raise VisitRefused("訪問結果を選んでください / choose a visit outcome")
    return when, outcome


def save_visit(db: Session, month: str, pid: str, district: str, when: dt.date, outcome: str,
               account: str, now: dt.datetime) -> Visit:
    """Insert the visit, or correct the outcome of the same person's visit on the same day."""
    row = db.scalar(select(Visit).where(Visit.month == month, Visit.pid == pid, Visit.visit_date == when))
    if row is None:
        row = Visit(month=month, pid=pid, district=district, visit_date=when)
        db.add(row)
    row.outcome, row.recorded_by, row.recorded_at = outcome, account, now
    db.commit()
    return row


def month_visits(db: Session, month: str) -> list[Visit]:
    return list(db.scalars(select(Visit).where(Visit.month == month).order_by(Visit.visit_date, Visit.id)))


def person_visits(db: Session, pid: str) -> list[Visit]:
    return list(db.scalars(select(Visit).where(Visit.pid == pid).order_by(Visit.visit_date, Visit.id)))


def delivered_visits(outcomes: pd.DataFrame, pid: str) -> pd.DataFrame:
    """A person's visit outcomes as the lake knows them (delivered, pseudonymous), oldest first."""
    mine = outcomes[outcomes["pid"] == pid].sort_values("visit_date", kind="stable")
    return pd.DataFrame({"visit_date": pd.to_datetime(mine["visit_date"]).dt.strftime("%Y-%m-%d"),
                         "outcome": mine["outcome"].astype(str)})


def export_month(cfg: Config, sessions: sessionmaker, month: str, account: str) -> Path:
    """Merge every visit of `month`'s list held in the database into the next delivery's
    outreach_outcomes (logged as `outcomes_web` in the audit log); returns the file."""
    with _EXPORT, custody_lock(cfg, wait=True):
        with sessions() as db:   # read after taking the locks: an earlier export's rows are in
            rows = [OutcomeRow(f"app visit record {v.id}", v.pid, None, v.visit_date, v.outcome)
                    for v in month_visits(db, month)]
        return merge_outcomes(cfg, month, shift(month, 1), rows, "web app", "outcomes_web", account=account)
