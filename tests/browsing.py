"""Headless Chromium for the browser tests: Debian's chromium (Playwright's own download is not
available here) with WebGL on SwiftShader, and the two screen sizes every page is checked at."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

CHROMIUM = os.environ.get("PLINTH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORTS = {"desktop": dict(viewport={"width": 1280, "height": 800}),
             "phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)}


@contextmanager
def chromium() -> Iterator:
    """One launched browser (Playwright's Browser), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


#: The account the browser tests sign in with (made in the server's data folder when missing).
TEST_OWNER = ("owner@plinth.test", "a long test passphrase")


def sign_in_token(data_dir, email: str = TEST_OWNER[0], password: str = TEST_OWNER[1], owner: bool = True) -> str:
    """A session token for that account in `data_dir` (the account is made first when missing):
    real rows in the server's own database, the same as signing in on /login."""
    from webapp import accounts

    user = accounts.find_user(data_dir, email) or accounts.add_user(
        data_dir, email, password, role=accounts.Role.OWNER if owner else accounts.Role.MERCHANT)
    return accounts.start_session(data_dir, user.id)


#: base URL -> data folder of each server tests/test_webapp_http.running_server started.
SERVED: dict = {}


def signed_in_context(browser, base_url: str, data_dir=None, email: str = TEST_OWNER[0], owner: bool = True,
                      **options):
    """A new Playwright context (options: VIEWPORTS[size] and the like) that carries a valid session
    cookie for `base_url`'s server, whose data folder is `data_dir` (default: the one running_server
    started it with)."""
    from webapp import accounts

    data_dir = data_dir if data_dir is not None else SERVED[base_url]
    ctx = browser.new_context(**options)
    ctx.add_cookies([{"name": accounts.COOKIE, "value": sign_in_token(data_dir, email, owner=owner),
                      "url": base_url, "httpOnly": True, "sameSite": "Lax"}])
    return ctx
