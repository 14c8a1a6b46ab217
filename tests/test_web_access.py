"""The web app's doors: accounts from the CLI, login and logout, sessions that expire, CSRF on
every form, login throttling, roles, and the address it listens on (no ward needed)."""
from __future__ import annotations

import io
import stat

import pytest

from pipelines import cli
from pipelines.config import load_config
from pipelines.web.accounts import authenticated
from pipelines.web.db import User, database_url
from pipelines.web.security import month_param
from pipelines.web.decisions import approver_of
from tests.approving import registered_approver
from tests.webapp import PASSWORD, Clock, app_for, cheap_hashes, csrf_of, logged_in, login_attempt, routes


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


@pytest.fixture
def zones(tmp_path):
    return load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(zones, clock):
    return app_for(zones, clock, {"aoki": "auditor", "kato": "coordinator", "sato": "approver", "ueda": "analyst",
                                  "koga": "custodian"})


# the account whose role a route's prefix is for (a route of another role answers 403 anyway)
OWNER = {"/coord": "kato", "/approver": "sato", "/audit": "aoki", "/analyst": "ueda", "/custodian": "koga"}


def _owner(path: str) -> str:
    return next((name for prefix, name in OWNER.items() if path.startswith(prefix)), "kato")


def _zone_args(cfg) -> list[str]:
    return ["--inbox", str(cfg.inbox), "--work", str(cfg.work), "--custody", str(cfg.custody)]


def test_users_add_takes_the_password_from_stdin_and_stores_only_an_argon2_hash(zones, monkeypatch, capsys):
    registered_approver(zones, "C")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main([*_zone_args(zones), "users", "add", "佐藤 花子", "--role", "approver", "--approver-id", "c"]) == 0
    out = capsys.readouterr().out
    assert "佐藤 花子" in out and "approving as C" in out
    app = app_for(zones, Clock(), {})
    with app.state.sessions() as db:
        user = db.query(User).one()
        assert (user.name, user.role) == ("佐藤 花子", "approver")
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        assert authenticated(db, "佐藤 花子", PASSWORD) is not None
        assert authenticated(db, "佐藤 花子", PASSWORD + "x") is None
        assert approver_of(db, "佐藤 花子") == "C"
    # the database lives in the custody zone, owner-only
    folder = zones.custody / "app"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "mimamori.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("argv, message", [
    (["users", "add", "x", "--role", "auditor", "--password", PASSWORD], "unrecognized arguments"),
    (["users", "add", "x", "--role", "mayor"], "invalid choice"),
    (["users", "add", " ", "--role", "auditor"], "printable"),
])
def test_users_add_refuses_a_password_in_argv_and_unknown_roles(zones, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*_zone_args(zones), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--role", "approver"], "needs --approver-id"),
    (["--role", "approver", "--approver-id", "Z9"], "Z9"),                 # not registered
    (["--role", "auditor", "--approver-id", "C"], "for --role approver only"),
])
def test_an_approver_account_is_a_registered_identity(zones, monkeypatch, capsys, argv, message):
    registered_approver(zones, "C")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main([*_zone_args(zones), "users", "add", "hayashi", *argv]) != 0
    assert message in capsys.readouterr().err
    with app_for(zones, Clock(), {}).state.sessions() as db:
        assert db.query(User).count() == 0   # refused before anything was written


@pytest.mark.parametrize("password, name, problem", [
    ("short", "x", "12"), (PASSWORD, "aoki", "already exists"), (PASSWORD, "ａｏｋｉ", "already exists")])
def test_users_add_refuses_weak_passwords_and_taken_names(zones, app, monkeypatch, capsys, password, name, problem):
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert cli.main([*_zone_args(zones), "users", "add", name, "--role", "auditor"]) == 2
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize("argv, bound", [([], ("127.0.0.1", 8080)), (["--port", "9001"], ("127.0.0.1", 9001)),
                                         (["--host", "0.0.0.0", "--port", "80"], ("0.0.0.0", 80))])
def test_serve_binds_to_this_machine_unless_told_otherwise(zones, monkeypatch, argv, bound):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: seen.update(host=host, port=port, app=app))
    assert cli.main([*_zone_args(zones), "serve", *argv]) == 0
    assert (seen["host"], seen["port"]) == bound
    assert seen["app"].title == "mimamori"


def test_pages_need_a_login_and_logout_ends_the_session(app):
    client = logged_in(app, "aoki")
    assert client.get("/audit").status_code == 200
    stolen = dict(client.cookies)
    home = client.get("/")
    assert client.post("/logout", data={"csrf": csrf_of(home.text)}).status_code == 303
    for cookies in ({}, stolen):   # no cookie, and the cookie of the closed session
        client.cookies.clear()
        client.cookies.update(cookies)
        page = client.get("/audit")
        assert page.status_code == 303 and page.headers["location"] == "/login"


def test_wrong_password_and_unknown_name_are_refused_alike(app):
    client = logged_in(app, "aoki").__class__(app, follow_redirects=False)
    assert login_attempt(client, "aoki", "wrong password!!") == 401
    assert login_attempt(client, "nobody", PASSWORD) == 401
    assert client.get("/audit").status_code == 303


@pytest.mark.parametrize("steps, live", [
    ([29], True), ([31], False),                 # idle limit: 30 minutes
    ([25] * 19, True), ([25] * 20, False),       # used every 25 minutes: alive until 8 hours after login
])
def test_sessions_expire_when_idle_and_after_their_lifetime(app, clock, steps, live):
    client = logged_in(app, "aoki")
    for minutes in steps[:-1]:
        clock.advance(minutes=minutes)
        assert client.get("/audit").status_code == 200
    clock.advance(minutes=steps[-1])
    page = client.get("/audit")
    assert (page.status_code == 200) == live
    if not live:   # and a form posted with an expired session is refused too
        assert client.post("/logout", data={"csrf": "x"}).status_code == 401


def test_every_form_without_its_csrf_token_is_refused(app):
    posts = [path for method, path in routes(app) if method == "POST"]
    assert {"/login", "/logout", "/coord/months/{month}/districts/{district}/visits"} <= set(posts)
    clients = {name: logged_in(app, name) for name in set(OWNER.values())}
    for path in posts:
        # posted by an account of the route's own role, so the CSRF check is what refuses it
        client = clients[_owner(path)]
        right = csrf_of(client.get("/").text)
        url = path.replace("{month}", "2026-10").replace("{district}", "x").replace("{pid}", "0" * 32)
        for form in ({}, {"csrf": "forged"}, {"csrf": right[:-1]}):
            response = client.post(url, data={**form, "name": "kato", "password": PASSWORD})
            assert response.status_code == 403 and "CSRF" in response.text, (url, form)
    for client in clients.values():
        assert client.get("/").status_code == 200   # still logged in: nothing was done


@pytest.mark.parametrize("failures, allowed", [(4, True), (5, False)])
def test_logins_are_throttled_per_name(app, clock, failures, allowed):
    client = logged_in(app, "kato").__class__(app, follow_redirects=False)
    for _ in range(failures):
        assert login_attempt(client, "aoki", "not the password") == 401
    assert login_attempt(client, "aoki", PASSWORD) == (303 if allowed else 429)
    assert login_attempt(client, "kato", PASSWORD) == 303   # another name is not locked out
    if not allowed:
        clock.advance(minutes=16)
        assert login_attempt(client, "aoki", PASSWORD) == 303


@pytest.mark.parametrize("role, path", [("aoki", "/coord"), ("kato", "/audit"), ("kato", "/audit/log")])
def test_each_role_opens_only_its_own_pages(app, role, path):
    assert logged_in(app, role).get(path).status_code == 403


def test_responses_forbid_framing_scripts_and_caching(app):
    response = logged_in(app, "aoki").get("/audit")
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"


def test_database_is_sqlite_in_custody_unless_configured(zones, tmp_path):
    assert database_url(zones) == f"sqlite:///{zones.custody / 'app' / 'mimamori.db'}"
    toml = tmp_path / "mimamori.toml"
    toml.write_text('[web]\ndatabase = "postgresql+psycopg://mimamori@db.example/mimamori"\n', encoding="utf-8")
    cfg = load_config(toml, environ={})
    assert database_url(cfg) == "postgresql+psycopg://mimamori@db.example/mimamori"
    plain = tmp_path / "plain.toml"
    plain.write_text("", encoding="utf-8")
    assert cfg.config_hash == load_config(plain, environ={}).config_hash   # web settings change no result


@pytest.mark.parametrize("text", ["2026-10\n", "2026-13", "2026-1", "../2026-10", "2026-10/..", "２０２６-10", ""])
def test_a_month_parameter_is_exactly_a_month(text):
    from fastapi import HTTPException   # imported here: only this test calls the checker directly

    with pytest.raises(HTTPException) as refused:
        month_param(text)
    assert refused.value.status_code == 404
    assert month_param("2026-10") == "2026-10"
