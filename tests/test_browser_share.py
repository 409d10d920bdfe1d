"""The share page in real headless Chromium against a real `plinth serve`, at 1280x800 and on a
390x844 phone (an Android one, so model-viewer offers AR there): links that lead nowhere
(finding 6), the AR button, the poster and the framing (finding 7), the QR code on desktops only
(finding 13), the sizes on the model, and the Model page's snippets pasted into a plain page
served from another port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import cut_out, decode_qr, model_pixels, shot, wait_viewer_loaded  # noqa: E402
from test_webapp_http import free_port, running_server  # noqa: E402
from tests.polling import wait_for  # noqa: E402

PIXEL_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36")
from tests.browsing import VIEWPORTS, signed_in_context  # noqa: E402

# An Android phone's user agent, so model-viewer offers AR (Scene Viewer) as it would to a shopper.
SIZES = {**VIEWPORTS, "phone": {**VIEWPORTS["phone"], "user_agent": PIXEL_UA}}


@pytest.fixture(scope="module")
def site(tmp_path_factory, chair_model, device):
    """A server with one published model (the chair, 0.85 m tall) and the shop's settings."""
    from webapp import library, model_folders, shop, trash

    data = tmp_path_factory.mktemp("share-data")
    model = model_folders.add_model(chair_model, "Oak chair", [], data_dir=data)
    assert model.shared
    expired = model_folders.add_model(chair_model, "Old stool", [], data_dir=data)
    library.set_link(expired.share_id, "", time.time() - 60, data)
    taken_down = model_folders.add_model(chair_model, "Old lamp", [], data_dir=data)
    trash.move(taken_down.share_id, data)
    shop.save(data, name="Oak & Co", website="https://oak.example/")
    with running_server(data, device) as base:
        yield base, data, model, expired, taken_down


def _page(browser, size):
    ctx = browser.new_context(**SIZES[size])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors


def _object_box(png: bytes, skip_top: int = 8) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the product's pixels (coloured: the stage is grey)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    mask = (img.max(axis=2) - img.min(axis=2)) > 30
    mask[:skip_top] = False  # the progress bar
    ys, xs = np.nonzero(mask)
    assert len(xs) > 500, "no product on the stage"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("size", list(SIZES))
def test_links_that_lead_nowhere_get_a_branded_mobile_page(size, site, browser, artifacts):
    """Finding 6: unknown, expired and taken-down (Trash) links answer a proper page that scales on a phone."""
    base, _, _, expired, taken_down = site
    ctx, page, errors = _page(browser, size)
    broken = []  # the page's own parts (style sheet, logo, icon) must all load
    page.on("response", lambda r: broken.append(r.url) if r.status >= 400 and "/ar/" not in r.url else None)
    for name, path, status, words in (("unknown", "/ar/" + "Z" * 32, 404, "This link doesn't lead to a model"),
                                      ("expired", f"/ar/{expired.share_id}", 410, "This link has expired"),
                                      ("trashed", f"/ar/{taken_down.share_id}", 410, "This model is no longer available")):
        response = page.goto(base + path)
        assert response.status == status
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == words
        assert page.get_by_role("link", name="Visit Oak & Co").get_attribute("href") == "https://oak.example/"
        assert page.get_by_text("Oak & Co", exact=True).is_visible()  # the shop's name on top
        # Scaled for the phone: no sideways scrolling, text at a readable size, the card inside the screen.
        layout = page.evaluate("""() => ({scroll: document.documentElement.scrollWidth, inner: innerWidth,
            font: parseFloat(getComputedStyle(document.querySelector('h1')).fontSize),
            body: parseFloat(getComputedStyle(document.querySelector('.gone p')).fontSize),
            card: document.querySelector('.gone').getBoundingClientRect().toJSON()})""")
        assert layout["scroll"] <= layout["inner"], layout
        assert layout["font"] >= 20 and layout["body"] >= 14, layout
        assert 0 <= layout["card"]["left"] and layout["card"]["right"] <= layout["inner"], layout
        assert "monospace" not in page.evaluate("getComputedStyle(document.body).fontFamily")
        shot(page, artifacts / f"share_gone_{name}_{size}.png")
    # The browser logs the page's own 404 and 410 as console errors: those are the point here.
    assert [e for e in errors if "status of 404" not in e and "status of 410" not in e] == [], errors
    assert broken == [], broken
    ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_poster_blends_into_the_stage_and_the_model_takes_its_place(size, site, browser, artifacts):
    """Finding 7: no pale rectangle behind the poster; the model appears where the poster showed it;
    on the phone the AR button is one line below the stage, clear of the product; the QR code
    (finding 13) shows on the desktop only."""
    base, _, model, _, _ = site
    ctx, page, errors = _page(browser, size)
    held = []
    page.route("**/model.glb", lambda route: held.append(route))  # the poster stays until we let go
    page.goto(f"{base}/ar/{model.share_id}")
    viewer = page.locator("model-viewer")
    # Playwright's sync API runs the route handler only inside its own calls, so the wait must make
    # one (a bare sleep never lets the request through when it starts after the page's load event).
    wait_for(lambda: held or page.wait_for_timeout(100), 30, "the model request")
    page.wait_for_timeout(800)
    poster_png = viewer.screenshot()
    (artifacts / f"share_poster_{size}.png").write_bytes(poster_png)
    for route in held:
        route.continue_()
    wait_viewer_loaded(page.main_frame, f"share page ({size})")
    wait_for(lambda: page.evaluate("document.querySelector('model-viewer').classList.contains('model-shown')"),
             30, "model shown")
    page.wait_for_timeout(400)
    model_png = viewer.screenshot()  # before the interaction prompt starts to turn it (3 s)
    (artifacts / f"share_model_{size}.png").write_bytes(model_png)
    # (the interaction prompt turns it a little after 3 s: ar.js notes the view it first appears in)
    orbit = [float(v) for v in viewer.get_attribute("data-shown-view").split()]
    assert orbit == pytest.approx([25, 70, 12], abs=0.5)  # the poster's own view (pipeline/export/poster.py)

    box = viewer.bounding_box()
    before, after = _object_box(poster_png), _object_box(model_png)
    tolerance = 0.06 * box["height"]
    assert all(abs(a - b) <= tolerance for a, b in zip(before, after)), (before, after, tolerance)
    assert model_pixels(model_png) > 0.03

    # Away from the product, the stage looks the same with the poster as without it: no band.
    import cv2

    p = cv2.imdecode(np.frombuffer(poster_png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    m = cv2.imdecode(np.frombuffer(model_png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    h, w = p.shape[:2]
    away = np.ones((h, w), bool)
    x0, y0, x1, y1 = min(before[0], after[0]), min(before[1], after[1]), max(before[2], after[2]), max(before[3], after[3])
    pad = int(0.08 * h)
    away[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = False
    away[:12] = False  # the progress bar
    away[:, :12] = away[:, -12:] = away[-12:] = False  # the rounded border
    toggle = page.locator("#sizes-toggle").bounding_box()
    away[: int(toggle["y"] - box["y"] + toggle["height"] + 6), : int(toggle["x"] - box["x"] + toggle["width"] + 6)] = False
    diff = np.abs(p - m).max(axis=2)[away]
    assert diff.size > 0.02 * h * w and np.percentile(diff, 99) <= 6, np.percentile(diff, [50, 99, 100])

    button = page.locator("#ar-button")
    qr = page.locator(".phone-qr")
    if size == "phone":
        assert button.is_visible() and button.inner_text() == "View in your room"
        lines = button.evaluate("""b => { const r = document.createRange(); r.selectNodeContents(b);
            return new Set([...r.getClientRects()].map(c => Math.round(c.top))).size; }""")
        assert lines == 1, "the AR button's words wrap"
        b = button.bounding_box()
        line = button.evaluate("b => parseFloat(getComputedStyle(b).lineHeight)")
        assert b["height"] <= line + 2 * 14 + 2  # one line plus its padding
        assert b["y"] >= box["y"] + box["height"]  # below the stage ...
        assert b["y"] > box["y"] + after[3]  # ... so clear of the product's base
        assert 0 <= b["x"] and b["x"] + b["width"] <= 390
        assert not qr.is_visible()  # this is the phone: no code to scan
    else:
        assert not button.is_visible()  # no AR on a desktop browser
        assert qr.is_visible()
        for _ in range(5):
            text = decode_qr(qr.locator("img").screenshot())
            if text:
                break
            page.wait_for_timeout(300)
        assert text == f"{base}/ar/{model.share_id}"
    page.evaluate("scrollTo(0, 0)")
    shot(page, artifacts / f"share_page_{size}.png")
    page.close()  # its viewer draws in software while open: a core the embed page and the other worker need
    embed = ctx.new_page()
    embed.goto(f"{base}/ar/{model.share_id}?embed=1")
    assert not embed.locator(".phone-qr").count() and not embed.get_by_text("Back to the product").count()
    # The "drag to turn" wiggle plays first (its 12 s start only once the model shows) and then
    # stops (static/ar.js), so a page left open stops redrawing the model every frame.
    prompt = "document.querySelector('model-viewer').interactionPrompt"
    assert embed.evaluate(prompt) == "auto"
    wait_for(lambda: embed.evaluate(prompt) == "none", 90, "the turn prompt to stop")
    assert errors == [], errors
    ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_show_sizes_puts_the_real_dimensions_on_the_model(size, site, browser, artifacts):
    import pipeline

    base, _, model, _, _ = site
    ctx, page, errors = _page(browser, size)
    page.goto(f"{base}/ar/{model.share_id}")
    wait_viewer_loaded(page.main_frame, f"share page ({size})")
    toggle = page.get_by_role("button", name="Show sizes")
    toggle.wait_for()
    labels = page.locator("model-viewer .dim")
    assert labels.evaluate_all("els => els.filter(e => e.offsetParent !== null).length") == 0  # hidden at first
    measured = page.evaluate("() => { const s = document.querySelector('model-viewer').getDimensions(); return [s.x, s.y, s.z]; }")
    assert measured == pytest.approx(list(model.dimensions_m), rel=0.01)  # the model in the viewer is true to size

    toggle.click()
    page.get_by_role("button", name="Hide sizes").wait_for()
    # The camera steps back over about a second, slower on a loaded machine: wait (up to 10 s)
    # until every shown label is on the stage; the asserts below say what is wrong if none is.
    try:
        page.wait_for_function("""() => { const b = document.querySelector('model-viewer').getBoundingClientRect();
            const shown = [...document.querySelectorAll('model-viewer .dim')].filter(e => e.offsetParent !== null);
            return shown.length >= 3 && shown.every(e => { const r = e.getBoundingClientRect();
                return r.left >= b.left - 1 && r.right <= b.right + 1 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1; }); }""",
                               timeout=10_000)
    except PlaywrightTimeout:
        pass
    box = page.locator("model-viewer").bounding_box()
    shown = labels.evaluate_all("""els => els.filter(e => e.offsetParent !== null)
        .map(e => ({text: e.textContent.trim(), box: e.getBoundingClientRect().toJSON()}))""")
    texts = {s["text"] for s in shown}
    w, h, d = model.dimensions_m
    assert {pipeline.format_size(w), pipeline.format_size(h), pipeline.format_size(d)} <= texts, texts
    for s in shown:  # on the stage, not off the edge of a phone
        assert box["x"] - 1 <= s["box"]["left"] and s["box"]["right"] <= box["x"] + box["width"] + 1, s
        assert box["y"] - 1 <= s["box"]["top"] and s["box"]["bottom"] <= box["y"] + box["height"] + 1, s
    drawn = page.evaluate("""() => [...document.querySelectorAll('#dim-lines line')].filter(l => !l.classList.contains('hide'))
        .map(l => Math.hypot(l.x2.baseVal.value - l.x1.baseVal.value, l.y2.baseVal.value - l.y1.baseVal.value))""")
    assert len(drawn) >= 3 and min(drawn) > 20, drawn
    page.locator("model-viewer").screenshot(path=artifacts / f"share_sizes_{size}.png")

    page.get_by_role("button", name="Hide sizes").click()
    page.get_by_role("button", name="Show sizes").wait_for()
    assert labels.evaluate_all("els => els.filter(e => e.offsetParent !== null).length") == 0
    assert page.evaluate("getComputedStyle(document.querySelector('#dim-lines')).display") == "none"
    assert errors == [], errors
    ctx.close()


def test_snippets_from_the_model_page_show_the_model_on_another_sites_page(site, browser, artifacts, tmp_path):
    """Done when: the embed snippets, copied from the Model page with its Copy buttons and pasted
    into a plain HTML file served from another port, show the model (iframe and <model-viewer>)."""
    base, data, model, _, _ = site
    ctx = signed_in_context(browser, base, data, **SIZES["desktop"])
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/model?id={model.model_id}")
    section = page.locator(".st-key-embed")
    section.get_by_text("Paste this into your product page's HTML").wait_for()
    snippets = []
    for i in range(2):
        code = section.locator("[data-testid=stCode]").nth(i)
        copy = code.get_by_role("button", name="Copy to clipboard")
        code.scroll_into_view_if_needed()
        page.mouse.move(1, 1)  # not hovering it
        try:
            copy.wait_for(state="visible", timeout=30_000)
        except Exception:
            raise AssertionError(code.evaluate("""c => [...c.querySelectorAll('*')].filter(e => e.tagName !== 'SPAN')
                .map(e => e.tagName + '.' + e.className + ' ' + getComputedStyle(e).display + '/' +
                getComputedStyle(e).visibility + '/' + getComputedStyle(e).opacity).join('\\n')""")) from None
        assert copy.is_visible() and copy.evaluate("b => getComputedStyle(b).opacity") == "1"  # without hovering
        copy.click()
        snippets.append(wait_for(lambda: page.evaluate("navigator.clipboard.readText()"), 10, "clipboard"))
        assert snippets[-1].strip() == code.locator("code").inner_text().strip()
    assert "<iframe" in snippets[0] and "<model-viewer" in snippets[1]

    # A bad product page address is refused in plain words and kept in the field; a good one is saved.
    field = section.get_by_role("textbox", name="Your product page")
    field.fill("javascript:alert(1)")
    section.get_by_role("button", name="Save link settings").click()
    section.get_by_text("should be a web page address").wait_for()
    assert field.input_value() == "javascript:alert(1)"
    field.fill("https://oak.example/p/oak-chair")
    section.get_by_role("button", name="Save link settings").click()
    section.get_by_text("Saved. The share page shows it now.").wait_for()
    shot(page, artifacts / "share_model_page_embed_desktop.png")
    # Done with the Model page: its embedded viewer would go on drawing in software (about one core
    # of a 2-core CI machine) while the shop's page builds its own two viewers.
    page.close()

    shop_dir = tmp_path / "shop-site"
    shop_dir.mkdir()
    (shop_dir / "product.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Oak chair - Oak & Co</title></head><body>"
        f"<h1>Oak chair</h1><div id='framed'>{snippets[0]}</div><div id='bare'>{snippets[1]}</div></body></html>")
    port = free_port()
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                              "--directory", str(shop_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        shop_page = ctx.new_page()
        # Two WebGL viewers in software while the other test worker runs: a screenshot of this page
        # was seen taking over 30 s (Playwright's default) in a clean-clone run.
        shop_page.set_default_timeout(120_000)
        # Tall enough for both viewers: no scrolling (Playwright's "stable" waits time out while
        # two WebGL viewers render in software).
        shop_page.set_viewport_size({"width": 1280, "height": 1300})
        errors = []
        shop_page.on("pageerror", lambda e: errors.append(str(e)))
        wait_for(lambda: _reachable(f"http://127.0.0.1:{port}/product.html"), 20, "the shop's server")
        shop_page.goto(f"http://127.0.0.1:{port}/product.html", wait_until="domcontentloaded", timeout=120_000)
        assert not shop_page.url.startswith(base)  # another origin
        iframe = shop_page.locator("#framed iframe")
        iframe.wait_for(state="attached", timeout=120_000)  # (the machine may be busy: two WebGL viewers)
        # The iframe's page by its address, not through element_handle: on a busy machine that
        # lookup timed out (10 s) while the page was still busy building two WebGL viewers.
        frame = wait_for(lambda: next((f for f in shop_page.frames if f"/ar/{model.share_id}" in f.url), None), 120,
                         "the iframe's page")
        wait_viewer_loaded(frame, "iframe on the shop's page")
        wait_for(lambda: shop_page.evaluate("document.querySelector('#bare model-viewer').loaded"), 120,
                 "the bare model-viewer")
        wait_for(lambda: shop_page.evaluate("document.querySelector('#bare model-viewer').modelIsVisible"), 60,
                 "the bare model visible")
        shop_page.wait_for_timeout(800)
        # One screenshot of the whole (unscrolled) page, each viewer cut out of it: every screenshot
        # waits for a fresh frame of both software-drawn viewers (about 25 s each on a loaded
        # 2-core machine), and three of them (two clips and the artifact) showed the same pixels.
        boxes = {name: shop_page.locator(name).bounding_box() for name in ("#framed iframe", "#bare model-viewer")}
        page_png = shop_page.screenshot(path=artifacts / "share_embedded_elsewhere_desktop.png")
        for name, box in boxes.items():
            assert model_pixels(cut_out(page_png, box)) > 0.03, f"{name} looks empty"
        assert errors == [], errors
    finally:
        other.terminate()
        other.wait(10)
    ctx.close()


def _reachable(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
