"""Optional single sign-on, end to end: a real `plinth serve` whose $PLINTH_SECRETS file points
Streamlit's own OpenID Connect routes (st.login's) at a tiny local provider (tests/oidc_provider.py),
and httpx following every redirect with its cookies, as a browser would. A known, confirmed e-mail
ends signed in with a real session row; an unknown or unconfirmed one gets plain words and no
session; sign-out clears Streamlit's identity cookie too; without an [auth] section the sign-in
page has no SSO button and the gate refuses Streamlit's auth routes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider  # noqa: E402
from test_webapp_http import running_server  # noqa: E402

from tests.browsing import TEST_OWNER  # noqa: E402
from webapp import accounts, gate, sso, store  # noqa: E402

COOKIE_SECRET = "a test cookie secret that is long enough"
MERCHANT = ("bea@shop.test", "another long passphrase")


def sessions_of(data: Path, user_id: str) -> int:
    with store.connect(data) as con:
        return con.execute("SELECT COUNT(*) FROM sessions WHERE user_id = ?", (user_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def sso_site(tmp_path_factory):
    data = tmp_path_factory.mktemp("sso")
    owner = accounts.add_user(data, *TEST_OWNER, role=accounts.Role.OWNER, name="Ana")
    merchant = accounts.add_user(data, *MERCHANT, role=accounts.Role.MERCHANT, name="Bea")
    with running_provider() as provider:
        secrets_file = data / "secrets.toml"
        secrets_file.write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
cookie_secret = "{COOKIE_SECRET}"

[auth.testid]
label = "Test ID"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
server_metadata_url = "{provider.issuer}/.well-known/openid-configuration"
""")
        with running_server(data, env={"PLINTH_SECRETS": str(secrets_file)}) as base:
            yield base, data, provider, owner, merchant


def sso_button(client: httpx.Client, next_path: str = "/") -> str:
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200, page.text
    found = re.search(r'<a class="button secondary" href="([^"]+)">Sign in with Test ID</a>', page.text)
    assert found, page.text
    return found.group(1).replace("&amp;", "&")


def test_a_known_email_signs_in_through_the_provider_and_lands_on_next(sso_site):
    base, data, provider, _owner, merchant = sso_site
    provider.person = {"email": "Bea@Shop.test", "email_verified": True}
    before, issued = sessions_of(data, merchant.id), provider.tokens_issued
    with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
        landed = client.get(sso_button(client, "/library"))
        hops = [str(r.url) for r in landed.history]
        assert any("/oauth2callback" in h for h in hops) and any(h.startswith(provider.issuer) for h in hops), hops
        assert provider.tokens_issued == issued + 1  # Streamlit really exchanged the code for a token
        assert landed.status_code == 200 and landed.url.path == "/library", (landed.url, hops)
        assert sessions_of(data, merchant.id) == before + 1
        assert accounts.session_user(data, client.cookies.get(accounts.COOKIE)) == merchant
        assert "_streamlit_user" not in client.cookies and sso.NEXT_COOKIE not in client.cookies
        assert client.get("/settings", follow_redirects=False).status_code == 200  # a merchant page, signed in

        # Signing out ends Plinth's session and also clears an identity cookie Streamlit left behind
        from streamlit.web.server.starlette.starlette_app_utils import (
            create_signed_value,
        )

        signed = create_signed_value(COOKIE_SECRET, "_streamlit_user",
                                     '{"email": "bea@shop.test", "is_logged_in": true}').decode()
        client.cookies.set("_streamlit_user", signed, domain="127.0.0.1")
        out = client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert out.url.path == "/login" and "You are signed out." in out.text
        assert "_streamlit_user" not in client.cookies
        assert sessions_of(data, merchant.id) == before
        assert client.get("/settings", follow_redirects=False).status_code == 303


def test_an_unknown_email_gets_plain_words_and_no_session(sso_site):
    base, data, provider, owner, merchant = sso_site
    provider.person = {"email": "stranger@else.test", "email_verified": True}
    before = sessions_of(data, owner.id) + sessions_of(data, merchant.id)
    with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
        landed = client.get(sso_button(client))
        assert landed.status_code == 403 and landed.url.path == "/login"
        assert "stranger@else.test has no Plinth account here. Ask the shop owner to invite you." in landed.text
        assert accounts.COOKIE not in client.cookies and "_streamlit_user" not in client.cookies
        assert client.get("/library", follow_redirects=False).status_code == 303
    assert accounts.find_user(data, "stranger@else.test") is None  # never made an account
    assert sessions_of(data, owner.id) + sessions_of(data, merchant.id) == before


def test_an_unconfirmed_email_is_refused_even_for_a_known_account(sso_site):
    base, data, provider, owner, _merchant = sso_site
    provider.person = {"email": TEST_OWNER[0], "email_verified": False}
    before = sessions_of(data, owner.id)
    with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
        landed = client.get(sso_button(client))
        assert landed.status_code == 403 and "has not confirmed owner@plinth.test" in landed.text
        assert accounts.COOKIE not in client.cookies
    assert sessions_of(data, owner.id) == before


def test_a_provider_without_the_claim_counts_as_confirmed(sso_site):
    base, data, provider, owner, _merchant = sso_site
    provider.person = {"email": TEST_OWNER[0]}
    with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
        landed = client.get(sso_button(client, "/shop"))
        assert landed.status_code == 200 and landed.url.path == "/shop"
        assert accounts.session_user(data, client.cookies.get(accounts.COOKIE)) == owner


def test_an_identity_cookie_signed_with_another_secret_signs_nobody_in(sso_site):
    base, _data, _provider, _owner, _merchant = sso_site
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    forged = create_signed_value("not the server's secret at all", "_streamlit_user",
                                 f'{{"email": "{TEST_OWNER[0]}", "is_logged_in": true}}').decode()
    with httpx.Client(base_url=base, timeout=30, cookies={"_streamlit_user": forged}) as client:
        page = client.get("/login")
        assert page.status_code == 200 and "Sign in with Test ID" in page.text
        assert accounts.COOKIE not in client.cookies


def test_sso_start_keeps_next_on_this_site_and_ignores_unknown_providers(sso_site):
    base, *_ = sso_site
    with httpx.Client(base_url=base, timeout=30) as client:
        start = client.get("/sso/start", params={"provider": "testid", "next": "//evil.test/x"})
        assert start.status_code == 303 and start.headers["location"].startswith("/auth/login?provider=")
        assert client.cookies.get(sso.NEXT_COOKIE) == "/"
        assert client.get("/sso/start", params={"provider": "nobody"}).headers["location"] == "/login"


def test_keys_directly_under_auth_make_one_provider_that_signs_in_too(tmp_path):
    """Streamlit's one-provider form: client_id and the rest straight under [auth], no sub-section."""
    owner = accounts.add_user(tmp_path, *TEST_OWNER, role=accounts.Role.OWNER)
    with running_provider() as provider:
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
cookie_secret = "{COOKIE_SECRET}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
server_metadata_url = "{provider.issuer}/.well-known/openid-configuration"
""")
        provider.person = {"email": TEST_OWNER[0], "email_verified": True}
        with running_server(tmp_path, env={"PLINTH_SECRETS": str(secrets_file)}) as base, \
                httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
            page = client.get("/login", params={"next": "/library"})
            link = re.search(r'href="(/sso/start[^"]+)">Sign in with your work account</a>', page.text)
            assert link, page.text
            landed = client.get(link.group(1).replace("&amp;", "&"))
            assert landed.status_code == 200 and landed.url.path == "/library"
            assert accounts.session_user(tmp_path, client.cookies.get(accounts.COOKIE)) == owner
            assert provider.tokens_issued == 1


def test_a_missing_secrets_file_says_so_and_sign_in_still_works(tmp_path):
    accounts.add_user(tmp_path, *TEST_OWNER, role=accounts.Role.OWNER)
    missing = tmp_path / "nowhere" / "secrets.toml"
    with running_server(tmp_path, env={"PLINTH_SECRETS": str(missing)}) as base:
        page = httpx.get(base + "/login", timeout=30)
        assert page.status_code == 200 and "Sign in with" not in page.text
    log = (tmp_path / "server.log").read_text()
    assert f"PLINTH_SECRETS names {missing}, which is not a file, so single sign-on is off" in log


def test_without_an_auth_section_there_is_no_sso_button_and_the_routes_are_refused(tmp_path):
    accounts.add_user(tmp_path, *TEST_OWNER, role=accounts.Role.OWNER)
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('[shop]\nnote = "no single sign-on here"\n')
    with running_server(tmp_path, env={"PLINTH_SECRETS": str(secrets_file)}) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/login")
        assert page.status_code == 200 and "Sign in with" not in page.text and 'name="password"' in page.text
        for path in sorted(sso.PATHS):
            refused = client.get(path, params={"provider": "x"})
            assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next="), path
    assert not gate.is_public("/auth/login")  # this test process has no secrets either
