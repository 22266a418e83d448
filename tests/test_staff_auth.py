"""The staff dashboard's security: no page without a session, CSRF on every form, argon2
passwords never stored or logged in clear, lockout and rate limit, session cookies, roles and
accounts; and ``motcua staff`` on the command line."""

from __future__ import annotations

import importlib
import logging
import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from yarl import URL

from bot.staff import auth
from bot.staff.web import CSP, PAGES, SESSION_COOKIE
from bot.storage.models import (
    StaffAudit,
    StaffLoginAttempt,
    StaffSession,
    StaffUser,
    utcnow,
)
from tests.cli_helpers import run_in_process
from tests.conftest import make_engine
from tests.staff_helpers import (
    PASSWORD,
    UNIT_A,
    UNIT_B,
    StaffClient,
    add_feedback,
    add_user,
    csrf_of,
    use_cheap_hasher,
)

_ALERT = re.compile(r'role="alert">([^<]*)<')
PRODUCTION_HASHER = auth.hasher  # before the tests' cheap one replaces it


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch) -> None:
    use_cheap_hasher(monkeypatch)


def staff_urls() -> list[tuple[str, str]]:
    """(method, URL) of every page and form of the dashboard but the public ones, from the
    page modules themselves: a page added later is checked too."""
    urls = []
    for name in PAGES:
        for route in importlib.import_module(name).routes.routes:
            if route.public:
                continue
            path = re.sub(r"\{id\}", "1", route.path)
            path = re.sub(r"\{\w+\}", "PA-2026-000001", path)
            urls.append((route.method, "/staff" + path))
    return urls


def alert(html: str) -> str:
    found = _ALERT.search(html)
    return found.group(1) if found else ""


async def user_row(db, username: str) -> StaffUser:
    async with db.session() as session:
        return await session.scalar(select(StaffUser).where(StaffUser.username == username))


# -- no session, no page -------------------------------------------------------------------------


async def test_every_staff_url_without_a_session_redirects_to_the_login(
    aiohttp_client, engine
) -> None:
    await add_feedback(engine, "Đèn đường hỏng")
    browser = await StaffClient.open(aiohttp_client, engine)
    urls = staff_urls() + [("GET", "/staff/no-such-page"), ("GET", "/staff/files/abc")]
    assert ("GET", "/staff/") in urls and ("POST", "/staff/feedback/PA-2026-000001/answer") in urls
    for method, url in urls:
        response = await browser.client.request(
            method, url, data={"csrf": "x", "text": "hi"}, allow_redirects=False
        )
        assert response.status == 303, (method, url, response.status)
        assert response.headers["Location"].startswith("/staff/login"), (method, url)
    # Where it sends you back to after logging in.
    response = await browser.get("/staff/feedback/PA-2026-000001?template=solved")
    location = URL(response.headers["Location"])
    assert location.path == "/staff/login"
    assert location.query["next"] == "/staff/feedback/PA-2026-000001?template=solved"
    assert (await browser.get("/staff")).headers["Location"] == "/staff/"
    # The login page and the style sheet are public.
    assert (await browser.get("/staff/login")).status == 200
    assert (await browser.get("/staff/static/staff.css")).status == 200


async def test_login_sets_a_strict_http_only_cookie_and_returns_to_the_page(
    aiohttp_client, engine
) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    page = await browser.get("/staff/login?next=/staff/audit")
    html = await page.text()
    assert 'name="next" value="/staff/audit"' in html
    response = await browser.client.post(
        "/staff/login",
        data={"csrf": csrf_of(html), "username": " LAN ", "password": PASSWORD, "next": "/x"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/staff/"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/staff"
    assert not cookie["secure"]
    assert int(cookie["max-age"]) == 8 * 3600
    async with engine.db.session() as session:
        stored = await session.scalar(select(StaffSession))
    assert stored.token_hash == auth.token_hash(cookie.value) and cookie.value not in (
        stored.token_hash,
        stored.csrf_token,
    )
    assert (await browser.get("/staff/")).status == 200
    assert (await user_row(engine.db, "lan")).last_login_at is not None


async def test_cookies_are_secure_behind_https(aiohttp_client, db) -> None:
    engine = make_engine(db, web_secure_cookies=True)
    await add_user(db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    page = await browser.get("/staff/login")
    assert page.cookies["motcua_staff_login"]["secure"]
    token = csrf_of(await page.text())
    # The test client keeps Secure cookies for HTTPS: the browser behind the proxy would send it.
    response = await browser.client.post(
        "/staff/login",
        data={"csrf": token, "username": "lan", "password": PASSWORD},
        cookies={"motcua_staff_login": token},
        allow_redirects=False,
    )
    assert response.cookies[SESSION_COOKIE]["secure"]


async def test_a_login_elsewhere_is_never_a_redirect_target(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    for target in ("//evil.example/", "https://evil.example/", "/staff//evil.example", "/x"):
        browser.client.session.cookie_jar.clear()  # logged out again
        page = await browser.get("/staff/login")
        response = await browser.client.post(
            "/staff/login",
            data={
                "csrf": csrf_of(await page.text()),
                "username": "lan",
                "password": PASSWORD,
                "next": target,
            },
            allow_redirects=False,
        )
        assert response.headers["Location"] == "/staff/", target
        lang = await browser.get(f"/staff/lang?to=vi&next={target}")
        assert lang.headers["Location"] == "/staff/", target


async def test_logout_deletes_the_session(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("lan")
    token = browser.client.session.cookie_jar.filter_cookies(browser.client.make_url("/staff/"))
    token = token[SESSION_COOKIE].value
    response = await browser.post("/staff/logout")
    assert response.status == 303 and response.headers["Location"] == "/staff/login"
    async with engine.db.session() as session:
        assert await session.scalar(select(StaffSession)) is None
        actions = list(await session.scalars(select(StaffAudit.action).order_by(StaffAudit.id)))
    assert actions[-2:] == ["login", "logout"]
    # The old cookie is worth nothing now.
    replay = await browser.client.get(
        "/staff/", cookies={SESSION_COOKIE: token}, allow_redirects=False
    )
    assert replay.status == 303


async def test_an_expired_session_or_a_deactivated_account_has_no_pages(
    aiohttp_client, engine
) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("lan")
    async with engine.db.write_transaction() as session:
        await session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(1)))
    assert (await browser.get("/staff/")).status == 303

    await browser.login("lan")
    async with engine.db.write_transaction() as session:
        await session.execute(update(StaffUser).values(active=False))
    assert (await browser.get("/staff/")).status == 303
    await browser.login("lan", expect=401)  # and no new session either


# -- CSRF ------------------------------------------------------------------------------------------


async def test_a_form_without_its_csrf_token_is_refused(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    code = await add_feedback(engine, "Đèn đường hỏng")
    browser = await StaffClient.open(aiohttp_client, engine)
    # The login form has its own token (there is no session yet).
    login = await browser.client.post(
        "/staff/login", data={"username": "lan", "password": PASSWORD}, allow_redirects=False
    )
    assert login.status == 403 and SESSION_COOKIE not in login.cookies
    await browser.login("lan")
    for form in ({}, {"csrf": ""}, {"csrf": browser.csrf[::-1]}):
        response = await browser.post(
            f"/staff/feedback/{code}/answer", {"text": "Đã sửa xong", **form}, csrf=False
        )
        assert response.status == 403
        assert "This form has expired" in await response.text()
    assert (await browser.post("/staff/logout", csrf=False)).status == 403
    assert (await browser.get("/staff/")).status == 200  # still logged in
    async with engine.db.session() as session:
        acted = select(StaffAudit).where(StaffAudit.action.like("feedback%"))
        assert await session.scalar(acted) is None
    # Another session's token is no good either.
    other = await StaffClient.open(aiohttp_client, engine)
    await other.login("lan")
    response = await browser.post(
        f"/staff/feedback/{code}/answer", {"text": "x", "csrf": other.csrf}, csrf=False
    )
    assert response.status == 403


# -- passwords, lockout, rate limit --------------------------------------------------------------


async def test_twenty_wrong_passwords_lock_the_account(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    messages = set()
    for n in range(20):
        response = await browser.login("lan", f"sai mật khẩu {n}", expect=401)
        messages.add(alert(await response.text()))
    user = await user_row(engine.db, "lan")
    assert user.locked_until is not None and user.failed_logins >= auth.MAX_FAILURES
    # The right password is refused too, in the same words as a wrong one.
    response = await browser.login("lan", PASSWORD, expect=401)
    messages.add(alert(await response.text()))
    unknown = await browser.login("nobody", PASSWORD, expect=401)
    messages.add(alert(await unknown.text()))
    assert len(messages) == 1 and "Wrong user name or password" in messages.pop()
    async with engine.db.session() as session:
        locked = await session.scalar(select(StaffAudit).where(StaffAudit.action == "locked"))
    assert locked.username == "lan" and locked.unit == UNIT_A

    # Fifteen minutes later the right password works, and the count starts again.
    async with engine.db.write_transaction() as session:
        await session.execute(update(StaffUser).values(locked_until=utcnow() - timedelta(1)))
    await browser.login("lan")
    user = await user_row(engine.db, "lan")
    assert user.failed_logins == 0 and user.locked_until is None


async def test_ten_failures_lock_and_one_more_after_the_lock_locks_again(engine) -> None:
    await add_user(engine.db, "lan")
    for _ in range(auth.MAX_FAILURES - 1):
        assert (await auth.login(engine.db, "lan", "wrong", "10.0.0.1")).outcome == "refused"
    assert (await user_row(engine.db, "lan")).locked_until is None
    await auth.login(engine.db, "lan", "wrong", "10.0.0.2")
    assert (await user_row(engine.db, "lan")).locked_until is not None
    async with engine.db.write_transaction() as session:
        await session.execute(update(StaffUser).values(locked_until=utcnow() - timedelta(1)))
    await auth.login(engine.db, "lan", "wrong", "10.0.0.3")
    assert (await user_row(engine.db, "lan")).locked_until is not None


async def test_an_address_that_fails_too_often_is_turned_away(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    for n in range(auth.ADDRESS_LIMIT):
        await browser.login(f"guess{n}", "123456", expect=401)
    response = await browser.login("lan", PASSWORD, expect=429)
    assert "Too many failed logins" in alert(await response.text())
    # No account was locked by someone else's guesses, and another address still gets in.
    assert (await user_row(engine.db, "lan")).failed_logins == 0
    assert (await auth.login(engine.db, "lan", PASSWORD, "10.9.9.9")).outcome == "ok"


async def test_unknown_and_locked_accounts_still_check_a_password(engine, monkeypatch) -> None:
    """The time a refusal takes does not tell whether the account exists."""
    checked = []
    real = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda h, p: checked.append(h) or real(h, p))
    await add_user(engine.db, "lan")
    await auth.login(engine.db, "nobody", PASSWORD, "10.0.0.1")
    async with engine.db.write_transaction() as session:
        await session.execute(update(StaffUser).values(locked_until=utcnow() + timedelta(1)))
    await auth.login(engine.db, "lan", PASSWORD, "10.0.0.1")
    assert len(checked) == 2 and all(h.startswith("$argon2id$") for h in checked)
    assert (await user_row(engine.db, "lan")).password_hash not in checked


async def test_passwords_are_never_stored_or_logged_in_clear(
    aiohttp_client, engine, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("lan", PASSWORD + "x", expect=401)
    await browser.login(PASSWORD, PASSWORD, expect=401)  # the password typed as the user name
    await browser.login("lan", PASSWORD)
    await auth.set_password(engine.db, (await user_row(engine.db, "lan")).id, PASSWORD, actor="t")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "staff login ok user=lan" in logged and "staff login refused user=?" in logged
    async with engine.db.session() as session:
        user = await session.scalar(select(StaffUser))
        attempts = list(await session.scalars(select(StaffLoginAttempt.username)))
        audit = list(await session.execute(select(StaffAudit.target, StaffAudit.detail)))
    assert attempts == ["lan", ""]
    stored = " ".join([user.password_hash, *attempts, *(" ".join(row) for row in audit)])
    for text in (logged, stored):
        assert PASSWORD not in text and PASSWORD.lower() not in text
    assert user.password_hash.startswith("$argon2id$")
    assert auth.hasher.verify(user.password_hash, PASSWORD)


async def test_a_hash_with_old_parameters_is_upgraded_at_login(engine, monkeypatch) -> None:
    await add_user(engine.db, "lan")  # with the cheap test parameters
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(auth, "hasher", stronger)
    assert (await auth.login(engine.db, "lan", PASSWORD, "10.0.0.1")).outcome == "ok"
    upgraded = (await user_row(engine.db, "lan")).password_hash
    assert "m=2048,t=2" in upgraded and not stronger.check_needs_rehash(upgraded)


def test_production_hashes_are_argon2id_with_the_library_defaults() -> None:
    import argon2

    assert PRODUCTION_HASHER.type is argon2.Type.ID
    assert PRODUCTION_HASHER.memory_cost >= 64 * 1024 and PRODUCTION_HASHER.time_cost >= 2


# -- headers ---------------------------------------------------------------------------------------


async def test_every_page_sends_the_security_headers(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    pages = [await browser.get("/staff/login")]
    await browser.login("lan")
    pages += [await browser.get("/staff/"), await browser.get("/staff/feedback/PA-2026-999999")]
    pages.append(await browser.post("/staff/logout", csrf=False))  # a 403
    for response in pages:
        headers = response.headers
        assert headers["Content-Security-Policy"] == CSP
        for part in (
            "default-src 'self'",
            "img-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ):
            assert part in CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY"
    html = await (await browser.get("/staff/")).text()
    assert "<script" not in html and "style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


# -- roles and accounts ----------------------------------------------------------------------------


async def test_officers_have_no_admin_pages(aiohttp_client, engine) -> None:
    await add_user(engine.db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("lan")
    assert "/staff/users" not in await browser.page("/staff/")
    for url in ("/staff/users", "/staff/audit"):
        assert (await browser.get(url)).status == 403
    form = {"username": "x1", "role": "super_admin", "password": PASSWORD, "password2": PASSWORD}
    assert (await browser.post("/staff/users", form)).status == 403
    assert (await browser.post("/staff/unit", {"unit": UNIT_B})).status == 403
    assert await user_row(engine.db, "x1") is None


async def test_a_unit_admin_manages_the_accounts_of_the_unit_only(aiohttp_client, engine) -> None:
    await add_user(engine.db, "admin", role=auth.UNIT_ADMIN)
    lan = await add_user(engine.db, "lan")
    other = await add_user(engine.db, "minh", unit=UNIT_B)
    boss = await add_user(engine.db, "boss", role=auth.SUPER_ADMIN)
    admin = await StaffClient.open(aiohttp_client, engine)
    await admin.login("admin")
    html = await admin.page("/staff/users")
    assert "lan" in html and "minh" not in html and "boss" not in html

    new = {"username": "Hoa", "display_name": "Trần Thị <b>Hoa</b>", "role": "officer"}
    new |= {"password": PASSWORD, "password2": PASSWORD, "unit": UNIT_B}
    response = await admin.post("/staff/users", new)
    assert response.status == 303
    hoa = await user_row(engine.db, "hoa")
    assert hoa.unit == UNIT_A and hoa.role == "officer"  # the admin's own unit, whatever posted
    assert "Trần Thị &lt;b&gt;Hoa&lt;/b&gt;" in await admin.page("/staff/users")

    refused = [
        new | {"username": "x2", "role": "super_admin"},
        new | {"username": "x3", "password2": PASSWORD + "!"},
        new | {"username": "x4", "password": "ngắn", "password2": "ngắn"},
        new | {"username": "hoa"},
        new | {"username": "có dấu"},
    ]
    for form in refused:
        response = await admin.post("/staff/users", form)
        assert response.status == 400 and alert(await response.text()), form
    for user_id in (other, boss):
        for action, form in (("password", {"password": PASSWORD, "password2": PASSWORD}),):
            assert (await admin.post(f"/staff/users/{user_id}/{action}", form)).status == 404
        assert (await admin.post(f"/staff/users/{user_id}/active", {"active": "0"})).status == 404
    me = (await user_row(engine.db, "admin")).id
    assert (await admin.post(f"/staff/users/{me}/active", {"active": "0"})).status == 400

    # Deactivating an officer ends their sessions at once; a new password unlocks.
    officer = await StaffClient.open(aiohttp_client, engine)
    await officer.login("lan")
    assert (await admin.post(f"/staff/users/{lan}/active", {"active": "0"})).status == 303
    assert (await officer.get("/staff/")).status == 303
    assert (await admin.post(f"/staff/users/{lan}/active", {"active": "1"})).status == 303
    new_password = "Một mật khẩu mới khác"
    form = {"password": new_password, "password2": new_password}
    assert (await admin.post(f"/staff/users/{lan}/password", form)).status == 303
    await officer.login("lan", PASSWORD, expect=401)
    await officer.login("lan", new_password)
    async with engine.db.session() as session:
        audit = list(await session.scalars(select(StaffAudit).order_by(StaffAudit.id)))
    done = [(row.username, row.action, row.target) for row in audit if row.username == "admin"]
    assert done[1:] == [
        ("admin", "user_create", "hoa"),
        ("admin", "user_deactivate", "lan"),
        ("admin", "user_activate", "lan"),
        ("admin", "user_password", "lan"),
    ]
    audit_page = await admin.page("/staff/audit")
    assert "created an account" in audit_page and "deactivated an account" in audit_page
    assert "hoa" in audit_page and "minh" not in audit_page  # another unit's log


async def test_a_super_admin_chooses_the_unit_and_manages_every_account(
    aiohttp_client, engine
) -> None:
    await add_user(engine.db, "boss", role=auth.SUPER_ADMIN)
    await add_user(engine.db, "minh", unit=UNIT_B)
    code_b = await add_feedback(engine, "Ở xã Bình Minh", unit=UNIT_B)
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("boss")
    assert code_b not in await browser.page("/staff/")
    assert (await browser.get(f"/staff/feedback/{code_b}")).status == 404
    assert (await browser.post("/staff/unit", {"unit": "nowhere", "next": "/staff/"})).status == 303
    assert code_b not in await browser.page("/staff/")
    response = await browser.post("/staff/unit", {"unit": UNIT_B, "next": "/staff/?q=x"})
    assert response.headers["Location"] == "/staff/?q=x"
    assert code_b in await browser.page("/staff/")
    assert (await browser.get(f"/staff/feedback/{code_b}")).status == 200
    assert "minh" in await browser.page("/staff/users")
    new = {"username": "ut", "role": "unit_admin", "unit": UNIT_B}
    new |= {"password": PASSWORD, "password2": PASSWORD}
    assert (await browser.post("/staff/users", new)).status == 303
    assert (await user_row(engine.db, "ut")).unit == UNIT_B


async def test_the_dashboard_speaks_vietnamese_by_default_and_english_on_request(
    aiohttp_client, engine
) -> None:
    browser = await StaffClient.open(aiohttp_client, engine)
    browser.client.session.cookie_jar.clear()
    html = await (await browser.get("/staff/login")).text()
    assert '<html lang="vi">' in html
    response = await browser.get("/staff/lang?to=en&next=/staff/login")
    assert response.status == 303 and response.headers["Location"] == "/staff/login"
    assert response.cookies["motcua_staff_lang"].value == "en"
    html = await (await browser.get("/staff/login")).text()
    assert '<html lang="en">' in html and ">Log in</button>" in html


# -- motcua staff ----------------------------------------------------------------------------------


def run_cli(tmp_path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """``motcua staff ARGS`` in this process, on a SQLite file in ``tmp_path``."""
    env = {
        "MOTCUA_DATABASE_URL": f"sqlite:///{tmp_path}/staff.sqlite3",
        "MOTCUA_DEFAULT_LOCALE": "en",
    }
    return run_in_process(["staff", *args], env, stdin)


def test_create_user_reads_the_password_from_stdin_or_a_prompt(tmp_path, monkeypatch) -> None:
    code, out, err = run_cli(
        tmp_path,
        "create-user",
        "Lan.Nguyen",
        "--unit",
        UNIT_A,
        "--role",
        "unit_admin",
        "--name",
        "Nguyễn Thị Lan",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert out.strip() == f"Account lan.nguyen created: Unit administrator of unit {UNIT_A}."
    assert PASSWORD not in out + err

    prompts = []
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))
    code, out, err = run_cli(
        tmp_path, "create-user", "boss", "--unit", UNIT_A, "--role", "super_admin"
    )
    assert code == 0, err
    assert prompts == ["Password: ", "Repeat the password: "]

    code, out, _ = run_cli(tmp_path, "list-users")
    assert code == 0
    assert "lan.nguyen" in out and "boss" in out and "Super administrator" in out

    # Refusals: a short password, a mismatch, a taken name; nothing asks for it on argv.
    short = ["create-user", "x1", "--unit", "u", "--role", "officer", "--password-stdin"]
    assert run_cli(tmp_path, *short, stdin="short\n")[0] == 1
    answers = iter([PASSWORD, PASSWORD + "?"])
    code, _, err = run_cli(tmp_path, "create-user", "y1", "--unit", UNIT_A, "--role", "officer")
    assert code == 1 and "The passwords differ." in err
    taken = ["create-user", "boss", "--unit", UNIT_A, "--role", "officer", "--password-stdin"]
    code, _, err = run_cli(tmp_path, *taken, stdin=PASSWORD + "\n")
    assert code == 1 and "taken" in err
    code, _, err = run_cli(tmp_path, "create-user", "z", "--unit", UNIT_A, "--password", "x")
    assert code == 2


def test_set_password_unlocks_an_account(tmp_path) -> None:
    create = ["create-user", "lan", "--unit", UNIT_A, "--role", "officer", "--password-stdin"]
    assert run_cli(tmp_path, *create, stdin=PASSWORD + "\n")[0] == 0
    new = "Mật khẩu mới đủ dài"
    code, out, err = run_cli(tmp_path, "set-password", "lan", "--password-stdin", stdin=new)
    assert code == 0 and "unlocked" in out and new not in out + err
    assert run_cli(tmp_path, "set-password", "nobody", "--password-stdin", stdin=new)[0] == 1
