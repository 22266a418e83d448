"""The client's address behind a reverse proxy (MOTCUA_TRUSTED_PROXIES): believed only from
the proxies listed, read from the right, so that the staff login's per-address limit counts
each officer's address behind nginx, and a client cannot dodge it with a forged header."""

from __future__ import annotations

import pytest

from bot.config import SettingsError, load_settings
from bot.proxies import client_address, parse_networks
from bot.staff import auth
from tests.conftest import make_engine
from tests.staff_helpers import PASSWORD, StaffClient, add_user, csrf_of, use_cheap_hasher

LOCAL = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", LOCAL, "203.0.113.7"),
        # The client wrote the left part; nginx appended what it saw: the right one counts.
        ("127.0.0.1", "198.51.100.1, 203.0.113.7", LOCAL, "203.0.113.7"),
        # Two trusted proxies in a row: skip both.
        ("127.0.0.1", "203.0.113.7, 10.1.2.3", LOCAL, "203.0.113.7"),
        # From an address that is no proxy of ours: the header is ignored.
        ("192.0.2.50", "203.0.113.7", LOCAL, "192.0.2.50"),
        # No proxies configured: never believed.
        ("127.0.0.1", "203.0.113.7", [], "127.0.0.1"),
        ("127.0.0.1", None, LOCAL, "127.0.0.1"),
        ("127.0.0.1", "not-an-address", LOCAL, "127.0.0.1"),
        ("::1", "2001:db8::5", LOCAL, "2001:db8::5"),
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", LOCAL, "10.0.0.1"),
    ],
)
def test_the_client_address(remote, forwarded, trusted, expected) -> None:
    assert client_address(remote, forwarded, trusted) == expected


def test_a_bad_proxy_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="MOTCUA_TRUSTED_PROXIES: 'nginx.local' is not an IP"):
        load_settings(trusted_proxies=["nginx.local"])
    assert load_settings(trusted_proxies=["127.0.0.1", "10.0.0.0/8"]).trusted_proxies


async def _login(browser: StaffClient, username: str, password: str, address: str) -> int:
    page = await browser.client.get("/staff/login")
    response = await browser.client.post(
        "/staff/login",
        data={"csrf": csrf_of(await page.text()), "username": username, "password": password},
        headers={"X-Forwarded-For": address},
        allow_redirects=False,
    )
    return response.status


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_behind_a_trusted_proxy_each_officer_has_their_own_limit(
    aiohttp_client, db, monkeypatch
) -> None:
    use_cheap_hasher(monkeypatch)
    engine = make_engine(db, trusted_proxies=["127.0.0.1"])
    await add_user(db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    for n in range(auth.ADDRESS_LIMIT):
        assert await _login(browser, f"guess{n}", "123456", "203.0.113.7") == 401
    assert await _login(browser, "lan", PASSWORD, "203.0.113.7") == 429
    # Another officer behind the same nginx is not turned away by the guesser's failures.
    assert await _login(browser, "lan", PASSWORD, "203.0.113.8") == 303


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_without_trusted_proxies_a_forged_header_changes_nothing(
    aiohttp_client, db, monkeypatch
) -> None:
    use_cheap_hasher(monkeypatch)
    engine = make_engine(db)
    await add_user(db, "lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    for n in range(auth.ADDRESS_LIMIT):
        assert await _login(browser, f"guess{n}", "123456", f"198.51.100.{n}") == 401
    assert await _login(browser, "lan", PASSWORD, "198.51.100.250") == 429
