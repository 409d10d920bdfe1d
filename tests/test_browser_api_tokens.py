"""The Settings page's "API access" section in real Chromium on a real Streamlit server, at 1280x800
and 390x844: make a token (shown once, with a copy button), see it listed, revoke it after a
confirmation; show the webhook secret. Screenshots in tests/output/api-access-*.png."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.browsing import VIEWPORTS
from tests.polling import wait_for
from webapp import accounts
from webapp.api import tokens, webhooks

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webapp_http import free_port  # noqa: E402


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    data = tmp_path_factory.mktemp("api-access")
    user = accounts.add_user(data, "ana@shop.example", "a long enough passphrase", role=accounts.Role.OWNER)
    port = free_port()
    env = {**os.environ, "PLINTH_DATA_DIR": str(data), "PLINTH_TEST_USER": user.id, "PYTHONPATH": str(ROOT)}
    with open(data / "streamlit.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "tests" / "pages" / "api_access.py"),
                                 "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                                 "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                                 "--theme.base", "light", "--theme.primaryColor", "#1f6f5c"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            def healthy():
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 60, "streamlit start")
            yield f"http://127.0.0.1:{port}", data, user
        finally:
            proc.terminate()
            proc.wait(15)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_make_copy_list_and_revoke_a_token(size, section, browser, artifacts):
    from test_browser import shot

    base, data, user = section
    context = browser.new_context(**VIEWPORTS[size])
    page = context.new_page()
    page.goto(base)
    page.get_by_role("heading", name="API access").wait_for(timeout=30_000)
    page.get_by_label("Name of the new token").fill(f"Shop backend {size}")
    page.get_by_role("button", name=re.compile("Create token")).click()
    page.get_by_text("it is shown only this once").wait_for()
    code = page.locator("[data-testid=stCode]", has_text="plinth_").first
    text = code.inner_text().strip()
    assert re.fullmatch(r"plinth_[A-Za-z0-9_-]{43}", text), text
    assert tokens.user_for(data, text) == user
    # the Copy button shows without hovering (phones never hover), and the whole token is on screen
    assert code.get_by_role("button", name="Copy to clipboard").is_visible()
    box, inner = code.bounding_box(), code.locator("code").bounding_box()
    assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 1 <= VIEWPORTS[size]["viewport"]["width"]
    listed = page.locator(f"[class*=st-key-api_token_]", has_text=f"Shop backend {size}")
    listed.wait_for()
    page.wait_for_timeout(500)
    shot(page, artifacts / f"api-access-token-{size}.png")
    token = next(t for t in tokens.list_for(data, user.id) if t.name == f"Shop backend {size}")
    listed.get_by_role("button", name=re.compile("Revoke")).click()
    page.get_by_text("cannot be undone").wait_for()
    assert tokens.user_for(data, text) == user  # asked first
    page.get_by_role("button", name="Yes, revoke it").click()
    page.get_by_text("Revoked.").wait_for()
    assert tokens.user_for(data, text) is None and token.id not in {t.id for t in tokens.list_for(data, user.id)}
    page.get_by_role("button", name=re.compile("Show")).click()
    page.get_by_text(webhooks.secret_for(data, user.id)).wait_for()
    page.wait_for_timeout(300)
    shot(page, artifacts / f"api-access-revoked-{size}.png")
    context.close()
