"""What every page shares: the database session, the login, role checks, CSRF-checked forms and
rendering (the role modules and app.py build on these)."""
from __future__ import annotations

from typing import Callable, Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from pipelines.web import security
from pipelines.web.roles import ROLES
from pipelines.web.security import SESSION_COOKIE, Login

CSRF_REFUSED = ("フォームの確認用トークンがないか、違います。画面を開き直してください / "
                "the form's CSRF token is missing or wrong: reload the page")


class NeedLogin(Exception):
    """No live session: a page sends the browser to the login form."""


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as db:
        yield db


def current_login(request: Request, db: Session = Depends(db_session)) -> Login:
    state = request.app.state
    login = security.live_login(db, request.cookies.get(SESSION_COOKIE), state.clock(), state.limits)
    if login is None:
        raise NeedLogin()
    return login


def require(*roles: str) -> Callable[..., Login]:
    """A dependency: the login, if its role is one of `roles`; 403 otherwise."""
    def check(login: Login = Depends(current_login)) -> Login:
        if login.user.role not in roles:
            raise HTTPException(403, "この画面はあなたの役割では開けません / your role cannot open this page")
        return login
    return check


async def form_of(request: Request, login: Login = Depends(current_login)) -> dict[str, str]:
    """The posted form, if it carries the session's CSRF token; 403 otherwise."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not security.same_token(form.get("csrf"), login.csrf):
        raise HTTPException(403, CSRF_REFUSED)
    return form


def render(request: Request, name: str, login: Login | None, status: int = 200, **context) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, name, {"login": login, "roles": ROLES, **context}, status_code=status)
