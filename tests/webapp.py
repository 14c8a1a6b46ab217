"""Helpers of the web app's tests: an app over some zones, a clock the test moves, accounts,
logging in the way a browser does (the login form's CSRF token), and the app's routes."""
from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass, field

from fastapi.routing import APIRoute

with warnings.catch_warnings():   # starlette's TestClient warns that it prefers httpx2 (not installed)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from pipelines.config import Config
from pipelines.web import approver, auditor, coordinator
from argon2 import PasswordHasher

from pipelines.web import accounts
from pipelines.web.accounts import add_user
from pipelines.web.app import create_app

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


def app_for(cfg: Config, clock: Clock, users: dict[str, str]):
    """The app over `cfg` with one account per name -> role (all with PASSWORD)."""
    app = create_app(cfg, clock=clock)
    with app.state.sessions() as db:
        for name, role in users.items():
            add_user(db, name, role, PASSWORD)
    return app


def csrf_of(html: str) -> str:
    return _CSRF.search(html).group(1)


def logged_in(app, name: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"name": name, "password": password, "csrf": token})
    assert response.status_code == 303, response.text
    return client


def login_attempt(client: TestClient, name: str, password: str) -> int:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf": token}).status_code


def routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, the role routers' included."""
    found = []
    for route in [*app.routes, *auditor.router.routes, *coordinator.router.routes, *approver.router.routes]:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
    return sorted(set(found))


def cheap_hashes(monkeypatch) -> None:
    """argon2id at its lowest cost, so a test's dozen logins take milliseconds, not seconds
    (the shipped cost, ~0.5 s a hash on a shared core, is the point of argon2 in production)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_HASHER", cheap)
    monkeypatch.setattr(accounts, "_DUMMY", cheap.hash("not a password of anyone"))
