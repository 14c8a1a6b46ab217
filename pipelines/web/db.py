"""The web app's own state: accounts, sessions, failed logins and the visits coordinators enter.

SQLite in the custody zone by default (<custody>/app/mimamori.db, folder 0700, file 0600), since
its visits are about identified people; `[web] database` may name any SQLAlchemy URL instead
(e.g. postgresql+psycopg://mimamori@db/mimamori).
"""
from __future__ import annotations

import datetime as dt
import importlib
import os

from sqlalchemy import (Date, DateTime, ForeignKey, Integer, String, UniqueConstraint, create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from pipelines.config import Config
from pipelines.custody import private_dir


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A login: the cookie holds a random token, the table only its SHA-256."""
    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    started: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Visit(Base):
    """One visit of a listed person, entered by a coordinator; one row per person and visit day
    of a list month (saving the same day again corrects the outcome)."""
    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("month", "pid", "visit_date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)     # the list the person was on
    pid: Mapped[str] = mapped_column(String(32), index=True)
    district: Mapped[str] = mapped_column(String(100))
    visit_date: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(20))               # contract value, e.g. needs_support
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def database_url(cfg: Config) -> str:
    """`[web] database`, or SQLite at <custody>/app/mimamori.db (its folder made private)."""
    url = str(cfg.settings.get("web", {}).get("database", "") or "")
    if url:
        return url
    folder = private_dir(cfg.custody / "app")
    return f"sqlite:///{folder / 'mimamori.db'}"


def _sqlite_connected(path: str | None):
    def pragmas(connection, _record) -> None:
        # WAL lets readers go on while one writer commits; busy_timeout makes a second writer
        # wait for the first instead of failing, so two coordinators saving at once both succeed.
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # SQLite creates the file and its -wal/-shm companions under the process's umask (the
        # CLI's is 077, a library caller's may not be): custody files are owner-only regardless
        for name in (path, f"{path}-wal", f"{path}-shm") if path else ():
            if os.path.exists(name):
                os.chmod(name, 0o600)
    return pragmas


# Modules that declare more of the app's tables on Base (imported before the tables are made,
# so the CLI's `users add` creates the same database as `serve`).
TABLE_MODULES = ("pipelines.web.decisions", "pipelines.web.lookups")


def engine_for(url: str) -> Engine:
    """The engine, with the tables created; a SQLite file (and its WAL) is kept 0600."""
    for module in TABLE_MODULES:
        importlib.import_module(module)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_connected(engine.url.database))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine


def sessions_for(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
