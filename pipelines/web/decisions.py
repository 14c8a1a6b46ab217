"""What coordinators decide in the app before and after a release: the review of a month's list
(keep, skip with a reason, add a person with a reason), the visitor assigned to each person,
and which approver identity an approver's account is.

The review is kept here while it is being made; submitting it writes the snapshot the approvers
sign (pipelines/review.py). Free-text reasons may name circumstances of a person, so they stay
in this database (custody zone) and in the snapshot, and never go into the audit log, which
records only pseudonyms, decisions and counts.
"""
from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import DateTime, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from pipelines.review import Review
from pipelines.web.db import Base

DECISIONS = {"keep": ("訪問する", "keep"), "skip": ("今回は訪問しない", "skip"), "add": ("追加する", "add")}
MAX_TEXT = 200


class DecisionRefused(ValueError):
    """A decision cannot be recorded as entered (bilingual message)."""


class ReviewDecision(Base):
    """One person's review decision on one month's list (the latest one counts)."""
    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("month", "pid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    pid: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(MAX_TEXT))
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    """The visitor (a nurse's or 民生委員's name, as the coordinator writes it) for one person."""
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("month", "pid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    pid: Mapped[str] = mapped_column(String(32))
    visitor: Mapped[str] = mapped_column(String(100))
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApproverAccount(Base):
    """An approver's account and the registered approver identity (pipelines/approvers.py) it is:
    the app's approvals are that identity's signed approvals, the same as `mimamori approve`."""
    __tablename__ = "approver_accounts"
    user_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    approver_id: Mapped[str] = mapped_column(String(32), unique=True)


def one_line(text: str, what_ja: str, what_en: str, required: bool = True) -> str:
    """A reason or name as stored: NFC (NFKC would turn the writer's （） and ！ into ASCII),
    trimmed, one printable line of at most MAX_TEXT characters."""
    value = unicodedata.normalize("NFC", text or "").strip()
    if required and not value:
        raise DecisionRefused(f"{what_ja}を入力してください / enter the {what_en}")
    if len(value) > MAX_TEXT or any(not ch.isprintable() for ch in value):
        raise DecisionRefused(f"{what_ja}は {MAX_TEXT} 文字以内の 1 行にしてください / "
                              f"the {what_en} is one line of at most {MAX_TEXT} characters")
    return value


def decide(db: Session, month: str, pid: str, district: str, decision: str, reason: str, account: str,
           now: dt.datetime) -> ReviewDecision:
    """Record (or change) a person's decision; skip and add need a reason, keep may have one."""
    if decision not in DECISIONS:
        raise DecisionRefused("判断を選んでください / choose a decision")
    reason = one_line(reason, "理由", "reason", required=decision != "keep")
    row = db.scalar(select(ReviewDecision).where(ReviewDecision.month == month, ReviewDecision.pid == pid))
    if row is None:
        row = ReviewDecision(month=month, pid=pid)
        db.add(row)
    row.district, row.decision, row.reason, row.decided_by, row.decided_at = district, decision, reason, account, now
    db.commit()
    return row


def decisions(db: Session, month: str) -> dict[str, ReviewDecision]:
    rows = db.scalars(select(ReviewDecision).where(ReviewDecision.month == month).order_by(ReviewDecision.id))
    return {r.pid: r for r in rows}


def review_of(db: Session, month: str, account: str, now: dt.datetime) -> Review:
    """The snapshot to submit: every skip and add recorded for the month (keeps change nothing)."""
    found = decisions(db, month).values()
    return Review(month, tuple(sorted((r.pid, r.reason) for r in found if r.decision == "skip")),
                  tuple((r.pid, r.district, r.reason) for r in sorted(found, key=lambda r: r.id) if r.decision == "add"),
                  account, now.isoformat(timespec="seconds"))


def assign(db: Session, month: str, pid: str, visitor: str, account: str, now: dt.datetime) -> Assignment | None:
    """Set a person's visitor; an empty name clears the assignment (None)."""
    visitor = one_line(visitor, "訪問担当者", "visitor's name", required=False)
    row = db.scalar(select(Assignment).where(Assignment.month == month, Assignment.pid == pid))
    if not visitor:
        if row is not None:
            db.delete(row)
            db.commit()
        return None
    if row is None:
        row = Assignment(month=month, pid=pid)
        db.add(row)
    row.visitor, row.assigned_by, row.assigned_at = visitor, account, now
    db.commit()
    return row


def assignments(db: Session, month: str) -> dict[str, str]:
    return {a.pid: a.visitor for a in db.scalars(select(Assignment).where(Assignment.month == month))}


def approver_of(db: Session, user_name: str) -> str | None:
    """The approver identity an account is, or None when the custodian has linked none."""
    row = db.get(ApproverAccount, user_name)
    return None if row is None else row.approver_id


def link_approver(db: Session, user_name: str, approver_id: str) -> None:
    """Make an approver account that registered identity (one account per identity)."""
    taken = db.scalar(select(ApproverAccount).where(ApproverAccount.approver_id == approver_id))
    if taken is not None and taken.user_name != user_name:
        raise DecisionRefused(f"承認者 {approver_id} はアカウント {taken.user_name} に結び付いています / "
                              f"approver {approver_id} is already the account {taken.user_name}")
    row = db.get(ApproverAccount, user_name) or ApproverAccount(user_name=user_name)
    row.approver_id = approver_id
    db.add(row)
    db.commit()
