"""Sessions that expire, CSRF tokens, login throttling and checked path parameters.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only
its SHA-256, when it began and when it was last used. It ends on logout, after `[web]
session_idle_minutes` unused, or `session_max_hours` after login, whichever comes first.
Every form carries a CSRF token: the session's own once logged in, and before login (the login
form) a random token that must match a cookie of the same value. A name with `login_failures`
failed logins within `lockout_minutes` is refused, even with the right password, until the
window has passed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Callable

from fastapi import HTTPException
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from contract.months import check_month
from pipelines.web.db import LoginFailure, User, WebSession

SESSION_COOKIE = "mimamori_session"
LOGIN_CSRF_COOKIE = "mimamori_login_csrf"
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Limits:
    idle: dt.timedelta
    lifetime: dt.timedelta
    failures: int
    lockout: dt.timedelta

    @classmethod
    def of(cls, web: dict) -> "Limits":
        return cls(dt.timedelta(minutes=web["session_idle_minutes"]), dt.timedelta(hours=web["session_max_hours"]),
                   int(web["login_failures"]), dt.timedelta(minutes=web["lockout_minutes"]))


@dataclass(frozen=True)
class Login:
    """The user of a live session and its CSRF token."""
    user: User
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands timezone-aware values back naive; they were stored in UTC
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def open_session(db: Session, user: User, now: dt.datetime) -> str:
    """A new session for `user`; returns the cookie's token (never stored)."""
    token = secrets.token_urlsafe(32)
    db.add(WebSession(token_sha256=_digest(token), user_id=user.id, csrf=secrets.token_urlsafe(32),
                      started=now, last_seen=now))
    db.commit()
    return token


def live_login(db: Session, token: str | None, now: dt.datetime, limits: Limits) -> Login | None:
    """The session's login if it is live (and marks it used); an expired one is deleted."""
    if not token:
        return None
    row = db.get(WebSession, _digest(token))
    if row is None:
        return None
    if now - _aware(row.last_seen) > limits.idle or now - _aware(row.started) > limits.lifetime:
        db.delete(row)
        db.commit()
        return None
    row.last_seen = now
    user = db.get(User, row.user_id)
    db.commit()
    return Login(user, row.csrf) if user is not None else None


def close_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(WebSession).where(WebSession.token_sha256 == _digest(token)))
        db.commit()


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the expected one (both present)."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def locked_out(db: Session, name: str, now: dt.datetime, limits: Limits) -> bool:
    """Whether `name` has had too many failed logins within the lockout window."""
    since = now - limits.lockout
    count = db.scalar(select(func.count()).select_from(LoginFailure)
                      .where(LoginFailure.name == name, LoginFailure.at > since))
    return int(count or 0) >= limits.failures


def record_failure(db: Session, name: str, now: dt.datetime) -> None:
    db.add(LoginFailure(name=name, at=now))
    db.commit()


def clear_failures(db: Session, name: str) -> None:
    db.execute(delete(LoginFailure).where(LoginFailure.name == name))
    db.commit()


# --- path parameters: a month is a folder name and a pid a file name, so only exact forms pass ---

_PID = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"[1-9][0-9]{0,5}")


def month_param(text: str) -> str:
    """A YYYY-MM month with a real month; anything else (`../`, 2026-13) is 404."""
    try:
        return check_month(text)
    except ValueError:
        raise HTTPException(404, "年月は YYYY-MM（例：2026-04）で指定してください / a month is YYYY-MM, e.g. 2026-04") from None


def pid_param(text: str) -> str:
    if not _PID.fullmatch(text):
        raise HTTPException(404, "仮名 ID は 32 桁の16進数です / a pseudonym is 32 lowercase hexadecimal characters")
    return text


def version_param(text: str) -> str:
    if not _VERSION.fullmatch(text):
        raise HTTPException(404, "モデルのバージョンは正の整数です / a model version is a positive whole number")
    return text
