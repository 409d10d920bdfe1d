"""Real Chromium against a real `plinth serve`: the first-start set-up page, signing in (and a
wrong password), the Settings page with the owner's team, a merchant's Settings without it, and
signing out, at both screen sizes. Screenshots: tests/output/signin_*_{desktop,phone}.png."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import as_shown, shot  # noqa: E402
from test_webapp_http import running_server  # noqa: E402

from tests.browsing import TEST_OWNER, VIEWPORTS, signed_in_context  # noqa: E402
from webapp import accounts, signin  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory, device):
    data = tmp_path_factory.mktemp("browser-signin")
    accounts.add_user(data, *TEST_OWNER, role=accounts.Role.OWNER, name="Ana Owner")
    accounts.add_user(data, "bob@shop.example", "bob's long password", name="Bob Merchant")
    with running_server(data, device) as base:
        yield base, data


def _page(ctx):
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_first_start_set_up_page_creates_the_owner_and_opens_the_app(size, browser, tmp_path, artifacts, device):
    with running_server(tmp_path, device) as base:
        link = re.search(r"create the owner account at (\S+)", (tmp_path / "server.log").read_text()).group(1)
        ctx = browser.new_context(**VIEWPORTS[size])
        page, errors = _page(ctx)
        page.goto(base + "/library")  # before any account: the words that say where the link is
        page.get_by_role("heading", name="Create the owner account").wait_for()
        page.get_by_text("plinth user add you@example.com --owner").wait_for()
        shot(page, artifacts / f"signin_setup_nolink_{size}.png")
        page.goto(link)
        page.get_by_role("heading", name="Welcome to Plinth").wait_for()
        page.get_by_label("Your name").fill("Ana")
        page.get_by_label("E-mail").fill("ana@shop.example")
        page.get_by_label("Password", exact=True).fill("correct horse battery")
        page.get_by_label("Password again").fill("correct horse battery")
        shot(page, artifacts / f"signin_setup_{size}.png")
        page.get_by_role("button", name="Create the owner account").click()
        page.get_by_role("heading", name="Create a 3D model").wait_for()  # signed in, in the app
        shot(page, artifacts / f"signin_setup_done_{size}.png")
        page.get_by_role("link", name="Ana").wait_for()  # the header greets the owner
        assert accounts.find_user(tmp_path, "ana@shop.example").is_owner
        assert not errors, errors
        ctx.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_sign_in_settings_team_and_sign_out(size, site, browser, artifacts):
    base, data = site
    ctx = browser.new_context(**VIEWPORTS[size])
    page, errors = _page(ctx)
    page.goto(base + "/library")
    page.get_by_role("heading", name="Sign in").wait_for()
    assert "/login?next=%2Flibrary" in page.url
    page.get_by_label("E-mail").fill(TEST_OWNER[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That e-mail address and password do not match an account.").wait_for()
    shot(page, artifacts / f"signin_login_error_{size}.png")
    page.get_by_label("Password").fill(TEST_OWNER[1])
    shot(page, artifacts / f"signin_login_{size}.png")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your 3D models").wait_for()  # where the merchant was going
    page.reload()
    page.get_by_role("heading", name="Your 3D models").wait_for()  # still signed in after a reload

    page.get_by_role("link", name="Ana Owner").click()
    page.get_by_role("heading", name="Settings").wait_for()
    page.get_by_role("heading", name="Your team").wait_for()
    page.get_by_text(as_shown("bob@shop.example")).first.wait_for()
    invitee = f"carol-{size}@shop.example"
    page.get_by_label("E-mail").fill(invitee)
    page.get_by_label("Name", exact=True).fill("Carol")
    page.get_by_role("button", name="Make an invite link").click()
    code = page.locator("[data-testid=stCode]").first
    code.wait_for()
    link = re.search(r"/invite\?code=([\w-]{30,})", code.inner_text())
    assert link and signin.find_invite(data, link.group(1)).email == invitee  # the link shown is the real one
    page.get_by_text("invited, link valid until").first.wait_for()
    shot(page, artifacts / f"signin_settings_{size}.png")

    page.get_by_role("link", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.goto(base + "/settings")
    page.get_by_role("heading", name="Sign in").wait_for()  # the session is over
    assert not errors, errors
    ctx.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_a_merchant_sees_their_account_but_no_team(size, site, browser, artifacts):
    base, data = site
    ctx = signed_in_context(browser, base, data, email="bob@shop.example", owner=False, **VIEWPORTS[size])
    page, errors = _page(ctx)
    page.goto(base + "/settings")
    page.get_by_role("heading", name="Your account").wait_for()
    page.get_by_role("button", name="Change password").wait_for()
    page.wait_for_timeout(500)
    assert page.get_by_role("heading", name="Your team").count() == 0
    assert page.get_by_role("button", name="Make an invite link").count() == 0
    shot(page, artifacts / f"signin_settings_merchant_{size}.png")
    assert not errors, errors
    ctx.close()
