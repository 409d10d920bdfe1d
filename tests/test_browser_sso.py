"""Real Chromium through the whole single-sign-on round trip: a real `plinth serve` configured for a
local OpenID provider (tests/oidc_provider.py), the sign-in page's "Sign in with" button, the
provider, Streamlit's callback and back into the app signed in; and the plain words for an e-mail
without an account. Both screen sizes. Screenshots: tests/output/sso_*_{desktop,phone}.png."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import shot  # noqa: E402
from test_sso import sessions_of, sso_site  # noqa: E402,F401  (sso_site is the fixture)

from tests.browsing import VIEWPORTS  # noqa: E402
from webapp import accounts  # noqa: E402


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_sign_in_with_the_provider_opens_the_page_asked_for(size, browser, sso_site, artifacts):
    base, data, provider, _owner, merchant = sso_site
    provider.person = {"email": "bea@shop.test", "email_verified": True}
    before = sessions_of(data, merchant.id)
    ctx = browser.new_context(**VIEWPORTS[size])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(base + "/shop")
    page.get_by_role("heading", name="Sign in").wait_for()
    button = page.get_by_role("link", name="Sign in with Test ID")
    # as wide as the password form's own button, right under it
    own, box = page.get_by_role("button", name="Sign in", exact=True).bounding_box(), button.bounding_box()
    assert abs(box["width"] - own["width"]) < 2 and 0 < box["y"] - (own["y"] + own["height"]) < 40
    shot(page, artifacts / f"sso_login_{size}.png")
    button.click()
    page.wait_for_url(base + "/shop")
    page.get_by_role("link", name="Bea").wait_for()  # the header greets the merchant: signed in
    shot(page, artifacts / f"sso_signed_in_{size}.png")
    assert sessions_of(data, merchant.id) == before + 1
    names = {c["name"] for c in ctx.cookies()}
    assert accounts.COOKIE in names and "_streamlit_user" not in names
    ctx.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_an_email_without_an_account_reads_plain_words(size, browser, sso_site, artifacts):
    base, _data, provider, *_ = sso_site
    provider.person = {"email": "stranger@else.test", "email_verified": True}
    ctx = browser.new_context(**VIEWPORTS[size])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(base + "/login")
    page.get_by_role("link", name="Sign in with Test ID").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == ("stranger@else.test has no Plinth account here. "
                                  "Ask the shop owner to invite you.")
    shot(page, artifacts / f"sso_unknown_{size}.png")
    assert accounts.COOKIE not in {c["name"] for c in ctx.cookies()}
    ctx.close()
