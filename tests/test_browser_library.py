"""The Library in real headless Chromium against a real `plinth serve`, at 1280x800 and 390x844:
the cards read in the same order on a phone as on a wide screen (and as the sort order); a failed
job shows up with its photos; delete moves a model to the Trash, its share link answers "no longer
available", and Undo brings the same link back. Screenshots land in tests/output/."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import shot
from test_webapp_http import running_server

import pipeline
from tests.polling import wait_for
from webapp import jobs, library, model_folders
from webapp.jobs import JobStatus

from tests.browsing import VIEWPORTS as SIZES  # noqa: E402
from tests.browsing import signed_in_context  # noqa: E402
NAMES = [f"Chair {n}" for n in "ABCDEFG"]  # seven: two full rows of three and one alone
FAILED_NAME = "Blue vase"
FAILED_ERROR = "No object found in back.jpg. Take it again against a plain wall."


@pytest.fixture(scope="module")
def shop(tmp_path_factory, chair_model, chair_photo, device):
    """A data folder with seven models, two to delete and a failed job, served by a real server
    (filled before it starts, so no worker claims the failed job)."""
    data = tmp_path_factory.mktemp("library-data")
    for name in NAMES:
        model_folders.add_model(chair_model, name, [], data_dir=data)
        time.sleep(0.01)  # distinct times: "newest first" has one answer
    doomed = {size: model_folders.add_model(chair_model, f"Stool to delete ({size})", [], data_dir=data).share_id
              for size in SIZES}
    photo = chair_photo.read_bytes()
    failed = {}
    for key, name in (("show", FAILED_NAME), *((size, f"Lamp to retry ({size})") for size in SIZES)):
        failed[key] = jobs.submit([("front.jpg", photo), ("back.jpg", photo)], name, pipeline.Options(),
                                  data_dir=data)
        jobs.update(data, failed[key], status=JobStatus.FAILED, finished=time.time(), error=FAILED_ERROR)
    with running_server(data, device) as base:
        yield base, data, doomed, failed


def _open_library(browser, base: str, size: str):
    ctx = signed_in_context(browser, base, **SIZES[size])
    ctx.set_default_timeout(60_000)  # every tab, also a shopper's opened later (a busy machine renders slowly)
    page = ctx.new_page()
    page.goto(base + "/library")
    page.get_by_role("heading", name="Your 3D models").wait_for()
    page.locator("[class*='st-key-card-'] [data-testid=stImage] img").first.wait_for()
    return ctx, page


def _cards_in_reading_order(page) -> list[str]:
    """Card names top to bottom, left to right, as the eye reads them on this screen."""
    cards = page.evaluate("""() => [...document.querySelectorAll("[class*='st-key-card-']")].map(c => {
        const r = c.getBoundingClientRect();
        return {top: Math.round(r.top), left: Math.round(r.left), name: c.querySelector('strong').innerText};
    })""")
    return [c["name"] for c in sorted(cards, key=lambda c: (c["top"], c["left"]))]


@pytest.mark.parametrize("size", list(SIZES))
def test_cards_read_in_the_sort_order_and_a_failed_job_shows_its_photos(size, shop, browser, artifacts):
    base, data, doomed, failed = shop
    expected = [m.name for m in library.list_models(data) if m.share_id not in doomed.values()]
    assert expected == NAMES[::-1]  # newest first
    ctx, page = _open_library(browser, base, size)
    page.wait_for_timeout(800)  # layout settled (images sized)
    order = [n for n in _cards_in_reading_order(page) if n in NAMES]
    assert order == expected, f"{size}: cards read {order}"
    if size == "desktop":  # in the page itself too (what keyboards and screen readers follow): rows of three
        tops = page.evaluate("""() => [...document.querySelectorAll("[class*='st-key-card-']")]
            .map(c => Math.round(c.getBoundingClientRect().top))""")
        assert len(set(tops[:3])) == 1 and tops[3] > tops[0]

    attention = page.locator(f".st-key-attention-{failed['show']}")
    attention.get_by_text(FAILED_NAME).wait_for()
    assert "No object found in back.jpg" in attention.inner_text()
    for name in ("front.jpg", "back.jpg"):
        attention.get_by_text(name, exact=True).wait_for()
    thumbs = attention.locator("[data-testid=stImage] img")
    wait_for(lambda: thumbs.count() == 2 and all(thumbs.nth(i).evaluate("i => i.complete && i.naturalWidth > 0")
                                                 for i in range(2)), 30, "photo thumbnails")
    attention.get_by_role("button", name=re.compile("Try again with changes")).wait_for()
    shot(page, artifacts / f"library_{size}.png")

    ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_try_again_with_changes_leaves_one_out_and_adds_a_new_photo(size, shop, browser, bench, artifacts):
    base, data, _doomed, failed = shop
    job_id = failed[size]
    ctx, page = _open_library(browser, base, size)
    card = page.locator(f".st-key-attention-{job_id}")
    card.scroll_into_view_if_needed()
    card.get_by_role("button", name=re.compile("Try again with changes")).click()
    page.get_by_role("heading", name=re.compile("Try again")).wait_for()
    page.locator(".st-key-kept-1").get_by_text("back.jpg", exact=True).wait_for()
    wait_for(lambda: page.get_by_role("checkbox", name="Leave out").count() == 2, 30, "the kept photos")
    page.locator(".st-key-kept-1").get_by_text("Leave out").click()
    new_photo = bench / "single" / "chair" / "image.jpg"
    page.locator("input[type=file]").set_input_files(
        [{"name": "back-again.jpg", "mimeType": "image/jpeg", "buffer": new_photo.read_bytes()}])
    page.get_by_text("back-again.jpg", exact=True).first.wait_for()
    page.get_by_text("The new model will use 2 photos.").wait_for()
    page.mouse.move(1, 1)  # no hover toolbar over a thumbnail in the screenshot
    page.wait_for_timeout(500)
    shot(page, artifacts / f"library_retry_{size}.png")
    page.get_by_role("button", name=re.compile("Make the model again")).click()
    page.wait_for_url(re.compile(r"job="), timeout=30_000)
    new_id = re.search(r"job=([A-Za-z0-9_-]+)", page.url).group(1)
    jobs.cancel(new_id, data)  # its photos are what counts here, not the model
    new = jobs.get_job(new_id, data)
    assert [name for _, name in new.named_photos] == ["front.jpg", "back-again.jpg"]
    old = jobs.get_job(job_id, data)
    assert old.retried_as == new_id and len(old.photos) == 2  # the old photos are still there
    ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_delete_says_no_longer_available_and_undo_brings_the_same_link_back(size, shop, browser, artifacts):
    base, data, doomed, _failed = shop
    share_id = doomed[size]
    share_url = f"{base}/ar/{share_id}"
    assert httpx.get(share_url).status_code == 200
    name = f"Stool to delete ({size})"
    # The Try again test before this one started a real job: when it ends, the Library reloads with
    # its model, and a card's element is replaced under the pointer. Start once nothing is running.
    wait_for(lambda: not jobs.list_jobs((JobStatus.QUEUED, JobStatus.RUNNING), data), 600, "the other jobs to end")
    ctx, page = _open_library(browser, base, size)
    card = page.locator(f"[class*='st-key-card-{share_id}']")
    popover = page.locator("[data-testid=stPopoverBody]").filter(has_text="will see 'no longer available'")
    delete = popover.get_by_role("button", name=re.compile("^(delete )?Delete$"))
    tick = popover.get_by_role("checkbox", name="Yes, move it to the Trash")

    def delete_clicked() -> bool:
        # A rerun that rebuilds the card grid (a job of an earlier test ending, say) closes the
        # popover; Streamlit keeps the tick, so open it again and go on from where it was.
        from playwright.sync_api import Error

        try:
            if not popover.is_visible():
                card.get_by_role("button", name=re.compile("More")).click()
                popover.wait_for(timeout=10_000)
            if not tick.is_checked(timeout=5_000):
                tick.check(force=True, timeout=5_000)
            if delete.is_enabled(timeout=5_000):
                delete.click(timeout=5_000)
                return True
        except Error:  # the popover closed under us: try again
            pass
        return False

    try:
        wait_for(delete_clicked, 90, "Delete in the card's popover", every=1.0)
    except Exception:
        shot(page, artifacts / f"library_delete_stuck_{size}.png")  # what the page showed instead
        raise

    banner = page.locator(".st-key-undo-banner")
    banner.get_by_text("is in the Trash").wait_for()
    assert name in banner.inner_text()
    wait_for(lambda: page.locator(f"[class*='st-key-card-{share_id}']").count() == 0, 30, "the card to go")
    page.get_by_role("heading", name="Your 3D models").scroll_into_view_if_needed()
    page.mouse.move(1, 1)
    shot(page, artifacts / f"library_deleted_{size}.png")

    page.get_by_text(re.compile(r"^Trash \(\d+\)$")).click()  # the Trash lists it, with Restore
    trashed = page.locator(f".st-key-trash-{share_id}")
    trashed.get_by_text("deleted for good in 30 days").wait_for()
    trashed.get_by_role("button", name=re.compile("Restore")).wait_for()
    page.mouse.move(1, 1)
    page.wait_for_timeout(600)  # the expander's opening animation
    shot(page, artifacts / f"library_trash_{size}.png")

    gone = httpx.get(share_url)
    assert gone.status_code == 410 and "no longer available" in gone.text
    assert httpx.get(f"{base}/models/{share_id}/model.glb").status_code == 410
    shopper = ctx.new_page()
    assert shopper.goto(share_url).status == 410
    assert "no longer available" in shopper.content()
    shopper.screenshot(path=artifacts / f"library_share_gone_{size}.png")

    banner.get_by_role("button", name=re.compile("Undo")).click()
    page.locator(f"[class*='st-key-card-{share_id}']").wait_for()
    wait_for(lambda: page.locator(".st-key-undo-banner").count() == 0, 30, "the banner to go")
    back = httpx.get(share_url)
    assert back.status_code == 200 and name in back.text  # the same link, the same QR code
    again = ctx.new_page()  # as a shopper opening the link (or scanning the code) again
    assert again.goto(share_url).status == 200
    again.locator("model-viewer").wait_for(state="attached")
    assert name in again.title()
    ctx.close()
