"""Accounts: one per person, with one role, and a password kept only as an argon2id hash."""
from __future__ import annotations

import datetime as dt
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.web.db import User
from pipelines.web.roles import ROLES

MIN_PASSWORD = 12
_HASHER = PasswordHasher()   # argon2id with the library's maintained defaults


class AccountProblem(ValueError):
    """An account cannot be created as asked (the message says why; it never holds the password)."""


def account_name(text: str) -> str:
    """The account name as stored: NFKC, trimmed, printable, one line, at most 100 characters."""
    name = unicodedata.normalize("NFKC", text).strip()
    if not name or len(name) > 100 or any(not ch.isprintable() for ch in name):
        raise AccountProblem("アカウント名は 1〜100 文字の印字可能な 1 行にしてください / "
                             "an account name is 1 to 100 printable characters on one line")
    return name


def add_user(db: Session, name: str, role: str, password: str, now: dt.datetime | None = None) -> User:
    """Create an account; refuses an unknown role, a taken name and a short password."""
    if role not in ROLES:
        raise AccountProblem(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    name = account_name(name)
    if len(password) < MIN_PASSWORD:
        raise AccountProblem(f"パスワードは {MIN_PASSWORD} 文字以上にしてください / "
                             f"a password needs at least {MIN_PASSWORD} characters")
    if db.scalar(select(User).where(User.name == name)) is not None:
        raise AccountProblem(f"アカウント {name} はすでにあります / the account {name} already exists")
    user = User(name=name, role=role, password_hash=_HASHER.hash(password),
                created=now or dt.datetime.now(dt.timezone.utc))
    db.add(user)
    db.commit()
    return user


def authenticated(db: Session, name: str, password: str) -> User | None:
    """The account if the password is its own, else None (an unknown name costs a hash too, so
    timing does not tell which names exist)."""
    try:
        user = db.scalar(select(User).where(User.name == account_name(name)))
    except AccountProblem:
        user = None
    try:
        if user is None:
            _HASHER.verify(_DUMMY, password)
            return None
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
        db.commit()
    return user


_DUMMY = _HASHER.hash("not a password of anyone")
