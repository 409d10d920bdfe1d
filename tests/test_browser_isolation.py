"""Real Chromium against a real `plinth serve` with two merchants signed in by their session
cookies: each Library shows only its merchant's models, Open leads to /model?id=<model id> (not
the share id), the private preview of a failed model loads for its merchant, and the other
merchant gets "Model not found" and a 404 preview; the owner account shows everyone's models,
each with whose it is. Screenshots: tests/output/iso_*_{size}.png."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import shot, wait_viewer_loaded  # noqa: E402
from test_webapp_http import running_server  # noqa: E402

from tests.browsing import VIEWPORTS, signed_in_context  # noqa: E402
from tests.polling import wait_for  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory, chair_model, device):
    from pipeline import Verdict
    from tests.signing import owner_account
    from tests.verdicts import judged
    from webapp import accounts, model_folders

    data = tmp_path_factory.mktemp("isolation-data")
    boss = owner_account(data)
    a = accounts.add_user(data, "a@oak.example", "password-of-a", name="Ana")
    b = accounts.add_user(data, "b@birch.example", "password-of-b", name="Ben")
    chair = model_folders.add_model(chair_model, "Oak chair", [], data_dir=data, owner=a.id)
    failed = model_folders.add_model(judged(chair_model, Verdict.FAILED, data.parent / "failed-files"),
                               "Oak lamp", [], data_dir=data, owner=a.id)
    stool = model_folders.add_model(chair_model, "Birch stool", [], data_dir=data, owner=b.id)
    with running_server(data, device) as base:
        yield base, data, boss, a, b, chair, failed, stool


def _signed_in(browser, base: str, data: Path, user, size: str):
    ctx = signed_in_context(browser, base, data, email=user.email, **VIEWPORTS[size])
    ctx.set_default_timeout(90_000)
    return ctx, ctx.new_page()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_each_merchant_sees_only_theirs_in_a_real_browser(size, site, browser, artifacts):
    base, data, boss, a, b, chair, failed, _ = site
    ctx, page = _signed_in(browser, base, data, a, size)
    page.goto(base + "/library")
    page.get_by_text("Oak chair", exact=True).first.wait_for()
    page.locator("[data-testid=stImage] img").first.wait_for()
    page.wait_for_timeout(800)
    assert "Birch stool" not in page.locator("body").inner_text()
    shot(page, artifacts / f"iso_library_a_{size}.png")
    page.locator(f".st-key-card-{chair.share_id}").get_by_role("button", name="Open").click()
    page.wait_for_url(re.compile(r"/model\?id="))
    assert page.url.endswith(f"/model?id={chair.model_id}") and chair.share_id not in page.url
    page.get_by_role("heading", name="Oak chair").wait_for()

    page.goto(f"{base}/model?id={failed.model_id}")
    page.get_by_text("Look at it anyway").click()
    iframe = page.locator("iframe[src*='/preview/']").first
    iframe.scroll_into_view_if_needed()
    frame = wait_for(lambda: iframe.element_handle().content_frame(), 30, "preview document")
    wait_viewer_loaded(frame, f"A's private preview ({size})")  # the iframe's request carries A's cookie
    ctx.close()

    ctx, page = _signed_in(browser, base, data, b, size)
    page.goto(f"{base}/model?id={chair.model_id}")
    page.get_by_role("heading", name="Model not found").wait_for()
    page.wait_for_timeout(800)
    body = page.locator("body").inner_text()
    assert "Oak chair" not in body and "Delete" not in body and "/ar/" not in body
    shot(page, artifacts / f"iso_not_found_b_{size}.png")
    answer = page.request.get(f"{base}/preview/{failed.share_id}?embed=1")  # with B's cookie
    assert answer.status == 404
    page.goto(base + "/library")
    page.get_by_text("Birch stool", exact=True).first.wait_for()
    page.wait_for_timeout(800)
    assert "Oak chair" not in page.locator("body").inner_text()
    ctx.close()

    ctx, page = _signed_in(browser, base, data, boss, size)  # the owner: their own, or everyone's
    page.goto(base + "/library")
    page.get_by_text("No models yet").wait_for()
    page.get_by_text("Show everyone's models").click()
    page.get_by_text("Birch stool", exact=True).first.wait_for()
    page.get_by_text("Oak chair", exact=True).first.wait_for()
    page.locator("[data-testid=stImage] img").nth(2).wait_for()
    page.wait_for_timeout(800)
    shot(page, artifacts / f"iso_everyone_{size}.png")
    captions = page.locator("[data-testid=stCaptionContainer]").all_inner_texts()
    assert any(c.strip().endswith("Ana") for c in captions) and any(c.strip().endswith("Ben") for c in captions)
    ctx.close()
    anonymous = httpx.get(f"{base}/preview/{failed.share_id}?embed=1", timeout=10)
    assert anonymous.status_code in (401, 404)  # the route's 404, or the sign-in gate's 401 before it
