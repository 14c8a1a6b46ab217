"""`create_app`: the FastAPI app of `mimamori serve`, its login, logout and home page.

Pages are rendered on the server from Jinja2 templates (pipelines/web/templates/, autoescaped);
there is no JavaScript. Every page needs a live session, every form a CSRF token (`form_of`),
and each role sees only its own pages (`require`); see pages.py.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from contract.storage import DataDamaged
from pipelines.config import Config
from pipelines.web import approver, auditor, coordinator, security
from pipelines.web.accounts import authenticated
from pipelines.web.db import database_url, engine_for, sessions_for
from pipelines.web.pages import CSRF_REFUSED, NeedLogin, current_login, db_session, form_of, render
from pipelines.web.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Limits, Login

TEMPLATES = Path(__file__).with_name("templates")
# Headers on every response: no framing, no sniffing, nothing from elsewhere, nothing cached
# (pages after release hold names).
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                      "script-src 'none'; frame-ancestors 'none'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_app(cfg: Config, database: str | None = None, clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The app over `cfg`'s zones; `database` overrides `[web] database`, `clock` the time (tests)."""
    app = FastAPI(title="mimamori", docs_url=None, redoc_url=None, openapi_url=None)
    state = app.state
    state.cfg, state.clock, state.limits = cfg, clock or _utc_now, Limits.of(cfg.settings["web"])
    state.engine = engine_for(database or database_url(cfg))
    state.sessions = sessions_for(state.engine)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    state.templates = Jinja2Templates(env=env)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(NeedLogin)
    async def to_login(request: Request, exc: NeedLogin) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return render(request, "error.html.j2", None, status=401,
                      message="ログインの有効期限が切れました。もう一度ログインしてください / the session has expired: log in again")

    @app.exception_handler(HTTPException)
    async def error_page(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html.j2", None, status=exc.status_code, message=str(exc.detail))

    @app.exception_handler(DataDamaged)
    async def damaged(request: Request, exc: DataDamaged) -> Response:
        # a file that no longer has its recorded bytes is named, never shown
        return render(request, "error.html.j2", None, status=500, message=str(exc))

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or security.new_token()
        response = render(request, "login.html.j2", None, csrf=token, message=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return response

    @app.post("/login")
    async def login(request: Request, db: Session = Depends(db_session)) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not security.same_token(form.get("csrf"), expected):
            raise HTTPException(403, CSRF_REFUSED)
        name, now = form.get("name", "").strip(), state.clock()
        if security.locked_out(db, name, now, state.limits):
            return render(request, "login.html.j2", None, status=429, csrf=expected,
                          message=f"ログインの失敗が続いたため、{state.limits.lockout.seconds // 60} 分間ログインできません / "
                                  "too many failed logins: try again later")
        user = authenticated(db, name, form.get("password", ""))
        if user is None:
            security.record_failure(db, name, now)
            return render(request, "login.html.j2", None, status=401, csrf=expected,
                          message="名前またはパスワードが違います / wrong name or password")
        security.clear_failures(db, user.name)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, security.open_session(db, user, now), httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @app.post("/logout")
    def logout(request: Request, form: dict = Depends(form_of), db: Session = Depends(db_session)) -> Response:
        security.close_session(db, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, login: Login = Depends(current_login)) -> Response:
        return render(request, "home.html.j2", login)

    app.include_router(auditor.router)
    app.include_router(coordinator.router)
    app.include_router(approver.router)
    return app
