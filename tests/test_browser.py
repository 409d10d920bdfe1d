"""Real headless Chromium against the real server and the real pipeline.

Desktop and phone: upload a photo through the file input, wait for the Result page, check that
<model-viewer> fired `load` and shows the model, decode the QR code, open the AR share page (no
console errors). Screenshots of every page land in tests/output/ (the `artifacts` fixture).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webapp_http import running_server  # noqa: E402
from tests.polling import wait_for  # noqa: E402

from tests.browsing import VIEWPORTS, signed_in_context  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory, device):
    with running_server(tmp_path_factory.mktemp("browser-data"), device) as base:
        yield base


def viewer_state(frame) -> dict:
    # page.evaluate goes through the DevTools protocol, so the page's strict CSP does not block it
    return frame.evaluate("""() => {
        const v = document.querySelector('model-viewer');
        return v ? {loaded: v.loaded, visible: v.modelIsVisible, fired: document.body.dataset.modelLoaded === '1',
                    error: document.body.dataset.modelError || null} : null;
    }""")


def model_pixels(png: bytes) -> float:
    """Share of pixels that are not the light grey stage (coloured, or clearly darker)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    chroma = img.max(axis=2) - img.min(axis=2)
    return float(np.mean((chroma > 25) | (img.mean(axis=2) < 170)))


def cut_out(png: bytes, box: dict, scroll: tuple[float, float] = (0.0, 0.0)) -> bytes:
    """The part of a screenshot (device scale 1) inside `box` (CSS px, as bounding_box gives them,
    relative to the viewport; `scroll`: the page's scrollX, scrollY for a full-page screenshot).
    Every screenshot of a page with a live viewer waits for a fresh frame drawn in software (many
    seconds on a loaded 2-core machine): one screenshot, cut up, replaces several of the same pixels."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    x0, y0 = max(0, round(box["x"] + scroll[0])), max(0, round(box["y"] + scroll[1]))
    x1 = min(img.shape[1], round(box["x"] + scroll[0] + box["width"]))
    y1 = min(img.shape[0], round(box["y"] + scroll[1] + box["height"]))
    assert x1 - x0 > 10 and y1 - y0 > 10, (box, scroll, img.shape)  # the element is in the shot
    return cv2.imencode(".png", img[y0:y1, x0:x1])[1].tobytes()


def decode_qr(png: bytes) -> str:
    """OpenCV's detector is picky about scale, quiet zone and the grey edges of a scaled image:
    try the shot as is, padded, 2x and black-and-white (Otsu), with both of its QR detectors (a
    sharp 359 px phone shot of a good code once failed every plain try)."""
    import cv2

    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    padded = cv2.copyMakeBorder(img, 32, 32, 32, 32, cv2.BORDER_CONSTANT, value=255)
    bw = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    candidates = (img, padded, cv2.resize(padded, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST), bw)
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        for candidate in candidates:
            text, _points, _ = detector.detectAndDecode(candidate)
            if text:
                return text
    return ""


def shot(page, path: Path) -> None:
    """Whole-page screenshot: Streamlit scrolls inside its own container, so grow the viewport."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(document.body.scrollHeight,
        ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppScrollToBottomContainer]')]
            .map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 4000)})
    page.wait_for_timeout(400)
    page.screenshot(path=path)
    page.set_viewport_size(size)


def read_qr(locator, artifacts: Path) -> str:
    """Decode the QR image as shown; retry while it settles (scroll, late paint, hover toolbar)."""
    text, png = "", b""
    for _ in range(10):
        locator.scroll_into_view_if_needed()
        # Pointer off the image: Streamlit draws a fullscreen button over a hovered one
        locator.page.mouse.move(1, 1)
        locator.evaluate("img => img.complete || new Promise(r => img.addEventListener('load', r, {once: true}))")
        png = locator.screenshot()
        text = decode_qr(png)
        if text:
            break
        time.sleep(0.5)
    if not text:  # say what was on screen: CI keeps only the log
        import cv2

        (artifacts / "qr_unreadable.png").write_bytes(png)
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
        text = f"unreadable: {img.shape} px, dark share {np.mean(img < 128):.2f}"
    return text


def wait_viewer_loaded(frame, label: str) -> dict:
    state = wait_for(lambda: (s := viewer_state(frame)) and (s["fired"] or s["error"]) and s, 180, f"{label} load")
    assert state["error"] is None, f"{label}: model-viewer error {state['error']}"
    assert state["fired"] and state["loaded"], state
    wait_for(lambda: viewer_state(frame)["visible"], 60, f"{label} model visible")
    return state


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_upload_to_result_and_share_page(size, server, browser, bench, artifacts):
    photo = bench / "single" / "chair" / "image.jpg"
    ctx = signed_in_context(browser, server, **VIEWPORTS[size])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)

    # Create
    page.goto(server + "/")
    page.get_by_role("heading", name="Create a 3D model").wait_for()
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_text(photo.name).first.wait_for()
    page.locator("[data-testid=stImage] img").first.wait_for()
    name = "Oak chair" if size == "desktop" else "Oak chair (phone)"
    page.get_by_label("Product name").fill(name)
    page.get_by_label("Product name").press("Enter")
    page.get_by_label("Measurement").fill("85")
    page.get_by_label("Measurement").press("Enter")
    page.get_by_text("More options").click()
    page.get_by_text("Quick", exact=True).click()
    page.wait_for_timeout(800)
    shot(page, artifacts / f"webapp_create_{size}.png")
    page.get_by_role("button", name=re.compile("Create 3D model")).click()

    # Progress, then Result
    page.wait_for_url(re.compile(r"job="), timeout=30_000)
    try:  # a quick job may already be finished: then there is no progress to photograph
        page.get_by_text(re.compile("Making your 3D model|next in line|Waiting for")).first.wait_for(timeout=20_000)
        page.get_by_role("button", name=re.compile("Create 3D model")).wait_for(state="detached", timeout=20_000)
        page.screenshot(path=artifacts / f"webapp_progress_{size}.png")
    except Exception:
        assert "/model?id=" in page.url, "neither progress nor a result was shown"
    page.wait_for_url(re.compile(r"/model\?id="), timeout=300_000)
    model_id = re.search(r"id=([A-Za-z0-9_-]+)", page.url).group(1)
    page.get_by_role("heading", name=name).wait_for()
    iframe = page.locator("iframe[src*='/ar/']").first
    share_id = re.search(r"/ar/([A-Za-z0-9_-]+)", iframe.get_attribute("src")).group(1)
    assert share_id != model_id  # the merchant page's address is not the shoppers' link
    iframe.scroll_into_view_if_needed()
    frame = wait_for(lambda: iframe.element_handle().content_frame(), 30, "iframe document")
    wait_viewer_loaded(frame, f"result page ({size})")
    page.wait_for_timeout(500)
    frame_png = iframe.screenshot()
    assert model_pixels(frame_png) > 0.03, "the embedded viewer looks empty"
    shot(page, artifacts / f"webapp_result_{size}.png")

    share_url = f"{server}/ar/{share_id}"
    page.get_by_text(share_url).first.wait_for()
    qr = page.locator("[data-testid=stImage] img").first
    qr.scroll_into_view_if_needed()
    assert read_qr(qr, artifacts) == share_url

    # Library
    page.goto(server + "/library")
    page.get_by_text(name, exact=True).first.wait_for()
    page.locator("[data-testid=stImage] img").first.wait_for()
    page.wait_for_timeout(500)
    shot(page, artifacts / f"webapp_library_{size}.png")

    # The share page, top-level, as a customer opens it from the QR code
    ar = ctx.new_page()
    errors = []
    ar.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    ar.on("pageerror", lambda e: errors.append(str(e)))
    ar.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
    ar.goto(share_url)
    wait_viewer_loaded(ar.main_frame, f"share page ({size})")
    ar.wait_for_timeout(500)
    box, scroll = ar.locator("model-viewer").bounding_box(), ar.evaluate("[scrollX, scrollY]")
    whole = ar.screenshot(path=artifacts / f"webapp_ar_{size}.png", full_page=True)
    assert model_pixels(cut_out(whole, box, scroll)) > 0.03, "the share page viewer looks empty"
    assert errors == [], errors
    assert "cm" in ar.locator(".facts").inner_text() and "in)" in ar.locator(".facts").inner_text()
    assert outside == [], f"requests left the server: {outside}"
    ctx.close()


EVIL = "[click](http://evil.example) :red[x] $x^2$.jpg"
#: Reports every Content-Security-Policy violation as a console error (the page's own CSP does
#: not apply to scripts Playwright adds through the DevTools protocol).
CSP_WATCH = ("document.addEventListener('securitypolicyviolation', e => "
             "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")


def test_merchant_pages_run_under_their_csp_and_show_names_as_text(browser, bench, tmp_path, artifacts):
    """Create, Model (with the embedded share page and the QR image) and Library under the merchant
    CSP with no violation; a product and a file name full of Markdown stay text; a photo over the
    session's limit (PLINTH_MAX_JOB_MB=0.3, each photo 0.17 MB) is refused by the server."""
    import subprocess

    from test_webapp_http import ROOT

    photo = bench / "single" / "chair" / "image.jpg"
    with running_server(tmp_path, env={"PLINTH_MAX_JOB_MB": "0.3"}) as base:
        env = {**os.environ, "PLINTH_DATA_DIR": str(tmp_path)}
        env.pop("PLINTH_PUBLIC_URL", None)
        run = subprocess.run([sys.executable, "-m", "webapp", "make", str(photo), "--height", "0.5m", "--publish",
                              "--name", EVIL, "--out", str(tmp_path / "o.glb"), "--quality", "fast",
                              "--texture-size", "512", "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        share_id = re.findall(r"/ar/(\S+)", run.stdout)[-1]
        ctx = signed_in_context(browser, base, tmp_path, **VIEWPORTS["desktop"])
        ctx.add_init_script(CSP_WATCH)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "CSP violation" in m.text
                or "Content Security Policy" in m.text else None)

        page.goto(base + "/")
        page.get_by_role("heading", name="Create a 3D model").wait_for()
        content = photo.read_bytes()
        # One at a time: sent together, either could be the one over the session's limit.
        page.locator("input[type=file]").set_input_files([{"name": EVIL, "mimeType": "image/jpeg", "buffer": content}])
        # shown as written (ui.md puts invisible word joiners after ':' so no autolink forms)
        page.get_by_text(re.compile("^" + "\u2060?".join(map(re.escape, EVIL)) + "$")).first.wait_for()
        page.locator("input[type=file]").set_input_files([
            {"name": "second.jpg", "mimeType": "image/jpeg", "buffer": content}])
        uploader = page.locator("[data-testid=stFileUploader]")
        wait_for(lambda: "413" in uploader.inner_text(), 30, "the refused second photo")
        page.get_by_text("did not fit").first.wait_for()  # the page's own plain words about it
        shot(page, artifacts / "webapp_create_names.png")
        assert page.locator("a[href*='evil.example']").count() == 0 and page.locator(".katex").count() == 0

        from webapp import library

        page.goto(f"{base}/model?id={library.get_model(share_id, tmp_path).model_id}")
        iframe = page.locator("iframe[src*='/ar/']").first
        frame = wait_for(lambda: iframe.element_handle().content_frame(), 30, "iframe document")
        wait_viewer_loaded(frame, "result page under CSP")
        page.locator("[data-testid=stImage] img").first.wait_for()  # the QR code
        page.get_by_role("heading", name=re.compile(r"evil\.example")).wait_for()
        assert page.locator("a[href*='evil.example']").count() == 0 and page.locator(".katex").count() == 0

        page.goto(base + "/library")
        page.locator("[data-testid=stImage] img").first.wait_for()
        page.get_by_text(re.compile(r"evil\.example")).first.wait_for()
        page.wait_for_timeout(1000)
        assert page.locator("a[href*='evil.example']").count() == 0 and page.locator(".katex").count() == 0
        ctx.close()
    assert violations == [], violations


def as_shown(text: str) -> re.Pattern:
    """`text` as the page shows it: ui.md puts an invisible word joiner after each ':'."""
    return re.compile("\u2060?".join(map(re.escape, text)))


def test_failed_model_page_shows_the_reasons_and_no_share_link(browser, chair_model, tmp_path, artifacts, device):
    """A model the quality gate failed: the Model page says what went wrong and which photos to take
    again, shows no share link, QR code or AR button, and its 3D view opens only on purpose (a
    private preview); the share page is a 404. A model with warnings and the Library, for the eye."""
    import httpx

    from pipeline import Verdict
    from tests.verdicts import FAILED_CHECK, RESHOOT, WARNED_CHECK, judged
    from webapp import model_folders

    data = tmp_path / "data"
    data.mkdir()
    failed = model_folders.add_model(judged(chair_model, Verdict.FAILED, tmp_path / "f"), "Oak chair", [],
                                     data_dir=data)
    warned = model_folders.add_model(judged(chair_model, Verdict.WARNINGS, tmp_path / "w"), "Oak stool", [],
                                     data_dir=data)
    with running_server(data, device) as base:
        assert httpx.get(f"{base}/ar/{failed.share_id}", timeout=10).status_code == 404
        assert httpx.get(f"{base}/models/{failed.share_id}/model.glb", timeout=10).status_code == 404
        for size in VIEWPORTS:
            ctx = signed_in_context(browser, base, data, **VIEWPORTS[size])
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/model?id={failed.model_id}")
            page.get_by_role("heading", name="Oak chair").wait_for()
            alert = page.get_by_text("failed Plinth's checks, so it is not published")
            alert.wait_for()
            page.get_by_text(as_shown(FAILED_CHECK.message)).wait_for()
            page.get_by_text(as_shown(WARNED_CHECK.message)).wait_for()
            page.get_by_text(as_shown(", ".join(RESHOOT))).wait_for()  # the merchant's own file names
            body = page.locator("body").inner_text()
            assert "/ar/" not in body and "Scan with your phone" not in body and "Open the AR page" not in body
            assert "A full 3D scan" not in body and "Traceback" not in body
            assert page.locator("[data-testid=stImage] img").count() == 0  # no QR code
            assert page.locator("iframe[src*='/ar/']").count() == 0
            shot(page, artifacts / f"webapp_failed_{size}.png")

            page.get_by_text("Look at it anyway").click()  # on purpose: the private preview
            iframe = page.locator("iframe[src*='/preview/']").first
            iframe.scroll_into_view_if_needed()
            frame = wait_for(lambda: iframe.element_handle().content_frame(), 30, "preview document")
            wait_viewer_loaded(frame, f"preview ({size})")
            assert frame.locator("button.ar-button").count() == 0  # no "View in your room"
            page.get_by_role("button", name=re.compile("GLB")).wait_for()  # downloads, on purpose
            page.wait_for_timeout(500)
            shot(page, artifacts / f"webapp_failed_preview_{size}.png")
            ctx.close()

        ctx = signed_in_context(browser, base, data, **VIEWPORTS["desktop"])
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/model?id={warned.model_id}")
        page.get_by_text("Usable, with warnings.").wait_for()
        page.get_by_text(f"{base}/ar/{warned.share_id}").first.wait_for()  # published, with its share link
        frame = wait_for(lambda: page.locator("iframe[src*='/ar/']").first.element_handle().content_frame(), 30,
                         "share page iframe")
        wait_viewer_loaded(frame, "warnings model")
        shot(page, artifacts / "webapp_warnings_desktop.png")
        page.goto(f"{base}/library")
        page.get_by_text("Failed the checks: not published").wait_for()
        page.get_by_text("Usable, with warnings").wait_for()
        page.locator("[data-testid=stImage] img").first.wait_for()
        page.wait_for_timeout(500)
        shot(page, artifacts / "webapp_library_verdicts_desktop.png")
        ctx.close()
